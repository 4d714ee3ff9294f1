"""Who owns a partition: read from the consumer group itself, no coordinator of our own.

Every worker puts its advertised URL into its Kafka ``client.id``; the group description
then maps partitions to member URLs.
"""

from __future__ import annotations

import logging
import threading
import time

from confluent_kafka import ConsumerGroupState, KafkaException
from confluent_kafka.admin import AdminClient

from streams.kafka.clients import admin_client
from streams.settings import Settings
from streams.web.status import Kind

logger = logging.getLogger(__name__)

CLIENT_ID_PREFIX = "profile-streams-worker@"
# Connectors name their HTTP server the same way, so `streams status` finds every endpoint.
CONNECTOR_CLIENT_ID_PREFIX = "profile-streams-connector@"


def worker_client_id(url: str) -> str:
    return f"{CLIENT_ID_PREFIX}{url}"


def url_from_client_id(client_id: str) -> str | None:
    if client_id.startswith(CLIENT_ID_PREFIX):
        return client_id[len(CLIENT_ID_PREFIX) :]
    return None


def endpoint_from_client_id(client_id: str) -> tuple[Kind, str] | None:
    """``("worker" | "connector", url)`` of a member of ours, None for any other client."""
    if client_id.startswith(CLIENT_ID_PREFIX):
        return "worker", client_id[len(CLIENT_ID_PREFIX) :]
    if client_id.startswith(CONNECTOR_CLIENT_ID_PREFIX):
        return "connector", client_id[len(CONNECTOR_CLIENT_ID_PREFIX) :]
    return None


class OwnerDirectory:
    """Partition -> owning worker URL, from ``describe_consumer_groups``, briefly cached."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._admin: AdminClient | None = admin_client(settings)
        self._owners: dict[int, str] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def owner_url(self, partition: int, *, refresh: bool = False) -> str | None:
        """Blocking; call from a thread pool."""
        with self._lock:
            fresh = time.monotonic() - self._fetched_at < self._settings.routing_cache_seconds
            if refresh or not fresh:
                self._owners = self._describe()
                self._fetched_at = time.monotonic()
            return self._owners.get(partition)

    def close(self) -> None:
        """Let the admin client go now: left to the interpreter's exit, its threads keep
        reconnecting to a broker that may have stopped. Owners are unknown afterwards."""
        with self._lock:
            self._admin = None

    def _describe(self) -> dict[int, str]:
        group, topic = self._settings.group_id, self._settings.input_topic
        timeout = self._settings.route_timeout_seconds
        if self._admin is None:
            return {}
        try:
            description = self._admin.describe_consumer_groups([group], request_timeout=timeout)[
                group
            ].result(timeout=timeout)
        except KafkaException as exc:
            logger.warning("describe group failed group=%s: %s", group, exc)
            return {}
        if description.state != ConsumerGroupState.STABLE:
            return {}
        owners: dict[int, str] = {}
        for member in description.members:
            url = url_from_client_id(member.client_id)
            if url is None or member.assignment is None:
                continue
            for tp in member.assignment.topic_partitions:
                if tp.topic == topic:
                    owners[tp.partition] = url
        return owners
