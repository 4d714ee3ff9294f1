"""The example configuration files (ingest/, connectors/) build what they promise, each alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.config_files import env_references
from streams.ingest.amqp.config import AmqpSourceConfig
from streams.ingest.config import load_sections
from streams.ingest.http.feature import FeatureContext
from streams.ingest.http.jobs import build_feature as build_jobs
from streams.ingest.producer import IngestProducer
from streams.ingest.serve import server_options
from streams.ingest.webhooks.routes import build_feature as build_webhooks
from streams.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "ingest"
SECRETS = ("s3cr3t-value", "hunter2")


def test_the_amqp_example_builds_a_config(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PROCA_USER", "PROCA_PASSWORD", "PROCA_FPR_SEED"):
        monkeypatch.setenv(name, SECRETS[0])
    config = AmqpSourceConfig.from_section(
        load_sections(EXAMPLES / "amqp.example.toml")["amqp"], {}
    )
    assert config.queue == "cus.123.deliver"
    assert SECRETS[0] not in repr(config)


def test_the_webhooks_and_jobs_example_builds_both_features(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in (
        "CRM_WEBHOOK_TOKEN",
        "CRM_WEBHOOK_SIGNING_SECRET",
        "SHOP_WEBHOOK_TOKEN",
        "SHOP_CLIENT_SECRET",
        "JOBS_TOKEN",
    ):
        monkeypatch.setenv(name, SECRETS[0])
    monkeypatch.setenv("CRM_DSN", f"postgresql://sync:{SECRETS[1]}@db.example/crm")
    monkeypatch.chdir(tmp_path)  # the jobs' state_dir is relative
    sections = load_sections(EXAMPLES / "serve-webhooks-jobs.example.toml")
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1")
    context = FeatureContext(settings, IngestProducer(settings))
    webhooks = build_webhooks(sections["webhooks"], context)
    jobs = build_jobs(sections["jobs"], context)
    paths = {*webhooks.openapi_paths, *jobs.openapi_paths}
    expected = {"/webhooks/crm", "/webhooks/shop", "/webhooks/shop/notify", "/jobs/{id}"}
    assert expected <= paths


def test_the_http_benchmark_configures_a_service_that_starts(tmp_path: Path) -> None:
    from benchmarks.ingest_http import SERVE_CONFIG

    config = tmp_path / "serve.toml"
    config.write_text(SERVE_CONFIG, encoding="utf-8")
    options = server_options(load_sections(config))
    assert options.max_body_bytes <= options.max_in_flight_bytes


REPOSITORY = Path(__file__).resolve().parents[2]
SERVE_EXAMPLES = sorted(EXAMPLES.glob("serve*.example.toml"))
CONNECTOR_EXAMPLES = sorted((REPOSITORY / "connectors").glob("*.example.toml"))


def _set_references(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """Every ``${VAR}`` of the file set, as its reader documents it (a DSN is a URL)."""
    for name in env_references(path):
        dsn = name.endswith("DSN")
        monkeypatch.setenv(name, "postgresql://sync:pw@db.example/crm" if dsn else f"{name}-value")


def test_every_example_configuration_is_tested() -> None:
    found = {path.relative_to(REPOSITORY) for path in REPOSITORY.glob("*/*.example.toml")}
    tested = {path.relative_to(REPOSITORY) for path in (*SERVE_EXAMPLES, *CONNECTOR_EXAMPLES)}
    assert found == tested | {Path("ingest/amqp.example.toml")}  # amqp: tested above


@pytest.mark.parametrize("path", SERVE_EXAMPLES, ids=lambda path: path.name)
def test_every_serve_example_builds_the_service_on_its_own(
    path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What ``streams serve --config`` builds before it listens, from this file alone."""
    from streams.ingest.serve import build_app

    _set_references(monkeypatch, path)
    monkeypatch.chdir(tmp_path)  # relative state directories
    settings = Settings(
        kafka_bootstrap_servers="127.0.0.1:1", customer_events_topic="profile-customer-events"
    )
    sections = load_sections(path)
    producer = IngestProducer(settings)
    try:
        app = build_app(settings, sections, producer, server_options(sections))
    finally:
        producer.close(timeout=0)
    paths = {route.resource.canonical for route in app.router.routes() if route.resource}
    assert "/openapi.json" in paths


@pytest.mark.parametrize("path", CONNECTOR_EXAMPLES, ids=lambda path: path.name)
def test_every_connector_example_builds_its_sink_on_its_own(
    path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What ``streams connect NAME --config`` builds before it consumes, from this file alone."""
    from streams.connect.config import build_sink, load_config

    _set_references(monkeypatch, path)
    monkeypatch.chdir(tmp_path)  # relative output directories
    build_sink(load_config(path), Settings(kafka_bootstrap_servers="127.0.0.1:1"))  # or raises
