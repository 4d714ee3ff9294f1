"""The built wheel installed into a fresh virtualenv and used from outside the repository.

The virtualenv gets the wheel and its dependencies from the configured package index (pip's
cache makes a repeat quick), without extras: nothing tested here needs a driver, and a command
that does says which extra to install. Every command runs in a directory outside the checkout
with no PYTHONPATH, so only the installed package can answer: its Avro schemas, its broker
pom, the ``streams`` command, and the embedded broker fetching its jars into the user cache
directory.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.test_deploy.wheel_build import BUILD_TIMEOUT_S, ROOT, unavailable

PIP_TIMEOUT_S = 600
BROKER_START_TIMEOUT_S = 300  # the first start fetches the jars with Maven
COMMAND_TIMEOUT_S = 120
STOP_TIMEOUT_S = 60
# Settings and paths of the checkout or the test session that must not reach the fresh install.
LEAKING_ENV = (
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
    "STREAMS_SCHEMAS_DIR",
    "STREAMS_KAFKA_LIBS_DIR",
    "KAFKA_BOOTSTRAP_SERVERS",
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(BUILD_TIMEOUT_S + PIP_TIMEOUT_S + 600)]


@dataclass(frozen=True, slots=True)
class Install:
    venv: Path
    outside: Path  # a working directory outside the checkout
    env: dict[str, str]

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    @property
    def streams(self) -> str:
        return str(self.venv / "bin" / "streams")

    def run(self, *args: str, timeout: float = COMMAND_TIMEOUT_S) -> str:
        result = subprocess.run(
            list(args),
            cwd=self.outside,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def probe(self, code: str) -> str:
        return self.run(self.python, "-c", textwrap.dedent(code))


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Install:
    root = tmp_path_factory.mktemp("installed")
    if root.resolve().is_relative_to(ROOT):
        pytest.fail(f"the temporary directory {root} is inside the checkout", pytrace=False)
    venv = root / "venv"
    outside = root / "work"
    outside.mkdir()
    env = {name: value for name, value in os.environ.items() if name not in LEAKING_ENV}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    env["XDG_CACHE_HOME"] = str(root / "cache")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=COMMAND_TIMEOUT_S)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    result = subprocess.run(
        [*pip, "--quiet", str(wheel)],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT_S,
    )
    assert result.returncode == 0, f"pip install of {wheel.name} failed:\n{result.stderr[-4000:]}"
    return Install(venv=venv, outside=outside, env=env)


def test_the_installed_package_reads_its_own_schemas_and_pom(installed: Install) -> None:
    output = installed.probe(
        """
        import json
        import streams
        from streams.broker.jars import POM_PATH, default_libs_dir, kafka_version
        from streams.codecs.avro import schemas_dir
        from streams.codecs.upserts import UpsertCodec
        from streams.model import Op, PropertyState, Upsert

        codec = UpsertCodec("avro")
        upsert = Upsert(
            customer_id="c-1",
            op=Op.UPSERT,
            properties={"email_status": PropertyState("single_opt_in", 1763800001000, "crm")},
            deleted_at=None,
            source="crm",
            event_id="crm-1",
            processed_at=1763800002000,
        )
        wire = codec.encode(upsert)
        print(json.dumps({
            "package": streams.__file__,
            "schemas": str(schemas_dir()),
            "pom": str(POM_PATH),
            "kafka": kafka_version(),
            "libs": str(default_libs_dir()),
            "avro": wire[:2].hex(),
            "round_trip": codec.decode(wire) == upsert,
        }))
        """
    )
    seen = json.loads(output)
    package = Path(seen["package"]).parent
    assert package.is_relative_to(installed.venv)
    assert Path(seen["schemas"]) == package / "schemas"
    assert Path(seen["pom"]) == package / "broker" / "pom.xml"
    assert seen["avro"] == "c301"  # the single-object encoding's marker
    assert seen["round_trip"] is True
    cache = Path(installed.env["XDG_CACHE_HOME"])
    assert Path(seen["libs"]) == cache / "profile-streams" / "kafka" / seen["kafka"] / "libs"


def test_the_streams_command_runs(installed: Install) -> None:
    output = installed.run(installed.streams, "--help")
    for command in ("broker", "worker", "topics", "serve"):
        assert command in output


def test_the_installed_package_has_no_driver_and_names_the_extras(installed: Install) -> None:
    output = installed.probe(
        """
        import importlib.metadata
        import importlib.util
        import json

        from streams.optional import DRIVERS

        print(json.dumps({
            "installed": [name for name in DRIVERS if importlib.util.find_spec(name)],
            "extras": importlib.metadata.metadata("profile-streams").get_all("Provides-Extra"),
            "needed": sorted({driver.extra for driver in DRIVERS.values()}),
        }))
        """
    )
    seen = json.loads(output)
    assert seen["installed"] == []
    assert set(seen["extras"]) >= {*seen["needed"], "all"}
    result = subprocess.run(
        [installed.streams, "ingest", "amqp", "--queue", "q"],
        cwd=installed.outside,
        env=installed.env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "pip install 'profile-streams[amqp]'" in result.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _stop(process: subprocess.Popen[str] | subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        return process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


@pytest.fixture
def installed_broker(installed: Install, tmp_path: Path) -> Iterator[str]:
    """``streams broker`` of the installed package, its jars fetched into the user cache."""
    for tool in ("java", "mvn"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} not found on PATH (the embedded broker needs Java 17+ and Maven)")
    bootstrap = f"127.0.0.1:{_free_port()}"
    command = [installed.streams, "broker", "--listen", bootstrap]
    process = subprocess.Popen(
        [*command, "--data-dir", str(tmp_path / "kafka")],
        cwd=installed.outside,
        env=installed.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        for line in process.stdout:  # the banner comes once the broker is ready
            lines.append(line)
            if "listening on" in line:
                break
        else:
            pytest.fail(f"streams broker exited before serving:\n{''.join(lines[-40:])}")
        # The pipe stays unread from here on: the broker's logs go to its own file.
        yield bootstrap
    finally:
        assert _stop(process) == 0


@pytest.mark.integration
def test_an_installed_worker_merges_events_end_to_end(
    installed: Install, installed_broker: str, tmp_path: Path
) -> None:
    libs = Path(installed.env["XDG_CACHE_HOME"]) / "profile-streams" / "kafka"
    assert list(libs.glob("*/libs/.complete")), "the jars were not fetched into the user cache"
    env = {**installed.env, "KAFKA_BOOTSTRAP_SERVERS": installed_broker, "STREAMS_PARTITIONS": "1"}
    client = Install(installed.venv, installed.outside, env)
    assert "created" in client.run(client.streams, "topics", "create")
    # The worker decodes JSON and Avro input and writes Avro upserts (the default format).
    worker = subprocess.Popen(
        [client.streams, "worker", "--data-dir", str(tmp_path / "data"), "--web-port", "0"],
        cwd=client.outside,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        output = client.probe(
            """
            import json
            from streams.settings import Settings
            from streams.testing import produce_events, read_upserts, wait_until

            settings = Settings()
            produce_events(settings, [
                {"customer_id": "c-1", "source": "crm", "event_id": "crm-1",
                 "update_timestamp": 1763800001, "properties": {"city": "Praha"}},
                {"customer_id": "c-1", "source": "crm", "event_id": "crm-2",
                 "update_timestamp": 1763800000, "properties": {"city": "Brno", "tier": "gold"}},
            ])
            upserts = []

            def merged():
                upserts[:] = read_upserts(settings)
                return len(upserts) == 2

            wait_until(merged, timeout=90, every=0.5)
            print(json.dumps([
                {name: state.value for name, state in upsert.properties.items()}
                for upsert in upserts
            ]))
            """
        )
    finally:
        assert _stop(worker) == 0
    # The older event's city loses to the newer one; its new property is taken.
    assert json.loads(output) == [{"city": "Praha"}, {"tier": "gold"}]
