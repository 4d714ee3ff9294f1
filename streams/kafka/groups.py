"""What Kafka says about consumer groups: their names, members (client ids, assignments) and
committed offsets. ``streams status`` reads them to show each group's lag and owners."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from streams.errors import KafkaUnavailableError

TopicPartitionKey = tuple[str, int]


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
    with neither)."""
    wanted = sorted(set(groups))
    if not wanted:
        return {}
    try:
        futures = admin.describe_consumer_groups(wanted, request_timeout=timeout)
        descriptions = {group: future.result(timeout=timeout) for group, future in futures.items()}
        facts: dict[str, GroupFacts] = {}
        for group in wanted:
            description = descriptions[group]
            members = tuple(
                GroupMember(
                    member.client_id,
                    member.host,
                    tuple(
                        sorted(
                            (tp.topic, tp.partition) for tp in member.assignment.topic_partitions
                        )
                    )
                    if member.assignment is not None
                    else (),
                )
                for member in description.members
            )
            state = description.state.name.lower() if description.state is not None else "unknown"
            facts[group] = GroupFacts(group, state, members, _committed(admin, group, timeout))
        return facts
    except (KafkaException, TimeoutError) as exc:
        raise _unavailable("describe consumer groups", exc) from exc


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


def _unavailable(what: str, exc: Exception) -> KafkaUnavailableError:
    error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
    cause = error.str() if error is not None else str(exc) or type(exc).__name__
    return KafkaUnavailableError(f"Kafka did not {what}: {cause}")
