"""The example configuration files in ingest/ build what they promise."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.ingest.amqp.config import AmqpSourceConfig
from streams.ingest.config import load_sections
from streams.ingest.http.feature import FeatureContext
from streams.ingest.http.jobs import build_feature as build_jobs
from streams.ingest.producer import IngestProducer
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
    from streams.ingest.serve import server_options

    config = tmp_path / "serve.toml"
    config.write_text(SERVE_CONFIG, encoding="utf-8")
    options = server_options(load_sections(config))
    assert options.max_body_bytes <= options.max_in_flight_bytes
