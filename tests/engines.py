"""The processor's engines as the contract tests see them: ``streams worker --engine E`` in a
process of its own, known only by its HTTP API (queries, /health, /ready, /metrics), so one
test runs unchanged against the default engine and the Faust engine.

The fixture ``engine_worker`` (tests/conftest.py) is parametrized over :data:`ENGINES` and
hands a test :class:`EngineWorkers`, which starts workers of that engine on the test's
settings and stops them after the test."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from streams.settings import Settings
from streams.testing import wait_until
from tests.test_processor.cluster import WorkerProcess, spawn_worker

ENGINES = ("default", "faust")
# A Faust worker joins, recovers its table and starts its agent in seconds, more under load.
READY_TIMEOUT = 120.0
_SAMPLE = re.compile(r'^(streams_[a-z_]+)(?:\{reason="([^"]*)"\})? (\S+)$')


@dataclass(frozen=True)
class Totals:
    """A worker's counters since it started, read from its /metrics."""

    events_in: int = 0
    applied: int = 0
    stale_events: int = 0
    stale_writes: int = 0
    upserts_out: int = 0
    rerouted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    @property
    def processed(self) -> int:
        """Events handled on their own partition (a rerouted record counts once, at home)."""
        return self.events_in - self.rerouted


@dataclass
class EngineWorker:
    """One ``streams worker`` process of ``engine``."""

    engine: str
    process: WorkerProcess
    token: str | None = None

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def log(self) -> Path:
        return self.process.log

    @property
    def alive(self) -> bool:
        return self.process.process.poll() is None

    def get(self, path: str) -> tuple[int, bytes]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        request = urllib.request.Request(self.url + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def ready(self) -> bool:
        """``GET /ready`` is 200: assigned, nothing restoring."""
        if not self.alive:
            raise AssertionError(f"{self.engine} worker exited:\n{self.log_tail()}")
        try:
            return self.get("/ready")[0] == 200
        except OSError:  # not listening yet
            return False

    def partitions(self) -> list[int]:
        """The input partitions assigned here (its /health)."""
        status, body = self.get("/health")
        assert status == 200, body
        partitions: list[int] = orjson.loads(body)["partitions"]
        return partitions

    def totals(self) -> Totals:
        status, body = self.get("/metrics")
        assert status == 200, body
        counts: dict[str, int] = {}
        rejected: dict[str, int] = {}
        for line in body.decode().splitlines():
            match = _SAMPLE.match(line)
            if match is None or not match.group(1).endswith("_total"):
                continue
            name, reason, value = match.groups()
            if reason is not None:
                if name == "streams_events_rejected_total" and float(value):
                    rejected[reason] = int(float(value))
                continue
            counts[name] = int(float(value))
        return Totals(
            counts.get("streams_events_in_total", 0),
            counts.get("streams_events_applied_total", 0),
            counts.get("streams_events_stale_total", 0),
            counts.get("streams_stale_writes_total", 0),
            counts.get("streams_upserts_out_total", 0),
            counts.get("streams_events_rerouted_total", 0),
            rejected,
        )

    def processed(self, count: int) -> bool:
        """At least ``count`` events handled (a check for ``wait_until``); fails if it died."""
        if not self.alive:
            raise AssertionError(f"{self.engine} worker exited:\n{self.log_tail()}")
        return self.totals().processed >= count

    def kill9(self) -> None:
        self.process.kill9()

    def stop(self) -> int:
        """SIGTERM and the exit code (-9 after a kill -9)."""
        return self.process.stop()

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


class EngineWorkers:
    """``start(settings)`` starts a worker of ``engine`` and waits until it is ready."""

    def __init__(self, engine: str, tmp_path: Path) -> None:
        self.engine = engine
        self._tmp_path = tmp_path
        self._started: list[EngineWorker] = []

    @property
    def faust(self) -> bool:
        return self.engine == "faust"

    def start(
        self, settings: Settings, *, data_dir: Path | None = None, wait: bool = True
    ) -> EngineWorker:
        """A worker on ``settings`` (its data dir, or ``data_dir``); ``wait``: until ready.
        Every process logs to its own file under the test's tmp_path."""
        index = len(self._started)
        log = self._tmp_path / f"{self.engine}-worker-{index}.log"
        process = spawn_worker(settings, data_dir or settings.data_dir, log, engine=self.engine)
        token = settings.api_tokens[0].get_secret_value() if settings.api_tokens else None
        worker = EngineWorker(self.engine, process, token)
        self._started.append(worker)
        if wait:
            wait_until(worker.ready, timeout=READY_TIMEOUT)
        return worker

    def start_pair(self, settings: Settings, tmp_path: Path) -> tuple[EngineWorker, EngineWorker]:
        """Two workers of one group (data dirs ``a`` and ``b`` under ``tmp_path``), once both
        are ready and share every partition between them."""
        a = self.start(settings, data_dir=tmp_path / "a", wait=False)
        b = self.start(settings, data_dir=tmp_path / "b", wait=False)
        everything = list(range(settings.partitions))

        def shared() -> bool:
            if not (a.ready() and b.ready()):
                return False
            owned_a, owned_b = a.partitions(), b.partitions()
            return bool(owned_a and owned_b) and sorted(owned_a + owned_b) == everything

        wait_until(shared, timeout=READY_TIMEOUT)
        return a, b

    def __iter__(self) -> Iterator[EngineWorker]:
        return iter(self._started)

    def stop_all(self) -> None:
        for worker in self._started:
            worker.stop()
