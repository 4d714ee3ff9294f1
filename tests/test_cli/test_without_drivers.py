"""Without any driver installed the command line starts, and the modules every command imports
import no driver. Each check runs in a fresh interpreter whose import system refuses the
drivers (and the clients under them) and records every attempt to import one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 120
# Top-level modules of the extras: the drivers and the clients they are built on.
BLOCKED = ("psycopg", "psycopg_binary", "httpx", "aio_pika", "aiormq", "faust", "aiokafka", "mode")

PRELUDE = f"""
import importlib.abc
import json
import sys

BLOCKED = {BLOCKED!r}
attempts = []


class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            attempts.append(name)
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, Refuse())
"""


def run_without_drivers(code: str) -> subprocess.CompletedProcess[str]:
    # The checkout's package, not an installed one; no STREAMS_* or KAFKA_* of the developer.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMS_", "KAFKA_"))}
    return subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code)],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )


def test_the_modules_every_command_imports_import_no_driver():
    result = run_without_drivers(
        """
        import streams.bootstrap
        import streams.cli.main
        import streams.connect.runner
        import streams.connect.worker
        import streams.demo
        import streams.export
        import streams.ingest.serve
        import streams.processor.runner
        import streams.processor.worker
        import streams.web.app

        print(json.dumps(attempts))
        """
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_streams_help_works_without_drivers():
    result = run_without_drivers(
        """
        from streams.cli.main import main

        codes = []
        for args in ([], ["connect"], ["bootstrap"], ["serve"], ["ingest", "amqp"]):
            sys.argv = ["streams", *args, "--help"]
            try:
                main()
            except SystemExit as exc:
                codes.append(exc.code)
        print(json.dumps({"codes": codes, "attempts": attempts}), file=sys.stderr)
        """
    )
    seen = json.loads(result.stderr.splitlines()[-1])
    assert seen == {"codes": [0] * 5, "attempts": []}, result.stderr
    assert "Usage: streams" in result.stdout


def test_a_command_needing_a_missing_driver_says_what_to_install():
    result = run_without_drivers(
        """
        from streams.cli.main import main

        sys.argv = ["streams", "ingest", "amqp", "--queue", "q"]
        main()
        """
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert lines == [
        "error: the AMQP source needs aio-pika (No module named 'aio_pika'): "
        "pip install 'profile-streams[amqp]'"
    ], result.stderr


def test_the_rest_sink_and_webhooks_without_httpx_name_the_rest_extra():
    result = run_without_drivers(
        """
        from streams.connect.config import ConnectorConfig, build_sink
        from streams.errors import ConfigError
        from streams.ingest.serve import load_factory
        from streams.settings import Settings

        messages = []
        try:
            build_sink(ConnectorConfig(name="crm", type="rest", sink={}), Settings())
        except ConfigError as exc:
            messages.append(str(exc))
        try:
            load_factory("webhooks")
        except ConfigError as exc:
            messages.append(str(exc))
        print(json.dumps(messages))
        """
    )
    assert result.returncode == 0, result.stderr
    messages = json.loads(result.stdout)
    assert len(messages) == 2, messages
    for message in messages:
        assert "needs httpx (No module named 'httpx')" in message
        assert message.endswith(": pip install 'profile-streams[rest]'")
