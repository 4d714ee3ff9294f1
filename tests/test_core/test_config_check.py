"""Settings as a person reads them: invalid values name their variable and the expected type,
secrets are never echoed, and unknown STREAMS_* variables are found with a suggestion."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.broker.jars import LIBS_DIR_ENV
from streams.codecs.avro import SCHEMAS_DIR_ENV
from streams.config_check import (
    known_variables,
    load_settings,
    unknown_variable_warnings,
    variable_name,
)
from streams.errors import SettingsError
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
ENV_REFERENCE = re.compile(r"\$\{(STREAMS_[A-Z0-9_]+)\}")


def _problems(**overrides: object) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load_settings(**overrides)
    return caught.value.problems


def test_each_invalid_value_is_one_line_naming_its_variable_and_type():
    assert _problems(partitions="abc", max_clock_skew_seconds="soon", output_format="xml") == [
        "STREAMS_PARTITIONS: expected an integer, got 'abc'",
        "STREAMS_OUTPUT_FORMAT: expected 'avro' or 'json', got 'xml'",
        "STREAMS_MAX_CLOCK_SKEW_SECONDS: expected a number, got 'soon'",
    ]


def test_bounds_say_the_limit():
    assert _problems(web_port=70000) == [
        "STREAMS_WEB_PORT: expected an integer <= 65535, got 70000"
    ]
    assert _problems(kafka_connect_timeout_seconds=0) == [
        "STREAMS_KAFKA_CONNECT_TIMEOUT_SECONDS: expected a number > 0, got 0"
    ]


def test_a_rule_across_settings_is_said_without_a_variable():
    (problem,) = _problems(input_topic="same", upserts_topic="same")
    assert problem.startswith("settings: topic names must be distinct")


def test_a_rejected_secret_is_not_echoed():
    assert _problems(kafka_sasl_password=123456789) == [
        "STREAMS_KAFKA_SASL_PASSWORD: expected a string"
    ]


def test_a_long_value_is_clipped():
    (problem,) = _problems(partitions="9" * 30 + "x" * 100)
    assert problem.endswith("...")
    assert len(problem) < 120


def test_an_aliased_setting_is_named_by_its_documented_variable():
    assert variable_name("kafka_bootstrap_servers") == "KAFKA_BOOTSTRAP_SERVERS"
    assert variable_name("partitions") == "STREAMS_PARTITIONS"


def test_a_misspelt_variable_suggests_the_closest_setting():
    assert unknown_variable_warnings({"STREAMS_PARTITONS": "4", "STREAMS_LOGLEVEL": "x"}) == [
        "STREAMS_LOGLEVEL is not a Profile Streams setting: did you mean STREAMS_LOG_LEVEL?",
        "STREAMS_PARTITONS is not a Profile Streams setting: did you mean STREAMS_PARTITIONS?",
    ]


def test_a_name_far_from_every_setting_still_warns():
    (warning,) = unknown_variable_warnings({"STREAMS_WIDGETS": "3"})
    assert warning.startswith("STREAMS_WIDGETS is not a Profile Streams setting: ignored unless")


@given(st.sampled_from(sorted(Settings.model_fields)), st.booleans())
def test_every_setting_is_known_in_either_case(field, lower):
    name = f"STREAMS_{field.upper()}"
    assert unknown_variable_warnings({name.lower() if lower else name: "1"}) == []


def test_variables_read_outside_settings_tests_and_config_references_do_not_warn():
    environ = {
        SCHEMAS_DIR_ENV: "/schemas",
        LIBS_DIR_ENV: "/libs",
        "STREAMS_TEST_POSTGRES_DSN": "postgresql://tests",
        "STREAMS_CRM_TOKEN": "t",
        "KAFKA_BOOTSTRAP_SERVERS": "k:9092",
        "PATH": "/bin",
    }
    assert unknown_variable_warnings(environ, also_known={"STREAMS_CRM_TOKEN"}) == []


def test_every_streams_variable_an_example_file_refers_to_is_known():
    referenced = {
        name
        for path in [*ROOT.glob("connectors/*.toml"), *ROOT.glob("ingest/*.toml")]
        for name in ENV_REFERENCE.findall(path.read_text(encoding="utf-8"))
    }
    assert referenced  # the examples do name some
    assert referenced <= known_variables()


def test_an_empty_kafka_address_is_named_by_its_variable():
    assert _problems(kafka_bootstrap_servers="") == [
        "KAFKA_BOOTSTRAP_SERVERS: expected a non-empty value, got ''"
    ]
