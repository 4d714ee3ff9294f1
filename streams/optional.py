"""Drivers are extras of the package: a feature whose driver is missing says what to install.

A module that needs a driver imports it inside ``with requires("psycopg", "the PostgreSQL
sink"):``. The imports stay ordinary ones, so mypy sees the driver's types; an ImportError in
the block becomes a :class:`MissingDriverError`, which the command line prints as one line.
Modules that every command imports (``streams.cli.main``, the processor, the connector worker)
import no driver at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

from streams.errors import ConfigError

DISTRIBUTION = "profile-streams"


class Driver(NamedTuple):
    package: str  # what pip installs
    extra: str  # the extra of profile-streams that brings it


# By top-level module name; pyproject.toml's [project.optional-dependencies] lists the same.
DRIVERS: dict[str, Driver] = {
    "psycopg": Driver("psycopg", "postgres"),
    "httpx": Driver("httpx", "rest"),
    "aio_pika": Driver("aio-pika", "amqp"),
    "faust": Driver("faust-streaming", "faust"),
}


class MissingDriverError(ConfigError):
    """A feature's driver, an extra of the package, cannot be imported."""


def missing_driver(module: str, needed_by: str, cause: ImportError) -> MissingDriverError:
    """The error saying which extra brings ``module`` (a key of :data:`DRIVERS`)."""
    driver = DRIVERS[module]
    return MissingDriverError(
        f"{needed_by} needs {driver.package} ({cause}): "
        f"pip install '{DISTRIBUTION}[{driver.extra}]'"
    )


def driver_of(cause: ImportError) -> str | None:
    """The driver (a key of :data:`DRIVERS`) whose import failed with ``cause``, if any: for
    callers that import a feature's module, which may import its driver unguarded."""
    module = (cause.name or "").partition(".")[0]
    return module if module in DRIVERS else None


@contextmanager
def requires(module: str, needed_by: str) -> Iterator[None]:
    """Around the imports of driver ``module``: an ImportError becomes MissingDriverError.

    ``needed_by`` names the feature for the user ("the PostgreSQL sink"). Any ImportError of
    the block counts, not only a missing top-level module: a driver whose own parts cannot be
    loaded (psycopg without libpq) is fixed by the same install.
    """
    if module not in DRIVERS:
        raise ValueError(f"{module} is not a driver of {DISTRIBUTION}: add it to DRIVERS")
    try:
        yield
    except ImportError as exc:
        raise missing_driver(module, needed_by, exc) from exc
