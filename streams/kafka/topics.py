"""Create and check the contract's five topics (six with ``customer_events_topic`` set) with the
Kafka AdminClient."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource
from confluent_kafka.cimpl import NewTopic

from streams.errors import KafkaUnavailableError, StreamsError, TopicMismatchError
from streams.kafka.clients import admin_client
from streams.settings import Settings

if TYPE_CHECKING:
    # confluent_kafka.admin uses the class without re-exporting it to type checkers.
    from confluent_kafka.admin._metadata import ClusterMetadata

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
CONFIG_TIMEOUT = 5.0
METADATA_POLL_INTERVAL = 0.1
# The changelog keeps the latest state per key forever; the rest age out by retention.
COMPACTED: Mapping[str, str] = MappingProxyType({"cleanup.policy": "compact"})


class TopicCreationError(StreamsError):
    """Kafka refused to create a topic."""


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """What one topic of the contract should look like."""

    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str] = field(default_factory=dict)

    def new_topic(self) -> NewTopic:
        return NewTopic(
            self.name,
            num_partitions=self.partitions,
            replication_factor=self.replication_factor,
            config=dict(self.config),
        )


@dataclass(frozen=True, slots=True)
class TopicStatus:
    """One topic after ``create_topics``: its partition count and whether we created it."""

    name: str
    partitions: int
    created: bool


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """The topics, all with the configured partitions and replication factor."""
    return [
        TopicSpec(
            name=name,
            partitions=settings.partitions,
            replication_factor=settings.replication_factor,
            config=COMPACTED if name == settings.changelog_topic else {},
        )
        for name in settings.topic_names()
    ]


def create_topics(settings: Settings, *, timeout: float = DEFAULT_TIMEOUT) -> list[TopicStatus]:
    """Create the missing topics (existing ones are fine), then ``verify_topics``."""
    deadline = time.monotonic() + timeout
    admin = admin_client(settings)
    _metadata(admin, settings, deadline)
    specs = topic_specs(settings)
    remaining = _remaining(deadline)
    futures = admin.create_topics(
        [spec.new_topic() for spec in specs],
        operation_timeout=remaining,
        request_timeout=remaining,
    )
    created: dict[str, bool] = {}
    for spec in specs:
        try:
            futures[spec.name].result(timeout=_remaining(deadline))
        except TimeoutError as exc:
            raise KafkaUnavailableError(
                f"Kafka at {settings.kafka_bootstrap_servers} did not create {spec.name} "
                f"within {timeout:.0f} s"
            ) from exc
        except KafkaException as exc:
            error = _kafka_error(exc)
            if error is not None and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                created[spec.name] = False
                continue
            raise TopicCreationError(
                f"cannot create topic {spec.name}: {kafka_error_text(exc)}"
            ) from exc
        created[spec.name] = True
        logger.info("created topic %s with %d partitions", spec.name, spec.partitions)
    metadata = _wait_until_visible(admin, settings, deadline)
    _raise_on_problems(settings, metadata)
    return [
        TopicStatus(
            name=name,
            partitions=len(metadata.topics[name].partitions),
            created=created[name],
        )
        for name in settings.topic_names()
    ]


def verify_topics(settings: Settings, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Raise ``TopicMismatchError`` naming every missing or mis-partitioned topic."""
    deadline = time.monotonic() + timeout
    metadata = _metadata(admin_client(settings), settings, deadline)
    _raise_on_problems(settings, metadata)


def topic_problems(settings: Settings, metadata: ClusterMetadata) -> list[str]:
    """One sentence per topic that is missing or has the wrong partition count."""
    problems: list[str] = []
    for name in settings.topic_names():
        topic = metadata.topics.get(name)
        if topic is None or _is_unknown(topic.error):
            problems.append(f"topic {name} is missing: run `streams topics create`")
        elif len(topic.partitions) != settings.partitions:
            problems.append(
                f"topic {name} has {len(topic.partitions)} partitions, "
                f"configuration says {settings.partitions}"
            )
    return problems


def _raise_on_problems(settings: Settings, metadata: ClusterMetadata) -> None:
    problems = topic_problems(settings, metadata)
    if problems:
        raise TopicMismatchError("; ".join(problems))


def _metadata(admin: AdminClient, settings: Settings, deadline: float) -> ClusterMetadata:
    try:
        return admin.list_topics(timeout=_remaining(deadline))
    except KafkaException as exc:
        raise KafkaUnavailableError(
            f"Kafka at {settings.kafka_bootstrap_servers} is unreachable: {kafka_error_text(exc)}"
        ) from exc


def _wait_until_visible(admin: AdminClient, settings: Settings, deadline: float) -> ClusterMetadata:
    # A just-created topic reaches the broker's metadata cache a moment after the controller.
    while True:
        metadata = _metadata(admin, settings, deadline)
        if all(name in metadata.topics for name in settings.topic_names()):
            return metadata
        if time.monotonic() + METADATA_POLL_INTERVAL >= deadline:
            return metadata
        time.sleep(METADATA_POLL_INTERVAL)


def _is_unknown(error: KafkaError | None) -> bool:
    return error is not None and error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def _kafka_error(exc: KafkaException) -> KafkaError | None:
    first = exc.args[0] if exc.args else None
    return first if isinstance(first, KafkaError) else None


def kafka_error_text(exc: KafkaException) -> str:
    """librdkafka's sentence for a failed call, without the ``KafkaError{...}`` wrapping."""
    error = _kafka_error(exc)
    return error.str() if error is not None else str(exc)


def _remaining(deadline: float) -> float:
    # librdkafka treats a zero timeout as "do not wait"; keep a sliver so it still asks.
    return max(deadline - time.monotonic(), METADATA_POLL_INTERVAL)


def ensure_topic(settings: Settings, name: str, *, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Create one extra topic (a connector's DLQ) like the contract's; True if it was created."""
    spec = TopicSpec(name, settings.partitions, settings.replication_factor)
    admin = admin_client(settings)  # keep a reference: a collected client cancels its futures
    future = admin.create_topics(
        [spec.new_topic()], operation_timeout=timeout, request_timeout=timeout
    )[name]
    try:
        future.result(timeout=timeout)
    except KafkaException as exc:
        error = _kafka_error(exc)
        if error is not None and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return False
        raise TopicCreationError(f"cannot create topic {name}: {kafka_error_text(exc)}") from exc
    except TimeoutError as exc:
        raise KafkaUnavailableError(f"Kafka did not create {name} within {timeout:.0f} s") from exc
    logger.info("created topic %s with %d partitions", name, spec.partitions)
    return True


def message_limit(settings: Settings, topic: str, *, timeout: float = CONFIG_TIMEOUT) -> int | None:
    """The topic's ``max.message.bytes``, or None when the broker does not tell (no right to
    describe configs, say)."""
    admin = admin_client(settings)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    try:
        config = admin.describe_configs([resource], request_timeout=timeout)[resource].result(
            timeout=timeout
        )
        return int(config["max.message.bytes"].value)
    except (KafkaException, TimeoutError, KeyError, ValueError) as exc:
        logger.info("max.message.bytes of %s unknown: %s", topic, exc)
        return None
