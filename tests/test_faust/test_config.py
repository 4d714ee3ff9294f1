"""The Faust app's configuration from the settings: group timeouts, broker, web address."""

from __future__ import annotations

import pytest

from streams.errors import ConfigError
from streams.faust import app_config
from streams.settings import Settings


def test_group_timeouts_and_the_broker_come_from_the_settings(tmp_path):
    settings = Settings(
        kafka_bootstrap_servers="k1:9092, k2:9092",
        session_timeout_ms=6000,
        max_poll_interval_ms=90_000,
        data_dir=tmp_path,
        web_port=6070,
    )
    config = app_config(settings)
    assert config["broker"] == "kafka://k1:9092;kafka://k2:9092"
    assert config["broker_session_timeout"] == 6.0
    assert config["broker_heartbeat_interval"] == 0.6
    assert config["broker_rebalance_timeout"] == 90.0
    assert config["broker_max_poll_interval"] == 90.0
    assert config["canonical_url"] == "http://127.0.0.1:6070"
    # Named in the group as a default worker is: `streams serve` and `streams status` find it.
    assert config["broker_client_id"] == "profile-streams-worker@http://127.0.0.1:6070"
    assert config["datadir"] == str(tmp_path / "faust")
    assert config["store"] == "rocksdb://"


def test_any_free_port_is_refused_as_other_workers_could_not_reach_it():
    with pytest.raises(ConfigError, match="STREAMS_WEB_PORT"):
        app_config(Settings(web_port=0))


def test_an_ssl_broker_is_refused_with_the_engine_to_use():
    with pytest.raises(ConfigError, match="default engine"):
        app_config(Settings(kafka_security_protocol="SSL", web_port=6070))


def test_streams_worker_runs_faust_workers_one_per_command():
    from typer.testing import CliRunner

    from streams.cli.main import app

    result = CliRunner().invoke(app, ["worker", "--engine", "faust", "--processes", "2"])
    assert result.exit_code == 1, result.output
    assert "error: --processes supervises workers of the default engine" in result.output


def test_the_driver_is_aiokafka_unless_the_setting_says_otherwise(tmp_path):
    config = app_config(Settings(kafka_bootstrap_servers="k1:9092", web_port=6070))
    assert config["broker"] == "kafka://k1:9092"  # faust-streaming's aiokafka driver
    explicit = Settings(kafka_bootstrap_servers="k1:9092", web_port=6070, faust_driver="aiokafka")
    assert app_config(explicit)["broker"] == "kafka://k1:9092"


def test_an_unknown_driver_is_a_settings_error_naming_the_choices(monkeypatch):
    from streams.config_check import load_settings
    from streams.errors import SettingsError

    monkeypatch.setenv("STREAMS_FAUST_DRIVER", "librdkafka")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert str(error.value) == (
        "STREAMS_FAUST_DRIVER: expected 'aiokafka' or 'confluent', got 'librdkafka'"
    )


def test_the_confluent_driver_is_refused_with_why_and_what_to_use():
    """faust-streaming's confluent driver never fetches (tests/test_faust hung without an
    assignment) and drops headers: a worker that hangs silently would be worse."""
    with pytest.raises(ConfigError, match=r"never starts fetching.*use aiokafka"):
        app_config(Settings(faust_driver="confluent", web_port=6070))
