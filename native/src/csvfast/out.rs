//! The events of a chunk, written one after another into one buffer kept between chunks.

/// A buffer whose room is made once per row (`reserve`) and then written without a check of
/// its own per cell (`append`); its bytes past `len` are scratch.
#[derive(Default)]
pub struct Out {
    data: Vec<u8>,
    len: usize,
}

impl Out {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn truncate(&mut self, len: usize) {
        self.len = len;
    }

    pub fn bytes(&self, start: usize, length: usize) -> &[u8] {
        &self.data[start..start + length]
    }

    pub fn capacity(&self) -> usize {
        self.data.len()
    }

    /// Room for `more` bytes after `len`.
    pub fn reserve(&mut self, more: usize) {
        let need = self.len + more;
        if need > self.data.len() {
            let mut capacity = self.data.len().max(1 << 16);
            while capacity < need {
                capacity *= 2;
            }
            self.data.resize(capacity, 0);
        }
    }

    /// `s` appended where `reserve` made room. Fragments and cells are short: a call to
    /// `memcpy` costs more than two overlapping word moves.
    #[inline(always)]
    pub fn append(&mut self, s: &[u8]) {
        let n = s.len();
        let to = &mut self.data[self.len..self.len + n];
        match n {
            0..4 => to.copy_from_slice(s),
            4..8 => {
                to[..4].copy_from_slice(&s[..4]);
                to[n - 4..].copy_from_slice(&s[n - 4..]);
            }
            8..=16 => {
                to[..8].copy_from_slice(&s[..8]);
                to[n - 8..].copy_from_slice(&s[n - 8..]);
            }
            _ => to.copy_from_slice(s),
        }
        self.len += n;
    }

    /// `s` appended after making room for it.
    #[inline(always)]
    pub fn put(&mut self, s: &[u8]) {
        self.reserve(s.len());
        self.append(s);
    }
}
