"""The sink contract: ``add(record)`` and ``flush()``; a concrete sink writes only ``write``.

Most sinks are given decoded upserts (``BatchingSink``); a sink that gains by reading the
messages itself (PostgreSQL: most rows go from message bytes to COPY text with no Python
object per upsert) takes them as they came (``RawBatchingSink``) and rejects undecodable ones
with ``records.BAD_UPSERT``, as the worker does for the others.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from streams.connect.records import RawRecord, SinkRecord, WriteResult

R = TypeVar("R", RawRecord, SinkRecord)


class BufferedSink(ABC, Generic[R]):
    """Buffers records; ``flush`` hands the whole buffer to ``write`` once.

    Contract for subclasses:
    - validate configuration in ``__init__`` (raise SinkConfigError), connect in ``setup``;
    - ``write`` must be idempotent: the same batch may be written again after a crash or a
      retry, and records may arrive again later (replays); it must never let an older
      per-property timestamp overwrite a newer one at the destination;
    - ``write`` raises RetryableSinkError / SinkBackpressureError for whole-batch transient
      failures and returns the records refused for good in ``WriteResult.rejected``;
    - ``write`` never sleeps or retries in a loop of its own: the worker owns retries;
    - ``begin_write`` (optional) is ``write`` split in two, under the same rules.
    """

    name: str = "sink"

    def __init__(self) -> None:
        self._buffer: list[R] = []
        self._bytes = 0

    def setup(self) -> None:
        """Connect, create tables, fetch tokens: anything that does I/O before the first write."""

    def close(self) -> None:
        """Release connections."""

    def add(self, record: R) -> None:
        self._buffer.append(record)
        self._bytes += len(record.value)

    def extend(self, records: Sequence[R]) -> None:
        """``add`` each of ``records``, in order."""
        for record in records:
            self.add(record)

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def buffered_bytes(self) -> int:
        return self._bytes

    def flush(self) -> WriteResult:
        """Write the buffer; on success it is cleared, on an exception it is kept for a retry."""
        return self.begin_flush()()

    def begin_flush(self) -> Callable[[], WriteResult]:
        """Start writing the buffer and empty it; the returned call waits for the outcome.
        Records added meanwhile form the next batch. When either step raises, the batch goes
        back to the front of the buffer, to be retried with what came after it."""
        batch, size = self._buffer, self._bytes
        if not batch:
            return WriteResult
        self.discard()
        try:
            finish = self.begin_write(batch)
        except BaseException:
            self._restore(batch, size)
            raise

        def settle() -> WriteResult:
            try:
                return finish()
            except BaseException:
                self._restore(batch, size)
                raise

        return settle

    def _restore(self, batch: list[R], size: int) -> None:
        self._buffer = batch + self._buffer
        self._bytes += size

    def discard(self) -> None:
        """Drop the buffer (partitions revoked: the new owner replays from the last commit)."""
        self._buffer = []
        self._bytes = 0

    @abstractmethod
    def write(self, batch: Sequence[R]) -> WriteResult:
        """Deliver ``batch`` (in partition order per customer); see the class contract."""

    def begin_write(self, batch: Sequence[R]) -> Callable[[], WriteResult]:
        """``write`` in two steps: start delivering, then (the returned call) wait for the
        outcome. A destination that works on its own once given the batch (a database
        executing sent statements) returns early, so the worker consumes the next batch
        meanwhile; the default writes at once."""
        result = self.write(batch)
        return lambda: result


class BatchingSink(BufferedSink[SinkRecord]):
    """A sink given decoded upserts."""


class RawBatchingSink(BufferedSink[RawRecord]):
    """A sink given the messages as they came, which decodes them itself."""


Sink = BatchingSink | RawBatchingSink
