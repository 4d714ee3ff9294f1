"""deploy/kubernetes/, checked without a cluster.

Every manifest is validated with kubernetes-validate (the Kubernetes OpenAPI schemas it
carries, strict: an unknown field fails) for a pinned Kubernetes version. The schemas cannot see
how the objects fit together, so the invariants are checked too: the workers' StatefulSet and
its headless Service, the URL each worker advertises, probes, replicas against the partition
count, settings and config files, memory against the RocksDB budget, one image, and the
PodDisruptionBudgets' selectors.
"""

from __future__ import annotations

import inspect
import os
import re
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.processor.runner import WorkerService
from streams.settings import Settings
from tests.prerequisites import unavailable
from tests.test_deploy.settings_names import (
    PENDING_SETTINGS,
    config_variables,
    settings_env_names,
)

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"
KUSTOMIZATION = MANIFESTS / "kustomization.yaml"
SECRET_EXAMPLE = MANIFESTS / "secret.example.yaml"
# The oldest Kubernetes release the manifests promise to fit (persistentVolumeClaimRetentionPolicy
# is GA in 1.32).
KUBERNETES_VERSION = "1.32.0"
IMAGE = "profile-streams"
CONFIG_FILES = {
    "serve.toml": ROOT / "ingest" / "serve.example.toml",
    "postgres.toml": ROOT / "connectors" / "postgres.example.toml",
}
# Room beside RocksDB's budget for the Python process, librdkafka and the batches in flight.
PROCESS_HEADROOM_BYTES = 512 * 1024 * 1024
_QUANTITY = re.compile(r"^(\d+)(Ki|Mi|Gi|Ti)?$")


# ---------------------------------------------------------------- helpers


def manifest_files() -> list[Path]:
    return sorted(path for path in MANIFESTS.glob("*.yaml") if path != KUSTOMIZATION)


@cache
def documents(path: Path) -> list[dict[str, Any]]:
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    assert all(isinstance(doc, dict) for doc in docs), path
    return docs


@cache
def kustomization() -> dict[str, Any]:
    data = yaml.safe_load(KUSTOMIZATION.read_text())
    assert isinstance(data, dict)
    return data


def deployed() -> list[dict[str, Any]]:
    """What `kubectl apply -k` creates (the Secret example is not part of it)."""
    return [doc for name in kustomization()["resources"] for doc in documents(MANIFESTS / name)]


def one(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in deployed() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def workloads() -> list[dict[str, Any]]:
    return [d for d in deployed() if d["kind"] in ("StatefulSet", "Deployment", "Job")]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def containers() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for workload in workloads():
        for container in pod_spec(workload)["containers"]:
            yield workload, container


def worker() -> dict[str, Any]:
    return one("StatefulSet", "profile-streams-worker")


def worker_container() -> dict[str, Any]:
    (container,) = pod_spec(worker())["containers"]
    assert isinstance(container, dict)
    return container


def settings_data() -> dict[str, str]:
    data: dict[str, str] = one("ConfigMap", "profile-streams-settings")["data"]
    return data


def env_values(container: dict[str, Any]) -> dict[str, str | None]:
    """A container's environment: the settings ConfigMap, then its own `env` (None: from a
    Secret or the downward API)."""
    values: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        values.update(one("ConfigMap", source["configMapRef"]["name"])["data"])
    for entry in container.get("env", []):
        values[entry["name"]] = entry.get("value")
    return values


def container_config(workload: dict[str, Any], container: dict[str, Any]) -> str | None:
    """The config file text a container's --config names, through its ConfigMap volume."""
    args = container.get("args", [])
    if "--config" not in args:
        return None
    path = Path(args[args.index("--config") + 1])
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
    volume = next(v for v in pod_spec(workload)["volumes"] if v["name"] == mounts[str(path.parent)])
    (item,) = [item for item in volume["configMap"]["items"] if item["path"] == path.name]
    text: str = one("ConfigMap", volume["configMap"]["name"])["data"][item["key"]]
    return text


def quantity(value: str) -> int:
    match = _QUANTITY.match(value)
    assert match, f"unexpected quantity {value!r}"
    factor = {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}[match.group(2)]
    return int(match.group(1)) * factor


def labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


@cache
def validate() -> Any:
    try:
        from kubernetes_validate import utils
    except ImportError:
        unavailable("kubernetes-validate", "the dev dependency is not installed")
    return utils.validate


# ---------------------------------------------------------------- the schemas


@pytest.mark.parametrize("path", manifest_files(), ids=lambda path: path.name)
def test_manifests_are_valid_kubernetes_objects(path: Path) -> None:
    for doc in documents(path):
        # Raises on a schema violation, or when the kind is unknown to that version.
        assert validate()(doc, KUBERNETES_VERSION, strict=True) == KUBERNETES_VERSION[:4]


def test_the_validator_rejects_what_the_api_server_would_reject() -> None:
    """Guard against a permissive check: a misspelled field and a wrong type must fail."""
    check = validate()
    from kubernetes_validate.utils import ValidationError

    typo = yaml.safe_load(yaml.safe_dump(worker()))
    typo["spec"]["servicename"] = typo["spec"].pop("serviceName")
    with pytest.raises(ValidationError):
        check(typo, KUBERNETES_VERSION, strict=True)
    wrong_type = yaml.safe_load(yaml.safe_dump(worker()))
    wrong_type["spec"]["replicas"] = "three"
    with pytest.raises(ValidationError):
        check(wrong_type, KUBERNETES_VERSION, strict=True)


def test_kustomization_applies_every_manifest_but_the_secret_example() -> None:
    resources = kustomization()["resources"]
    assert sorted(resources) == sorted(
        path.name for path in manifest_files() if path != SECRET_EXAMPLE
    )
    for doc in [doc for path in manifest_files() for doc in documents(path)]:
        assert "namespace" not in doc["metadata"], "the namespace is the operator's choice"


# ---------------------------------------------------------------- the workers


def test_workers_reach_each_other_through_a_headless_service() -> None:
    service = one("Service", worker()["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None"
    # Workers that are not ready still own partitions others must reach by name.
    assert service["spec"]["publishNotReadyAddresses"] is True
    pod_labels = worker()["spec"]["template"]["metadata"]["labels"]
    assert labels_match(service["spec"]["selector"], pod_labels)
    assert labels_match(worker()["spec"]["selector"]["matchLabels"], pod_labels)


def test_each_worker_advertises_its_stable_dns_name() -> None:
    env = {entry["name"]: entry for entry in worker_container()["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    names = list(env)  # $(VAR) expands only variables defined earlier in the list
    assert names.index("POD_NAME") < names.index("STREAMS_ADVERTISED_URL")
    assert names.index("POD_NAMESPACE") < names.index("STREAMS_ADVERTISED_URL")
    port = env_values(worker_container())["STREAMS_WEB_PORT"]
    service = worker()["spec"]["serviceName"]
    expected = f"http://$(POD_NAME).{service}.$(POD_NAMESPACE).svc:{port}"
    assert env["STREAMS_ADVERTISED_URL"]["value"] == expected
    assert env["STREAMS_WEB_HOST"]["value"] == "0.0.0.0"
    (container_port,) = worker_container()["ports"]
    assert str(container_port["containerPort"]) == port


def test_each_worker_keeps_its_state_on_its_own_volume() -> None:
    (template,) = worker()["spec"]["volumeClaimTemplates"]
    assert template["spec"]["accessModes"] == ["ReadWriteOnce"]
    mounts = {m["name"]: m["mountPath"] for m in worker_container()["volumeMounts"]}
    assert (
        mounts[template["metadata"]["name"]] == env_values(worker_container())["STREAMS_DATA_DIR"]
    )
    assert pod_spec(worker())["securityContext"]["fsGroup"] == 10001  # the image's user


def test_workers_start_in_parallel_and_are_ready_once_restored() -> None:
    assert worker()["spec"]["podManagementPolicy"] == "Parallel"
    readiness = worker_container()["readinessProbe"]
    assert readiness["httpGet"]["path"] == "/ready"  # 503 while a partition restores
    liveness = worker_container()["livenessProbe"]
    assert liveness != readiness, "a restoring worker is alive: liveness must not wait for it"
    assert "httpGet" not in liveness or liveness["httpGet"]["path"] != "/health"


def test_workers_get_time_to_stop_cleanly() -> None:
    stop_timeout = inspect.signature(WorkerService.stop).parameters["timeout"].default
    assert pod_spec(worker())["terminationGracePeriodSeconds"] > stop_timeout


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("StatefulSet", "profile-streams-worker"),
        ("Deployment", "profile-streams-postgres-connector"),
    ],
)
def test_replicas_do_not_exceed_the_partition_count(kind: str, name: str) -> None:
    # A replica beyond the partition count owns nothing: the group cannot use it.
    assert one(kind, name)["spec"]["replicas"] <= int(settings_data()["STREAMS_PARTITIONS"])


def test_worker_memory_covers_the_rocksdb_budget() -> None:
    settings = settings_data()
    rocksdb = int(settings["STREAMS_ROCKSDB_BLOCK_CACHE_BYTES"])
    rocksdb += int(settings["STREAMS_ROCKSDB_WRITE_BUFFER_BYTES"])
    resources = worker_container()["resources"]
    limit = quantity(resources["limits"]["memory"])
    assert limit >= rocksdb + PROCESS_HEADROOM_BYTES
    assert quantity(resources["requests"]["memory"]) == limit, "no eviction before others"


# ---------------------------------------------------------------- everything


def test_every_container_runs_the_one_image() -> None:
    images = {container["image"] for _, container in containers()}
    assert images == {IMAGE}
    (entry,) = kustomization()["images"]
    assert entry["name"] == IMAGE
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert entry["newTag"] == pyproject["project"]["version"]


def test_every_streams_variable_is_a_setting() -> None:
    known = settings_env_names() | PENDING_SETTINGS
    for workload, container in containers():
        config = container_config(workload, container)
        allowed = known | (config_variables(config) if config is not None else set())
        env = env_values(container)
        unknown = sorted(var for var in env if var.startswith("STREAMS_") and var not in allowed)
        assert not unknown, f"{container['name']} sets variables nothing reads: {unknown}"
        if config is not None:
            missing = sorted(config_variables(config) - env.keys())
            assert not missing, f"{container['name']}'s config needs {missing}"


def test_the_settings_configmap_parses_into_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no developer's .env
    for var in list(os.environ):
        if var.startswith("STREAMS_") or var == "KAFKA_BOOTSTRAP_SERVERS":
            monkeypatch.delenv(var)
    for var, value in settings_data().items():
        monkeypatch.setenv(var, value)
    settings = Settings()
    assert settings.partitions == int(settings_data()["STREAMS_PARTITIONS"])
    assert settings.kafka_bootstrap_servers == settings_data()["KAFKA_BOOTSTRAP_SERVERS"]


def test_config_files_are_the_repositorys_examples() -> None:
    data = one("ConfigMap", "profile-streams-config")["data"]
    assert set(data) == set(CONFIG_FILES)
    for key, path in CONFIG_FILES.items():
        assert data[key] == path.read_text(), f"{key} differs from {path.relative_to(ROOT)}"


def test_secrets_come_from_the_one_secret_and_the_example_names_every_key() -> None:
    (example,) = documents(SECRET_EXAMPLE)
    keys: set[str] = set()
    for _, container in containers():
        for entry in container.get("env", []):
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref is not None:
                assert ref["name"] == example["metadata"]["name"]
                keys.add(ref["key"])
    assert set(example["stringData"]) == keys
    assert "Secret" not in {doc["kind"] for doc in deployed()}, "no secret in the manifests"


def test_services_and_budgets_select_the_pods_they_name() -> None:
    pods = {
        workload["metadata"]["name"]: workload["spec"]["template"]["metadata"]["labels"]
        for workload in workloads()
    }
    for doc in deployed():
        if doc["kind"] == "Service":
            selector = doc["spec"]["selector"]
        elif doc["kind"] == "PodDisruptionBudget":
            selector = doc["spec"]["selector"]["matchLabels"]
        else:
            continue
        matched = [name for name, labels in pods.items() if labels_match(selector, labels)]
        assert matched == [doc["metadata"]["name"]], f"{doc['kind']} {doc['metadata']['name']}"
    budgets = {d["metadata"]["name"] for d in deployed() if d["kind"] == "PodDisruptionBudget"}
    assert budgets == {"profile-streams-worker", "profile-streams-serve"}


def test_service_ports_are_container_ports() -> None:
    for doc in deployed():
        if doc["kind"] != "Service":
            continue
        (workload,) = [
            w
            for w in workloads()
            if labels_match(doc["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])
        ]
        ports = {p["name"] for c in pod_spec(workload)["containers"] for p in c.get("ports", [])}
        for port in doc["spec"]["ports"]:
            assert port["targetPort"] in ports, doc["metadata"]["name"]


def listening_port(container: dict[str, Any]) -> str | None:
    """The port the container's command listens on, as its arguments and settings say."""
    args = container["args"]
    if args[0] == "serve":
        return str(args[args.index("--port") + 1])
    if args[0] == "connect":
        return env_values(container)["STREAMS_CONNECTOR_WEB_PORT"]
    return env_values(container)["STREAMS_WEB_PORT"]


def test_probes_ask_the_port_each_process_listens_on() -> None:
    for _, container in containers():
        if container["args"][0] == "topics":
            continue
        (port,) = container["ports"]
        assert str(port["containerPort"]) == listening_port(container), container["name"]
        for probe in ("readinessProbe", "livenessProbe"):
            action = container[probe].get("httpGet") or container[probe]["tcpSocket"]
            assert action["port"] == port["name"], f"{container['name']} {probe}"
        ready = "/ready" if container["args"][0] == "worker" else "/health"
        assert container["readinessProbe"]["httpGet"]["path"] == ready
