"""A connector says its progress every ``progress_log_seconds`` and sums up its run on stop."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from streams.connect.config import BatchConfig, ConnectorConfig
from streams.connect.errors import RetryableSinkError
from streams.connect.worker import ConnectorWorker
from streams.httpclient.backoff import RetryConfig
from streams.kafka.topics import ensure_topic
from streams.logs import extra_fields
from streams.testing import MemorySink, wait_until
from tests.test_connect.test_worker import Running, produce_upserts, upserts

CONNECT_LOGGER = "streams.connect.worker"


def figures(caplog: pytest.LogCaptureFixture, kind: str) -> list[dict[str, Any]]:
    """Each ``kind`` line of the connector: its text and the figures on its record."""
    return [
        {"text": r.getMessage(), **extra_fields(r)}
        for r in caplog.records
        if r.name == CONNECT_LOGGER and r.getMessage().startswith(f"connector=crm {kind} ")
    ]


def test_progress_lines_count_records_and_the_stop_sums_up(streams_settings, caplog):
    caplog.set_level(logging.INFO, logger=CONNECT_LOGGER)
    settings = streams_settings(progress_log_seconds=0.3)
    config = ConnectorConfig(
        name="crm",
        type="file",
        batch=BatchConfig(max_records=100, max_wait_ms=200),
        retry=RetryConfig(initial_backoff_ms=20, max_backoff_ms=100),
    )
    ensure_topic(settings, config.dead_letter_topic(settings))
    sink = MemorySink(settings)
    sink.fail_next = [RetryableSinkError("db down")]
    produce_upserts(settings, [*upserts(250, 25), b"not an upsert"])
    handle = Running(ConnectorWorker(config, settings, sink))
    totals = handle.worker.totals
    try:
        wait_until(lambda: totals.written == 250 and totals.rejected == 1)

        def settled() -> dict[str, Any] | None:
            done = [f for f in figures(caplog, "progress") if f["delivered_total"] == 250]
            return done[-1] if done and done[-1]["lag"] == 0 else None

        wait_until(lambda: settled() is not None, timeout=30)
        last = settled()
        assert last is not None
        assert (last["records_total"], last["rejected_total"], last["retries_total"]) == (251, 1, 1)
        assert last["batches_total"] == totals.batches
        assert "delivered_total=250 retries=" in last["text"]
        progress = figures(caplog, "progress")
        assert sum(f["records"] for f in progress) == progress[-1]["records_total"]
    finally:
        handle.stop()
    (summary,) = figures(caplog, "summary")
    assert summary["text"].startswith(
        f"connector=crm summary records=251 batches={totals.batches} delivered=250 retries=1 "
        "rejected=1 duration_s="
    )
    assert summary["records_per_s"] > 0
