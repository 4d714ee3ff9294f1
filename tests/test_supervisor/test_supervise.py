"""The supervisor with stand-in members (no Kafka): one view of their output, their table,
signals forwarded, a member's death never leaves a smaller group, SIGKILL after the timeout."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# A member: says where it is on stderr, something on stdout, then waits for a signal.
CHILD = """
import os, signal, sys, time
index, mode = os.environ["FAKE_INDEX"], os.environ.get("FAKE_MODE", "")
got = []
signal.signal(signal.SIGTERM, lambda signum, frame: got.append(signum))
signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
print(f"hello from {index}", flush=True)
print(f"level=INFO up url=http://fake:{7000 + int(index)}", file=sys.stderr, flush=True)
if mode == "die" and index == "1":
    time.sleep(1)
    print("giving up", file=sys.stderr, flush=True)
    sys.exit(3)
if mode == "stubborn" and index == "0":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
while not got:
    time.sleep(0.05)
print(f"bye on {signal.Signals(got[0]).name}", file=sys.stderr, flush=True)
"""

DRIVER = """
import json, re, sys
from pathlib import Path
from streams.supervisor.members import Member
from streams.supervisor.supervise import Supervisor
spec = json.loads(sys.argv[1])
members = [
    Member(i, (sys.executable, "-c", spec["child"]), {"FAKE_INDEX": str(i), **spec["env"]},
           Path(f"d/member-{i}"), re.compile(r"up url=(?P<url>\\S+)"))
    for i in range(spec["count"])
]
sys.exit(Supervisor(members, stop_timeout=spec["stop_timeout"]).run())
"""


class Supervised:
    """The supervisor as a process: its stdout read line by line, its stderr kept whole."""

    def __init__(self, count: int, *, stop_timeout: float = 30, **env: str) -> None:
        spec = {"child": CHILD, "count": count, "env": env, "stop_timeout": stop_timeout}
        self.process = subprocess.Popen(
            [sys.executable, "-c", DRIVER, json.dumps(spec)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.seen: list[str] = []

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def line_matching(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no line matched {pattern!r} in {self.seen}") from None
            self.seen.append(line)
            if (match := re.fullmatch(pattern, line)) is not None:
                return match

    def members(self, count: int) -> list[tuple[int, int, str, str]]:
        """The table's rows once every member is up: index, pid, url, data dir."""
        self.line_matching(f"{count} members up:")
        header = self.line_matching(r"member\s+pid\s+url\s+data dir")
        assert header
        return [
            (int(m[1]), int(m[2]), m[3], m[4])
            for m in (self.line_matching(r"(\d+)\s+(\d+)\s+(\S+)\s+(\S+)") for _ in range(count))
        ]

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        code = self.process.wait(timeout)
        assert self.process.stderr is not None
        return code, self.process.stderr.read()


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_one_view_of_every_member_and_a_signal_stops_them_all(signum):
    supervised = Supervised(2)
    rows = supervised.members(2)
    assert [(index, url, data_dir) for index, _, url, data_dir in rows] == [
        (0, "http://fake:7000", "d/member-0"),
        (1, "http://fake:7001", "d/member-1"),
    ]
    supervised.process.send_signal(signum)
    code, err = supervised.finish()
    assert code == 0, err
    out = supervised.seen + list(supervised.lines.queue)
    assert "[0] hello from 0" in out
    assert "[1] hello from 1" in out
    lines = err.splitlines()
    assert f"stopping 2 members ({signum.name})" in lines
    for index, pid, _, _ in rows:
        assert f"[{index}] level=INFO up url=http://fake:{7000 + index}" in lines
        assert f"[{index}] bye on {signum.name}" in lines, "the same signal, forwarded"
        assert f"member {index} (pid {pid}) stopped: exited with code 0" in lines
        assert lines.index(f"[{index}] bye on {signum.name}") < lines.index(
            f"member {index} (pid {pid}) stopped: exited with code 0"
        ), "a member's last lines come before its end is reported"
        assert gone(pid)


def test_a_member_that_ends_on_its_own_is_named_and_the_others_are_stopped():
    supervised = Supervised(2, FAKE_MODE="die")
    rows = supervised.members(2)
    code, err = supervised.finish()
    assert code == 1
    lines = err.splitlines()
    (_, first, _, _), (_, second, _, _) = rows
    assert lines.index("[1] giving up") < lines.index(
        f"error: member 1 (pid {second}) exited with code 3; stopping the other members"
    )
    assert "stopping 1 member (SIGTERM)" in lines
    assert f"member 0 (pid {first}) stopped: exited with code 0" in lines
    assert gone(first)
    assert gone(second)


def test_a_member_that_ignores_the_signal_is_killed_after_the_timeout():
    supervised = Supervised(2, stop_timeout=2, FAKE_MODE="stubborn")
    (_, first, _, _), (_, second, _, _) = supervised.members(2)
    supervised.process.send_signal(signal.SIGTERM)
    code, err = supervised.finish()
    assert code == 1, "a member that had to be killed did not stop cleanly"
    lines = err.splitlines()
    assert f"error: member 0 (pid {first}) did not stop within 2 s: killed" in lines
    assert f"member 1 (pid {second}) stopped: exited with code 0" in lines
    assert gone(first)
