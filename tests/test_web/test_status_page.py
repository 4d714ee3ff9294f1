"""The /status document's assembly, and the status page in headless Chromium over a connector's
/status (canned here: the connector's own server is another module's), which it must render
like a worker's."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from aiohttp import web

from streams.web.status import PartitionFigures, StatusFigures, StatusSource, status_document
from streams.web.status_page import status_page
from tests.app_thread import AppThread
from tests.chromium import Element, dump_dom, parse

FIGURES = StatusFigures(
    "running",
    {"events_in": 5},
    {"bad_json": 1, "unknown_field": 2},
    [
        PartitionFigures("in", 1, "restoring"),
        PartitionFigures("in", 0, "owned", position=7, end=10),
        PartitionFigures("in", 2, "owned", position=12, end=11),  # end cached before position
    ],
)


def test_the_document_has_the_agreed_shape() -> None:
    document = status_document("worker", "g", "http://w:1", 100.0, FIGURES, 160.5)
    assert document == {
        "kind": "worker",
        "name": "g",
        "url": "http://w:1",
        "state": "running",
        "started_at": 100.0,
        "now": 160.5,
        "totals": {"events_in": 5},
        "dlq_by_reason": {"bad_json": 1, "unknown_field": 2},
        "partitions": [
            {"topic": "in", "partition": 0, "position": 7, "end": 10, "lag": 3, "state": "owned"},
            {
                "topic": "in",
                "partition": 1,
                "position": None,
                "end": None,
                "lag": None,
                "state": "restoring",
            },
            {"topic": "in", "partition": 2, "position": 12, "end": 11, "lag": 0, "state": "owned"},
        ],
    }


def test_the_document_is_assembled_at_most_once_per_max_age() -> None:
    calls = itertools.count(1)

    def figures() -> StatusFigures:
        return StatusFigures("running", {"calls": next(calls)}, {}, [])

    cached = StatusSource("connector", "crm", figures, url="http://c:1", max_age=60)
    first = cached.document()
    assert cached.document()["totals"] == {"calls": 1}
    assert (first["kind"], first["name"], first["url"]) == ("connector", "crm", "http://c:1")
    fresh = StatusSource("connector", "crm", figures, max_age=0)
    assert fresh.document()["totals"] != fresh.document()["totals"]


def canned_connector() -> web.Application:
    """A connector's /status that moves on by 2 s, 20 records and 19 deliveries a request."""
    requests = itertools.count()

    async def status(request: web.Request) -> web.Response:
        i = next(requests)
        return web.json_response(
            {
                "kind": "connector",
                "name": "crm-db",
                "url": "http://connector:6067",
                "state": "retrying",
                "started_at": 1_764_676_800.0,
                "now": 1_764_677_000.0 + 2 * i,
                "totals": {
                    "batches": 10 + i,
                    "records": 1000 + 20 * i,
                    "delivered": 990 + 19 * i,
                    "retries": 3,
                    "rejected": 4,
                },
                "dlq_by_reason": {"nul_character": 3, "refused_by_postgres": 1},
                "partitions": [
                    {
                        "topic": "profile-upserts",
                        "partition": 0,
                        "position": 500,
                        "end": 540,
                        "lag": 40,
                        "state": "paused",
                    }
                ],
            }
        )

    app = web.Application()
    app.router.add_get("/", status_page)
    app.router.add_get("/status", status)
    return app


def cells(row: Element) -> list[str]:
    return [cell.text().strip() for cell in row.iter("td")]


def test_the_page_shows_a_connectors_status_and_charts_its_rates(tmp_path: Path) -> None:
    with AppThread(canned_connector(), "connector-status") as url:
        page = parse(dump_dom(f"{url}/", tmp_path / "chromium"))
    assert page.by_id("kind").text() == "connector"
    assert page.by_id("name").text() == "crm-db"
    assert page.by_id("state").text() == "retrying"
    totals: dict[str, Any] = {}
    for row in page.by_id("totals").iter("tr"):
        name, total, per_second = cells(row)
        totals[name] = (total, per_second)
    # Polled at least twice, 2 s of the connector's time apart: rates from two samples.
    assert totals["records"][1] == "10"
    assert totals["delivered"][1] == "9.5"
    assert totals["retries"] == ("3", "0")
    assert int(totals["batches"][0]) >= 11
    assert page.by_id("flow-in").text().startswith("10")
    assert page.by_id("flow-lag").text().startswith("40")
    assert page.by_id("flow-up").text().startswith("3 min")  # 200 s and a few polls
    assert "hidden" in page.by_id("auth").attrs  # /status needed no token
    dlq = [cells(row) for row in page.by_id("dlq").iter("tr")]
    assert dlq == [["nul_character", "3"], ["refused_by_postgres", "1"]]
    partitions = [cells(row) for row in page.by_id("partitions").iter("tr")]
    assert partitions == [["profile-upserts", "0", "paused", "500", "540", "40"]]
    rates = {line.attrs["data-series"] for line in page.by_id("chart-rates").iter("polyline")}
    assert rates == {"batches", "records", "delivered", "retries", "rejected"}
    assert len(list(page.by_id("chart-lag").iter("polyline"))) == 1


def test_the_page_says_when_status_is_unreachable(tmp_path: Path) -> None:
    app = web.Application()
    app.router.add_get("/", status_page)  # and no /status: 404
    with AppThread(app, "no-status") as url:
        page = parse(dump_dom(f"{url}/", tmp_path / "chromium"))
    assert page.by_id("state").text() == "unreachable"
    assert page.by_id("error").text() == "status unavailable: HTTP 404"


def test_the_page_asks_for_a_token_when_status_needs_one(tmp_path: Path) -> None:
    async def guarded(request: web.Request) -> web.Response:
        raise web.HTTPUnauthorized

    app = web.Application()
    app.router.add_get("/", status_page)
    app.router.add_get("/status", guarded)
    with AppThread(app, "guarded-status") as url:
        page = parse(dump_dom(f"{url}/", tmp_path / "chromium"))
    assert "hidden" not in page.by_id("auth").attrs
    assert page.by_id("error").text().startswith("status unavailable: 401")
