"""deploy/kubernetes against the Kubernetes schemas and against the service it deploys, with
no cluster: every manifest, base and overlays rendered, validates; ports, probe paths, the
command, env names, the KEDA trigger's group, topic and metric, the replica bound and the
grace period agree with the CLI, the metrics server, conf/base/stream.yml and the Dockerfile.

The ScaledObject and TriggerAuthentication validate against KEDA's own CRDs, kept in
``tests/deploy/keda/`` (see its README), strictly: a field the CRD does not declare is an error,
as ``kubectl apply --validate=strict`` makes it, where the API server would silently drop it.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from kedro_stream.config.loading import parse_stream_file
from kedro_stream.config.models import StreamConfig
from kedro_stream.metrics.http import PATHS
from tests.deploy.test_deploy import (
    COMPOSE,
    PROMETHEUS_CONFIG,
    SCRAPE_JOB,
    Series,
    _command,
    _dockerfile,
    _one,
    _parse_cli,
    analyse,
    exported,  # noqa: F401 - the fixture, shared
)

REPO = Path(__file__).resolve().parents[2]
KUBERNETES = REPO / "deploy" / "kubernetes"
BASE = KUBERNETES / "base"
OVERLAYS = sorted(p for p in (KUBERNETES / "overlays").iterdir() if p.is_dir())
KUSTOMIZATIONS = [BASE, *OVERLAYS]
KUBERNETES_VERSION = "1.30.0"
KEDA_KINDS = {"ScaledObject", "TriggerAuthentication"}
KEDA_CRDS = Path(__file__).parent / "keda"

# --- rendering ----------------------------------------------------------------------------------
# `kubectl kustomize` is not always installed (no kustomize wheel exists on PyPI), so the tests
# render with the few Kustomize features the kustomizations use: resources (files and
# directories), `labels` with includeSelectors, and `$patch: delete` patches. A kustomization
# using anything else fails here; with kubectl on PATH its rendering must equal this one's.

_SELECTORS = {  # where includeSelectors puts the labels, by kind
    "Service": [("spec", "selector")],
    "Deployment": [("spec", "selector", "matchLabels"), ("spec", "template", "metadata", "labels")],
    "StatefulSet": [
        ("spec", "selector", "matchLabels"),
        ("spec", "template", "metadata", "labels"),
    ],
}


def _key(document: dict[str, Any]) -> tuple[str, str]:
    return document["kind"], document["metadata"]["name"]


def _at(document: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    for part in path:
        document = document.setdefault(part, {})
    return document


def render(directory: Path) -> list[dict[str, Any]]:
    """The documents ``kubectl kustomize directory`` prints, for the features described above."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - {"apiVersion", "kind", "resources", "labels", "patches"}
    assert not unknown, f"{directory}: the test's renderer does not handle {unknown}"
    documents: list[dict[str, Any]] = []
    for resource in kustomization.get("resources", []):
        path = (directory / resource).resolve()
        if path.is_dir():
            documents += render(path)
        else:
            documents += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for patch in kustomization.get("patches", []):
        target = yaml.safe_load(patch["patch"])
        assert target.pop("$patch") == "delete", patch
        documents = [d for d in documents if _key(d) != _key(target)]
    for entry in kustomization.get("labels", []):
        assert entry.get("includeSelectors"), "only labels with includeSelectors are rendered"
        for document in documents:
            _at(document, ("metadata", "labels")).update(entry["pairs"])
            for path in _SELECTORS.get(document["kind"], []):
                _at(document, path).update(entry["pairs"])
            for claim in document.get("spec", {}).get("volumeClaimTemplates", []):
                _at(claim, ("metadata", "labels")).update(entry["pairs"])
    return documents


@pytest.fixture(scope="module", params=KUSTOMIZATIONS, ids=lambda p: p.name)
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(request.param)


def _by_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in documents if d["kind"] == kind]


def _workload(documents: list[dict[str, Any]]) -> dict[str, Any]:
    (workload,) = [d for d in documents if d["kind"] in ("Deployment", "StatefulSet")]
    return workload


def _consumer(documents: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = _workload(documents)["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_the_renderer_agrees_with_kubectl(directory: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    done = subprocess.run(
        [kubectl, "kustomize", str(directory)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    expected = sorted(
        (d for d in yaml.safe_load_all(done.stdout) if d),
        key=lambda d: json.dumps(d, sort_keys=True),
    )
    assert sorted(render(directory), key=lambda d: json.dumps(d, sort_keys=True)) == expected


def test_every_manifest_validates(rendered: list[dict[str, Any]]) -> None:
    kinds = {d["kind"] for d in rendered}
    assert {"Deployment", "StatefulSet"} & kinds and "Service" in kinds
    for document in rendered:
        if document["kind"] in KEDA_KINDS:
            _keda_validator(document["kind"], document["apiVersion"]).validate(document)
        else:
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def _keda_validator(kind: str, api_version: str) -> jsonschema.Draft4Validator:
    """The CRD's OpenAPI v3 schema for ``api_version``, made strict. OpenAPI v3 schemas are
    JSON Schema draft 4 with extensions (``x-kubernetes-*``, ``nullable``) that a draft 4
    validator ignores."""
    group, version = api_version.split("/")
    for path in KEDA_CRDS.glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        if crd["spec"]["group"] == group and crd["spec"]["names"]["kind"] == kind:
            (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
            return jsonschema.Draft4Validator(_strict(served["schema"]["openAPIV3Schema"]))
    raise AssertionError(f"no KEDA CRD for {kind} {api_version} in {KEDA_CRDS}")


def _strict(schema: Any) -> Any:
    """``schema`` with unknown fields refused in every object that lists its fields."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {k: _strict(v) for k, v in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        strict["additionalProperties"] = False
    return strict


def test_a_field_keda_does_not_know_is_refused(rendered: list[dict[str, Any]]) -> None:
    """The check has teeth: a misspelt trigger field fails, as kubectl's strict validation
    would fail it."""
    scaled = _by_kind(rendered, "ScaledObject")
    if not scaled:
        pytest.skip("no ScaledObject in this kustomization")
    typo = copy.deepcopy(scaled[0])
    typo["spec"]["cooldownPeriods"] = typo["spec"].pop("cooldownPeriod")
    with pytest.raises(jsonschema.ValidationError, match="cooldownPeriods"):
        _keda_validator("ScaledObject", typo["apiVersion"]).validate(typo)


# --- the pod against the image and the CLI ------------------------------------------------------


@pytest.fixture(scope="module")
def stream() -> StreamConfig:
    raw = yaml.safe_load((REPO / "conf" / "base" / "stream.yml").read_text())
    (stream,) = parse_stream_file(raw, {}).streams.values()
    return stream


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container["env"]}


def _secret_data(documents: list[dict[str, Any]], name: str) -> dict[str, str]:
    (secret,) = [d for d in _by_kind(documents, "Secret") if d["metadata"]["name"] == name]
    return secret["stringData"]


def test_the_pod_runs_the_image_command_on_its_metrics_port(
    rendered: list[dict[str, Any]],
) -> None:
    container = _consumer(rendered)
    assert container["command"] == json.loads(_one("CMD")), "the Dockerfile's CMD, spelled out"
    command, params = _parse_cli(container["command"])
    assert command.name == "consume"
    port = params["metrics_port"]
    ((named,),) = [[p for p in container["ports"] if p["containerPort"] == port]]
    assert [p["containerPort"] for p in container["ports"]] == [port]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] in (named["name"], port), probe
        assert container[probe]["httpGet"]["path"] in PATHS, probe
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"  # restoring: not ready
    for service in _by_kind(rendered, "Service"):
        (service_port,) = service["spec"]["ports"]
        assert service_port["targetPort"] == named["name"] and service_port["port"] == port
    annotations = _workload(rendered)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] in PATHS


def test_the_env_is_what_the_cli_and_the_credentials_read(rendered: list[dict[str, Any]]) -> None:
    container = _consumer(rendered)
    command, _ = _parse_cli(container["command"])
    envvars = {p.envvar for p in command.params if p.envvar}
    credentials = _secret_data(rendered, "kedro-stream-credentials")["credentials.yml"]
    read_by_credentials = set(re.findall(r"\$\{oc\.env:(\w+)", credentials))
    env = _env(container)
    assert {"KAFKA_BOOTSTRAP_SERVERS", "KEDRO_STREAM_CREDENTIALS"} <= env.keys()
    assert env.keys() <= envvars | read_by_credentials, "an env var nothing reads"
    (configmap,) = _by_kind(rendered, "ConfigMap")
    reference = env["KAFKA_BOOTSTRAP_SERVERS"]["valueFrom"]["configMapKeyRef"]
    assert reference["name"] == configmap["metadata"]["name"]
    assert reference["key"] in configmap["data"]
    # KEDRO_STREAM_CREDENTIALS names the Secret's credentials.yml, mounted.
    path = PurePosixPath(env["KEDRO_STREAM_CREDENTIALS"]["value"])
    volumes = {v["name"]: v for v in _workload(rendered)["spec"]["template"]["spec"]["volumes"]}
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == str(path.parent)]
    items = volumes[mount["name"]]["secret"]["items"]
    assert {"key": "credentials.yml", "path": path.name} in items
    assert isinstance(yaml.safe_load(credentials), dict), "credentials.yml is a mapping"


def test_the_pod_runs_as_the_image_user_and_keeps_state_on_the_data_volume(
    rendered: list[dict[str, Any]], stream: StreamConfig
) -> None:
    pod = _workload(rendered)["spec"]["template"]["spec"]
    runs = " ".join(i.value for i in _dockerfile() if i.keyword == "RUN")
    (uid,) = re.findall(r"useradd .*--uid (\d+)", runs)
    assert pod["securityContext"]["runAsUser"] == int(uid)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert stream.state_dir is not None and not stream.state_dir.is_absolute()
    state = PurePosixPath(_one("WORKDIR")) / stream.state_dir.as_posix()
    for container in [*pod["initContainers"], *pod["containers"]]:
        (data,) = [m for m in container["volumeMounts"] if m["name"] == "data"]
        assert state.is_relative_to(data["mountPath"]), f"{state} is not on the data volume"
        assert "memory" in container["resources"]["limits"]
        assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
    claims = [
        c["metadata"]["name"] for c in _workload(rendered)["spec"].get("volumeClaimTemplates", [])
    ]
    volumes = [v["name"] for v in pod["volumes"]]
    assert ("data" in claims) != ("data" in volumes), "data/ is an emptyDir or a claim, once"


def test_the_init_container_is_compose_data_init() -> None:
    pod = _workload(render(BASE))["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    script = init["command"][-1]
    compose = yaml.safe_load(COMPOSE.read_text())
    compose_script = _command(compose["services"]["data-init"])[-1].replace("$$", "$")
    assert compose_script.strip() in script
    (mkdir,) = re.findall(r"mkdir -p ((?:data/\w+ ?)+)", script)
    skeleton = re.findall(
        r"mkdir -p ((?:data/\w+ ?)+)",
        " ".join(i.value for i in _dockerfile() if i.keyword == "RUN"),
    )
    assert mkdir.split() == skeleton[0].split(), "the image's data/ skeleton"


def test_the_grace_period_outlasts_a_batch_and_its_commit(
    rendered: list[dict[str, Any]], stream: StreamConfig
) -> None:
    run = (
        stream.run_timeout_s * stream.retry.attempts
        + stream.retry.backoff_ms / 1000 * (2**stream.retry.attempts)
        if stream.run_timeout_s is not None
        else stream.max_poll_interval_s  # past it the partitions are revoked: nothing to commit
    )
    worst = stream.batch.max_wait_ms / 1000 + run + stream.commit_timeout_s
    grace = _workload(rendered)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > worst, f"{grace} s does not cover {worst} s"


def test_the_statefulset_has_the_deployment_pod_template() -> None:
    deployment = _workload(render(BASE))
    statefulset = _workload(render(KUBERNETES / "overlays" / "statefulset"))
    assert statefulset["kind"] == "StatefulSet"
    template = copy.deepcopy(deployment["spec"]["template"])
    template["spec"]["volumes"] = [v for v in template["spec"]["volumes"] if v["name"] != "data"]
    assert statefulset["spec"]["template"] == template


def test_the_disruption_budget_takes_one_member_at_a_time(rendered: list[dict[str, Any]]) -> None:
    (budget,) = _by_kind(rendered, "PodDisruptionBudget")
    assert budget["spec"]["maxUnavailable"] == 1
    pod_labels = _workload(rendered)["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


# --- KEDA ---------------------------------------------------------------------------------------


def _partitions(topic: str) -> int:
    script = " ".join(_command(yaml.safe_load(COMPOSE.read_text())["services"]["topics"]))
    assert topic in script
    (partitions,) = set(re.findall(r"--partitions (\d+)", script))
    return int(partitions)


def _scaled_object(directory: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    documents = render(directory)
    (scaled,) = _by_kind(documents, "ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    workload = _workload(documents)
    target = scaled["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == _key(workload)
    return documents, scaled


@pytest.mark.parametrize("overlay", ["kafka-scaler", "prometheus-scaler"])
def test_scaling_is_bounded_by_the_partitions(overlay: str, stream: StreamConfig) -> None:
    _, scaled = _scaled_object(KUBERNETES / "overlays" / overlay)
    (topic,) = stream.input.topics
    assert 1 <= scaled["spec"]["maxReplicaCount"] <= _partitions(topic)
    assert scaled["spec"]["cooldownPeriod"] > 0
    assert scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]


def test_the_kafka_trigger_reads_the_stream_group(stream: StreamConfig) -> None:
    documents, scaled = _scaled_object(KUBERNETES / "overlays" / "kafka-scaler")
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    metadata = trigger["metadata"]
    assert metadata["consumerGroup"] == stream.group_id
    assert [metadata["topic"]] == stream.input.topics
    (configmap,) = _by_kind(documents, "ConfigMap")
    assert metadata["bootstrapServers"] == configmap["data"]["KAFKA_BOOTSTRAP_SERVERS"]
    assert int(metadata["lagThreshold"]) > 0 and int(metadata["activationLagThreshold"]) >= 0
    assert scaled["spec"]["minReplicaCount"] == 0, "the kafka trigger sees lag with no pod"
    (auth,) = _by_kind(documents, "TriggerAuthentication")
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    for reference in auth["spec"]["secretTargetRef"]:
        assert reference["key"] in _secret_data(documents, reference["name"])
        assert reference["parameter"] in {
            "sasl",
            "tls",
            "username",
            "password",
            "ca",
            "cert",
            "key",
        }


def test_the_prometheus_trigger_reads_an_exported_metric(
    stream: StreamConfig,
    exported: dict[str, Series],  # noqa: F811 - the shared fixture
) -> None:
    _, scaled = _scaled_object(KUBERNETES / "overlays" / "prometheus-scaler")
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    query = trigger["metadata"]["query"]
    usage = analyse(query, exported)
    assert not usage.problems, usage.problems
    assert usage.metrics == {"kedro_stream_consumer_lag"}
    assert re.findall(r'group="([^"]*)"', query) == [stream.group_id]
    assert scaled["spec"]["minReplicaCount"] >= 1, "no pod, no metric: it cannot wake from zero"


# --- Prometheus ---------------------------------------------------------------------------------


def test_the_scrape_job_is_the_one_the_alerts_read() -> None:
    (job,) = yaml.safe_load((KUBERNETES / "prometheus-scrape.yml").read_text())
    compose_jobs = yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]
    (compose_job,) = [j for j in compose_jobs if j["job_name"] == SCRAPE_JOB]
    assert job["job_name"] == SCRAPE_JOB
    assert job["metrics_path"] == compose_job["metrics_path"]
    base = render(BASE)
    keeps = {
        tuple(r["source_labels"]): r["regex"]
        for r in job["relabel_configs"]
        if r.get("action") == "keep"
    }
    labels = _workload(base)["spec"]["template"]["metadata"]["labels"]
    name = keeps[("__meta_kubernetes_pod_label_app_kubernetes_io_name",)]
    assert labels["app.kubernetes.io/name"] == name
    (port,) = _consumer(base)["ports"]
    assert keeps[("__meta_kubernetes_pod_container_port_name",)] == port["name"]
