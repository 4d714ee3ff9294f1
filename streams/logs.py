"""Logging setup: ``key=value`` lines or JSON objects, one a line, redacted on the way out.

Whatever logger a record comes from (ours, ``httpx`` with its request URLs, ``aiohttp.access``,
``librdkafka``), the handler :func:`configure_logging` installs passes it through
:class:`RedactingFilter` before either format: passwords in URLs and connection strings, values
of secret-looking query parameters and bearer tokens become ``***``, email addresses keep their
first letter and domain, and control characters are escaped, so a request can neither leak a
secret into the log nor forge a line.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

LogFormat = Literal["text", "json"]

NAME_CLIP = 48  # characters of a name echoed in an error detail
MASK = "***"
# ``%40`` too: a URL carries an email address in a path or query percent-encoded.
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*(?:@|%40)([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
# A URL's userinfo ends at the last "@" of its authority (a password may hold "@" and ":").
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/?#@]*):[^\s/?#]*@")
# key=value in a query string or a key=value text; the value is masked if the key names a
# secret: one of these words among its parts (api_key, X-Amz-Signature) or at its end (apikey).
_PARAM = re.compile(r"(?:(?<=[?&;\s,(])|^)([\w.-]+)=('(?:[^'\\]|\\.)*'?|[^&\s#;,\"']*)")
_KEY_PARTS = re.compile(r"[_.-]")
_SECRET_WORDS = frozenset(
    {"token", "secret", "password", "passwd", "pwd", "pass", "key", "apikey", "signature"}
    | {"sig", "auth", "authorization", "credential", "credentials", "session", "sessionid"}
    | {"cookie", "jwt", "otp"}
)
_SECRET_ENDINGS = ("token", "secret", "password", "passwd", "key", "signature", "sessionid")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_NOT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_DSN_URL = re.compile(r"(?i)\s*[a-z][a-z0-9+.-]*://")
# libpq: a value is quoted ('...') or runs to an ASCII blank; a backslash escapes what follows.
_BLANK = r"[ \t\n\r\f\v]"
_DSN_PASSWORD = re.compile(
    rf"(?i)(\bpassword{_BLANK}*={_BLANK}*)('(?:[^'\\]|\\.)*'?|(?:[^ \t\n\r\f\v\\]|\\.)*\\?)",
    re.S,
)
_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)[^&#]*")


def mask_emails(text: str) -> str:
    """``marian.galik@example.com`` (or ``marian.galik%40example.com``) -> ``m***@example.com``."""
    if "@" not in text and "%40" not in text:
        return text
    return _EMAIL.sub(r"\1***@\2", text)


def mask_dsn(dsn: str) -> str:
    """A PostgreSQL connection string, URL or ``key=value``, with its password as ``***``.

    In a URL the password runs from the first ``:`` of the userinfo to the last ``@`` of the
    whole string, so any password (``@``, ``:``, ``/``, ``%`` and ``?`` included) is masked whole;
    a ``password=`` parameter, quoted or not, is masked as well."""
    url = _DSN_URL.match(dsn)
    if url is None:
        return _DSN_PASSWORD.sub(rf"\g<1>{MASK}", dsn)
    scheme, rest = dsn[: url.end()], dsn[url.end() :]
    at = rest.rfind("@")
    colon = rest.find(":", 0, at) if at >= 0 else -1
    if colon >= 0:
        rest = f"{rest[:colon]}:{MASK}{rest[at:]}"
    return scheme + _QUERY_PASSWORD.sub(rf"\g<1>{MASK}", rest)


def mask_secrets(text: str) -> str:
    """URL passwords, secret-looking ``key=value`` parameters and bearer tokens as ``***``."""
    if "://" in text:
        text = _URL_USERINFO.sub(rf"\g<1>:{MASK}@", text)
    if "=" in text:
        text = _PARAM.sub(_mask_secret_value, text)
    return _BEARER.sub(rf"\g<1> {MASK}", text)


def _mask_secret_value(match: re.Match[str]) -> str:
    key = match.group(1).lower()
    if key.endswith(_SECRET_ENDINGS) or not _SECRET_WORDS.isdisjoint(_KEY_PARTS.split(key)):
        return f"{match.group(1)}={MASK}"
    return match.group()


def escape_controls(text: str, *, keep_newlines: bool = False) -> str:
    r"""Control characters as escapes (``\n``, ``\x00``): one record, one line."""
    pattern = _CONTROL_NOT_NEWLINE if keep_newlines else _CONTROL
    return pattern.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def redact(text: str, *, keep_newlines: bool = False) -> str:
    """What a log line may show of ``text``: secrets masked, then emails, then controls escaped."""
    return escape_controls(mask_emails(mask_secrets(text)), keep_newlines=keep_newlines)


def clip_name(name: str, limit: int = NAME_CLIP) -> str:
    """A field or property name safe to echo in an error: short, an email's local part masked."""
    at = name.find("@")
    if at >= 0:
        name = f"{name[:1]}***{name[at:]}"
    return name if len(name) <= limit else f"{name[:limit]}..."


# What every LogRecord has; anything else on a record came through ``extra=``.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a record was given with ``extra=`` (``logger.info(..., extra={...})``)."""
    return {k: v for k, v in record.__dict__.items() if k not in _RECORD_ATTRIBUTES}


class RedactingFilter(logging.Filter):
    """:func:`redact` on a record's message (arguments included), exception and stack text, and
    on its ``extra=`` fields: numbers and booleans stay, anything else becomes redacted text.

    Installed on handlers, so it sees the records of every logger that propagates to them.
    A traceback keeps its newlines (it is read as a block); any other control is escaped."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, keep_newlines=True)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, keep_newlines=True)
        for key, value in extra_fields(record).items():
            if not isinstance(value, int | float | None):  # bool is an int
                setattr(record, key, redact(str(value)))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``ts`` (ISO-8601, UTC), ``level``, ``logger``, ``message``, the
    record's ``extra=`` fields, and ``traceback`` / ``stack`` when it has them. Non-ASCII is
    escaped too: no character of a value can break the line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            entry.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["traceback"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str)


def configure_logging(
    level: str = "INFO", stream: TextIO | None = None, *, log_format: LogFormat = "text"
) -> None:
    """One handler on the root logger (to ``stream``, stderr by default), redacting, writing
    ``key=value`` text or JSON lines."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if log_format == "json"
        else logging.Formatter("%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")
    )
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
