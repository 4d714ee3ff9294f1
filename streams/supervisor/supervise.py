"""Run members as child processes and read them as one: every line a member writes is passed
on prefixed with ``[<index>]`` (stdout to stdout, stderr to stderr), and once every member has
said it is up (its ``ready`` line; never, with logs quieter than INFO) one line per member
gives its index, pid, URL and data directory.

SIGTERM or SIGINT is forwarded to every member, and each gets ``stop_timeout`` seconds to stop
before SIGKILL. A member that ends on its own is a failure, never a smaller group: it is named
with its exit code, the others are stopped, and the exit code is 1. The children stay in the
supervisor's process group, so a terminal's Ctrl-C reaches them as it would a single process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import IO, TextIO

from streams.supervisor.members import Member

STOP_TIMEOUT_SECONDS = 60.0
WATCH_SECONDS = 0.2
PUMP_JOIN_SECONDS = 5.0
FORWARDED = (signal.SIGTERM, signal.SIGINT)


@dataclass(slots=True)
class _Child:
    member: Member
    process: subprocess.Popen[bytes]
    pumps: list[threading.Thread] = field(default_factory=list)
    up: bool = False
    url: str | None = None

    @property
    def name(self) -> str:
        return f"member {self.member.index} (pid {self.process.pid})"


def exit_description(code: int) -> str:
    """``exited with code 1`` or ``was killed by SIGKILL``."""
    if code >= 0:
        return f"exited with code {code}"
    try:
        return f"was killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"was killed by signal {-code}"


class Supervisor:
    def __init__(
        self, members: Sequence[Member], *, stop_timeout: float = STOP_TIMEOUT_SECONDS
    ) -> None:
        self._members = members
        self._out, self._err = sys.stdout, sys.stderr
        self._stop_timeout = stop_timeout
        self._children: list[_Child] = []
        self._lock = threading.Lock()  # one line at a time, whole
        self._wake = threading.Event()
        self._requested: int | None = None

    def run(self) -> int:
        """Start every member, then supervise until a signal (0 when every member stopped
        cleanly, else 1) or until one ends on its own (1). Call from the main thread."""
        previous = {signum: signal.signal(signum, self._on_signal) for signum in FORWARDED}
        try:
            for member in self._members:
                if self._requested is not None:
                    break
                try:
                    self._children.append(self._start(member))
                except OSError as exc:
                    self._write(self._err, f"error: member {member.index} did not start: {exc}")
                    self._stop_all(signal.SIGTERM)
                    return 1
            return self._watch()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only a flag: the watch loop notices within WATCH_SECONDS. Taking a lock here (an
        # Event's) could deadlock with the main thread holding it when the signal came.
        if self._requested is None:
            self._requested = signum

    def _start(self, member: Member) -> _Child:
        process = subprocess.Popen(
            member.argv,
            env={**os.environ, **member.env, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        child = _Child(member, process)
        assert process.stdout is not None
        assert process.stderr is not None
        for source, sink in ((process.stdout, self._out), (process.stderr, self._err)):
            pump = threading.Thread(
                target=self._pump, args=(child, source, sink), name=f"member-{member.index}"
            )
            pump.start()
            child.pumps.append(pump)
        return child

    def _pump(self, child: _Child, source: IO[bytes], sink: TextIO) -> None:
        prefix = f"[{child.member.index}] "
        with source:
            for raw in iter(source.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if not child.up and (match := child.member.ready.search(line)) is not None:
                    child.url = match.groupdict().get("url")
                    child.up = True
                    self._wake.set()
                self._write(sink, prefix + line)

    def _write(self, sink: TextIO, line: str) -> None:
        with self._lock:
            try:
                sink.write(line + "\n")
                sink.flush()
            except (OSError, ValueError):  # a closed terminal or pipe: keep draining the child
                pass

    def _watch(self) -> int:
        shown = False
        while self._requested is None:
            for child in self._children:
                code = child.process.poll()
                if code is not None and self._requested is None:
                    self._drain(child)  # its last words first
                    self._write(
                        self._err,
                        f"error: {child.name} {exit_description(code)}; stopping the other members",
                    )
                    self._stop_all(signal.SIGTERM, ended=child)
                    return 1
            if not shown and all(child.up for child in self._children):
                self._show_members()
                shown = True
            self._wake.wait(WATCH_SECONDS)
            self._wake.clear()
        return self._stop_all(self._requested)

    def _show_members(self) -> None:
        rows = [("member", "pid", "url", "data dir")] + [
            (
                str(child.member.index),
                str(child.process.pid),
                child.url or "-",
                str(child.member.data_dir) if child.member.data_dir is not None else "-",
            )
            for child in self._children
        ]
        widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
        self._write(self._out, f"{len(self._children)} members up:")
        for *cells, last in rows:
            padded = (cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
            self._write(self._out, "  ".join([*padded, last]))

    def _stop_all(self, signum: int, ended: _Child | None = None) -> int:
        """Forward ``signum`` to every member still running, SIGKILL those that outlast the
        timeout; 0 when every member (but ``ended``, which ended on its own) exited 0."""
        others = [child for child in self._children if child is not ended]
        running = [child for child in others if child.process.poll() is None]
        if running:
            self._write(
                self._err,
                f"stopping {len(running)} member{'s' if len(running) > 1 else ''} "
                f"({signal.Signals(signum).name})",
            )
        for child in running:
            child.process.send_signal(signum)
        deadline = time.monotonic() + self._stop_timeout
        clean = True
        for child in others:
            try:
                code = child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
                self._drain(child)
                self._write(
                    self._err,
                    f"error: {child.name} did not stop within {self._stop_timeout:g} s: killed",
                )
                clean = False
                continue
            self._drain(child)
            clean = clean and code == 0
            self._write(self._err, f"{child.name} stopped: {exit_description(code)}")
        return 0 if clean else 1

    def _drain(self, child: _Child) -> None:
        """Pass on what an ended member still had in its pipes."""
        for pump in child.pumps:
            pump.join(PUMP_JOIN_SECONDS)
