"""The partition-owner directory lets its Kafka client go when its worker stops."""

from __future__ import annotations

from streams.settings import Settings
from streams.web.routing import OwnerDirectory


def test_a_closed_directory_answers_no_owner_without_asking_kafka() -> None:
    # Nothing listens on port 1: asking would end in the route timeout and a logged failure.
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1", route_timeout_seconds=30)
    directory = OwnerDirectory(settings)
    directory.close()
    assert directory.owner_url(0, refresh=True) is None
    directory.close()  # idempotent
