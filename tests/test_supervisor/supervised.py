"""A supervisor (``streams ... --processes N`` or a stand-in) as a test's subprocess: its
stdout read line by line, its members' table parsed, its stderr kept whole."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Row:
    index: int
    pid: int
    url: str
    data_dir: str


class Supervised:
    def __init__(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env=None if env is None else dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.rows: list[Row] = []
        self.seen: list[str] = []
        self._lines: queue.Queue[str] = queue.Queue()
        self._errors: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self._error_reader = threading.Thread(target=self._read_errors, daemon=True)
        self._error_reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))

    def _read_errors(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._errors.append(line.rstrip("\n"))

    def line_matching(self, pattern: str, timeout: float) -> re.Match[str]:
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(
                    f"no line matched {pattern!r}; stdout: {self.seen}; "
                    f"stderr: {self._errors[-40:]}"
                ) from None
            self.seen.append(line)
            if (match := re.fullmatch(pattern, line)) is not None:
                return match

    def members(self, count: int, timeout: float = 30) -> list[Row]:
        """The table's rows, printed once every member is up."""
        self.line_matching(f"{count} members up:", timeout)
        self.line_matching(r"member\s+pid\s+url\s+data dir", timeout)
        pattern = r"(\d+)\s+(\d+)\s+(\S+)\s+(\S+)"
        for _ in range(count):
            match = self.line_matching(pattern, timeout)
            self.rows.append(Row(int(match[1]), int(match[2]), match[3], match[4]))
        return self.rows

    def output(self) -> list[str]:
        """Every stdout line so far."""
        while not self._lines.empty():
            self.seen.append(self._lines.get())
        return self.seen

    def finish(self, timeout: float = 90) -> tuple[int, list[str]]:
        """The exit code and every stderr line."""
        code = self.process.wait(timeout)
        self._error_reader.join(10)
        return code, list(self._errors)

    def kill(self) -> None:
        """After a failed test: nothing outlives it."""
        for pid in [self.process.pid, *(row.pid for row in self.rows)]:
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(30)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False
