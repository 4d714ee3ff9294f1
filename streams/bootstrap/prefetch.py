"""Run an iterator in a thread, a few items ahead of the loop that consumes it.

The bootstrap reads and converts chunk n+1 while the main thread produces chunk n: the native
converter and file reads run without the GIL, so the two overlap on a second core. Whatever the
iterator raises (KeyboardInterrupt included) is raised again in the consumer, in order.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from contextlib import suppress
from types import TracebackType
from typing import Generic, Self, TypeVar

T = TypeVar("T")

_ITEM, _END, _ERROR = range(3)
_PUT_WAIT = 0.1


class Prefetch(Generic[T]):
    """``with Prefetch(items) as ahead: for item in ahead: ...``; leaving the block stops the
    thread after its current item (and waits for it: the source may not be shared)."""

    def __init__(self, items: Iterable[T], depth: int = 2, *, name: str = "prefetch") -> None:
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self._items = items
        self._queue: queue.Queue[tuple[int, object]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[T]:
        while True:
            what, value = self._queue.get()
            if what == _END:
                return
            if what == _ERROR:
                assert isinstance(value, BaseException)
                raise value
            yield value  # type: ignore[misc]

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            with suppress(queue.Empty):  # make room, so a thread waiting to put sees the stop
                self._queue.get(timeout=_PUT_WAIT)
        self._thread.join()

    def _run(self) -> None:
        try:
            for item in self._items:
                if not self._put(_ITEM, item):
                    return
            self._put(_END, None)
        except BaseException as exc:  # handed to the consumer, who raises it
            self._put(_ERROR, exc)

    def _put(self, what: int, value: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put((what, value), timeout=_PUT_WAIT)
                return True
            except queue.Full:
                continue
        return False
