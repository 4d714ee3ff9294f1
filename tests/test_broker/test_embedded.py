"""The embedded KRaft broker: reachable, round trips a record, keeps data across restarts, and
never outlives the process that started it (SIGKILL included)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from streams.broker.embedded import EmbeddedKafka, parse_listen, run_foreground
from streams.errors import BrokerError
from streams.testing import wait_until
from tests.test_broker.processes import (
    accepts,
    children_mentioning,
    free_port,
    kill_all,
    kill_hard,
    processes_mentioning,
    running,
)

TIMEOUT = 30.0
SMALL_HEAP = "512m"
# From the owner's SIGKILL until its JVM, port and temporary directory are gone.
ORPHAN_TIMEOUT = 20.0
WATCHDOG_SCRIPT = "watchdog.py"
needs_proc = pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads /proc")

# A program embedding the broker through the library, killed by the tests below.
LIBRARY_OWNER = """
import sys, time
from pathlib import Path
from streams.broker.embedded import EmbeddedKafka
libs, port, data_dir = sys.argv[1:]
broker = EmbeddedKafka(
    port=int(port), libs_dir=Path(libs), heap="512m", data_dir=Path(data_dir) if data_dir else None
)
broker.start()
print("ready on", broker.bootstrap_servers, flush=True)
time.sleep(600)
"""


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _create_topic(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    futures[topic].result(timeout=TIMEOUT)


def _produce(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, key=key, value=value)
    assert producer.flush(TIMEOUT) == 0


def _consume_one(bootstrap: str, topic: str) -> Message:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": _unique("test-embedded"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([topic])
        message = consumer.poll(TIMEOUT)
    finally:
        consumer.close()
    assert message is not None, f"nothing consumed from {topic} within {TIMEOUT} s"
    error = message.error()
    assert error is None or error.code() == KafkaError.NO_ERROR, error
    return message


def test_broker_is_reachable(kafka_bootstrap: str) -> None:
    metadata = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=TIMEOUT)

    assert metadata.brokers


def test_produce_then_consume_round_trip(kafka_bootstrap: str) -> None:
    topic = _unique("round-trip")
    _create_topic(kafka_bootstrap, topic)

    _produce(kafka_bootstrap, topic, b"customer-1", b"hello")
    message = _consume_one(kafka_bootstrap, topic)

    assert (message.key(), message.value()) == (b"customer-1", b"hello")


def test_restart_on_same_data_dir_keeps_topic_and_record(
    kafka_libs_dir: Path, tmp_path: Path
) -> None:
    topic = _unique("restart")
    data_dir = tmp_path / "kafka"
    # The session's broker has its own watchdog.
    watchdogs = set(children_mentioning(WATCHDOG_SCRIPT, os.getpid()))

    with EmbeddedKafka(data_dir=data_dir, libs_dir=kafka_libs_dir, heap=SMALL_HEAP) as broker:
        first_pid = broker.pid
        assert len(set(children_mentioning(WATCHDOG_SCRIPT, os.getpid())) - watchdogs) == 1
        _create_topic(broker.bootstrap_servers, topic)
        _produce(broker.bootstrap_servers, topic, b"k", b"kept")
    assert first_pid is not None
    # A clean stop releases the watchdog, and it leaves the data directory alone.
    assert set(children_mentioning(WATCHDOG_SCRIPT, os.getpid())) == watchdogs
    with pytest.raises(ProcessLookupError):
        os.kill(first_pid, 0)
    with EmbeddedKafka(data_dir=data_dir, libs_dir=kafka_libs_dir, heap=SMALL_HEAP) as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        assert topic in admin.list_topics(timeout=TIMEOUT).topics
        message = _consume_one(broker.bootstrap_servers, topic)

    assert message.value() == b"kept"


def test_index_files_are_capped_at_one_mib(kafka_libs_dir: Path, tmp_path: Path) -> None:
    # Kafka's 10 MiB default makes the first write to each sparse, mapped index fault in the
    # device's whole readahead window of zeroes.
    topic = _unique("index")
    with EmbeddedKafka(
        data_dir=tmp_path / "kafka", libs_dir=kafka_libs_dir, heap=SMALL_HEAP
    ) as broker:
        _create_topic(broker.bootstrap_servers, topic)
        _produce(broker.bootstrap_servers, topic, b"k", b"v")
        indexes = sorted((broker.log_dir / f"{topic}-0").glob("*index"))

        assert [path.suffix for path in indexes] == [".index", ".timeindex"]
        # The time index is trimmed to a whole number of its 12-byte entries.
        assert [path.stat().st_size for path in indexes] == [1 << 20, (1 << 20) // 12 * 12]


def test_jvm_exit_during_start_fails_fast_with_the_log_tail(
    kafka_libs_dir: Path, tmp_path: Path
) -> None:
    # A log dir claimed by another node id makes Kafka exit right after reading its config.
    log_dir = tmp_path / "kafka" / "kafka-logs"
    log_dir.mkdir(parents=True)
    (log_dir / "meta.properties").write_text(
        "version=1\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\nnode.id=2\n", encoding="utf-8"
    )
    broker = EmbeddedKafka(data_dir=tmp_path / "kafka", libs_dir=kafka_libs_dir, heap=SMALL_HEAP)

    with pytest.raises(BrokerError, match="exited with code 1") as caught:
        broker.start(timeout=TIMEOUT)

    assert "Stored node id 2" in str(caught.value)
    assert not broker.is_running()


@pytest.mark.skipif(shutil.which("java") is None, reason="needs java")
def test_failed_start_removes_its_temporary_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A libs dir marked complete but empty makes the storage formatter fail at once.
    libs = tmp_path / "libs"
    libs.mkdir()
    (libs / ".complete").touch()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    with pytest.raises(BrokerError, match="formatting"):
        EmbeddedKafka(libs_dir=libs).start()

    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize(
    "listen",
    ["9092", "localhost", "localhost:", ":9092", "localhost:port", "localhost:70000", "::1:9092"],
)
def test_malformed_listen_raises(listen: str) -> None:
    with pytest.raises(BrokerError, match="HOST:PORT"):
        run_foreground(listen, None)


def test_listen_is_split_into_host_and_port() -> None:
    assert parse_listen("127.0.0.1:29092") == ("127.0.0.1", 29092)


def _owner_env(tmp_path: Path, kafka_libs_dir: Path) -> dict[str, str]:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    # The owner's temporary data directory lands in scratch, which names its JVM's command line.
    return {**os.environ, "TMPDIR": str(scratch), "STREAMS_KAFKA_LIBS_DIR": str(kafka_libs_dir)}


def _start_owner(command: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.Popen[str]:
    owner = subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "owner.err").open("w"),
        text=True,
    )
    assert owner.stdout is not None
    for line in owner.stdout:
        if "ready on" in line or "listening on" in line:
            return owner
    owner.wait(TIMEOUT)
    raise AssertionError(f"the broker did not start:\n{(tmp_path / 'owner.err').read_text()}")


def _kill_owner_and_expect_no_broker_left(
    owner: subprocess.Popen[str], marker: Path, port: int, tmp_path: Path
) -> None:
    jvms = processes_mentioning(str(marker))
    try:
        assert len(jvms) == 1, jvms
        assert accepts(port)

        kill_hard(owner)

        wait_until(lambda: not any(map(running, jvms)), timeout=ORPHAN_TIMEOUT)
        wait_until(lambda: not accepts(port), timeout=ORPHAN_TIMEOUT)
        said = tmp_path / "owner.err"
        wait_until(lambda: "without stopping its broker" in said.read_text(), timeout=TIMEOUT)
    finally:
        if owner.poll() is None:
            kill_hard(owner)
        kill_all([pid for pid in jvms if running(pid)])


@needs_proc
@pytest.mark.slow
def test_sigkilled_streams_broker_leaves_no_jvm_port_or_temp_dir(
    kafka_libs_dir: Path, tmp_path: Path
) -> None:
    env = _owner_env(tmp_path, kafka_libs_dir)
    port = free_port()
    owner = _start_owner(
        [sys.executable, "-m", "streams.cli.main", "broker", "--listen", f"127.0.0.1:{port}"],
        env,
        tmp_path,
    )

    _kill_owner_and_expect_no_broker_left(owner, Path(env["TMPDIR"]), port, tmp_path)

    wait_until(lambda: not any(Path(env["TMPDIR"]).iterdir()), timeout=ORPHAN_TIMEOUT)


@needs_proc
@pytest.mark.slow
@pytest.mark.parametrize("own_data_dir", [False, True], ids=["temp-dir", "given-dir"])
def test_sigkilled_program_embedding_the_broker_leaves_no_jvm(
    kafka_libs_dir: Path, tmp_path: Path, own_data_dir: bool
) -> None:
    env = _owner_env(tmp_path, kafka_libs_dir)
    data_dir = tmp_path / "kafka" if own_data_dir else None
    port = free_port()
    owner = _start_owner(
        [sys.executable, "-c", LIBRARY_OWNER, str(kafka_libs_dir), str(port), str(data_dir or "")],
        env,
        tmp_path,
    )

    _kill_owner_and_expect_no_broker_left(owner, data_dir or Path(env["TMPDIR"]), port, tmp_path)

    if data_dir is None:
        wait_until(lambda: not any(Path(env["TMPDIR"]).iterdir()), timeout=ORPHAN_TIMEOUT)
    else:
        # A directory the caller chose keeps its data for the next start.
        assert (data_dir / "kafka-logs" / "meta.properties").is_file()
