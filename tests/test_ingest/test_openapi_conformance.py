"""Schemathesis (``--checks all``) against a live ``streams serve`` application with every
feature, on loopback, over the real broker: the OpenAPI document matches the service.

Bounded: a fixed seed, a few examples per operation and a time budget per run. ``/track/batch``
runs apart, without the two data checks: its answer is per command (a batch is accepted when
any command is, and refused when every command is, some for a value relative to now such as
a future timestamp), so no request schema decides its status; its commands' validation is
tested in test_track and test_serve_http. The Bloomreach routes (``/track/v2/...``, and the
read routes, whose status depends on what a worker holds) run apart for the same reason
(tested in test_bloomreach and test_bloomreach_read). A 413 (too many items) counts as a rejection.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from streams.ingest.http.app import OPENAPI_KEY
from streams.ingest.producer import IngestProducer
from streams.ingest.serve import build_app
from streams.settings import Settings
from tests.test_ingest.http_server import running_service
from tests.test_ingest.origin_server import OriginServer
from tests.test_ingest.test_jobs import jobs_section

TOKEN = "conformance-token"
SEED = "20261201"
MAX_EXAMPLES = "10"
TRACK = "/track/batch"
BLOOMREACH = "^/(track/v2|api/customers|data/v2)/"
PROJECT = "conformance-project"
DATA_CHECKS = "positive_data_acceptance,negative_data_rejection"
RUNS = {  # the operations and checks of each run, with its time budget in seconds
    "every other operation": (
        ["--exclude-path", TRACK, "--exclude-path-regex", BLOOMREACH, "--checks", "all"],
        "50",
    ),
    TRACK: (
        ["--include-path", TRACK, "--checks", "all", "--exclude-checks", DATA_CHECKS],
        "25",
    ),
    BLOOMREACH: (
        ["--include-path-regex", BLOOMREACH, "--checks", "all", "--exclude-checks", DATA_CHECKS],
        "25",
    ),
}
SCHEMES = {
    "ApiKeyHeader": "api_key", "BearerToken": "bearer",
    "WebhookToken": "api_key", "WebhookBearer": "bearer",
    "JobsBearer": "bearer", "JobsApiKey": "api_key",
}  # fmt: skip
CONFIG = "".join(f'[auth.openapi.{name}]\n{kind} = "{TOKEN}"\n' for name, kind in SCHEMES.items())
CONFIG += f"""
[auth.openapi.BloomreachBasic]
username = "conformance-private"
password = "{TOKEN}-private"
[auth.openapi.BloomreachToken]
api_key = "Token {TOKEN}-public"
[auth.openapi.BloomreachAccessToken]
api_key = "{TOKEN}-public"
[parameters]
"path.project_token" = "{PROJECT}"
"""
CONFIG += """
[checks.negative_data_rejection]
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429, "5xx"]
"""


def every_feature(tmp_path: Path, origin_url: str) -> dict[str, Any]:
    return {
        "tracking": {"api_keys": [TOKEN]},
        "webhooks": {
            "crm": {
                "tokens": [TOKEN],
                "id_field": "id",
                "properties": [
                    {"from_path": "name", "to_property": "name"},
                    {
                        "from_path": "profile.newsletter",
                        "to_property": "newsletter",
                        "type": "bool",
                    },
                ],
                "fetch": {"url": f"{origin_url}/api/contacts/{{id}}", "max_attempts": 1},
            }
        },
        "jobs": {**jobs_section(tmp_path), "tokens": [TOKEN]},
        "bloomreach": {
            "keys": [
                {
                    "id": "conformance-private",
                    "secret": f"{TOKEN}-private",
                    "source": "crm",
                    "projects": [PROJECT],
                },
                {
                    "id": "conformance-public",
                    "secret": f"{TOKEN}-public",
                    "source": "web",
                    "public": True,
                    "projects": [PROJECT],
                },
            ]
        },
    }


def test_schemathesis_finds_no_mismatch(streams_settings, start_worker, tmp_path: Path) -> None:
    settings = streams_settings(customer_events_topic=f"profile-customer-events-{tmp_path.name}")
    start_worker(settings)  # the Bloomreach read routes ask it
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG, encoding="utf-8")
    origin = OriginServer().start()
    try:
        with running_service(settings, every_feature(tmp_path, origin.url)) as url:
            reports = {name: schemathesis(url, config, *run) for name, run in RUNS.items()}
    finally:
        origin.stop()
    for name, (code, report) in reports.items():
        failures = report[report.find("FAILURES") :] if "FAILURES" in report else report[-5000:]
        assert code == 0, f"{name}:\n{failures[:20_000]}"
        assert "Test cases:" in report


def schemathesis(url: str, config: Path, selection: list[str], max_time_s: str) -> tuple[int, str]:
    """Exit code and output of one bounded Schemathesis run against ``url``."""
    result = subprocess.run(
        [
            sys.executable, "-m", "schemathesis.cli", "--config-file", str(config),
            "run", f"{url}/openapi.json", *selection, "--seed", SEED,
            "--max-examples", MAX_EXAMPLES, "--max-time", max_time_s, "--workers", "1",
            "--request-timeout", "30", "--output-truncate", "false",
        ],
        capture_output=True, text=True, timeout=300, check=False, cwd=config.parent,
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr


def test_every_reference_of_the_document_resolves(tmp_path: Path) -> None:
    """Each feature's components are in the document (composing once kept only the last
    feature's, and Schemathesis skipped the bodies it could not resolve)."""
    unreachable = Settings(kafka_bootstrap_servers="127.0.0.1:1")
    producer = IngestProducer(unreachable)
    try:
        app = build_app(unreachable, every_feature(tmp_path, "http://127.0.0.1:1"), producer)
    finally:
        producer.close(timeout=0)
    raw = app[OPENAPI_KEY]
    names = {name.decode() for name in re.findall(rb'"\$ref":"#/components/schemas/([^"]+)"', raw)}
    schemas = orjson.loads(raw)["components"]["schemas"]
    assert {"TrackRequest", "WebhookAccepted", "BootstrapJobRequest", "Error"} <= names
    assert {"BloomreachBatch", "BloomreachFailure"} <= names
    assert names <= set(schemas)
