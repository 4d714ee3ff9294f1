"""The supervisor with stand-in members (no Kafka): one view of their output, their table,
signals forwarded, a member's death never leaves a smaller group, SIGKILL after the timeout."""

from __future__ import annotations

import json
import re
import signal
import sys
from collections.abc import Callable

import pytest

from tests.test_supervisor.conftest import StartSupervised
from tests.test_supervisor.supervised import Supervised, gone

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
    Member(i, (sys.executable, "-c", spec["child"]) if i != spec["missing"] else ("/nonexistent",),
           {"FAKE_INDEX": str(i), **spec["env"]}, Path(f"d/member-{i}"),
           re.compile(r"up url=(?P<url>\\S+)"))
    for i in range(spec["count"])
]
sys.exit(Supervisor(members, stop_timeout=spec["stop_timeout"]).run())
"""


@pytest.fixture
def supervised(start_supervised: StartSupervised) -> Callable[..., Supervised]:
    """``supervised(count, stop_timeout=..., missing=I, **env)``: the supervisor of ``count``
    stand-ins (member ``missing`` names a program that does not exist)."""

    def start(
        count: int, *, stop_timeout: float = 30, missing: int | None = None, **env: str
    ) -> Supervised:
        spec = {
            "child": CHILD,
            "count": count,
            "env": env,
            "stop_timeout": stop_timeout,
            "missing": missing,
        }
        return start_supervised([sys.executable, "-c", DRIVER, json.dumps(spec)])

    return start


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_one_view_of_every_member_and_a_signal_stops_them_all(supervised, signum):
    group = supervised(2)
    rows = group.members(2)
    assert [(row.index, row.url, row.data_dir) for row in rows] == [
        (0, "http://fake:7000", "d/member-0"),
        (1, "http://fake:7001", "d/member-1"),
    ]
    group.process.send_signal(signum)
    code, lines = group.finish()
    assert code == 0, lines
    out = group.output()
    assert "[0] hello from 0" in out
    assert "[1] hello from 1" in out
    assert f"stopping 2 members ({signum.name})" in lines
    for index, pid in ((row.index, row.pid) for row in rows):
        assert f"[{index}] level=INFO up url=http://fake:{7000 + index}" in lines
        assert f"[{index}] bye on {signum.name}" in lines, "the same signal, forwarded"
        assert f"member {index} (pid {pid}) stopped: exited with code 0" in lines
        assert lines.index(f"[{index}] bye on {signum.name}") < lines.index(
            f"member {index} (pid {pid}) stopped: exited with code 0"
        ), "a member's last lines come before its end is reported"
        assert gone(pid)


def test_a_member_that_ends_on_its_own_is_named_and_the_others_are_stopped(supervised):
    group = supervised(2, FAKE_MODE="die")
    first, second = (row.pid for row in group.members(2))
    code, lines = group.finish()
    assert code == 1
    assert lines.index("[1] giving up") < lines.index(
        f"error: member 1 (pid {second}) exited with code 3; stopping the other members"
    )
    assert "stopping 1 member (SIGTERM)" in lines
    assert f"member 0 (pid {first}) stopped: exited with code 0" in lines
    assert gone(first)
    assert gone(second)


def test_a_member_that_ignores_the_signal_is_killed_after_the_timeout(supervised):
    group = supervised(2, stop_timeout=2, FAKE_MODE="stubborn")
    first, second = (row.pid for row in group.members(2))
    group.process.send_signal(signal.SIGTERM)
    code, lines = group.finish()
    assert code == 1, "a member that had to be killed did not stop cleanly"
    assert f"error: member 0 (pid {first}) did not stop within 2 s: killed" in lines
    assert f"member 1 (pid {second}) stopped: exited with code 0" in lines
    assert gone(first)


def test_a_member_that_cannot_start_stops_those_already_started(supervised):
    group = supervised(2, missing=1)
    code, lines = group.finish()
    assert code == 1
    assert "error: member 1 did not start: [Errno 2] No such file or directory: '/nonexistent'" in (
        lines
    )
    pattern = re.compile(r"member 0 \(pid (\d+)\) stopped: .*")
    stopped = [match for line in lines if (match := pattern.fullmatch(line)) is not None]
    assert len(stopped) == 1, lines
    assert gone(int(stopped[0][1]))
