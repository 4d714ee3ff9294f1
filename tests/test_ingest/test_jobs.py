"""The jobs API over real HTTP: bootstrap and export jobs against the real broker."""

from __future__ import annotations

import shutil
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web
from openapi_spec_validator import validate

from streams.bootstrap.generate import generate_snapshot, sample_mapping
from streams.errors import ConfigError
from streams.ingest.http.feature import FeatureContext
from streams.ingest.http.jobs import build_feature
from streams.ingest.http.openapi import compose_document
from streams.ingest.producer import IngestProducer
from streams.settings import Settings
from streams.testing import produce_events, read_topic, wait_until
from tests.test_ingest.feature_server import running_feature

TOKEN = "jobs-token-1"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def serve(settings: Settings, section: dict[str, Any]) -> AbstractContextManager[str]:
    producer = IngestProducer(settings)  # the context's; jobs bring their own clients
    context = FeatureContext(settings, producer)
    return running_feature(build_feature, section, context, "jobs-under-test")


def jobs_section(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    csv = tmp_path / "snapshot.csv"
    shutil.copy(SAMPLES / "customers_snapshot.csv", csv)
    mapping = SAMPLES / "bootstrap_mapping.json"
    output = tmp_path / "out" / "{job_id}.jsonl"
    return {
        "tokens": [TOKEN],
        "state_dir": str(tmp_path / "jobs"),
        "bootstrap": {
            "nightly": {
                "source": str(csv),
                "mapping": str(mapping),
                "max_reject_share": 1.0,
            },
            "missing": {"source": str(tmp_path / "nope.csv"), "mapping": str(mapping)},
            "crm-db": {
                "source": "postgresql://sync:hunter2@127.0.0.1:1/crm",
                "query": "SELECT 1",
                "mapping": str(mapping),
            },
        },
        "export": {"profiles": {"format": "jsonl", "output": str(output)}},
        **changes,
    }  # fmt: skip


def start(url: str, kind: str, body: dict[str, Any]) -> str:
    answer = httpx.post(f"{url}/jobs/{kind}", json=body, headers=AUTH)
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert job["state"] == "queued"
    assert answer.headers["Location"] == job["links"]["self"] == f"/jobs/{job['id']}"
    return str(job["id"])


def finished(url: str, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def done() -> bool:
        seen.update(httpx.get(f"{url}/jobs/{job_id}", headers=AUTH).json())
        return seen["state"] in ("succeeded", "failed")

    wait_until(done, timeout=timeout, every=0.1)
    return seen


def test_bootstrap_job_runs_to_its_report_and_events(streams_settings, tmp_path) -> None:
    settings = streams_settings()
    with serve(settings, jobs_section(tmp_path)) as url:
        job_id = start(url, "bootstrap", {"config": "nightly"})
        job = finished(url, job_id)
    assert job["state"] == "succeeded", job["error"]
    assert (job["type"], job["config"]) == ("bootstrap", "nightly")
    assert job["total_records"] == 8 == job["records_processed"]
    report = job["report"]
    assert (report["job_id"], report["status"]) == (job_id, "completed")
    assert report["total"] == 8
    assert job["created_at"] <= job["started_at"] <= job["finished_at"]
    records = read_topic(settings, settings.input_topic)
    assert len(records) == report["produced"] > 0
    assert {r.key for r in records} <= {f"c-{n}".encode() for n in range(1000, 1010)}


def test_progress_is_visible_while_a_throttled_bootstrap_runs(streams_settings, tmp_path) -> None:
    settings = streams_settings()
    csv, mapping = tmp_path / "big.csv", tmp_path / "big.mapping.json"
    generate_snapshot(csv, 600)
    mapping.write_bytes(orjson.dumps(sample_mapping()))
    section = jobs_section(tmp_path, max_concurrent=1, retry_after_s=7)
    section["bootstrap"]["big"] = {"source": str(csv), "mapping": str(mapping), "max_rate": 200}
    views: list[dict[str, Any]] = []
    with serve(settings, section) as url:
        job_id = start(url, "bootstrap", {"config": "big"})
        busy = httpx.post(f"{url}/jobs/export", json={"config": "profiles"}, headers=AUTH)

        def done() -> bool:
            views.append(httpx.get(f"{url}/jobs/{job_id}", headers=AUTH).json())
            return bool(views[-1]["state"] == "succeeded")

        wait_until(done, timeout=60, every=0.2)
    assert (busy.status_code, busy.headers["Retry-After"]) == (429, "7")
    running = [v for v in views if v["state"] == "running" and v["total_records"] == 600]
    partial = [v["records_processed"] for v in running if 0 < v["records_processed"] < 600]
    assert partial, "progress between 0 and the total was observed"
    assert partial == sorted(partial)
    assert views[-1]["records_processed"] == 600 == views[-1]["report"]["total"]


def test_export_job_writes_every_profile(streams_settings, start_worker, tmp_path) -> None:
    settings = streams_settings()
    service = start_worker(settings)
    produce_events(
        settings,
        [
            {"customer_id": "c-1", "source": "crm", "update_timestamp": 1700000000,
             "properties": {"city": "Brno", "vip": True}},
            {"customer_id": "c-2", "source": "crm", "update_timestamp": 1700000001,
             "properties": {"score": 7}},
        ],
    )  # fmt: skip
    worker = service.worker
    wait_until(lambda: worker.totals.events_in >= 2, timeout=60)
    service.stop()  # the export job runs on what the stopped worker left
    with serve(settings, jobs_section(tmp_path)) as url:
        job = finished(url, start(url, "export", {"config": "profiles"}))
    assert job["state"] == "succeeded", job["error"]
    output = Path(job["report"]["output"])
    assert output == tmp_path / "out" / f"{job['id']}.jsonl"
    lines = sorted(orjson.loads(line)["customer_id"] for line in output.read_text().splitlines())
    assert lines == ["c-1", "c-2"]
    assert job["report"]["profiles"] == 2
    assert job["records_processed"] == job["total_records"] >= 2


def test_failing_jobs_end_failed_with_a_masked_error(streams_settings, tmp_path) -> None:
    settings = streams_settings()
    with serve(settings, jobs_section(tmp_path)) as url:
        missing = finished(url, start(url, "bootstrap", {"config": "missing"}))
        database = finished(url, start(url, "bootstrap", {"config": "crm-db"}))
    assert missing["state"] == "failed"
    assert "cannot read the source" in missing["error"]
    assert "nope.csv" in missing["error"]
    assert missing["finished_at"] is not None
    assert database["state"] == "failed"
    assert "hunter2" not in orjson.dumps(database).decode()
    assert "sync:***@" in database["error"]


def test_refusals(streams_settings, tmp_path) -> None:
    settings = streams_settings()
    with serve(settings, jobs_section(tmp_path)) as url:
        no_token = httpx.post(f"{url}/jobs/bootstrap", json={"config": "nightly"})
        wrong = httpx.get(f"{url}/jobs", headers={"X-API-Key": "nope"})
        unknown = httpx.post(f"{url}/jobs/export", json={"config": "nope"}, headers=AUTH)
        extra = httpx.post(
            f"{url}/jobs/bootstrap", json={"config": "nightly", "source": "/etc"}, headers=AUTH
        )
        no_job = httpx.get(f"{url}/jobs/export-20260101T000000-deadbeef", headers=AUTH)
        traversal = httpx.get(f"{url}/jobs/..%2F..%2Fetc", headers=AUTH)
        listed = httpx.get(f"{url}/jobs", headers={"X-API-Key": TOKEN})
    assert no_token.status_code == wrong.status_code == 401
    assert (unknown.status_code, unknown.json()["reason"]) == (404, "unknown_config")
    assert (extra.status_code, extra.json()["reason"]) == (422, "bad_request")
    assert "source" in extra.json()["error"]
    assert no_job.status_code == traversal.status_code == 404
    assert listed.json() == {"jobs": []}


def test_a_stopping_service_stops_its_jobs_resumable(streams_settings, tmp_path) -> None:
    """SIGTERM mid-bootstrap: the job confirms and checkpoints what it produced, its record
    says how to resume, and the resumed job produces only the rest."""
    settings = streams_settings()
    csv, mapping = tmp_path / "big.csv", tmp_path / "big.mapping.json"
    generate_snapshot(csv, 3_000, duplicate_share=0.0, bad_email_share=0.0, removal_share=0.0)
    mapping.write_bytes(orjson.dumps(sample_mapping()))
    section = jobs_section(tmp_path)
    section["bootstrap"]["big"] = {"source": str(csv), "mapping": str(mapping), "max_rate": 300}
    with serve(settings, section) as url:
        job_id = start(url, "bootstrap", {"config": "big"})

        def producing() -> bool:
            view = httpx.get(f"{url}/jobs/{job_id}", headers=AUTH).json()
            return bool(view["state"] == "running" and view["records_processed"] >= 300)

        wait_until(producing, timeout=60, every=0.1)
    # The service has stopped: the record on disk is final (the 10 s throttle did not run out).
    stopped = orjson.loads((tmp_path / "jobs" / f"{job_id}.json").read_bytes())
    assert stopped["state"] == "failed"
    assert stopped["error"].startswith("stopped: the service stopped before the job ended")
    assert f'"resume": "{job_id}"' in stopped["error"]
    assert stopped["report"]["status"] == "interrupted"
    confirmed = stopped["report"]["checkpoint"]["confirmed_line"]
    assert 300 < confirmed < 3_000
    assert len(read_topic(settings, settings.input_topic)) == stopped["report"]["produced"]

    section["bootstrap"]["big"] = {"source": str(csv), "mapping": str(mapping)}
    with serve(settings, section) as url:
        resumed = finished(url, start(url, "bootstrap", {"config": "big", "resume": job_id}))
    assert resumed["state"] == "succeeded", resumed["error"]
    assert resumed["report"]["resumed_after_line"] == confirmed
    keys = [record.key for record in read_topic(settings, settings.input_topic)]
    assert len(keys) == len(set(keys)) == 3_000  # each customer once: no gap, no repeat


def test_finished_jobs_survive_a_restart(streams_settings, tmp_path) -> None:
    settings = streams_settings()
    section = jobs_section(tmp_path)
    with serve(settings, section) as url:
        before = finished(url, start(url, "bootstrap", {"config": "nightly"}))
    with serve(settings, section) as url:
        after = httpx.get(f"{url}/jobs/{before['id']}", headers=AUTH).json()
        listed = httpx.get(f"{url}/jobs", headers=AUTH).json()["jobs"]
    assert after == before
    assert [job["id"] for job in listed] == [before["id"]]


def test_a_job_cut_short_by_a_restart_is_marked_failed(tmp_path) -> None:
    state = tmp_path / "jobs"
    state.mkdir()
    record = {
        "id": "bootstrap-20260101T000000-0badc0de", "type": "bootstrap", "config": "nightly",
        "params": {}, "state": "running", "created_at": 1, "started_at": 2, "finished_at": None,
        "records_processed": None, "total_records": 10, "report": None, "error": None,
    }  # fmt: skip
    (state / f"{record['id']}.json").write_bytes(orjson.dumps(record))
    with serve(Settings(), jobs_section(tmp_path)) as url:
        job = httpx.get(f"{url}/jobs/{record['id']}", headers=AUTH).json()
    assert job["state"] == "failed"
    assert job["error"].startswith("interrupted")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tokens": []}, "tokens"),
        ({"bootstrap": {}, "export": {}}, "names no job"),
        ({"colour": "red"}, "colour"),
        ({"export": {"x": {"format": "xml", "output": "o"}}}, "export.x.format"),
        ({"bootstrap": {"x": {"source": "a", "mapping": "m", "max_rate": 0}}}, "x.max_rate"),
    ],
)  # fmt: skip
def test_bad_configuration_is_refused_precisely(tmp_path, changes, message) -> None:
    context = FeatureContext(Settings(), IngestProducer(Settings()))
    with pytest.raises(ConfigError, match=message):
        build_feature(jobs_section(tmp_path, **changes), context)


def test_openapi_fragment_is_valid(tmp_path) -> None:
    feature = build_feature(
        jobs_section(tmp_path), FeatureContext(Settings(), IngestProducer(Settings()))
    )
    document = compose_document([feature], {})
    validate(document)
    app = web.Application()
    feature.install(app)
    routes = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource}
    documented = {(m.upper(), p) for p, item in document["paths"].items() for m in item}
    assert routes == documented


def test_job_paths_allow_only_their_documented_methods(streams_settings, tmp_path) -> None:
    with serve(streams_settings(), jobs_section(tmp_path)) as url:
        for path, allowed in (("/jobs/bootstrap", "POST"), ("/jobs/export", "POST")):
            answer = httpx.request("OPTIONS", f"{url}{path}", headers=AUTH)
            assert answer.status_code == 405
            assert answer.headers["Allow"] == allowed
            assert answer.json()["reason"] == "method_not_allowed"
        job = httpx.get(f"{url}/jobs/export-20260101T000000-0123abcd", headers=AUTH)
        assert (job.status_code, job.json()["reason"]) == (404, "unknown_job")
        text = {**AUTH, "Content-Type": "text/plain"}
        plain = httpx.post(f"{url}/jobs/export", content=b'{"config": "profiles"}', headers=text)
        assert (plain.status_code, plain.json()["reason"]) == (415, "unsupported_media_type")


def test_a_failed_bootstrap_is_resumed_with_its_snapshot_time(streams_settings, tmp_path) -> None:
    settings = streams_settings()
    section = jobs_section(tmp_path)
    # First run: Kafka unreachable, so nothing is confirmed and the job fails.
    down = settings.model_copy(
        update={"kafka_bootstrap_servers": "127.0.0.1:1", "delivery_timeout_ms": 2000}
    )
    with serve(down, section) as url:
        failed = finished(url, start(url, "bootstrap", {"config": "nightly"}))
        refused = httpx.post(
            f"{url}/jobs/bootstrap",
            json={"config": "nightly", "resume": failed["id"], "since": "24h"},
            headers=AUTH,
        )
    assert failed["state"] == "failed", failed
    assert (refused.status_code, refused.json()["reason"]) == (422, "bad_request")
    with serve(settings, section) as url:
        resumed = finished(
            url, start(url, "bootstrap", {"config": "nightly", "resume": failed["id"]})
        )
        again = httpx.post(
            f"{url}/jobs/bootstrap",
            json={"config": "nightly", "resume": resumed["id"]},
            headers=AUTH,
        )
        other = httpx.post(
            f"{url}/jobs/bootstrap",
            json={"config": "missing", "resume": failed["id"]},
            headers=AUTH,
        )
    assert resumed["state"] == "succeeded", resumed["error"]
    assert resumed["report"]["job_id"] == failed["id"]  # the first run's checkpoint
    assert (again.status_code, again.json()["reason"]) == (409, "not_resumable")
    assert (other.status_code, other.json()["reason"]) == (422, "resume_mismatch")
    assert resumed["report"]["snapshot_time"] == failed["report"]["snapshot_time"]
    assert len(read_topic(settings, settings.input_topic)) == resumed["report"]["produced"] > 0
