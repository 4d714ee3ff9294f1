"""What Kafka says about consumer groups: their names, members (client ids, assignments) and
committed offsets. ``streams status`` reads them to show each group's lag and owners."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from streams.errors import KafkaUnavailableError

TopicPartitionKey = tuple[str, int]
# A group's coordinator moving or loading (a fresh cluster, a broker restarting) answers soon.
_COORDINATOR_MOVING = frozenset(
    {
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
    }
)
COORDINATOR_RETRY_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class GroupMember:
    client_id: str
    host: str
    assignment: tuple[TopicPartitionKey, ...]


@dataclass(frozen=True, slots=True)
class GroupFacts:
    group: str
    state: str  # Kafka's, lower case: stable, empty, preparing_rebalancing, dead, ...
    members: tuple[GroupMember, ...]
    committed: Mapping[TopicPartitionKey, int]
    error: str | None = None  # why Kafka told nothing of the group (state "unknown")


def group_names(admin: AdminClient, *, timeout: float) -> list[str]:
    """Every consumer group the cluster knows, sorted."""
    try:
        listed = admin.list_consumer_groups(request_timeout=timeout).result(timeout=timeout)
    except (KafkaException, TimeoutError) as exc:
        raise _unavailable("list consumer groups", exc) from exc
    return sorted(listing.group_id for listing in listed.valid)


def describe_groups(
    admin: AdminClient, groups: Iterable[str], *, timeout: float
) -> dict[str, GroupFacts]:
    """Members and committed offsets of ``groups`` (a group Kafka does not know is ``dead``
    with neither). A group whose coordinator is still moving or loading is asked again
    until ``timeout``; one that stays unanswered has its ``error`` said, not raised."""
    deadline = time.monotonic() + timeout
    facts: dict[str, GroupFacts] = {}
    pending = sorted(set(groups))
    while pending:
        failed: dict[str, KafkaError] = {}
        futures = admin.describe_consumer_groups(pending, request_timeout=timeout)
        for group in pending:
            try:
                description = futures[group].result(timeout=timeout)
                committed = _committed(admin, group, timeout)
            except KafkaException as exc:
                failed[group] = _kafka_error(exc)
                continue
            except TimeoutError as exc:
                raise _unavailable(f"describe consumer group {group}", exc) from exc
            facts[group] = _facts(description, committed)
        retried = {g for g, e in failed.items() if e.code() in _COORDINATOR_MOVING}
        if not retried or time.monotonic() + COORDINATOR_RETRY_SECONDS > deadline:
            for group, error in failed.items():
                facts[group] = GroupFacts(group, "unknown", (), {}, error.str())
            break
        for group in failed.keys() - retried:
            facts[group] = GroupFacts(group, "unknown", (), {}, failed[group].str())
        pending = sorted(retried)
        time.sleep(COORDINATOR_RETRY_SECONDS)
    return {group: facts[group] for group in sorted(facts)}


def _facts(description: Any, committed: dict[TopicPartitionKey, int]) -> GroupFacts:
    """``description``: a ConsumerGroupDescription (not exported for type checkers)."""
    members = tuple(
        GroupMember(
            member.client_id,
            member.host,
            tuple(sorted((tp.topic, tp.partition) for tp in member.assignment.topic_partitions))
            if member.assignment is not None
            else (),
        )
        for member in description.members
    )
    state = description.state.name.lower() if description.state is not None else "unknown"
    return GroupFacts(description.group_id, state, members, committed)


def _committed(admin: AdminClient, group: str, timeout: float) -> dict[TopicPartitionKey, int]:
    # One group per request: librdkafka takes no more.
    request = [ConsumerGroupTopicPartitions(group)]
    future = admin.list_consumer_group_offsets(request, request_timeout=timeout)[group]
    offsets = future.result(timeout=timeout)
    return {
        (tp.topic, tp.partition): tp.offset
        for tp in offsets.topic_partitions or ()
        if tp.error is None and tp.offset >= 0
    }


def _kafka_error(exc: KafkaException) -> KafkaError:
    error = exc.args[0] if exc.args else None
    return error if isinstance(error, KafkaError) else KafkaError(KafkaError._FAIL, str(exc))


def _unavailable(what: str, exc: Exception) -> KafkaUnavailableError:
    error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
    cause = error.str() if error is not None else str(exc) or type(exc).__name__
    return KafkaUnavailableError(f"Kafka did not {what}: {cause}")
