"""Progress lines say each counter since the last line and in total, on time, and a summary."""

from __future__ import annotations

import logging

import pytest

from streams.logs import extra_fields
from streams.progress_log import ProgressLog

LOGGER = "streams.test.progress"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


def test_a_line_is_due_every_interval_with_the_figures_since_the_last_and_in_total(caplog, clock):
    caplog.set_level(logging.INFO, logger=LOGGER)
    progress = ProgressLog(logging.getLogger(LOGGER), "worker", 30, clock=clock)
    clock.now += 29.9
    assert not progress.due()
    clock.now += 0.1
    assert progress.due()
    progress.report({"events": 600, "rejected": 2}, lag=40, partitions=3)
    assert not progress.due()
    clock.now += 20
    progress.report({"events": 700, "rejected": 2}, lag=0, partitions=3)
    assert lines(caplog) == [
        "worker progress events=600 events_total=600 rejected=2 rejected_total=2 "
        "events_per_s=20.0 lag=40 partitions=3",
        "worker progress events=100 events_total=700 rejected=0 rejected_total=2 "
        "events_per_s=5.0 lag=0 partitions=3",
    ]
    # The next line is due an interval after the last, not on a fixed grid.
    clock.now += 29
    assert not progress.due()
    clock.now += 1
    assert progress.due()
    # The figures ride on the record too (JSON logs carry them as numbers).
    fields = extra_fields(caplog.records[-1])
    assert (fields["events"], fields["events_total"], fields["lag"]) == (100, 700, 0)


def test_the_summary_says_totals_duration_and_mean_rate(caplog, clock):
    caplog.set_level(logging.INFO, logger=LOGGER)
    progress = ProgressLog(logging.getLogger(LOGGER), "connector=crm", 30, clock=clock)
    clock.now += 8
    progress.summary({"records": 100, "batches": 4})
    assert lines(caplog) == [
        "connector=crm summary records=100 batches=4 duration_s=8.0 records_per_s=12.5"
    ]


def test_an_interval_of_zero_never_reports(clock):
    progress = ProgressLog(logging.getLogger(LOGGER), "worker", 0, clock=clock)
    clock.now += 1e9
    assert not progress.due()
