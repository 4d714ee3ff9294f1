//! Memo tables: a column's cell bytes -> what the Python converter made of them, looked up for
//! every row without the GIL and filled (with it) one distinct value at a time.

use crate::words::{hash_bytes, same_bytes};

/// Key and text bytes kept in the slot itself.
const INLINE: usize = 26;
/// A `key_len` or `len` that did not fit: the entry's [`Cold`] record has it.
const LONG: u8 = 255;
const FIRST_SLOTS: usize = 128;

/// An open-addressing slot, one cache line: a lookup of a short cell reads nothing else (dates
/// and flags are read for every row; a second miss per lookup cost a fifth of the conversion).
#[repr(C, align(64))]
#[derive(Clone, Copy, Default)]
struct Entry {
    tag: u32, // high bits of the hash
    id: u32,  // Cold record + 1; 0: a free slot
    usable: bool,
    flag: bool,
    key_len: u8,
    len: u8,
    key: [u8; INLINE],
    text: [u8; INLINE],
}

const _: () = assert!(std::mem::size_of::<Entry>() == 64);

/// Per entry, in insertion order: the whole cell and text (read when they are [`LONG`], and
/// when the table grows) and a modified-at time.
struct Cold {
    key: Box<[u8]>,
    text: Box<[u8]>,
    number: f64,
}

/// What the Python converter made of a cell.
pub enum Value {
    /// A removal flag's verdict: the cell marks a removal.
    Removal(bool),
    /// A modified-at time in UNIX seconds; None: not a time (the row goes to Python).
    Modified(Option<f64>),
    /// A property's JSON text; None: empty or not convertible (the row goes to Python).
    Text(Option<Vec<u8>>),
}

/// A found entry: the slot's index.
#[derive(Clone, Copy)]
pub struct Found(usize);

#[derive(Default)]
pub struct Table {
    slots: Vec<Entry>, // at most half full; empty before the first insert
    cold: Vec<Cold>,
    last: Option<usize>, // the slot found last: columns like flags repeat their cells
}

impl Table {
    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    #[inline(always)]
    fn entry_is(&self, entry: &Entry, s: &[u8]) -> bool {
        if entry.key_len != LONG {
            usize::from(entry.key_len) == s.len() && same_bytes(&entry.key[..s.len()], s)
        } else {
            *self.cold[entry.id as usize - 1].key == *s
        }
    }

    /// The entry of a cell, or None (no Python: runs without the GIL).
    pub fn find(&self, s: &[u8], hash: u64) -> Option<Found> {
        if self.slots.is_empty() {
            return None;
        }
        let tag = (hash >> 32) as u32;
        let mask = self.mask();
        let mut i = hash as usize & mask;
        loop {
            let entry = &self.slots[i];
            if entry.id == 0 {
                return None;
            }
            if entry.tag == tag && self.entry_is(entry, s) {
                return Some(Found(i));
            }
            i = (i + 1) & mask;
        }
    }

    /// [`Table::find`], first trying the entry found last.
    #[inline(always)]
    pub fn lookup(&mut self, s: &[u8]) -> Option<Found> {
        if let Some(last) = self.last {
            if self.entry_is(&self.slots[last], s) {
                return Some(Found(last));
            }
        }
        let found = self.find(s, hash_bytes(s));
        if let Some(Found(i)) = found {
            self.last = Some(i);
        }
        found
    }

    /// A hint to start loading the slot a lookup of `hash` reads first.
    pub fn prefetch(&self, hash: u64) {
        if !self.slots.is_empty() {
            super::prefetch(&self.slots[hash as usize & self.mask()]);
        }
    }

    pub fn usable(&self, found: Found) -> bool {
        self.slots[found.0].usable
    }

    pub fn flag(&self, found: Found) -> bool {
        self.slots[found.0].flag
    }

    pub fn text(&self, found: Found) -> &[u8] {
        let entry = &self.slots[found.0];
        if entry.len != LONG {
            &entry.text[..usize::from(entry.len)]
        } else {
            &self.cold[entry.id as usize - 1].text
        }
    }

    pub fn number(&self, found: Found) -> f64 {
        self.cold[self.slots[found.0].id as usize - 1].number
    }

    /// Remembers `value` for `key` (not in the table yet); a table holding `limit` entries
    /// starts over first.
    pub fn insert(&mut self, key: &[u8], value: Value, limit: usize) {
        if self.cold.len() >= limit {
            *self = Table::default();
        }
        self.reserve();
        let hash = hash_bytes(key);
        let mut entry = Entry {
            tag: (hash >> 32) as u32,
            id: u32::try_from(self.cold.len() + 1).expect("a memo table of at most 2^32 values"),
            key_len: if key.len() <= INLINE {
                key.len() as u8
            } else {
                LONG
            },
            ..Entry::default()
        };
        if key.len() <= INLINE {
            entry.key[..key.len()].copy_from_slice(key);
        }
        let mut cold = Cold {
            key: key.into(),
            text: Box::default(),
            number: 0.0,
        };
        match value {
            Value::Removal(flag) => {
                entry.usable = true;
                entry.flag = flag;
            }
            Value::Modified(number) => {
                entry.usable = number.is_some();
                cold.number = number.unwrap_or(0.0);
            }
            Value::Text(Some(text)) => {
                entry.usable = true;
                entry.len = if text.len() <= INLINE {
                    text.len() as u8
                } else {
                    LONG
                };
                if text.len() <= INLINE {
                    entry.text[..text.len()].copy_from_slice(&text);
                }
                cold.text = text.into();
            }
            Value::Text(None) => {}
        }
        self.cold.push(cold);
        let mask = self.mask();
        let mut i = hash as usize & mask;
        while self.slots[i].id != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = entry;
    }

    /// Room for one more entry (slots move: `last` is forgotten).
    fn reserve(&mut self) {
        self.last = None;
        if !self.slots.is_empty() && (self.cold.len() + 1) * 2 <= self.slots.len() {
            return;
        }
        let size = if self.slots.is_empty() {
            FIRST_SLOTS
        } else {
            self.slots.len() * 2
        };
        let mut slots = vec![Entry::default(); size];
        for entry in self.slots.iter().filter(|entry| entry.id != 0) {
            let hash = hash_bytes(&self.cold[entry.id as usize - 1].key);
            let mut j = hash as usize & (size - 1);
            while slots[j].id != 0 {
                j = (j + 1) & (size - 1);
            }
            slots[j] = *entry;
        }
        self.slots = slots;
    }
}
