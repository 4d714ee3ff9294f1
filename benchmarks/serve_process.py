"""``streams serve`` in a subprocess, on the broker and topics of a :class:`Settings`.

Shared by the HTTP load benchmark and the test of the command itself. The service binds a free
port (``--port 0``); its base URL is read from its log line ``listening on http://...``, and its
stderr keeps being drained so it never blocks on a full pipe.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from streams.settings import Settings

TOPIC_FIELDS = ("input_topic", "upserts_topic", "stale_topic", "dlq_topic", "changelog_topic")
LISTENING = re.compile(r"listening on (http://\S+)")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


@contextmanager
def serve_process(
    settings: Settings, config: Path, *options: str, env: Mapping[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``streams serve --config <config> --port 0 <options>``, with ``env`` added to the
    environment; yields the process and its base URL. A process still running at the end gets
    SIGTERM, then a kill after ``STOP_TIMEOUT``."""
    environment = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "STREAMS_PARTITIONS": str(settings.partitions),
        **{f"STREAMS_{name.upper()}": getattr(settings, name) for name in TOPIC_FIELDS},
        **(env or {}),
    }
    command = [sys.executable, "-m", "streams.cli.main", "serve", "--config", str(config)]
    process = subprocess.Popen(
        [*command, "--port", "0", *options], env=environment, stderr=subprocess.PIPE, text=True
    )
    try:
        yield process, listening_url(process)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def listening_url(process: subprocess.Popen[str]) -> str:
    """The base URL ``process`` logs once it listens; RuntimeError (with its last log lines) if
    it exits or stays silent for ``START_TIMEOUT`` instead."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT
    seen: list[str] = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if process.poll() is not None:
                break
            continue
        seen.append(line)
        match = LISTENING.search(line)
        if match:
            return match.group(1)
    raise RuntimeError("streams serve did not start:\n" + "".join(seen[-20:]))
