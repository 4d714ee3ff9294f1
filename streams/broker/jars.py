"""The embedded broker's jars: the Kafka version pinned in the pom that ships beside this module
(``streams/broker/pom.xml``), fetched once from Maven Central with ``mvn``.

The jars go to ``$STREAMS_KAFKA_LIBS_DIR``; else, in a checkout, to its
``.cache/kafka/<version>/libs`` (where ``make kafka-jars`` puts them); else, for an installed
package, to ``$XDG_CACHE_HOME/profile-streams/kafka/<version>/libs`` (``~/.cache`` without it)."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

from streams.errors import BrokerError

logger = logging.getLogger(__name__)

POM_PATH = Path(__file__).resolve().with_name("pom.xml")
# The checkout when the package runs from one; an installed package's parent is site-packages.
REPO_ROOT = Path(__file__).resolve().parents[2]
LIBS_DIR_ENV = "STREAMS_KAFKA_LIBS_DIR"
CACHE_HOME_ENV = "XDG_CACHE_HOME"
USER_CACHE_NAME = "profile-streams"
COMPLETE_MARKER = ".complete"
JAVA = "java"
MAVEN = "mvn"
DEFAULT_MAVEN_TIMEOUT = 1800.0
LOG_TAIL_LINES = 40

_VERSION_PATTERN = re.compile(r"<kafka\.version>\s*([^<\s]+)\s*</kafka\.version>")


class BrokerUnavailableError(BrokerError):
    """A prerequisite of the embedded broker (java, mvn or the jars) is missing."""


def kafka_version(pom_path: Path = POM_PATH) -> str:
    """The Kafka version pinned by ``<kafka.version>`` in the packaged ``pom.xml``."""
    try:
        text = pom_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BrokerUnavailableError(f"cannot read the Kafka version from {pom_path}") from exc
    match = _VERSION_PATTERN.search(text)
    if match is None:
        raise BrokerUnavailableError(f"no <kafka.version> in {pom_path}")
    return match.group(1)


def default_libs_dir() -> Path:
    """Where the Kafka jars live: ``$STREAMS_KAFKA_LIBS_DIR``, else the checkout's
    ``.cache/kafka/<version>/libs``, else ``<user cache>/kafka/<version>/libs``."""
    override = os.environ.get(LIBS_DIR_ENV)
    if override:
        return Path(override).expanduser().resolve()
    cache = REPO_ROOT / ".cache" if is_checkout(REPO_ROOT) else user_cache_dir()
    return cache / "kafka" / kafka_version() / "libs"


def is_checkout(root: Path) -> bool:
    """Whether ``root`` is the project's source tree (not the site-packages of an install)."""
    return (root / "pyproject.toml").is_file()


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/profile-streams``, else ``~/.cache/profile-streams``."""
    configured = os.environ.get(CACHE_HOME_ENV)
    # The XDG spec says to ignore a relative path.
    if configured and Path(configured).is_absolute():
        return Path(configured) / USER_CACHE_NAME
    return Path.home() / ".cache" / USER_CACHE_NAME


def ensure_jars(libs_dir: Path | None = None, *, timeout: float = DEFAULT_MAVEN_TIMEOUT) -> Path:
    """Fetch the broker's jars with Maven unless ``<libs>/.complete`` says they are there."""
    libs = (libs_dir if libs_dir is not None else default_libs_dir()).resolve()
    if (libs / COMPLETE_MARKER).is_file():
        return libs
    missing = [tool for tool in (JAVA, MAVEN) if shutil.which(tool) is None]
    if missing:
        raise BrokerUnavailableError(
            f"the Kafka jars are not in {libs} and fetching them needs "
            f"{' and '.join(missing)} on PATH (install Java 17+ and Maven, then `make kafka-jars`)"
        )
    version = kafka_version()
    libs.mkdir(parents=True, exist_ok=True)
    command = [
        MAVEN,
        "-q",
        "-B",
        "-f",
        str(POM_PATH),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={libs}",
    ]
    logger.info("fetching the Kafka %s jars into %s", version, libs)
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BrokerUnavailableError(
            f"mvn did not fetch the Kafka jars within {timeout:.0f} s"
        ) from exc
    except OSError as exc:
        raise BrokerUnavailableError(f"cannot run mvn: {exc}") from exc
    if result.returncode != 0:
        output = last_lines(result.stdout + result.stderr, LOG_TAIL_LINES)
        raise BrokerUnavailableError(
            f"mvn failed (exit {result.returncode}) fetching the Kafka jars:\n{output}"
        )
    (libs / COMPLETE_MARKER).touch()
    return libs


def last_lines(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])
