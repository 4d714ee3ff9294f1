//! A decoded document's object: a vector searched in order while small (an event's fields and
//! properties, a state's entries: a handful each), an `IndexMap` once it grows. Both keep
//! `IndexMap`'s semantics: a repeated key keeps its first place and takes the last value, and
//! `swap_remove` moves the last entry into the removed one's place.

use crate::hashing::OrderedMap;

/// Entries searched one by one; past this many a map is hashed (inputs may hold thousands).
const SMALL: usize = 16;

#[derive(Clone, Debug)]
pub enum DocMap<V> {
    Small(Vec<(String, V)>),
    Large(OrderedMap<String, V>),
}

impl<V> Default for DocMap<V> {
    fn default() -> Self {
        DocMap::Small(Vec::new())
    }
}

impl<V> DocMap<V> {
    pub fn with_capacity(capacity: usize) -> Self {
        if capacity > SMALL {
            DocMap::Large(OrderedMap::with_capacity_and_hasher(
                capacity,
                Default::default(),
            ))
        } else {
            DocMap::Small(Vec::with_capacity(capacity))
        }
    }

    pub fn insert(&mut self, key: String, value: V) {
        match self {
            DocMap::Small(entries) => {
                if let Some(entry) = entries.iter_mut().find(|(k, _)| *k == key) {
                    entry.1 = value;
                } else if entries.len() < SMALL {
                    entries.push((key, value));
                } else {
                    let mut large =
                        OrderedMap::with_capacity_and_hasher(entries.len() * 2, Default::default());
                    large.extend(entries.drain(..));
                    large.insert(key, value);
                    *self = DocMap::Large(large);
                }
            }
            DocMap::Large(map) => {
                map.insert(key, value);
            }
        }
    }

    pub fn swap_remove(&mut self, key: &str) -> Option<V> {
        match self {
            DocMap::Small(entries) => {
                let position = entries.iter().position(|(k, _)| k == key)?;
                Some(entries.swap_remove(position).1)
            }
            DocMap::Large(map) => map.swap_remove(key),
        }
    }

    pub fn contains_key(&self, key: &str) -> bool {
        match self {
            DocMap::Small(entries) => entries.iter().any(|(k, _)| k == key),
            DocMap::Large(map) => map.contains_key(key),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            DocMap::Small(entries) => entries.len(),
            DocMap::Large(map) => map.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn keys(&self) -> Box<dyn Iterator<Item = &String> + '_> {
        match self {
            DocMap::Small(entries) => Box::new(entries.iter().map(|(k, _)| k)),
            DocMap::Large(map) => Box::new(map.keys()),
        }
    }
}

pub enum IntoIter<V> {
    Small(std::vec::IntoIter<(String, V)>),
    Large(indexmap::map::IntoIter<String, V>),
}

impl<V> Iterator for IntoIter<V> {
    type Item = (String, V);

    fn next(&mut self) -> Option<(String, V)> {
        match self {
            IntoIter::Small(entries) => entries.next(),
            IntoIter::Large(entries) => entries.next(),
        }
    }
}

impl<V> IntoIterator for DocMap<V> {
    type Item = (String, V);
    type IntoIter = IntoIter<V>;

    fn into_iter(self) -> IntoIter<V> {
        match self {
            DocMap::Small(entries) => IntoIter::Small(entries.into_iter()),
            DocMap::Large(map) => IntoIter::Large(map.into_iter()),
        }
    }
}
