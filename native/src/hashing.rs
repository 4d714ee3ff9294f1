//! The maps of the kernel, with a fast non-cryptographic hasher: keys come from input events,
//! but a batch's maps live for one call, so flooding one costs the sender only its own batch.

pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub type OrderedMap<K, V> = indexmap::IndexMap<K, V, foldhash::fast::RandomState>;
