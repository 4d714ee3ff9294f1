"""What ``streams status`` shows, as data: from Kafka, each relevant consumer group's members,
committed offsets and lag per topic and partition; from each member's ``GET /status`` (its URL
is in its client id), its state, rates, dead letters and partitions. Rendering is
:mod:`streams.cli.status`'s.

Relevant groups: the processor's, every connector's (named ``profile-streams-connect-*`` or with
a member whose client id names a connector endpoint) and those asked for. Rates come from two
samples of a member's totals (this one and the previous gathering's)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

from streams.kafka.groups import GroupFacts, describe_groups, group_names
from streams.kafka.reading import TopicNotFoundError, partition_ends
from streams.settings import Settings
from streams.web.routing import endpoint_from_client_id
from streams.web.status import Kind

CONNECTOR_GROUP_PREFIX = "profile-streams-connect-"
MAX_FETCHES = 16  # members asked at once

GroupKind = Literal["processor", "connector", "other"]
# A member's answer: its /status document, or why there is none.
StatusFetch = Callable[[Sequence[str]], Mapping[str, Mapping[str, Any] | str]]


@dataclass(frozen=True, slots=True)
class MemberStatus:
    group: str
    client_id: str
    kind: Kind | None  # None: not one of ours (no endpoint to ask)
    url: str | None
    assignment: tuple[tuple[str, int], ...]
    document: Mapping[str, Any] | None
    error: str | None  # why there is no document
    rates: Mapping[str, float]  # per second, by total's name; empty without two samples

    @property
    def label(self) -> str:
        return self.url or self.client_id

    @property
    def lag(self) -> int | None:
        """The member's own view: the lag of its partitions' in its /status."""
        if self.document is None:
            return None
        lags = [p["lag"] for p in self.document.get("partitions", ()) if p.get("lag") is not None]
        return sum(lags) if lags else None


@dataclass(frozen=True, slots=True)
class PartitionStatus:
    topic: str
    partition: int
    end: int
    group: str
    committed: int | None
    lag: int | None  # end - committed; None while the group committed nothing here
    owner: str | None  # the assigned member's label
    state: str | None  # restoring / owned / paused, from the owner's /status


@dataclass(frozen=True, slots=True)
class GroupStatus:
    group: str
    kind: GroupKind
    state: str
    members: tuple[MemberStatus, ...]
    lag: int | None


@dataclass(frozen=True, slots=True)
class FleetStatus:
    taken_at: float
    groups: tuple[GroupStatus, ...]
    partitions: tuple[PartitionStatus, ...]
    problems: tuple[str, ...]  # topics not found and such: shown, not fatal

    def member(self, url: str) -> MemberStatus | None:
        for group in self.groups:
            for member in group.members:
                if member.url == url:
                    return member
        return None


def gather(
    settings: Settings,
    admin: AdminClient,
    consumer: Consumer,
    *,
    groups: Iterable[str] = (),
    previous: FleetStatus | None = None,
    fetch: StatusFetch | None = None,
) -> FleetStatus:
    """One look at Kafka and at every member's /status. Raises ``KafkaUnavailableError`` when
    Kafka does not answer; a member that does not answer is reported as such."""
    timeout = settings.kafka_connect_timeout_seconds
    known = group_names(admin, timeout=timeout)
    candidates = {settings.group_id, *groups, *known}
    facts = describe_groups(admin, candidates, timeout=timeout)
    wanted = {settings.group_id, *groups}
    chosen = [
        facts[g] for g in sorted(facts) if g in wanted or _group_kind(settings, facts[g]) != "other"
    ]
    urls = sorted(
        {
            endpoint[1]
            for g in chosen
            for m in g.members
            if (endpoint := endpoint_from_client_id(m.client_id))
        }
    )
    fetch = fetch or status_fetcher(settings)
    answers = fetch(urls) if urls else {}
    members = {g.group: _members(g, answers, previous) for g in chosen}
    ends, problems = _ends(consumer, chosen, settings, timeout)
    problems += [f"group {g.group}: {g.error}" for g in chosen if g.error is not None]
    partitions = [p for g in chosen for p in _partitions(settings, g, members[g.group], ends)]
    statuses = [
        GroupStatus(
            g.group,
            _group_kind(settings, g),
            g.state,
            members[g.group],
            _sum(p.lag for p in partitions if p.group == g.group),
        )
        for g in chosen
    ]
    return FleetStatus(time.time(), tuple(statuses), tuple(partitions), tuple(problems))


def _group_kind(settings: Settings, facts: GroupFacts) -> GroupKind:
    kinds = {
        endpoint[0] for m in facts.members if (endpoint := endpoint_from_client_id(m.client_id))
    }
    if facts.group == settings.group_id or "worker" in kinds:
        return "processor"
    if facts.group.startswith(CONNECTOR_GROUP_PREFIX) or "connector" in kinds:
        return "connector"
    return "other"


def _members(
    facts: GroupFacts,
    answers: Mapping[str, Mapping[str, Any] | str],
    previous: FleetStatus | None,
) -> tuple[MemberStatus, ...]:
    members = []
    for member in facts.members:
        endpoint = endpoint_from_client_id(member.client_id)
        kind, url = endpoint if endpoint is not None else (None, None)
        answer = answers.get(url) if url is not None else None
        document = answer if isinstance(answer, Mapping) else None
        error = answer if isinstance(answer, str) else None
        before = previous.member(url) if previous is not None and url is not None else None
        rates = rates_between(before.document, document) if before and document else {}
        members.append(
            MemberStatus(
                facts.group, member.client_id, kind, url, member.assignment, document, error, rates
            )
        )
    return tuple(sorted(members, key=lambda m: (m.label, m.client_id)))


def rates_between(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> dict[str, float]:
    """Per second, by total's name, between two /status documents of one process run (none
    across a restart or from one cached document)."""
    if before is None or before.get("started_at") != after.get("started_at"):
        return {}
    elapsed = float(after["now"]) - float(before["now"])
    if elapsed <= 0:
        return {}
    earlier: Mapping[str, int] = before["totals"]
    return {
        name: max(total - earlier[name], 0) / elapsed
        for name, total in after["totals"].items()
        if name in earlier
    }


def _ends(
    consumer: Consumer, groups: Sequence[GroupFacts], settings: Settings, timeout: float
) -> tuple[dict[str, dict[int, int]], list[str]]:
    """End offsets of every topic the groups read (committed or assigned; the processor's
    input always), and the topics not found."""
    topics = {
        topic
        for g in groups
        for topic, _ in (*g.committed, *(tp for m in g.members for tp in m.assignment))
    }
    if any(g.group == settings.group_id for g in groups):
        topics.add(settings.input_topic)
    ends: dict[str, dict[int, int]] = {}
    problems = []
    for topic in sorted(topics):
        try:
            ends[topic] = {
                p: high for p, (_, high) in partition_ends(consumer, topic, timeout=timeout).items()
            }
        except TopicNotFoundError as exc:
            problems.append(str(exc))
    return ends, problems


def _partitions(
    settings: Settings,
    facts: GroupFacts,
    members: Sequence[MemberStatus],
    ends: Mapping[str, Mapping[int, int]],
) -> list[PartitionStatus]:
    owners = {tp: m for m in members for tp in m.assignment}
    topics = {topic for topic, _ in facts.committed} | {topic for topic, _ in owners}
    if facts.group == settings.group_id:
        topics.add(settings.input_topic)
    rows = []
    for topic in sorted(topics & set(ends)):
        for partition, end in sorted(ends[topic].items()):
            committed = facts.committed.get((topic, partition))
            owner = owners.get((topic, partition))
            rows.append(
                PartitionStatus(
                    topic,
                    partition,
                    end,
                    facts.group,
                    committed,
                    None if committed is None else max(end - committed, 0),
                    owner.label if owner is not None else None,
                    _state_at(owner, topic, partition),
                )
            )
    return rows


def _state_at(owner: MemberStatus | None, topic: str, partition: int) -> str | None:
    if owner is None or owner.document is None:
        return None
    for p in owner.document.get("partitions", ()):
        if p.get("topic") == topic and p.get("partition") == partition:
            state: str = p["state"]
            return state
    return None


def _sum(values: Iterable[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def status_fetcher(settings: Settings, timeout: float = 3.0) -> StatusFetch:
    """Asks each URL's ``/status`` at once, with the first of ``STREAMS_API_TOKENS`` (a
    member may guard /status like /metrics)."""
    token = settings.api_tokens[0].get_secret_value() if settings.api_tokens else None

    def fetch(urls: Sequence[str]) -> dict[str, Mapping[str, Any] | str]:
        with ThreadPoolExecutor(min(len(urls), MAX_FETCHES) or 1) as pool:
            answers = pool.map(lambda url: fetch_status(url, token, timeout), urls)
            return dict(zip(urls, answers, strict=True))

    return fetch


def fetch_status(url: str, token: str | None, timeout: float) -> Mapping[str, Any] | str:
    """The document at ``url``/status, or why there is none (a line for the table)."""
    if not url.startswith(("http://", "https://")):
        return "not an http(s) URL"
    request = urllib.request.Request(f"{url.rstrip('/')}/status")  # noqa: S310 (checked)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            body = response.read()
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}" + (
            " (needs a token of STREAMS_API_TOKENS)" if exc.code == 401 else ""
        )
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)  # URLError wraps the socket's error
        return f"unreachable: {getattr(reason, 'strerror', None) or reason}"
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "unreachable: not JSON"
    return document if _is_status(document) else "not a status document"


def _is_status(document: object) -> bool:
    """Has what is read of it, of the right types (an endpoint may answer anything)."""
    if not isinstance(document, dict):
        return False
    number = (int, float)
    shapes: dict[str, type | tuple[type, ...]] = {"now": number, "started_at": number}
    shapes |= {"state": str, "totals": dict, "dlq_by_reason": dict, "partitions": list}
    if not all(isinstance(document.get(key), shape) for key, shape in shapes.items()):
        return False
    return all(isinstance(p, dict) for p in document["partitions"])
