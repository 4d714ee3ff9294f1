"""Topic provisioning: idempotent creation and partition-count checks against a real broker."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource
from confluent_kafka.cimpl import NewTopic

from streams.errors import TopicMismatchError
from streams.kafka.topics import create_topics, topic_specs, verify_topics
from streams.settings import Settings

TIMEOUT = 30.0
POLL_INTERVAL = 0.1
TOPIC_FIELDS = ("input_topic", "upserts_topic", "stale_topic", "dlq_topic", "changelog_topic")
SettingsFactory = Callable[..., Settings]


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _create_topic(settings: Settings, topic: str, partitions: int) -> None:
    admin = AdminClient(dict(settings.kafka_config()))
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions)])
    futures[topic].result(timeout=TIMEOUT)
    # The broker's metadata cache learns of a new topic a moment after the controller.
    deadline = time.monotonic() + TIMEOUT
    while topic not in admin.list_topics(timeout=TIMEOUT).topics:
        assert time.monotonic() < deadline, f"{topic} never showed up in metadata"
        time.sleep(POLL_INTERVAL)


def _with_fresh_topic_names(settings: Settings) -> Settings:
    # The fixture has already created its topics; these names exist nowhere yet.
    return settings.model_copy(update={field: _unique(field) for field in TOPIC_FIELDS})


def test_create_twice_is_idempotent(streams_settings: SettingsFactory) -> None:
    settings = _with_fresh_topic_names(streams_settings())

    first = create_topics(settings)
    second = create_topics(settings)

    assert [(s.name, s.partitions, s.created) for s in first] == [
        (name, 4, True) for name in settings.topic_names()
    ]
    assert [(s.name, s.partitions, s.created) for s in second] == [
        (name, 4, False) for name in settings.topic_names()
    ]


def test_verify_names_topic_and_both_counts_on_partition_mismatch(
    streams_settings: SettingsFactory,
) -> None:
    settings = streams_settings(partitions=4)
    odd = _unique("odd-partitions")
    _create_topic(settings, odd, partitions=2)
    mismatched = settings.model_copy(update={"upserts_topic": odd})

    with pytest.raises(TopicMismatchError) as caught:
        verify_topics(mismatched)

    assert str(caught.value) == f"topic {odd} has 2 partitions, configuration says 4"


def test_verify_reports_every_topic_when_configuration_changes(
    streams_settings: SettingsFactory,
) -> None:
    settings = streams_settings(partitions=4)

    with pytest.raises(TopicMismatchError) as caught:
        verify_topics(settings.model_copy(update={"partitions": 8}))

    for name in settings.topic_names():
        assert f"topic {name} has 4 partitions, configuration says 8" in str(caught.value)


def test_verify_says_how_to_fix_a_missing_topic(streams_settings: SettingsFactory) -> None:
    settings = streams_settings()
    missing = _unique("never-created")

    with pytest.raises(TopicMismatchError, match="streams topics create") as caught:
        verify_topics(settings.model_copy(update={"stale_topic": missing}))

    assert str(caught.value) == f"topic {missing} is missing: run `streams topics create`"


def test_verify_passes_on_created_topics(streams_settings: SettingsFactory) -> None:
    verify_topics(streams_settings())


def test_changelog_is_compacted_and_the_rest_delete(streams_settings: SettingsFactory) -> None:
    settings = streams_settings()
    admin = AdminClient(dict(settings.kafka_config()))
    resources = [ConfigResource("topic", name) for name in settings.topic_names()]

    policies = {
        resource.name: configs["cleanup.policy"].value
        for resource, future in admin.describe_configs(resources).items()
        for configs in [future.result(timeout=TIMEOUT)]
    }

    assert policies.pop(settings.changelog_topic) == "compact"
    assert set(policies.values()) == {"delete"}


def test_specs_follow_settings_without_a_broker() -> None:
    settings = Settings(partitions=3, replication_factor=2)

    specs = topic_specs(settings)

    assert [spec.name for spec in specs] == settings.topic_names()
    assert {(spec.partitions, spec.replication_factor) for spec in specs} == {(3, 2)}
    assert [dict(spec.config) for spec in specs if spec.config] == [{"cleanup.policy": "compact"}]
