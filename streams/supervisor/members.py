"""What each member started by ``--processes N`` runs: the same command, without the flag (a
child never starts children), and, through its environment, its own data directory and ports.

Member ``i`` (from 0) of a worker group gets ``<data_dir>/member-<i>``, web port
``<web_port> + i`` and, when one is set, the advertised URL's port plus ``i``; member ``i`` of
a connector group gets connector web port ``<base> + i``. Port 0 (any free port) stays 0.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from streams.errors import SettingsError
from streams.settings import Settings

MAX_PORT = 65535
# The connector's HTTP server (its Settings field connector_web_port and this default).
CONNECTOR_WEB_PORT_ENV = "STREAMS_CONNECTOR_WEB_PORT"
DEFAULT_CONNECTOR_WEB_PORT = 6067
# A worker says this once its query API is bound and its processor has started. A URL ends at
# a blank or, in a JSON log line, at the message's closing quote.
WORKER_READY = re.compile(r'\bworker started url=(?P<url>[^\s"]+)')


@dataclass(frozen=True, slots=True)
class Member:
    index: int
    argv: tuple[str, ...]
    env: Mapping[str, str]  # only what differs from the supervisor's own environment
    data_dir: Path | None
    # The output line that says the member is up; its group ``url``, if any, where it serves.
    ready: re.Pattern[str]


def command(*args: str) -> tuple[str, ...]:
    """``streams ARGS`` run by this interpreter, whatever the console script is called."""
    return (sys.executable, "-m", "streams.cli.main", *args)


def member_port(base: int, index: int) -> int:
    """``base + index``; 0 (any free port) stays 0 for every member."""
    return base + index if base else 0


def member_url(url: str, index: int) -> str:
    """``url`` with its port plus ``index``: each member advertises its own address."""
    parts = urlsplit(url)
    host, port = _host_and_port(url)
    return urlunsplit(parts._replace(netloc=f"{host}:{member_port(port, index)}"))


def _host_and_port(url: str) -> tuple[str, int]:
    host, colon, port = urlsplit(url).netloc.rpartition(":")
    if not colon or not port.isdigit():  # no port, or the ":" of an IPv6 address
        raise SettingsError(
            [
                f"STREAMS_ADVERTISED_URL: {url!r} has no port; with --processes every member "
                "needs its own (member i advertises the port plus i), e.g. http://host:6066"
            ]
        )
    return host, int(port)


def worker_members(settings: Settings, count: int) -> list[Member]:
    """``count`` workers of ``settings.group_id``: ``settings`` as the command read them
    (its options included), each with its own data directory, web port and advertised URL."""
    _check_ports("STREAMS_WEB_PORT", settings.web_port, count)
    if settings.advertised_url:
        _check_ports("STREAMS_ADVERTISED_URL", _host_and_port(settings.advertised_url)[1], count)
    members = []
    for index in range(count):
        data_dir = settings.data_dir / f"member-{index}"
        env = {
            "STREAMS_DATA_DIR": str(data_dir),
            "STREAMS_WEB_HOST": settings.web_host,
            "STREAMS_WEB_PORT": str(member_port(settings.web_port, index)),
        }
        if settings.advertised_url:
            env["STREAMS_ADVERTISED_URL"] = member_url(settings.advertised_url, index)
        members.append(Member(index, command("worker"), env, data_dir, WORKER_READY))
    return members


def connector_members(
    name: str, config: Path, count: int, environ: Mapping[str, str] = os.environ
) -> list[Member]:
    """``count`` connectors of group ``NAME`` reading ``config``, each on its own web port
    (``$STREAMS_CONNECTOR_WEB_PORT``, else 6067, plus its index)."""
    raw = environ.get(CONNECTOR_WEB_PORT_ENV, str(DEFAULT_CONNECTOR_WEB_PORT))
    if not raw.strip().isdigit():
        raise SettingsError([f"{CONNECTOR_WEB_PORT_ENV}: expected an integer, got {raw[:40]!r}"])
    base = int(raw)
    _check_ports(CONNECTOR_WEB_PORT_ENV, base, count)
    # A connector serving HTTP says where once started; one without is up once it is assigned
    # partitions (none, when idle).
    ready = re.compile(rf'\bconnector={re.escape(name)} (?:started url=(?P<url>[^\s"]+)|assigned=)')
    argv = command("connect", name, "--config", str(config))
    return [
        Member(index, argv, {CONNECTOR_WEB_PORT_ENV: str(member_port(base, index))}, None, ready)
        for index in range(count)
    ]


def idle_members_warning(count: int, partitions: int, topic: str) -> str | None:
    """Members beyond the topic's partitions get none: say so (they are spares, not an error)."""
    if count <= partitions:
        return None
    idle = count - partitions
    return (
        f"{count} processes for the {partitions} partitions of {topic}: "
        f"{idle} member{'s' if idle > 1 else ''} will stay idle (spare until another leaves)"
    )


def _check_ports(variable: str, base: int, count: int) -> None:
    if base and base + count - 1 > MAX_PORT:
        raise SettingsError(
            [f"{variable}: {base} + {count - 1} members passes port {MAX_PORT}; choose a lower one"]
        )
