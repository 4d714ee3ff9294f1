"""Stops the embedded broker's processes and removes its temporary directory if its owner dies.

The owner (an ``EmbeddedKafka``) runs this file as a script whose stdin is a pipe, and keeps the
pipe's only write end. It writes one line per thing to clean up:

    pid 1234        a process to stop (SIGTERM, then SIGKILL after the grace period)
    forget 1234     that process has ended (its pid may be reused: leave it alone)
    dir /tmp/x      a directory to remove once the processes are gone
    release         the owner cleaned up itself: exit and touch nothing

End of file without ``release`` means the owner has died, however it died (SIGKILL included):
the kernel closes a dead process's file descriptors. A parent-death signal (Linux's
``PR_SET_PDEATHSIG``) would kill the JVM too, but not remove the directory, and it fires when
the launching *thread* ends. The pipe is not inheritable across ``exec``; a child made with a
bare ``os.fork()`` would hold it until that child exits.

The script needs only the standard library and runs with ``python -I``, in its own session so
that a Ctrl-C or a process-group kill aimed at the owner does not reach it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path

KILL_WAIT = 5.0
POLL_INTERVAL = 0.05
RELEASE_TIMEOUT = 5.0


class Watchdog:
    """The owner's side: starts the watchdog and tells it what to clean up after the owner."""

    def __init__(self, grace: float) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-I", __file__, str(os.getpid()), str(grace)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self._process.pid

    def guard_process(self, pid: int) -> None:
        self._send(f"pid {pid}")

    def forget_process(self, pid: int) -> None:
        self._send(f"forget {pid}")

    def guard_dir(self, path: Path) -> None:
        self._send(f"dir {path}")

    def release(self, timeout: float = RELEASE_TIMEOUT) -> None:
        """The owner has cleaned up: let the watchdog exit without acting, and reap it."""
        with suppress(ChildProcessError):
            self._send("release")
        self._close_pipe()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def _send(self, line: str) -> None:
        pipe = self._process.stdin
        try:
            if pipe is None or pipe.closed:
                raise BrokenPipeError
            pipe.write(os.fsencode(line) + b"\n")
            pipe.flush()
        except BrokenPipeError:
            raise ChildProcessError(
                f"the embedded broker's watchdog (pid {self.pid}) has exited "
                f"with {self._process.poll()}"
            ) from None

    def _close_pipe(self) -> None:
        pipe = self._process.stdin
        if pipe is not None:
            with suppress(BrokenPipeError):
                pipe.close()


def main(argv: list[str]) -> int:
    owner, grace = int(argv[1]), float(argv[2])
    pids: dict[int, None] = {}
    dirs: list[Path] = []
    for raw in sys.stdin.buffer:
        verb, _, argument = os.fsdecode(raw.rstrip(b"\n")).partition(" ")
        if verb == "release":
            return 0
        if verb == "pid":
            pids[int(argument)] = None
        elif verb == "forget":
            pids.pop(int(argument), None)
        elif verb == "dir":
            dirs.append(Path(argument))
    _stop(list(pids), grace)
    for path in dirs:
        shutil.rmtree(path, ignore_errors=True)
    _say(
        f"streams broker watchdog: pid {owner} ended without stopping its broker; "
        f"stopped {sorted(pids) or 'nothing'}, removed {[str(path) for path in dirs] or 'nothing'}"
    )
    return 0


def _stop(pids: list[int], grace: float) -> None:
    _signal(pids, signal.SIGTERM)
    left = _wait_until_gone(pids, grace)
    if left:
        _signal(left, signal.SIGKILL)
        _wait_until_gone(left, KILL_WAIT)


def _signal(pids: Iterable[int], signum: signal.Signals) -> None:
    for pid in pids:
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def _wait_until_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        left = [pid for pid in pids if _alive(pid)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(POLL_INTERVAL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # the pid now belongs to someone else's process
    # A zombie holds no port and no file; only its new parent can reap it (Linux's /proc).
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _say(message: str) -> None:
    # The owner's stderr may be a pipe nobody reads any more.
    with suppress(OSError):
        print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
