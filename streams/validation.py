"""One way to say why a configuration table or request body did not validate."""

from __future__ import annotations

from pydantic import ValidationError


def validation_problems(exc: ValidationError, whole: str = "section") -> str:
    """``field.path: message; ...`` on one line; ``whole`` names an error of the whole thing.
    Never the input values: a table or body may hold secrets (a DSN, an API key)."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or whole
        parts.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)
