"""Kafka's default (Java) key partitioner: murmur2 of the key bytes, positive, modulo count.

Records for one customer must land in one partition, so every producer we ship sets
librdkafka's ``murmur2_random`` partitioner, which matches this function and Java clients.
"""

from __future__ import annotations

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """32-bit murmur2 exactly as ``org.apache.kafka.common.utils.Utils.murmur2``."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    tail = length & ~3
    for i in range(0, tail, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = (h * _M) & _MASK
        h ^= k
    rest = length & 3
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Java clients and librdkafka's ``murmur2_random`` choose for ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
