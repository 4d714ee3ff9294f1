"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

The compose file is validated against the Compose Specification's JSON schema as vendored by
check-jsonschema (``check_jsonschema/builtin_schemas/vendor/compose-spec.json``, Apache-2.0, from
github.com/compose-spec/compose-spec), after Compose's own ``${VAR:-default}`` interpolation.
The schema cannot see cross-references or this project's invariants, so those are checked too:
the Kafka image matches the embedded broker's version, the worker and the connector scale, every
``STREAMS_*`` variable is a real setting (or a ``${NAME}`` of the config file the service is
given), published ports are this machine's only, Prometheus scrapes every Profile Streams
service on the port it serves, Grafana gets its data source and the dashboard, and the image
runs the ``streams`` console script.
"""

from __future__ import annotations

import fnmatch
import importlib
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

import jsonschema
import pytest
import typer.main
import yaml

from streams.cli.main import app
from streams.codecs.avro import SCHEMAS_DIR_ENV
from streams.settings import Settings
from streams.web.auth import check_exposure
from tests.prerequisites import unavailable
from tests.test_deploy.settings_names import (
    PENDING_SETTINGS,
    config_variables,
    settings_env_names,
)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
POM = ROOT / "streams" / "broker" / "pom.xml"
PYPROJECT = ROOT / "pyproject.toml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA_PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"

SCHEMA_DIST = "check-jsonschema"
SCHEMA_PATH = "check_jsonschema/builtin_schemas/vendor/compose-spec.json"
STREAMS_SERVICES = ("topics", "worker", "serve", "postgres-connector")
# Replicas of these share a consumer group: `docker compose up --scale NAME=N`.
SCALED_SERVICES = ("worker", "postgres-connector")
WEB_PORT = "6066"
SERVE_PORT = "8080"
CONNECTOR_PORT = "6067"  # Settings.connector_web_port's default (INTERFACE.md)
# What Compose refuses to run without (``${NAME:?...}``), as an operator would set it.
REQUIRED_ENV = {
    "STREAMS_API_TOKENS": "compose-test-token",
    "STREAMS_TRACK_API_KEY": "compose-test-track-key",
}

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?err}, ${NAME?err}, ${NAME:+alt}, ${NAME+alt}
_BRACED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")
_BARE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


# ---------------------------------------------------------------- helpers


@cache
def compose_raw() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())  # resolves anchors and `<<:` merge keys
    assert isinstance(data, dict)
    return data


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's variable interpolation, for validating what Compose itself would validate."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def braced(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        current = env.get(name)
        if op == ":-":
            return current if current else arg
        if op == "-":
            return current if current is not None else arg
        if op in (":?", "?") and (current is None or (op == ":?" and not current)):
            raise ValueError(f"Compose refuses to run without ${name}: {arg}")
        if op == ":+":
            return arg if current else ""
        if op == "+":
            return arg if current is not None else ""
        return current or ""

    escaped = value.replace("$$", "\0")
    substituted = _BARE.sub(lambda m: env.get(m.group(1), ""), _BRACED.sub(braced, escaped))
    return substituted.replace("\0", "$")


@cache
def compose() -> dict[str, Any]:
    """The compose file as Compose sees it with only the required variables set (every default
    applies)."""
    result = interpolate(compose_raw(), REQUIRED_ENV)
    assert isinstance(result, dict)
    return result


def service(name: str) -> dict[str, Any]:
    services = compose()["services"]
    assert name in services, f"docker-compose.yml has no service {name!r}"
    svc = services[name]
    assert isinstance(svc, dict)
    return svc


def environment(svc: Mapping[str, Any]) -> dict[str, str | None]:
    """A service's `environment`, list or mapping syntax, as name -> value (None: unset)."""
    env = svc.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.partition("=") for item in env)
        return {name: (value if sep else None) for name, sep, value in pairs}
    return {name: None if value is None else str(value) for name, value in env.items()}


def depends_on(svc: Mapping[str, Any]) -> dict[str, str]:
    deps = svc.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def volume_targets(svc: Mapping[str, Any]) -> Iterator[tuple[str | None, str]]:
    """(source or None for an anonymous volume, target) of every volume of a service."""
    for entry in svc.get("volumes") or []:
        if isinstance(entry, dict):
            yield entry.get("source"), entry["target"]
            continue
        parts = entry.split(":")
        if len(parts) == 1:
            yield None, parts[0]
        else:
            yield parts[0], parts[1]


def bind_mounts(svc: Mapping[str, Any]) -> dict[str, Path]:
    """Target -> the repository file or directory a service mounts there (``./`` sources)."""
    return {
        target: ROOT / source
        for source, target in volume_targets(svc)
        if source is not None and source.startswith("./")
    }


def command_config(svc: Mapping[str, Any]) -> Path | None:
    """The repository file a service's ``--config`` names, through its bind mount."""
    words = [str(word) for word in svc.get("command") or []]
    if "--config" not in words:
        return None
    return bind_mounts(svc)[words[words.index("--config") + 1]]


def published(svc: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(host address, host port, container port) of a service's short-syntax `ports`."""
    entries = []
    for entry in svc.get("ports") or []:
        host_ip, host_port, container_port = str(entry).rsplit(":", 2)
        entries.append((host_ip, host_port, container_port))
    return entries


@cache
def compose_schema() -> dict[str, Any]:
    try:
        dist = metadata.distribution(SCHEMA_DIST)
    except metadata.PackageNotFoundError:
        reason = f"{SCHEMA_DIST} (dev dependency, ships the compose-spec schema) is not installed"
        unavailable("the compose-spec schema", reason)
    # Read the file through the distribution: importing check_jsonschema pulls in its CLI.
    path = Path(str(dist.locate_file(SCHEMA_PATH)))
    schema = json.loads(path.read_text())
    assert isinstance(schema, dict)
    assert schema.get("title") == "Compose Specification"
    return schema


def schema_errors(document: Any) -> list[str]:
    schema = compose_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    ]


@cache
def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "Dockerfile ends inside a continued line"
    return instructions


def dockerfile_final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def dockerfile_exec_form(keyword: str) -> list[str]:
    values = [args for kw, args in dockerfile_final_stage() if kw == keyword]
    assert values, f"the Dockerfile's final stage has no {keyword}"
    parsed = json.loads(values[-1])  # the last one wins
    assert isinstance(parsed, list), f"{keyword} must use the exec (JSON array) form"
    return [str(item) for item in parsed]


def dockerfile_env() -> dict[str, str]:
    return stage_env(dockerfile_final_stage())


def stage_env(instructions: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in instructions:
        if keyword == "ENV":
            for token in shlex.split(args):
                name, sep, value = token.partition("=")
                assert sep, f"use ENV NAME=value, not the legacy form: {args!r}"
                env[name] = value
    return env


class Stage(NamedTuple):
    name: str
    image: str  # with the defaults of the ARGs before the first FROM
    instructions: list[tuple[str, str]]


@cache
def dockerfile_stages() -> list[Stage]:
    defaults: dict[str, str] = {}
    stages: list[Stage] = []
    for keyword, args in dockerfile_instructions():
        if keyword == "FROM":
            words = [word for word in args.split() if not word.startswith("--")]
            image = re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(name, image, []))
        elif stages:
            stages[-1].instructions.append((keyword, args))
        elif keyword == "ARG":
            name, _, default = args.partition("=")
            defaults[name] = default
    return stages


def copies_from(stage: Stage) -> list[tuple[str, list[str]]]:
    """(source stage, [source paths..., destination]) of each COPY --from= of a stage."""
    copies = []
    for keyword, args in stage.instructions:
        words = args.split()
        if keyword == "COPY" and words[0].startswith("--from="):
            copies.append((words[0].removeprefix("--from="), words[1:]))
    return copies


def build_stage() -> Stage:
    """The stage whose virtualenv the image runs."""
    sources = [
        source for source, paths in copies_from(dockerfile_stages()[-1]) if "/opt/venv" in paths
    ]
    assert len(sources) == 1, "the final stage copies /opt/venv from one build stage"
    return next(stage for stage in dockerfile_stages() if stage.name == sources[0])


def runs(stage: Stage) -> list[str]:
    return [args for keyword, args in stage.instructions if keyword == "RUN"]


def cli_command(words: list[str]) -> object | None:
    """The `streams` CLI's command that `words` run (its arguments and options follow it), or
    None. (Typer vendors its own click: duck-type.)"""
    command: object | None = typer.main.get_command(app)
    for word in words:
        subcommands = getattr(command, "commands", None)
        if not isinstance(subcommands, dict):
            break  # a command, not a group: the rest are its arguments and options
        command = subcommands.get(word)
    return command


def option_names(command: object) -> set[str]:
    return {opt for param in getattr(command, "params", []) for opt in getattr(param, "opts", [])}


# ---------------------------------------------------------------- the schema


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    errors = schema_errors(compose())
    assert not errors, "docker-compose.yml violates the Compose Specification:\n" + "\n".join(
        errors
    )


def test_the_schema_rejects_what_compose_would_reject() -> None:
    """Guard against a permissive schema: a misspelled key and a bad condition must fail."""
    typo = json.loads(json.dumps(compose()))
    typo["services"]["worker"]["depend_on"] = typo["services"]["worker"].pop("depends_on")
    assert any("depend_on" in error for error in schema_errors(typo))

    bad_condition = json.loads(json.dumps(compose()))
    bad_condition["services"]["worker"]["depends_on"]["kafka"]["condition"] = "healthy"
    assert schema_errors(bad_condition)


def compose_cli() -> list[str] | None:
    """`docker compose` (v2 plugin) or a standalone v2 `docker-compose`, if installed."""
    candidates: list[list[str]] = []
    if docker := shutil.which("docker"):
        candidates.append([docker, "compose"])
    if standalone := shutil.which("docker-compose"):
        candidates.append([standalone])
    for cli in candidates:
        version = subprocess.run([*cli, "version", "--short"], capture_output=True, text=True)
        if version.returncode == 0 and not version.stdout.strip().startswith("1."):
            return cli
    return None


def test_docker_compose_itself_accepts_the_file() -> None:
    """Where Docker Compose v2 is installed, ask it too (`config` needs no Docker engine)."""
    cli = compose_cli()
    if cli is None:
        pytest.skip("Docker Compose v2 is not installed (the schema test above still ran)")
    result = subprocess.run(
        [*cli, "--file", str(COMPOSE_FILE), "config", "--quiet"],
        cwd=ROOT,
        env={**os.environ, **REQUIRED_ENV},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_interpolation_follows_compose_rules() -> None:
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET:-d} ${UNSET:-d} ${EMPTY:-d} ${EMPTY-d} $SET $$SET", env) == (
        "x d d  x $SET"
    )
    assert interpolate("${SET:+alt}|${EMPTY+alt}|${UNSET+alt}|${SET:?}", env) == "alt|alt||x"
    with pytest.raises(ValueError, match="UNSET"):
        interpolate("${UNSET?needed}", env)


def test_compose_file_uses_the_specification_not_a_legacy_version() -> None:
    assert "version" not in compose_raw(), "the Compose Specification has no top-level version:"


def test_every_referenced_service_and_named_volume_is_declared() -> None:
    services = compose()["services"]
    declared_volumes = set(compose().get("volumes") or {})
    for name, svc in services.items():
        for dependency in depends_on(svc):
            assert dependency in services, f"{name} depends on unknown service {dependency}"
        for source, target in volume_targets(svc):
            if source is None or source.startswith((".", "/", "~")):
                continue  # anonymous volume or bind mount
            assert source in declared_volumes, f"{name}: volume {source!r} ({target}) undeclared"


# ---------------------------------------------------------------- Kafka


def test_kafka_image_matches_the_embedded_broker_version() -> None:
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    version = ET.parse(POM).getroot().findtext("m:properties/m:kafka.version", namespaces=namespace)
    assert version, "streams/broker/pom.xml has no <kafka.version>"
    assert service("kafka")["image"] == f"apache/kafka:{version}"


def test_kafka_is_a_single_kraft_node_that_never_auto_creates_topics() -> None:
    env = environment(service("kafka"))
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["CLUSTER_ID"], "the apache/kafka image refuses KRaft mode without CLUSTER_ID"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    advertised = env["KAFKA_ADVERTISED_LISTENERS"] or ""
    assert "//kafka:9092" in advertised, "containers use kafka:9092"
    assert "//localhost:29092" in advertised, "the host uses localhost:29092"
    assert any(str(port).endswith("29092:29092") for port in service("kafka").get("ports", []))
    node_id = env["KAFKA_NODE_ID"]
    assert (env["KAFKA_CONTROLLER_QUORUM_VOTERS"] or "").startswith(f"{node_id}@kafka:")


def test_kafka_has_the_healthcheck_that_dependents_wait_for() -> None:
    test = service("kafka")["healthcheck"]["test"]
    assert "/opt/kafka/bin/kafka-broker-api-versions.sh" in test
    assert "localhost:9092" in test


# ---------------------------------------------------------------- the worker and topics


def test_worker_scales_no_container_name_and_no_published_port() -> None:
    worker = service("worker")
    assert "container_name" not in worker, "replicas cannot share one container name"
    assert not worker.get("ports"), "replicas cannot share one host port: use expose"
    assert WEB_PORT in [str(port) for port in worker.get("expose", [])]


def test_worker_waits_for_a_healthy_kafka_and_provisioned_topics() -> None:
    assert depends_on(service("worker")) == {
        "kafka": "service_healthy",
        "topics": "service_completed_successfully",
    }
    assert depends_on(service("topics")) == {"kafka": "service_healthy"}
    assert service("topics").get("restart") == "no"


def test_each_replica_advertises_its_own_url_and_keeps_its_own_state() -> None:
    worker = service("worker")
    env = environment(worker)
    # Empty: the worker derives http://<container hostname>:<web port> itself.
    assert env.get("STREAMS_ADVERTISED_URL") == ""
    web_host = env.get("STREAMS_WEB_HOST") or dockerfile_env().get("STREAMS_WEB_HOST")
    assert web_host == "0.0.0.0", "other replicas must reach the query API"
    data_dir = env.get("STREAMS_DATA_DIR") or dockerfile_env()["STREAMS_DATA_DIR"]
    assert (None, data_dir) in set(volume_targets(worker)), "data dir needs an anonymous volume"


def test_worker_query_api_takes_its_tokens_from_the_environment() -> None:
    with pytest.raises(ValueError, match="STREAMS_API_TOKENS"):
        interpolate(compose_raw(), {})  # `docker compose up` without tokens: refused
    raw = environment(compose_raw()["services"]["worker"])["STREAMS_API_TOKENS"]
    assert raw is not None
    assert raw.startswith("${STREAMS_API_TOKENS:?"), "no default token: the operator sets it"
    assert "STREAMS_API_TOKENS" not in environment(service("topics")), "topics serves no API"
    assert environment(service("worker"))["STREAMS_API_TOKENS"] == "compose-test-token"
    assert "STREAMS_ALLOW_UNAUTHENTICATED" not in environment(service("worker"))


def test_streams_services_run_real_cli_commands() -> None:
    for name in STREAMS_SERVICES:
        svc = service(name)
        assert svc["build"]["context"] == ".", f"{name} builds this repository's Dockerfile"
        assert svc["image"] == service("worker")["image"], "one image for every streams service"
        words = svc.get("command") or dockerfile_exec_form("CMD")
        command = cli_command(list(words))
        assert command is not None, f"{name}: `streams {' '.join(words)}` is not a CLI command"
        assert not hasattr(command, "commands"), f"{name}: `{' '.join(words)}` is a group"
        options = {word for word in words if word.startswith("--")}
        assert options <= option_names(command), f"{name}: unknown options in {words}"


@pytest.mark.parametrize("name", STREAMS_SERVICES)
def test_every_streams_variable_is_a_setting(name: str) -> None:
    svc = service(name)
    config = command_config(svc)
    known = settings_env_names() | PENDING_SETTINGS
    known |= config_variables(config.read_text()) if config is not None else set()
    env = environment(svc)
    unknown = sorted(var for var in env if var.startswith("STREAMS_") and var not in known)
    # Settings ignores unknown STREAMS_* variables, so a typo would silently do nothing.
    assert not unknown, f"{name} sets variables no Settings field reads: {unknown}"
    assert env.get("KAFKA_BOOTSTRAP_SERVERS") == "kafka:9092"


@pytest.mark.parametrize("name", ["serve", "postgres-connector"])
def test_config_files_are_mounted_and_their_variables_set(name: str) -> None:
    svc = service(name)
    for target, source in bind_mounts(svc).items():
        assert source.exists(), f"{name} mounts {source}, which is missing"
        assert any(entry.endswith(":ro") for entry in svc["volumes"] if target in entry)
    config = command_config(svc)
    assert config is not None, f"{name} runs with a repository config"
    assert config.is_file(), config
    env = environment(svc)
    missing = sorted(var for var in config_variables(config.read_text()) if not env.get(var))
    assert not missing, f"{config.name} refers to variables {name} does not set: {missing}"


def test_the_connector_writes_into_the_postgres_service() -> None:
    dsn = environment(service("postgres-connector"))["STREAMS_POSTGRES_DSN"] or ""
    postgres = environment(service("postgres"))
    user, password, db = (
        postgres[key] for key in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB")
    )
    assert dsn == f"postgresql://{user}:{password}@postgres:5432/{db}"
    assert depends_on(service("postgres-connector"))["postgres"] == "service_healthy"
    raw = environment(compose_raw()["services"]["postgres-connector"])["STREAMS_POSTGRES_DSN"]
    assert raw is not None
    assert "${POSTGRES_PASSWORD" in raw, "one password for both services"


def test_published_ports_are_this_machines_only_and_distinct() -> None:
    host_ports: list[str] = []
    for name, svc in compose()["services"].items():
        for host_ip, host_port, _ in published(svc):
            assert host_ip == "127.0.0.1", f"{name} publishes {host_port} beyond this machine"
            host_ports.append(host_port)
    assert len(host_ports) == len(set(host_ports)), f"two services publish one port: {host_ports}"
    assert {port for _, port, _ in published(service("serve"))} == {SERVE_PORT}
    assert {port for _, port, _ in published(service("prometheus"))} == {"9090"}
    assert {port for _, port, _ in published(service("grafana"))} == {"3000"}


@pytest.mark.parametrize("name", SCALED_SERVICES)
def test_scaled_services_have_no_container_name_and_no_published_port(name: str) -> None:
    svc = service(name)
    assert "container_name" not in svc, "replicas cannot share one container name"
    assert not svc.get("ports"), "replicas cannot share one host port: use expose"
    assert "profiles" not in svc, "`docker compose up` runs the whole pipeline"


@pytest.mark.parametrize("name", STREAMS_SERVICES)
def test_service_environment_parses_into_settings(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no developer's .env
    for var in list(os.environ):
        if var.startswith("STREAMS_") or var == "KAFKA_BOOTSTRAP_SERVERS":
            monkeypatch.delenv(var)
    for var, value in {**dockerfile_env(), **environment(service(name))}.items():
        if value is not None:
            monkeypatch.setenv(var, value)
    settings = Settings()
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    if name in ("worker", "postgres-connector"):  # on 0.0.0.0: they start only with tokens
        assert [token.get_secret_value() for token in settings.api_tokens] == ["compose-test-token"]
        check_exposure(settings)


def test_every_streams_service_agrees_on_the_topic_layout() -> None:
    topic_vars = re.compile(r"STREAMS_(.*_TOPIC|PARTITIONS|REPLICATION_FACTOR)$")
    layouts = {
        name: {k: v for k, v in environment(service(name)).items() if topic_vars.match(k)}
        for name in STREAMS_SERVICES
    }
    assert all(layout == layouts["topics"] for layout in layouts.values()), layouts
    assert all(
        depends_on(service(name)).get("topics") == "service_completed_successfully"
        for name in STREAMS_SERVICES
        if name != "topics"
    ), "every process waits for the topics it checks at start"


# ---------------------------------------------------------------- Prometheus and Grafana


def scrape_jobs() -> dict[str, list[dict[str, Any]]]:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    return {job["job_name"]: job.get("dns_sd_configs", []) for job in config["scrape_configs"]}


def test_prometheus_scrapes_every_replica_of_every_streams_service() -> None:
    prometheus = service("prometheus")
    assert bind_mounts(prometheus)["/etc/prometheus/prometheus.yml"] == PROMETHEUS_CONFIG
    served = {"worker": WEB_PORT, "serve": SERVE_PORT, "postgres-connector": CONNECTOR_PORT}
    found: dict[str, str] = {}
    for job, discoveries in scrape_jobs().items():
        assert discoveries, f"{job}: Docker's DNS finds replicas, not a fixed target list"
        for discovery in discoveries:
            assert discovery["type"] == "A"
            for name in discovery["names"]:
                found[name] = str(discovery["port"])
    assert found == served
    # The port each one serves /metrics on, as the compose file and its settings say.
    assert WEB_PORT in [str(port) for port in service("worker")["expose"]]
    assert [container for _, _, container in published(service("serve"))] == [SERVE_PORT]
    connector = service("postgres-connector")
    assert environment(connector)["STREAMS_CONNECTOR_WEB_PORT"] == CONNECTOR_PORT
    assert CONNECTOR_PORT in [str(port) for port in connector["expose"]]
    assert f"127.0.0.1:{CONNECTOR_PORT}/health" in " ".join(connector["healthcheck"]["test"])


def test_promtool_accepts_the_prometheus_config() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        unavailable("promtool", "not on PATH (Debian's prometheus package)")
    result = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS_CONFIG)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard() -> None:
    grafana = service("grafana")
    mounts = bind_mounts(grafana)
    assert mounts["/etc/grafana/provisioning"] == GRAFANA_PROVISIONING
    sources = yaml.safe_load((GRAFANA_PROVISIONING / "datasources" / "prometheus.yml").read_text())
    (datasource,) = sources["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    providers = yaml.safe_load(
        (GRAFANA_PROVISIONING / "dashboards" / "profile-streams.yml").read_text()
    )
    (provider,) = providers["providers"]
    dashboards = mounts[provider["options"]["path"]]
    home = environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"] or ""
    home_file = dashboards / Path(home).relative_to(provider["options"]["path"])
    assert home_file.name == "profile-streams.json"
    assert home_file.is_file()
    dashboard = json.loads(home_file.read_text())
    used = {
        target["datasource"]["uid"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    }
    assert used == {datasource["uid"]}


def test_postgres_keeps_its_data_where_postgres_18_images_put_it() -> None:
    postgres = service("postgres")
    assert postgres["image"].startswith("postgres:18")
    assert "pg_isready" in postgres["healthcheck"]["test"]
    targets = {target: source for source, target in volume_targets(postgres)}
    # 18+ images keep PGDATA in /var/lib/postgresql/18/docker and refuse a .../data mount.
    assert targets.get("/var/lib/postgresql") in (compose().get("volumes") or {})
    raw_password = environment(compose_raw()["services"]["postgres"])["POSTGRES_PASSWORD"]
    assert raw_password is not None
    assert raw_password.startswith("${POSTGRES_PASSWORD"), "let the environment override it"


# ---------------------------------------------------------------- the Dockerfile


def test_dockerfile_entrypoint_is_the_streams_console_script() -> None:
    scripts = tomllib.loads(PYPROJECT.read_text())["project"]["scripts"]
    assert dockerfile_exec_form("ENTRYPOINT") == ["streams"]
    assert "streams" in scripts
    module_name, _, attribute = scripts["streams"].partition(":")
    assert callable(getattr(importlib.import_module(module_name), attribute))
    assert dockerfile_exec_form("CMD") == ["worker"]


def test_dockerfile_runtime_settings() -> None:
    env = dockerfile_env()
    known = settings_env_names() | {SCHEMAS_DIR_ENV}
    unknown = sorted(var for var in env if var.startswith("STREAMS_") and var not in known)
    assert not unknown, f"the Dockerfile sets variables nothing reads: {unknown}"
    final = dockerfile_final_stage()
    # The schemas ship inside the installed package: no second copy, nothing pointing at one.
    copies = [args.split() for keyword, args in final if keyword == "COPY"]
    assert not [args for args in copies if "schemas" in args[0]]
    assert SCHEMAS_DIR_ENV not in env
    # The state directory is a volume, the API port is exposed, the process is not root.
    assert env["STREAMS_DATA_DIR"] in dockerfile_exec_form("VOLUME")
    exposed = [args.split() for keyword, args in final if keyword == "EXPOSE"]
    assert [env.get("STREAMS_WEB_PORT", WEB_PORT)] in exposed
    users = [args.split(":")[0] for keyword, args in final if keyword == "USER"]
    assert users, "the image must not run as root"
    assert users[-1] not in ("root", "0")
    # The image listens on 0.0.0.0 with neither a baked-in token nor an opt-out: a worker
    # started from it needs STREAMS_API_TOKENS from the environment.
    assert "STREAMS_API_TOKENS" not in env
    assert "STREAMS_ALLOW_UNAUTHENTICATED" not in env
    assert env["STREAMS_WEB_HOST"] == "0.0.0.0"
    healthchecks = [args for keyword, args in final if keyword == "HEALTHCHECK"]
    assert healthchecks, "the image needs a HEALTHCHECK"
    assert "/health" in healthchecks[-1]
    assert "urllib" in healthchecks[-1], "python:3.11-slim has no curl"


def test_dockerfile_base_image_is_python_311_slim() -> None:
    # The build stage's virtualenv runs on the final stage's interpreter: one image for both.
    assert build_stage().image == "python:3.11-slim"
    assert dockerfile_stages()[-1].image == "python:3.11-slim"
    for stage in dockerfile_stages():
        assert stage.image == "python:3.11-slim" or stage.image.startswith("rust:"), stage.image


def test_dockerfile_builds_the_rust_kernel_with_a_pinned_toolchain() -> None:
    build = build_stage()
    toolchains = [stage for stage in dockerfile_stages() if stage.image.startswith("rust:")]
    assert len(toolchains) == 1, "one official rust image provides the toolchain"
    toolchain = toolchains[0]
    assert not toolchain.instructions, "the rust stage is only a source of files"
    pinned = re.fullmatch(r"rust:(\d+)\.(\d+)(?:\.\d+)?-slim(?:-\w+)?", toolchain.image)
    assert pinned, f"pin the toolchain to a Rust release: {toolchain.image}"
    makefile = (ROOT / "Makefile").read_text()
    minimum = re.search(r"^RUST_MIN := (\d+)\.(\d+)$", makefile, re.MULTILINE)
    assert minimum, "the Makefile states the Rust version native/ needs (RUST_MIN)"
    image_version = (int(pinned[1]), int(pinned[2]))
    assert image_version >= (int(minimum[1]), int(minimum[2])), "older than make prereqs allows"

    # rustup and cargo where the build stage's environment expects them, cargo on its PATH.
    env = stage_env(build.instructions)
    copied = {(source, tuple(paths)) for source, paths in copies_from(build)}
    for home in (env["RUSTUP_HOME"], env["CARGO_HOME"]):
        assert (toolchain.name, (home, home)) in copied, f"{home} comes from {toolchain.image}"
    assert f"{env['CARGO_HOME']}/bin" in env["PATH"].split(":")
    # rustc links with cc, which python:3.11-slim lacks.
    assert any("apt-get install" in run and re.search(r"\bgcc\b", run) for run in runs(build))

    sources = [args.split()[0] for keyword, args in build.instructions if keyword == "COPY"]
    assert "native" in sources, "the crate's sources go into the build stage"
    wheel_builds = [run for run in runs(build) if "pip wheel" in run or "maturin build" in run]
    assert wheel_builds, "the build stage builds the wheel"
    # With the drivers of every command the image runs (extras of the wheel).
    wheel_install = r"/opt/venv/bin/pip install .*/wheels/\S+\.whl\)?\[postgres,rest,amqp\]"
    assert any(re.search(wheel_install, run) for run in wheel_builds)


def test_dockerfile_runtime_stage_has_no_compiler() -> None:
    final = dockerfile_stages()[-1]
    assert copies_from(final) == [(build_stage().name, ["/opt/venv", "/opt/venv"])]
    compilers = re.compile(r"\b(gcc|g\+\+|clang|cc|build-essential|rustup|rustc|cargo)\b")
    for run in runs(final):
        assert not compilers.search(run), f"the runtime stage installs a compiler: {run}"
    env = dockerfile_env()
    assert "CARGO_HOME" not in env
    assert "RUSTUP_HOME" not in env
    assert "cargo" not in env.get("PATH", "")


def test_dockerignore_keeps_the_build_inputs_and_drops_local_state() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not any(p.startswith("!") for p in patterns), "the check below assumes no exceptions"

    # Docker drops a directory with its contents, and `**/` also matches no directory at all.
    variants = [p.rstrip("/") for p in patterns]
    variants += [p.removeprefix("**/") for p in variants if p.startswith("**/")]

    def ignored(path: str) -> bool:
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        return any(fnmatch.fnmatch(prefix, v) for prefix in prefixes for v in variants)

    sources = [
        source
        for keyword, args in dockerfile_instructions()
        if keyword == "COPY" and not args.startswith("--from")
        for source in args.split()[:-1]
    ]
    assert sources
    for source in sources:
        assert not ignored(source), f"COPY {source}, but .dockerignore excludes it"
    for local in (".git", ".venv", ".cache", "data", ".env", "__pycache__", ".mypy_cache"):
        assert ignored(local), f"{local} must stay out of the build context"
    # The crate's sources go in; cargo's build directory and a kernel built on the host do not.
    native = ROOT / "native"
    crate = [native / "Cargo.toml", native / "Cargo.lock", *(native / "src").rglob("*.rs")]
    for path in crate:
        assert not ignored(path.relative_to(ROOT).as_posix()), f"{path} is a build input"
    for built in ("native/target/release/deps", "streams/_native.abi3.so"):
        assert ignored(built), f"{built} must stay out of the build context"
