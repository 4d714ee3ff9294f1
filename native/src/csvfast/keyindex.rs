//! `KeyIndex`: duplicate ids of one snapshot (see streams/bootstrap/dedupe.py). Per id the
//! newest row wins (the later update time, else the later line); every other row is a loss,
//! reported against the winner of all rows added by then.

use pyo3::exceptions::{PyMemoryError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::sequence_items;
use crate::words::{hash_bytes, same_bytes};

const FIRST_SLOTS: usize = 1024;
const KEY_LENGTH: usize = std::mem::size_of::<usize>();

/// A slot of the id table: eight bytes, so that a million ids' table (twice their number of
/// slots) stays near the cache (a new id's slot is a random read: most rows are new ids).
#[derive(Clone, Copy, Default)]
struct KeySlot {
    tag: u32, // high bits of the hash
    id: u32,  // index into winners + 1; 0: a free slot
}

#[derive(Clone, Copy)]
struct Seen {
    line: i64,
    stamp: f64,
    stamped: bool,
}

impl Seen {
    /// The newer row: the later update time, else the later line; a time beats none (as nulls
    /// sort first).
    fn newer_than(&self, than: &Seen) -> bool {
        if self.stamped != than.stamped {
            return self.stamped;
        }
        if self.stamped && self.stamp != than.stamp {
            return self.stamp > than.stamp;
        }
        self.line > than.line
    }
}

/// Per distinct id, in order of arrival: its newest row so far, where its bytes are in the
/// arena and its hash (read only when a tag matches and when the table grows).
struct Winner {
    seen: Seen,
    key: usize,
    hash: u64,
}

struct Loss {
    seen: Seen,
    id: usize,
}

/// More distinct ids than 32-bit slots can name.
#[derive(Debug)]
pub struct Full;

impl From<Full> for PyErr {
    fn from(_: Full) -> PyErr {
        PyMemoryError::new_err("the duplicate index holds at most 2^32 - 2 ids")
    }
}

/// Duplicate ids: per id the newest row (update time, else line) and the losers.
#[pyclass(module = "streams._native.csvfast")]
#[derive(Default)]
pub struct KeyIndex {
    slots: Vec<KeySlot>,
    winners: Vec<Winner>,
    losses: Vec<Loss>,
    arena: Vec<u8>, // per id: its length (native-endian usize), then its bytes
}

impl KeyIndex {
    fn rehash(&mut self) {
        let capacity = if self.slots.is_empty() {
            FIRST_SLOTS
        } else {
            self.slots.len() * 2
        };
        let mut slots = vec![KeySlot::default(); capacity];
        // In order of arrival: no probe of the old table.
        for (id, winner) in self.winners.iter().enumerate() {
            let mut j = winner.hash as usize & (capacity - 1);
            while slots[j].id != 0 {
                j = (j + 1) & (capacity - 1);
            }
            slots[j] = KeySlot {
                tag: (winner.hash >> 32) as u32,
                id: id as u32 + 1,
            };
        }
        self.slots = slots;
    }

    fn stored_key(&self, offset: usize) -> &[u8] {
        let length = usize::from_ne_bytes(
            self.arena[offset..offset + KEY_LENGTH]
                .try_into()
                .expect("a key's length"),
        );
        &self.arena[offset + KEY_LENGTH..offset + KEY_LENGTH + length]
    }

    /// Notes one row of `key` (no Python: runs without the GIL).
    pub fn add_one(
        &mut self,
        key: &[u8],
        line: i64,
        stamp: f64,
        stamped: bool,
    ) -> Result<(), Full> {
        if self.winners.len() >= (u32::MAX - 1) as usize {
            return Err(Full);
        }
        if (self.winners.len() + 1) * 2 > self.slots.len() {
            self.rehash();
        }
        let row = Seen {
            line,
            stamp,
            stamped,
        };
        let hash = hash_bytes(key);
        let tag = (hash >> 32) as u32;
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            let slot = self.slots[i];
            if slot.id == 0 {
                break;
            }
            let id = slot.id as usize - 1;
            if slot.tag == tag
                && self.winners[id].hash == hash
                && same_bytes(self.stored_key(self.winners[id].key), key)
            {
                let winner = &mut self.winners[id].seen;
                let lost = if row.newer_than(winner) {
                    std::mem::replace(winner, row)
                } else {
                    row
                };
                self.losses.push(Loss { seen: lost, id });
                return Ok(());
            }
            i = (i + 1) & mask;
        }
        let offset = self.arena.len();
        self.arena.extend_from_slice(&key.len().to_ne_bytes());
        self.arena.extend_from_slice(key);
        self.winners.push(Winner {
            seen: row,
            key: offset,
            hash,
        });
        self.slots[i] = KeySlot {
            tag,
            id: self.winners.len() as u32,
        };
        Ok(())
    }

    /// A hint to start loading the slot a lookup of `hash` reads first.
    pub fn prefetch(&self, hash: u64) {
        if !self.slots.is_empty() {
            super::prefetch(&self.slots[hash as usize & (self.slots.len() - 1)]);
        }
    }
}

#[pymethods]
impl KeyIndex {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// add(keys, lines, stamps or None): rows about to be produced.
    fn add(
        &mut self,
        py: Python<'_>,
        keys: &Bound<'_, PyAny>,
        lines: &Bound<'_, PyAny>,
        stamps: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let keys = sequence_items(keys)?;
        let lines = sequence_items(lines)?;
        let stamps = stamps.map(sequence_items).transpose()?;
        if lines.len() != keys.len() || stamps.as_ref().is_some_and(|s| s.len() != keys.len()) {
            return Err(PyValueError::new_err(
                "keys, lines and stamps of different lengths",
            ));
        }
        let mut rows = Vec::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            let key = key
                .cast::<PyBytes>()
                .map_err(|_| PyTypeError::new_err("keys are bytes"))?;
            let line: i64 = lines[i].extract()?;
            let (stamp, stamped) = match &stamps {
                Some(stamps) if !stamps[i].is_none() => (stamps[i].extract::<f64>()?, true),
                _ => (0.0, false),
            };
            rows.push((key.as_bytes(), line, stamp, stamped));
        }
        // The hash table is all cache misses: the reader thread runs it while others hold the
        // GIL (`keys` holds the bytes; the borrow of self keeps a second caller out).
        py.detach(|| {
            rows.iter().try_for_each(|&(key, line, stamp, stamped)| {
                self.add_one(key, line, stamp, stamped)
            })
        })?;
        Ok(())
    }

    /// losses() -> [(line, kept_line, same_time)] by line: every row that lost to its id's
    /// newest, against the newest of all rows added so far; the losses are then forgotten.
    fn losses(&mut self) -> Vec<(i64, i64, bool)> {
        self.losses.sort_by_key(|loss| loss.seen.line);
        let winners = &self.winners;
        self.losses
            .drain(..)
            .map(|loss| {
                let kept = &winners[loss.id].seen;
                let same = !(loss.seen.stamped && kept.stamped) || loss.seen.stamp == kept.stamp;
                (loss.seen.line, kept.line, same)
            })
            .collect()
    }
}
