"""The embedded single-node Apache Kafka (KRaft) broker used by tests, demos and `make broker`."""

from __future__ import annotations

from streams.broker.embedded import EmbeddedKafka, parse_listen, run_foreground
from streams.broker.jars import BrokerUnavailableError, default_libs_dir, ensure_jars, kafka_version

__all__ = [
    "BrokerUnavailableError",
    "EmbeddedKafka",
    "default_libs_dir",
    "ensure_jars",
    "kafka_version",
    "parse_listen",
    "run_foreground",
]
