"""The environment variable names a deployment may set for a Profile Streams process: the
fields of Settings, and the ``${NAME}`` references of the config file it is given."""

from __future__ import annotations

import re
import tomllib
from typing import Any

from pydantic import AliasChoices

from streams.settings import Settings

# Names of settings that helpers add on other branches, allowed here until they are merged.
# TODO(merge): remove once Settings has connector_web_port (branch opsmetrics, INTERFACE.md).
PENDING_SETTINGS = frozenset({"STREAMS_CONNECTOR_WEB_PORT"})
# What streams.config_files expands in a config file's values.
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def settings_env_names() -> set[str]:
    """Every environment variable name that Settings reads."""
    prefix = Settings.model_config.get("env_prefix", "")
    names: set[str] = set()
    for field_name, field in Settings.model_fields.items():
        names.add(f"{prefix}{field_name}".upper())
        alias = field.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
        names.update(choice.upper() for choice in choices if isinstance(choice, str))
    return names


def config_variables(toml_text: str) -> set[str]:
    """The variables a TOML config file's values name as ``${NAME}`` (comments do not count:
    they are examples)."""

    def walk(value: Any) -> set[str]:
        if isinstance(value, str):
            return set(_REFERENCE.findall(value))
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            return set().union(*(walk(item) for item in value))
        return set()

    return walk(tomllib.loads(toml_text))
