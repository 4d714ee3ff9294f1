"""The progress bar and the log: a record logged while the bar is live lands whole on its own
line above it, in the same terminal, and the bar goes on below it."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from rich.console import Console

from streams.bootstrap.cli import run_bootstrap
from streams.bootstrap.progress import JobProgress
from streams.logs import RedactingFilter
from tests.test_bootstrap.bootstrap_helpers import BASIC_MAPPING

FORMAT = "level=%(levelname)s logger=%(name)s %(message)s"
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_LINE_START = re.compile(r"\r|\x1b\[2K")  # back to its start, erased


@pytest.fixture
def terminal() -> Iterator[io.StringIO]:
    """One terminal (a buffer) that the root logger's handler writes to, as
    ``configure_logging`` sets it up, but without times; restored afterwards."""
    screen = io.StringIO()
    handler = logging.StreamHandler(screen)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield screen
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def lines_with(text: str, needle: str) -> list[str]:
    """The lines a terminal shows of ``text`` that hold ``needle``: what follows the last
    return or erase on each line, without the other escapes."""
    shown = (_ESCAPES.sub("", _LINE_START.split(line)[-1]) for line in text.split("\n"))
    return [line for line in shown if needle in line]


def test_a_record_logged_while_the_bar_is_live_lands_above_it(terminal: io.StringIO) -> None:
    console = Console(file=terminal, width=120, force_terminal=True)
    with JobProgress(console, enabled=True, total=10) as progress:
        progress.update(3)
        logging.getLogger("streams.test").warning("half way, user=jana@example.com")
        progress.update(6)
    streams = [getattr(handler, "stream", None) for handler in logging.getLogger().handlers]
    assert terminal in streams  # given back when the bar ends
    screen = terminal.getvalue()
    expected = "level=WARNING logger=streams.test half way, user=j***@example.com"
    assert lines_with(screen, "half way") == [expected]
    assert "6/10" in screen[screen.index("half way") :]  # the bar goes on below it


def test_without_the_bar_records_go_straight_to_the_stream(terminal: io.StringIO) -> None:
    console = Console(file=terminal, width=120, force_terminal=True)
    with JobProgress(console, enabled=False, total=10):
        logging.getLogger("streams.test").info("plain")
    assert terminal.getvalue() == "level=INFO logger=streams.test plain\n"


def test_a_file_handler_keeps_its_file(terminal: io.StringIO, tmp_path: Path) -> None:
    file_handler = logging.FileHandler(tmp_path / "log.txt")
    opened = file_handler.stream
    logging.getLogger().addHandler(file_handler)
    try:
        console = Console(file=terminal, width=120, force_terminal=True)
        with JobProgress(console, enabled=True, total=2):
            assert file_handler.stream is opened
            logging.getLogger("streams.test").warning("to the file")
    finally:
        logging.getLogger().removeHandler(file_handler)
        file_handler.close()
    assert "to the file" in (tmp_path / "log.txt").read_text(encoding="utf-8")
    assert lines_with(terminal.getvalue(), "to the file") == [
        "level=WARNING logger=streams.test to the file"  # the terminal's handler, above the bar
    ]


def test_a_jobs_start_record_does_not_break_its_bar(
    streams_settings, write_csv, terminal: io.StringIO, tmp_path: Path
) -> None:
    settings = streams_settings()
    path = write_csv(["id", "name", "email", "age"], [[f"c-{n}", "A", "", "1"] for n in range(5)])
    mapping = tmp_path / "mapping.json"
    mapping.write_bytes(orjson.dumps(BASIC_MAPPING))
    console = Console(file=terminal, width=150, force_terminal=True)
    code = run_bootstrap(
        str(path), mapping, job_id="barred", checkpoint_dir=tmp_path, settings=settings,
        progress=True, console=console,
    )  # fmt: skip
    assert code == 0
    screen = terminal.getvalue()
    (start,) = lines_with(screen, "bootstrap start")
    assert start.startswith("level=INFO logger=streams.bootstrap.job bootstrap start job_id=barred")
    assert "rows/s" not in start
    assert "━" not in start
    assert "rows/s" in screen[screen.index("bootstrap start") :]
