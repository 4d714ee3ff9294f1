"""Process probes for the broker tests: liveness (zombies count as gone), JVMs by command line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from contextlib import suppress
from pathlib import Path

PROC = Path("/proc")


def running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (a zombie holds no port and no file)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def processes_mentioning(marker: str, program: str = "java") -> list[int]:
    """Pids of live ``program`` processes whose command line contains ``marker``."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            argv
            and os.path.basename(os.fsdecode(argv[0])) == program
            and any(marker in os.fsdecode(arg) for arg in argv)
            and running(int(entry.name))
        ):
            found.append(int(entry.name))
    return found


def children_mentioning(marker: str, parent: int) -> list[int]:
    """Pids of live children of ``parent`` whose command line contains ``marker``."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text(encoding="utf-8", errors="replace")
            cmdline = os.fsdecode((entry / "cmdline").read_bytes())
        except OSError:
            continue
        if f"\nPPid:\t{parent}\n" in status and marker in cmdline and running(int(entry.name)):
            found.append(int(entry.name))
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def kill_all(pids: list[int]) -> None:
    """Test cleanup: SIGKILL whatever a failed test left behind."""
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def kill_hard(process: subprocess.Popen[str]) -> None:
    """SIGKILL ``process`` (the owner under test) and reap it."""
    process.send_signal(signal.SIGKILL)
    process.wait(30)
