"""Configuration errors that name the mapping option fixing them, and the value to give it.

A semicolon file read with the default ``,`` has one header column holding every name; a
Windows export is not UTF-8. Neither is a problem of one row: the job stops before its first
row and says which option to set (``csv_delimiter``, ``encoding``) and to what.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence

import orjson

from streams.bootstrap.mapping import BootstrapMapping
from streams.errors import ConfigError

DELIMITERS = (";", "\t", "|", ",")
_SNIFF_BYTES = 400


def check_columns(
    mapping: BootstrapMapping, columns: Sequence[str], *, where: str, delimiter: str | None
) -> None:
    """Every column the mapping reads is among ``columns`` (a CSV header or a query's result);
    ``delimiter`` is the CSV's, None for other sources."""
    missing = [name for name in mapping.columns() if name not in columns]
    if not missing:
        return
    hint = delimiter_hint(columns, missing, delimiter) if delimiter is not None else ""
    raise ConfigError(
        f"{where}: column(s) {', '.join(missing)} not in the source; it has: "
        f"{', '.join(columns)}{hint}"
    )


def delimiter_hint(columns: Sequence[str], missing: Sequence[str], delimiter: str) -> str:
    """Where the header split at another delimiter holds every missing column, that one."""
    for candidate in DELIMITERS:
        if candidate == delimiter:
            continue
        names = {part.strip().strip('"') for column in columns for part in column.split(candidate)}
        if len(names) > len(columns) and names.issuperset(missing):
            value = orjson.dumps(candidate).decode()
            return (
                f"; the header splits at {value} into the mapped columns: "
                f'set "csv_delimiter": {value} in the mapping'
            )
    return ""


def encoding_hint(exc: UnicodeDecodeError) -> str:
    """The ``encoding`` to try for bytes that are not text in the configured one."""
    data = bytes(exc.object)
    head = data[:_SNIFF_BYTES]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or head.count(0) * 4 > len(head):
        choices = '"utf-16"'
    elif codecs.lookup(exc.encoding).name not in ("utf-8", "utf-8-sig") and _decodes(data):
        choices = '"utf-8"'
    else:
        choices = '"windows-1250" (Central European exports) or "windows-1252" (Western ones)'
    return f'; set "encoding" in the mapping to the file\'s encoding, e.g. {choices}'


def _decodes(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True
