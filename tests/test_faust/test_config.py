"""The Faust app's configuration from the settings: group timeouts, broker, web address."""

from __future__ import annotations

import ssl

import faust
import pytest
from pydantic import SecretStr

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


def test_tls_verifies_the_brokers_against_the_system_authorities():
    credentials = app_config(Settings(kafka_security_protocol="SSL", web_port=6070))[
        "broker_credentials"
    ]
    assert isinstance(credentials, faust.SSLCredentials)
    assert credentials.protocol.value == "SSL"
    assert credentials.context.verify_mode is ssl.CERT_REQUIRED
    assert credentials.context.check_hostname


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
@pytest.mark.parametrize("mechanism", [None, "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_passes_the_mechanism_and_the_secret_to_aiokafka(protocol, mechanism):
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    settings = Settings(
        kafka_security_protocol=protocol,
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="svc",
        kafka_sasl_password=SecretStr("s3cret"),
        web_port=6070,
    )
    auth = credentials_to_aiokafka_auth(app_config(settings)["broker_credentials"])
    assert auth["security_protocol"] == protocol
    assert auth["sasl_mechanism"] == (mechanism or "PLAIN")
    assert (auth["sasl_plain_username"], auth["sasl_plain_password"]) == ("svc", "s3cret")
    if protocol == "SASL_SSL":
        assert auth["ssl_context"].verify_mode is ssl.CERT_REQUIRED
    else:
        assert auth["ssl_context"] is None


def test_sasl_without_a_username_names_the_setting():
    settings = Settings(kafka_security_protocol="SASL_SSL", web_port=6070)
    with pytest.raises(ConfigError, match="needs STREAMS_KAFKA_SASL_USERNAME"):
        app_config(settings)


def test_a_mechanism_aiokafka_cannot_use_is_refused_with_the_engine_to_use():
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="GSSAPI",
        kafka_sasl_username="svc",
        web_port=6070,
    )
    with pytest.raises(ConfigError, match=r"GSSAPI: the Faust engine supports PLAIN.*default"):
        app_config(settings)


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
