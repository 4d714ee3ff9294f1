"""The embedded broker's jars: the Kafka version pinned in ``broker/pom.xml``, fetched once
from Maven Central with ``mvn``."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

from streams.errors import BrokerError

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
POM_PATH = REPO_ROOT / "broker" / "pom.xml"
LIBS_DIR_ENV = "STREAMS_KAFKA_LIBS_DIR"
COMPLETE_MARKER = ".complete"
JAVA = "java"
MAVEN = "mvn"
DEFAULT_MAVEN_TIMEOUT = 1800.0
LOG_TAIL_LINES = 40

_VERSION_PATTERN = re.compile(r"<kafka\.version>\s*([^<\s]+)\s*</kafka\.version>")


class BrokerUnavailableError(BrokerError):
    """A prerequisite of the embedded broker (java, mvn or the jars) is missing."""


def kafka_version(pom_path: Path = POM_PATH) -> str:
    """The Kafka version pinned by ``<kafka.version>`` in ``broker/pom.xml``."""
    try:
        text = pom_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BrokerUnavailableError(f"cannot read the Kafka version from {pom_path}") from exc
    match = _VERSION_PATTERN.search(text)
    if match is None:
        raise BrokerUnavailableError(f"no <kafka.version> in {pom_path}")
    return match.group(1)


def default_libs_dir() -> Path:
    """Where the Kafka jars live: ``$STREAMS_KAFKA_LIBS_DIR`` or ``.cache/kafka/<version>/libs``."""
    override = os.environ.get(LIBS_DIR_ENV)
    if override:
        return Path(override).expanduser().resolve()
    return REPO_ROOT / ".cache" / "kafka" / kafka_version() / "libs"


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
