"""A worker says its progress every ``progress_log_seconds`` and sums up its run on stop."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from streams.logs import extra_fields
from streams.testing import produce_events, wait_until
from tests.conftest import TEST_PARTITIONS

T0 = 1_700_000_000
WORKER_LOGGER = "streams.processor.worker"


def event(customer: str, timestamp: int, city: str) -> dict[str, object]:
    return {
        "customer_id": customer,
        "source": "crm",
        "update_timestamp": timestamp,
        "properties": {"city": city},
    }


def lines(caplog: pytest.LogCaptureFixture, kind: str) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == WORKER_LOGGER and record.getMessage().startswith(f"worker {kind} ")
    ]


def figures(caplog: pytest.LogCaptureFixture, kind: str) -> list[dict[str, Any]]:
    """The figures of each ``kind`` line, as they ride on its record (``extra=``)."""
    return [{"text": r.getMessage(), **extra_fields(r)} for r in lines(caplog, kind)]


def test_progress_lines_count_events_and_the_stop_sums_up(streams_settings, start_worker, caplog):
    caplog.set_level(logging.INFO, logger=WORKER_LOGGER)
    settings = streams_settings(progress_log_seconds=0.3)
    service = start_worker(settings)
    fresh = [event(f"c-{i}", T0 + 10, "Brno") for i in range(8)]
    produce_events(settings, [*fresh, event("c-0", T0, "Praha"), b"{not json"])
    totals = service.worker.totals
    wait_until(lambda: totals.events_in - totals.rerouted >= 10)

    def settled() -> dict[str, Any] | None:
        done = [f for f in figures(caplog, "progress") if f["events_total"] == totals.events_in]
        return done[-1] if done and done[-1]["lag"] == 0 else None

    wait_until(lambda: settled() is not None, timeout=30)
    last = settled()
    assert last is not None
    assert (last["applied_total"], last["stale_total"], last["rejected_total"]) == (8, 1, 1)
    assert last["partitions"] == TEST_PARTITIONS
    assert f"events_total={totals.events_in} applied=" in last["text"]
    assert f"lag=0 partitions={TEST_PARTITIONS}" in last["text"]
    progress = figures(caplog, "progress")
    assert sum(f["events"] for f in progress) == progress[-1]["events_total"]
    assert all(f["events_per_s"] >= 0 for f in progress)

    service.stop()
    (summary,) = figures(caplog, "summary")
    assert summary["text"].startswith(
        f"worker summary events={totals.events_in} applied=8 stale=1 rejected=1 duration_s="
    )
    assert summary["duration_s"] > 0
    assert summary["events_per_s"] > 0


def test_no_progress_lines_when_the_interval_is_zero(streams_settings, start_worker, caplog):
    caplog.set_level(logging.INFO, logger=WORKER_LOGGER)
    settings = streams_settings(progress_log_seconds=0)
    service = start_worker(settings)
    produce_events(settings, [event("c-1", T0, "Brno")])
    wait_until(lambda: service.worker.totals.applied == 1)
    service.stop()
    assert lines(caplog, "progress") == []
    assert len(lines(caplog, "summary")) == 1
