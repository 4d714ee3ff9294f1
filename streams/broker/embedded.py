"""A single-node Apache Kafka (KRaft) broker run as a child ``java`` process."""

from __future__ import annotations

import atexit
import base64
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack, suppress
from pathlib import Path
from types import FrameType, TracebackType
from typing import Self

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from streams.broker.jars import (
    COMPLETE_MARKER,
    JAVA,
    BrokerUnavailableError,
    default_libs_dir,
    ensure_jars,
    kafka_version,
    last_lines,
)
from streams.broker.watchdog import Watchdog
from streams.errors import BrokerError

logger = logging.getLogger(__name__)

NODE_ID = 1
WILDCARD_HOST = "0.0.0.0"
LOOPBACK_HOST = "127.0.0.1"

DEFAULT_HEAP = "1g"
DEFAULT_START_TIMEOUT = 60.0
DEFAULT_STOP_TIMEOUT = 20.0
DEFAULT_PROBE_TIMEOUT = 5.0
DEFAULT_POLL_INTERVAL = 0.1
ATEXIT_STOP_TIMEOUT = 10.0
LOG_TAIL_LINES = 40
LOG_TAIL_BYTES = 64 * 1024

_HEAP_PATTERN = re.compile(r"[0-9]+[kKmMgG]?")
_LISTEN_PATTERN = re.compile(r"(?P<host>[A-Za-z0-9._-]+):(?P<port>[0-9]{1,5})")
_MAX_PORT = 65535

# WARN keeps the log readable; KafkaRaftServer at INFO still records start and stop.
LOG4J_PROPERTIES = """\
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaRaftServer=INFO
"""


def parse_listen(listen: str) -> tuple[str, int]:
    """Split ``HOST:PORT``; port 0 means any free port."""
    match = _LISTEN_PATTERN.fullmatch(listen.strip())
    if match is None or int(match.group("port")) > _MAX_PORT:
        raise BrokerError(f"--listen must be HOST:PORT (e.g. 127.0.0.1:9092), got {listen!r}")
    return match.group("host"), int(match.group("port"))


class EmbeddedKafka:
    """One KRaft node (broker and controller) in a child JVM; use it as a context manager."""

    def __init__(
        self,
        *,
        host: str = LOOPBACK_HOST,
        port: int = 0,
        controller_port: int = 0,
        data_dir: Path | None = None,
        libs_dir: Path | None = None,
        heap: str = DEFAULT_HEAP,
        log_path: Path | None = None,
    ) -> None:
        if not _HEAP_PATTERN.fullmatch(heap):
            raise BrokerError(f"heap must look like 512m or 1g, got {heap!r}")
        if port and port == controller_port:
            raise BrokerError(f"port and controller_port must differ, both are {port}")
        self.host = host
        # Clients and the controller quorum cannot connect to the wildcard address.
        self.connect_host = LOOPBACK_HOST if host == WILDCARD_HOST else host
        self.port, self.controller_port = _resolve_ports(self.connect_host, port, controller_port)
        self.heap = heap
        self._requested_data_dir = data_dir.resolve() if data_dir is not None else None
        self._data_dir: Path | None = self._requested_data_dir
        self._owns_data_dir = False
        self._libs_dir = libs_dir
        self._requested_log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._watchdog: Watchdog | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.connect_host}:{self.port}"

    @property
    def data_dir(self) -> Path:
        if self._data_dir is None:
            raise BrokerError("the broker has no data directory until start()")
        return self._data_dir

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "kafka-logs"

    @property
    def log_path(self) -> Path:
        if self._requested_log_path is not None:
            return self._requested_log_path
        return self.data_dir / "kafka.log"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = DEFAULT_START_TIMEOUT) -> None:
        """Format storage if needed, launch the JVM and wait until it answers metadata."""
        if self.is_running():
            raise BrokerError(f"the broker on {self.bootstrap_servers} is already running")
        java = shutil.which(JAVA)
        if java is None:
            raise BrokerUnavailableError("java not found on PATH: install Java 17+")
        libs = (self._libs_dir if self._libs_dir is not None else default_libs_dir()).resolve()
        if not (libs / COMPLETE_MARKER).is_file():
            raise BrokerUnavailableError(f"the Kafka jars are not in {libs}: run `make kafka-jars`")
        classpath = str(libs / "*")
        started = time.monotonic()
        deadline = started + timeout
        try:
            # It cleans up after this process if it dies without stop(), SIGKILL included.
            self._watchdog = watchdog = Watchdog(grace=ATEXIT_STOP_TIMEOUT)
            self._prepare_data_dir(watchdog)
            self._format_storage(java, classpath, deadline, watchdog)
            self._launch(java, classpath, watchdog)
            self._wait_ready(deadline, timeout)
        except BaseException:
            # Never leave a half-started JVM or a stray temporary directory behind.
            self.stop()
            raise
        logger.info(
            "Kafka (KRaft) ready on %s after %.1f s (data %s)",
            self.bootstrap_servers,
            time.monotonic() - started,
            self.data_dir,
        )

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """SIGTERM the JVM (SIGKILL after ``timeout``); drop the data dir if it is ours."""
        atexit.unregister(self._stop_at_exit)
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("Kafka did not stop within %.0f s; killing it", timeout)
                _signal_group(process, signal.SIGKILL)
                process.wait()
        if self._owns_data_dir and self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = self._requested_data_dir
            self._owns_data_dir = False
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.release()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of the broker's console log (empty when there is none yet)."""
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - LOG_TAIL_BYTES))
                text = handle.read().decode("utf-8", errors="replace")
        except (OSError, BrokerError):
            return ""
        return last_lines(text, lines)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _prepare_data_dir(self, watchdog: Watchdog) -> None:
        if self._data_dir is None:
            self._data_dir = Path(tempfile.mkdtemp(prefix="streams-kafka-"))
            self._owns_data_dir = True
            watchdog.guard_dir(self._data_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "log4j.properties").write_text(LOG4J_PROPERTIES, encoding="utf-8")
        (self.data_dir / "server.properties").write_text(
            "".join(f"{key}={value}\n" for key, value in self._server_properties().items()),
            encoding="utf-8",
        )

    def _server_properties(self) -> dict[str, str]:
        advertised = socket.gethostname() if self.host == WILDCARD_HOST else self.host
        controller = f"{self.connect_host}:{self.controller_port}"
        return {
            "process.roles": "broker,controller",
            "node.id": str(NODE_ID),
            "controller.quorum.voters": f"{NODE_ID}@{controller}",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{controller}",
            "advertised.listeners": f"PLAINTEXT://{advertised}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.log_dir),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            # A partition's index files are sparse and memory-mapped: a first write faults in
            # the device's whole readahead window of zeroes (8 MiB on some VMs), twice per
            # partition, again whenever the page cache drops them. 1 MiB bounds it; a segment
            # still takes over 300 MiB of records before its indexes are full.
            "log.index.size.max.bytes": "1048576",
        }

    def _java_command(self, java: str, classpath: str, main_class: str) -> list[str]:
        log4j = (self.data_dir / "log4j.properties").as_uri()
        return [java, "-cp", classpath, f"-Dlog4j.configuration={log4j}", main_class]

    def _format_storage(
        self, java: str, classpath: str, deadline: float, watchdog: Watchdog
    ) -> None:
        # A formatted log dir holds the cluster id; reformatting would refuse or wipe it.
        if (self.log_dir / "meta.properties").exists():
            logger.debug("%s is already formatted; keeping its data", self.log_dir)
            return
        command = [
            *self._java_command(java, classpath, "kafka.tools.StorageTool"),
            "format",
            "-t",
            _cluster_id(),
            "-c",
            str(self.data_dir / "server.properties"),
        ]
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=self.data_dir
        ) as formatter:
            watchdog.guard_process(formatter.pid)
            try:
                output, _ = formatter.communicate(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired as exc:
                formatter.kill()
                raise BrokerError(f"formatting {self.log_dir} timed out") from exc
        # Its pid is free for reuse now: the watchdog must not signal it any more.
        watchdog.forget_process(formatter.pid)
        if formatter.returncode != 0:
            output = last_lines(output, LOG_TAIL_LINES)
            raise BrokerError(f"formatting {self.log_dir} failed:\n{output}")

    def _launch(self, java: str, classpath: str, watchdog: Watchdog) -> None:
        command = self._java_command(java, classpath, "kafka.Kafka")
        # Heap and OOM flags go before the main class; the properties file is its argument.
        command[1:1] = [
            f"-Xmx{self.heap}",
            "-Djava.awt.headless=true",
            "-XX:+ExitOnOutOfMemoryError",
        ]
        command.append(str(self.data_dir / "server.properties"))
        with self.log_path.open("ab") as log_file:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,
            )
        watchdog.guard_process(self._process.pid)
        atexit.register(self._stop_at_exit)
        logger.debug("launched Kafka pid %d: %s", self._process.pid, " ".join(command))

    def _wait_ready(self, deadline: float, timeout: float) -> None:
        # Another broker already on the port would answer too; only our cluster id counts.
        cluster_id = _stored_cluster_id(self.log_dir / "meta.properties")
        admin: AdminClient | None = None
        while True:
            process = self._process
            if process is None or process.poll() is not None:
                code = process.returncode if process is not None else None
                raise BrokerError(
                    f"Kafka exited with code {code} while starting; "
                    f"end of {self.log_path}:\n{self.log_tail()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrokerError(
                    f"Kafka did not answer on {self.bootstrap_servers} within {timeout:.0f} s; "
                    f"end of {self.log_path}:\n{self.log_tail()}"
                )
            probe_timeout = min(remaining, DEFAULT_PROBE_TIMEOUT)
            # Wait for the port first so librdkafka does not log connection refusals.
            if admin is None and _accepts(self.connect_host, self.port, probe_timeout):
                # librdkafka's own logs go to Python logging instead of stderr.
                admin = AdminClient({"bootstrap.servers": self.bootstrap_servers}, logger=logger)
            if admin is not None and _answers_metadata(admin, cluster_id, probe_timeout):
                return
            time.sleep(DEFAULT_POLL_INTERVAL)

    def _stop_at_exit(self) -> None:
        with suppress(Exception):
            self.stop(timeout=ATEXIT_STOP_TIMEOUT)


def run_foreground(listen: str, data_dir: Path | None) -> int:
    """``streams broker``: serve until SIGINT or SIGTERM, then stop the JVM cleanly."""
    host, port = parse_listen(listen)
    libs = ensure_jars()
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    # Handlers go in before start so Ctrl-C during startup still stops the JVM.
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with EmbeddedKafka(host=host, port=port, data_dir=data_dir, libs_dir=libs) as broker:
            if stop_requested.is_set():
                return 0
            print(
                f"Kafka {kafka_version()} (KRaft) listening on {broker.bootstrap_servers}; "
                "Ctrl-C stops",
                flush=True,
            )
            while not stop_requested.wait(DEFAULT_POLL_INTERVAL):
                if not broker.is_running():
                    raise BrokerError(
                        f"Kafka exited unexpectedly; end of its log:\n{broker.log_tail()}"
                    )
            logger.info("stopping Kafka on %s", broker.bootstrap_servers)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _resolve_ports(host: str, port: int, controller_port: int) -> tuple[int, int]:
    """Fill in zero ports with distinct free ones."""
    ports = [port, controller_port]
    # Holding every probe socket open until the end keeps the kernel from repeating a port.
    with ExitStack() as stack:
        for index in range(len(ports)):
            while ports[index] == 0:
                probe = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                probe.bind((host, 0))
                candidate = int(probe.getsockname()[1])
                if candidate not in ports:
                    ports[index] = candidate
    return ports[0], ports[1]


def _accepts(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _answers_metadata(admin: AdminClient, cluster_id: str | None, timeout: float) -> bool:
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException:
        return False
    return bool(metadata.brokers) and (cluster_id is None or metadata.cluster_id == cluster_id)


def _stored_cluster_id(meta_properties: Path) -> str | None:
    try:
        lines = meta_properties.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() == "cluster.id":
            return value.strip()
    return None


def _signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    # The JVM leads its own session, so its process group id is its pid.
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def _cluster_id() -> str:
    # Kafka's own Uuid.randomUuid() skips ids starting with "-": they look like CLI flags.
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not text.startswith("-"):
            return text
