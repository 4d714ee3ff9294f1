"""``streams.faust.install`` in a user's own Faust app: examples/faust_app.py, run as its
README says, processes events, answers the query route and runs its own agent and page."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import orjson
import pytest

from streams.testing import produce_events, wait_until
from tests.test_faust.test_engine import answers, fetch
from tests.test_processor.cluster import caught_up, free_port, settings_env

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "faust_app.py"
T0 = 1_700_000_000


def test_the_example_app_mounts_the_processor_beside_its_own_agent(streams_settings, tmp_path):
    # The example's app id is its consumer group.
    settings = streams_settings(group_id="my-profiles-app", data_dir=tmp_path / "data")
    port = free_port()
    env = settings_env(settings) | {"STREAMS_WEB_PORT": str(port)}
    env["PYTHONPATH"] = str(EXAMPLE.parents[1])
    log = tmp_path / "app.log"
    with log.open("wb") as out:
        app = subprocess.Popen(
            [sys.executable, str(EXAMPLE), "worker", "-l", "info"],
            env=env,
            stdout=out,
            stderr=out,
            cwd=tmp_path,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: app.poll() is not None or answers(url), timeout=90)
        assert app.poll() is None, "the app stopped"
        produce_events(
            settings,
            [
                {
                    "customer_id": "c-1",
                    "source": "crm",
                    "update_timestamp": T0 + 10,
                    "properties": {"first_name": "Marian"},
                },
                {
                    "customer_id": "c-1",
                    "source": "web",
                    "update_timestamp": T0 + 20,
                    "properties": {"city": "Brno"},
                },
                {
                    "customer_id": "c-1",
                    "source": "web",
                    "update_timestamp": T0,
                    "properties": {"city": "Praha"},
                },
            ],
        )
        wait_until(lambda: caught_up(settings), timeout=120)
        assert fetch(f"{url}/customers/c-1") == (
            200,
            {"properties": {"city": "Brno", "first_name": "Marian"}},
        )

        def counts() -> dict[str, object]:
            with urllib.request.urlopen(f"{url}/my/counts", timeout=10) as response:
                answer: dict[str, object] = orjson.loads(response.read())
                return answer

        wait_until(lambda: counts()["upserts_by_source"] == {"crm": 1, "web": 1}, timeout=60)
        assert counts()["processor"] == {"events_in": 3, "applied": 2}
    finally:
        app.terminate()
        code = app.wait(60)
        assert code == 0, log.read_text()[-3000:]


def test_install_refuses_missing_topics_it_may_not_create_naming_them(kafka_bootstrap, tmp_path):
    import faust

    from streams.errors import StreamsError
    from streams.faust import app_config, install
    from streams.settings import Settings

    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        input_topic="never-created-input",
        data_dir=tmp_path,
        web_port=free_port(),
    )
    app = faust.App("install-test", **app_config(settings))
    with pytest.raises(StreamsError, match="never-created-input"):
        install(app, settings, create_topics=False)
    assert not app.agents, "nothing is added to an app whose topics are wrong"
