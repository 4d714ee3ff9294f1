"""Settings as a person reads them: one line per invalid variable, naming it and the type it
expects, and a warning for a ``STREAMS_*`` variable nothing reads (a typo is otherwise ignored
silently, and the default it leaves in place is a surprise much later)."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import AliasChoices, ValidationError

from streams.errors import SettingsError
from streams.settings import Settings

PREFIX = "STREAMS_"
# Read outside Settings, or named by the example configuration files as ${...}.
OTHER_VARIABLES = frozenset(
    {
        "STREAMS_SCHEMAS_DIR",  # streams/codecs/avro.py (SCHEMAS_DIR_ENV)
        "STREAMS_KAFKA_LIBS_DIR",  # streams/broker/jars.py (LIBS_DIR_ENV)
        "STREAMS_POSTGRES_DSN",  # connectors/postgres.example.toml
        "STREAMS_TRACK_API_KEY",  # ingest/serve.example.toml
    }
)
TEST_PREFIX = "STREAMS_TEST_"  # the test suite's own, e.g. STREAMS_TEST_POSTGRES_DSN
SUGGESTION_CUTOFF = 0.6
INPUT_CLIP = 40

_EXPECTED = {
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "string_too_short": "a non-empty value",
}
# error type: (symbol, the bound's key in the error's context)
_BOUNDS = {
    "greater_than": (">", "gt"),
    "greater_than_equal": (">=", "ge"),
    "less_than": ("<", "lt"),
    "less_than_equal": ("<=", "le"),
}
_SECRET_NAME = re.compile(r"password|secret|token", re.IGNORECASE)


def load_settings(**overrides: Any) -> Settings:
    """``Settings(**overrides)``, raising :class:`SettingsError` with one line per problem."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_errors(exc)) from exc


def describe_errors(exc: ValidationError) -> list[str]:
    """``STREAMS_PARTITIONS: expected an integer, got 'abc'``, one line per error."""
    lines = []
    for error in exc.errors():
        located = str(error["loc"][0]) if error["loc"] else ""
        field = _field_of(located)
        # An aliased field is located by the alias it was given as: name exactly that one.
        name = located.upper() if located and field != located else variable_name(field)
        line = f"{name or 'settings'}: {_expected(error, field)}"
        if field and not _is_secret(field) and isinstance(error.get("input"), str | int | float):
            line += f", got {_clip(error['input'])}"
        lines.append(line)
    return lines


def variable_name(field: str) -> str:
    """The environment variable that sets ``field`` (its first upper-case alias, if any)."""
    info = Settings.model_fields.get(field)
    if info is None:
        return field.upper()
    for alias in _aliases(info.validation_alias):
        if alias.isupper():
            return alias
    return f"{PREFIX}{field.upper()}"


def known_variables() -> frozenset[str]:
    """Every ``STREAMS_*`` name Profile Streams reads: the settings' and the others'."""
    names = set(OTHER_VARIABLES)
    for field, info in Settings.model_fields.items():
        names.add(f"{PREFIX}{field.upper()}")
        names.update(alias.upper() for alias in _aliases(info.validation_alias))
    return frozenset(name for name in names if name.startswith(PREFIX))


def unknown_variable_warnings(
    environ: Mapping[str, str] | None = None, also_known: Iterable[str] = ()
) -> list[str]:
    """One warning per ``STREAMS_*`` variable that nothing reads, naming the closest known one.
    ``also_known``: names a configuration file refers to as ``${NAME}``."""
    env = os.environ if environ is None else environ
    known = known_variables() | {name.upper() for name in also_known}
    warnings = []
    for variable in sorted(env):
        name = variable.upper()  # pydantic-settings reads names case-insensitively
        if not name.startswith(PREFIX) or name.startswith(TEST_PREFIX) or name in known:
            continue
        # Compared without the prefix, which every candidate shares and would make all close.
        close = difflib.get_close_matches(
            name.removeprefix(PREFIX),
            sorted(known_name.removeprefix(PREFIX) for known_name in known),
            n=1,
            cutoff=SUGGESTION_CUTOFF,
        )
        if close:
            hint = f"did you mean {PREFIX}{close[0]}?"
        else:
            hint = f"ignored unless a configuration file refers to it as ${{{variable}}}"
        warnings.append(f"{variable} is not a Profile Streams setting: {hint}")
    return warnings


def _expected(error: Any, field: str) -> str:
    kind = error["type"]
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}"
    if kind in _BOUNDS:
        info = Settings.model_fields.get(field)
        noun = "an integer" if info is not None and info.annotation is int else "a number"
        symbol, key = _BOUNDS[kind]
        bound = error.get("ctx", {}).get(key)
        return f"expected {noun} {symbol} {_clip(bound)}"
    if kind == "literal_error":
        return f"expected {error['ctx']['expected']}"
    message = str(error["msg"])
    if kind == "value_error":
        return message.removeprefix("Value error, ")
    return message.replace("Input should be ", "expected ", 1)


def _field_of(located: str) -> str:
    if located in Settings.model_fields:
        return located
    for field, info in Settings.model_fields.items():
        if located.upper() in (alias.upper() for alias in _aliases(info.validation_alias)):
            return field
    return located


def _is_secret(field: str) -> bool:
    # A rejected secret is not echoed: it may be the right secret in the wrong variable.
    info = Settings.model_fields.get(field)
    return info is None or "SecretStr" in str(info.annotation) or bool(_SECRET_NAME.search(field))


def _clip(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"  # 0 rather than 0.0
    if not isinstance(value, str):
        return str(value)
    return repr(value) if len(value) <= INPUT_CLIP else f"{value[:INPUT_CLIP]!r}..."


def _aliases(alias: object) -> list[str]:
    if isinstance(alias, str):
        return [alias]
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)]
    return []
