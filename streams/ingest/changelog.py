"""LISTSERV Maestro's subscriber activity change log: lines to change events, pure.

The format (L-Soft, "LISTSERV at Work" 2009, Tech Tip on LISTSERV Maestro; the Maestro 4.0
Administrator's Manual, section 13.2) is one change per line::

    2006-08-03 02:18:26 DEL L 13 22 JJAFFRAY@DIRECWAY.COM
    2006-08-03 02:18:26 DEL D 13 JJAFFRAY@DIRECWAY.COM
    2006-08-03 08:56:48 DEL L 1 24 BUDTHETEACHER@GMAIL.COM 216.17.254.77

date, time, action, target type (``L`` a hosted list: dataset id and list id follow; ``D`` a
dataset: its id follows), the email address and, when the change came from the web (a
subscriber page), the client's IP address. The document shows ``DEL`` (a subscriber left a list,
a member left a dataset); ``ADD``, its counterpart, is read the same way. Anything else is a
malformed line, reported with its number and never stopping the run.

``DEL`` becomes ``subscribed_list_<list id> = false`` (``member_dataset_<id>`` for ``D``), or,
with ``del_as = "delete"``, a ``D`` line deletes the whole profile (``op: delete``) while an
``L`` line still only unsubscribes: leaving one list never means the person is gone.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Literal

from streams.codecs.events import change_event
from streams.emails import is_email
from streams.errors import InvalidEventError, StreamsError
from streams.model import Op, Value

ACTIONS = ("ADD", "DEL")
IDS_BY_KIND = {"L": 2, "D": 1}  # a list line names its dataset and its list
DelAs = Literal["unsubscribe", "delete"]
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^\d{2}:\d{2}:\d{2}$")
_FORMAT = "YYYY-MM-DD HH:MM:SS ACTION L|D IDS EMAIL [IP]"


class MalformedLineError(StreamsError):
    """A line that is not a change-log entry; ``reason`` never quotes the line (PII)."""

    def __init__(self, line_no: int, reason: str) -> None:
        super().__init__(f"line {line_no}: {reason}")
        self.line_no = line_no
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ChangeLogEntry:
    line_no: int
    at: datetime  # naive: the log's local time
    action: str
    kind: str
    dataset_id: int
    list_id: int | None
    email: str
    ip: str | None = None

    def format(self) -> str:
        """The entry as a change-log line (what :func:`parse_line` reads back)."""
        ids = [str(self.dataset_id)] + ([str(self.list_id)] if self.list_id is not None else [])
        parts = [self.at.strftime("%Y-%m-%d %H:%M:%S"), self.action, self.kind, *ids, self.email]
        return " ".join(parts + ([self.ip] if self.ip else []))


@dataclass(frozen=True, slots=True)
class ChangeLogOptions:
    timezone: tzinfo
    source: str = "listserv-maestro"
    del_as: DelAs = "unsubscribe"
    include_ip: bool = False


def parse_line(text: str, line_no: int) -> ChangeLogEntry:
    """One non-blank line; raises :class:`MalformedLineError` (and nothing else)."""
    fields = text.split()
    if len(fields) < 5:
        raise MalformedLineError(line_no, f"{len(fields)} fields; expected {_FORMAT}")
    date, clock, action, kind = fields[:4]
    if not (_DATE.match(date) and _TIME.match(clock)):
        raise MalformedLineError(line_no, "no 'YYYY-MM-DD HH:MM:SS' timestamp at the start")
    try:
        at = datetime.strptime(f"{date} {clock}", "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise MalformedLineError(line_no, "the timestamp is not a valid date and time") from None
    if action not in ACTIONS:
        raise MalformedLineError(line_no, f"unknown action {action[:10]!r} (known: ADD, DEL)")
    if kind not in IDS_BY_KIND:
        raise MalformedLineError(line_no, f"unknown target {kind[:10]!r} (L list, D dataset)")
    count = IDS_BY_KIND[kind]
    rest = fields[4:]
    if len(rest) not in (count + 1, count + 2):
        raise MalformedLineError(line_no, f"{kind} lines have {count} id(s), an email, maybe an IP")
    if not all(part.isascii() and part.isdigit() for part in rest[:count]):
        raise MalformedLineError(line_no, "dataset and list ids must be integers")
    ids = [int(part) for part in rest[:count]]
    email = rest[count]
    if not is_email(email):
        raise MalformedLineError(line_no, "the email field is not an address")
    ip = rest[count + 1] if len(rest) == count + 2 else None
    if ip is not None:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise MalformedLineError(line_no, "the last field is not an IP address") from None
    list_id = ids[1] if kind == "L" else None
    return ChangeLogEntry(line_no, at, action, kind, ids[0], list_id, email, ip)


def parse_lines(lines: Iterable[bytes]) -> Iterator[ChangeLogEntry | MalformedLineError]:
    """Entries and malformed lines in file order, numbered from 1; blank lines are skipped."""
    for line_no, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            yield MalformedLineError(line_no, "not UTF-8 text")
            continue
        if not text.strip():
            continue
        try:
            yield parse_line(text, line_no)
        except MalformedLineError as exc:
            yield exc


def to_event(entry: ChangeLogEntry, options: ChangeLogOptions) -> dict[str, Any]:
    """The change event for one entry, stamped with the line's time in ``options.timezone``;
    :class:`InvalidEventError` for a time before 1970."""
    email = entry.email.strip().lower()
    seconds = entry.at.replace(tzinfo=options.timezone).timestamp()
    if seconds < 0:  # refused as on every path; -1.0 would even read as "time unknown"
        raise InvalidEventError("bad_timestamp", "the line's time is before 1970")
    event_id = "maestro:" + hashlib.sha256(entry.format().encode()).hexdigest()[:24]
    if entry.action == "DEL" and entry.kind == "D" and options.del_as == "delete":
        return change_event(email, options.source, seconds, event_id=event_id, op=Op.DELETE)
    subscribed = entry.action == "ADD"
    name = (
        f"subscribed_list_{entry.list_id}"
        if entry.kind == "L"
        else f"member_dataset_{entry.dataset_id}"
    )
    properties: dict[str, Value] = {"email": email, name: subscribed}
    if options.include_ip and entry.ip:
        properties["maestro_last_ip"] = entry.ip
    return change_event(email, options.source, seconds, properties, event_id=event_id)
