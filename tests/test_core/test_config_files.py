"""Configuration files: every missing ``${VAR}`` is named at once, never a value."""

from __future__ import annotations

import pytest

from streams.config_files import expand_env, read_toml
from streams.connect.config import load_config
from streams.connect.errors import SinkConfigError
from streams.errors import ConfigError
from streams.ingest.config import load_sections


def test_expand_env_replaces_every_reference_in_nested_tables_and_lists():
    raw = {"a": "x-${ONE}-${TWO}", "b": {"c": ["${ONE}", 3]}, "d": 1.5}
    assert expand_env(raw, {"ONE": "1", "TWO": "2"}) == {
        "a": "x-1-2",
        "b": {"c": ["1", 3]},
        "d": 1.5,
    }


def test_expand_env_names_every_missing_variable_at_once_and_no_value():
    raw = {"dsn": "${SECRET_DSN}", "sink": {"token": "${API_TOKEN}", "url": "${BASE_URL}"}}
    with pytest.raises(ConfigError) as caught:
        expand_env(raw, {"BASE_URL": "https://crm.example"})
    assert str(caught.value) == "environment variables not set: API_TOKEN, SECRET_DSN"


def test_a_connector_file_reports_all_its_missing_variables(tmp_path, monkeypatch):
    monkeypatch.delenv("MISSING_DSN", raising=False)
    monkeypatch.delenv("MISSING_SCHEMA", raising=False)
    path = tmp_path / "pg.toml"
    path.write_text(
        'name = "pg"\ntype = "postgres"\n[sink]\ndsn = "${MISSING_DSN}"\n'
        'schema = "${MISSING_SCHEMA}"\n',
        encoding="utf-8",
    )
    with pytest.raises(SinkConfigError) as caught:
        load_config(path)
    assert (
        str(caught.value) == f"{path}: environment variables not set: MISSING_DSN, MISSING_SCHEMA"
    )


def test_a_service_file_reports_all_its_missing_variables(tmp_path, monkeypatch):
    for name in ("MISSING_KEY_ONE", "MISSING_KEY_TWO"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "serve.toml"
    path.write_text(
        '[auth]\ntokens = ["${MISSING_KEY_ONE}"]\n[other]\nkey = "${MISSING_KEY_TWO}"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_sections(path)
    assert "MISSING_KEY_ONE, MISSING_KEY_TWO" in str(caught.value)
    monkeypatch.setenv("MISSING_KEY_ONE", "k1")
    monkeypatch.setenv("MISSING_KEY_TWO", "k2")
    assert read_toml(path) == {"auth": {"tokens": ["k1"]}, "other": {"key": "k2"}}
