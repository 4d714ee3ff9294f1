"""A real worker's /status and status page on the session's Kafka, after it processed events."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import orjson

from streams.testing import produce_events, wait_until
from tests.chromium import Element, dump_dom, parse

T0 = 1_700_000_000
GOOD = [
    {"customer_id": f"c-{i}", "source": "crm", "update_timestamp": T0 + i, "properties": {"n": i}}
    for i in range(12)
]
STALE = {"customer_id": "c-0", "source": "crm", "update_timestamp": T0 - 1, "properties": {"n": 9}}
BAD = [b'{"customer_id": "c-1", "source":', b'{"customer_id": "c-2", "source": "crm", "x": 1}']


def get_status(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/status", timeout=10) as response:
        assert response.headers["Content-Type"] == "application/json"
        document: dict[str, Any] = orjson.loads(response.read())
        return document


def caught_up(url: str, events: int) -> dict[str, Any] | None:
    """The status once every event is counted and every owned partition's lag is known."""
    document = get_status(url)
    counted = document["totals"]["events_in"] == events
    owned = [p for p in document["partitions"] if p["state"] == "owned"]
    return document if counted and owned and all(p["lag"] == 0 for p in owned) else None


def test_status_reports_the_workers_figures(streams_settings, start_worker, tmp_path: Path):
    settings = streams_settings()
    service = start_worker(settings)
    produce_events(settings, [*GOOD, STALE, *BAD])
    events = len(GOOD) + 1 + len(BAD)
    wait_until(lambda: caught_up(service.url, events) is not None, timeout=30)
    document = caught_up(service.url, events)
    assert document is not None
    assert set(document) == {
        "kind", "name", "url", "state", "started_at", "now", "totals", "dlq_by_reason",
        "partitions",
    }  # fmt: skip
    assert (document["kind"], document["name"], document["url"]) == (
        "worker",
        settings.group_id,
        service.url,
    )
    assert document["state"] == "running"
    assert document["started_at"] <= document["now"]
    assert document["totals"] == {
        "events_in": events,
        "applied": len(GOOD),
        "stale_events": 1,
        "stale_writes": 1,
        "rejected": 2,
        "upserts_out": len(GOOD),
    }
    assert document["dlq_by_reason"] == {"bad_json": 1, "unknown_field": 1}
    partitions = document["partitions"]
    assert [p["partition"] for p in partitions] == list(range(settings.partitions))
    assert {p["topic"] for p in partitions} == {settings.input_topic}
    # Every event was consumed: each partition's position is its end, and they add up.
    assert all(p["position"] == p["end"] for p in partitions)
    assert sum(p["end"] for p in partitions) == events

    page = parse(dump_dom(f"{service.url}/", tmp_path / "chromium"))
    assert page.by_id("kind").text() == "worker"
    assert page.by_id("name").text() == settings.group_id
    assert page.by_id("state").text() == "running"
    assert total(page, "events_in") == events
    assert total(page, "upserts_out") == len(GOOD)
    assert [row.attrs["data-reason"] for row in page.by_id("dlq").iter("tr")] == [
        "bad_json",
        "unknown_field",
    ]
    assert len(list(page.by_id("partitions").iter("tr"))) == settings.partitions
    assert page.by_id("chart-rates").tag == "svg"
    assert len(list(page.by_id("chart-lag").iter("polyline"))) == 1


def total(page: Element, name: str) -> int:
    (cell,) = (
        c
        for c in page.by_id(f"total-{name}").iter("td")
        if "total" in c.attrs.get("class", "").split()
    )
    return int(cell.attrs["data-value"])
