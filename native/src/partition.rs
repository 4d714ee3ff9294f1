//! Kafka's default key partitioner (murmur2), as `streams/kafka/partitioner.py`.

use pyo3::prelude::*;

const KAFKA_SEED: u32 = 0x9747_b28c;

/// The partition Java clients and librdkafka's `murmur2_random` choose for `key`.
pub fn home(key: &[u8], partitions: u32) -> u32 {
    (murmur2::murmur2(key, KAFKA_SEED) & 0x7fff_ffff) % partitions
}

#[pyfunction]
pub fn partition_for(key: &[u8], partitions: u32) -> u32 {
    home(key, partitions)
}
