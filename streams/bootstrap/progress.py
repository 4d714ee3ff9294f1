"""A rich progress bar: rows of total (when the source knows it), rate and ETA.

While it is live, log records meant for the same terminal are printed through its console, so
each lands whole above the bar, which is drawn again below it (a handler writing to the stream
directly would put the record inside the bar's line).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from types import TracebackType
from typing import IO

from rich.console import Console
from rich.file_proxy import FileProxy
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} rows/s" if speed else "- rows/s", style="progress.data.speed")


class JobProgress:
    """No-ops when disabled, so the job loop does not branch on it."""

    def __init__(self, console: Console | None, *, enabled: bool, total: int | None) -> None:
        self._progress: Progress | None = None
        self._live = ExitStack()
        if enabled:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                RateColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=console,
                transient=False,
            )
            self._task = self._progress.add_task("bootstrap", total=total)

    def __enter__(self) -> JobProgress:
        if self._progress is not None:
            self._progress.start()
            self._live.callback(self._progress.stop)
            self._live.enter_context(_logs_through(self._progress.console))
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._live.close()

    def update(self, rows: int, description: str | None = None) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=rows, description=description)

    def finish(self, rows: int) -> None:
        if self._progress is not None:
            # The total was an estimate (line count); the bar ends full either way.
            self._progress.update(self._task, completed=rows, total=rows, description="done")


@contextmanager
def _logs_through(console: Console) -> Iterator[None]:
    """The root logger's stream handlers that write where ``console`` does (its file, or any
    terminal when it is one) print through it until the context ends."""
    moved: list[tuple[logging.StreamHandler[IO[str]], IO[str]]] = []
    for handler in logging.getLogger().handlers:
        if (
            isinstance(handler, logging.StreamHandler)
            and not isinstance(handler, logging.FileHandler)
            and _same_place(handler.stream, console)
        ):
            moved.append((handler, handler.stream))
            handler.setStream(FileProxy(console, handler.stream))
    try:
        yield
    finally:
        for handler, stream in moved:
            handler.setStream(stream)


def _same_place(stream: IO[str], console: Console) -> bool:
    if stream is console.file:
        return True
    try:
        return console.is_terminal and stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False
