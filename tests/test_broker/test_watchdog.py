"""The broker's watchdog: when its owner dies (SIGKILL too) it stops what it guards and removes
the directories; when the owner releases it, it leaves everything alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from streams.broker.watchdog import Watchdog
from streams.testing import wait_until
from tests.test_broker.processes import kill_all, kill_hard, running

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 20.0
GRACE = 1.0

# A guarded child: optionally deaf to SIGTERM, says "ready" once its handler is in place.
CHILD = """
import signal, sys, time
if sys.argv[1] == "deaf":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(600)
"""

# The owner: guards its children and directories as EmbeddedKafka does, then waits to be killed.
OWNER = """
import json, subprocess, sys, time
from pathlib import Path
from streams.broker.watchdog import Watchdog
spec = json.loads(sys.argv[1])
watchdog = Watchdog(grace=spec["grace"])
for path in spec["dirs"]:
    watchdog.guard_dir(Path(path))
pids = []
for mode in spec["children"]:
    child = subprocess.Popen(
        [sys.executable, "-c", spec["child"], mode], stdout=subprocess.PIPE, start_new_session=True
    )
    assert child.stdout.readline() == b"ready\\n"
    watchdog.guard_process(child.pid)
    pids.append(child.pid)
for index in spec["forget"]:
    watchdog.forget_process(pids[index])
print(json.dumps({"watchdog": watchdog.pid, "children": pids}), flush=True)
time.sleep(600)
"""


def _start_owner(
    tmp_path: Path, children: list[str], dirs: list[Path], forget: tuple[int, ...] = ()
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    spec = {
        "grace": GRACE,
        "dirs": [str(path) for path in dirs],
        "children": children,
        "forget": list(forget),
        "child": CHILD,
    }
    pythonpath = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(pythonpath)}
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "owner.err").open("w"),
        text=True,
        env=env,
    )
    assert owner.stdout is not None
    line = owner.stdout.readline()
    assert line, (tmp_path / "owner.err").read_text()
    return owner, json.loads(line)


def test_owner_killed_stops_guarded_processes_and_removes_dirs(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "file").write_text("x")
    owner, started = _start_owner(tmp_path, ["polite", "polite"], [scratch])
    try:
        assert all(running(pid) for pid in started["children"])

        kill_hard(owner)

        wait_until(lambda: not any(map(running, started["children"])), timeout=TIMEOUT)
        wait_until(lambda: not scratch.exists(), timeout=TIMEOUT)
        wait_until(lambda: not running(started["watchdog"]), timeout=TIMEOUT)
        said = (tmp_path / "owner.err").read_text()
        assert f"pid {owner.pid} ended without stopping its broker" in said
        assert str(scratch) in said
    finally:
        kill_all([*started["children"], started["watchdog"]])


def test_a_process_deaf_to_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    owner, started = _start_owner(tmp_path, ["deaf"], [])
    try:
        killed_at = time.monotonic()
        kill_hard(owner)

        wait_until(lambda: not running(started["children"][0]), timeout=TIMEOUT)
        assert time.monotonic() - killed_at >= GRACE
    finally:
        kill_all([*started["children"], started["watchdog"]])


def test_a_forgotten_process_is_left_alone(tmp_path: Path) -> None:
    owner, started = _start_owner(tmp_path, ["polite", "polite"], [], forget=(0,))
    kept, stopped = started["children"]
    try:
        kill_hard(owner)

        wait_until(lambda: not running(started["watchdog"]), timeout=TIMEOUT)
        assert not running(stopped)
        assert running(kept)
    finally:
        kill_all([*started["children"], started["watchdog"]])


def test_release_exits_at_once_and_touches_nothing(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD, "polite"], stdout=subprocess.PIPE)
    try:
        watchdog = Watchdog(grace=GRACE)
        watchdog.guard_process(child.pid)
        watchdog.guard_dir(tmp_path)

        started = time.monotonic()
        watchdog.release()

        assert time.monotonic() - started < TIMEOUT
        assert not running(watchdog.pid)
        assert child.poll() is None
        assert tmp_path.is_dir()
    finally:
        child.kill()
        child.wait()
