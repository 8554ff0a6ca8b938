"""The first hour of a user who adds kedro-stream to a Kedro project of their own.

The project is made by ``kedro new`` (default logging, kedro-telemetry installed and not
disabled), then given the files under ``user_project/``: a ``fit`` pipeline that writes reference
statistics (the artifact) and a ``detection`` namespace (readings in; ``enriched`` and
``anomalies`` out, only ``anomalies`` published). Every command runs as the user types it,
against the embedded broker.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer

from kedro_stream.devbroker.process import BOOTSTRAP_PREFIX

FILES = Path(__file__).with_name("user_project")
TOPIC_WITH_ONE_PARTITION = ("--topic", "readings", "--partitions", "1")
BIN = Path(sys.executable).parent
# What must never reach a user's terminal from a kedro-stream command.
NOISE = (
    "register_new_resolver",
    "anonymous usage data",
    "Heap",
    "Traceback",
    "Producer terminating",
)


def _env() -> dict[str, str]:
    """The user's environment: no telemetry opt-out, no width tweaks for rich."""
    env = {k: v for k, v in os.environ.items() if k not in {"KEDRO_DISABLE_TELEMETRY", "COLUMNS"}}
    return {**env, "DO_NOT_TRACK": ""}


def run(project: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        cwd=project,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = run(project, *args)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def one_error(done: subprocess.CompletedProcess[str]) -> str:
    """The single ``Error:`` line of a failed command, which must say it all."""
    assert done.returncode != 0, done.stdout + done.stderr
    output = done.stdout + done.stderr
    errors = [line for line in output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, output
    assert not any(noise in output for noise in NOISE), output
    return errors[0]


def log_text(stderr: str) -> str:
    """Log records as one string: rich wraps them at 80 columns off a terminal and puts the
    ``file.py:LINE`` column beside a record's first line."""
    return re.sub(r" \S+\.py:\d+", "", " ".join(stderr.split()))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``kedro new``, the user's pipelines and config, and ``kedro run --pipeline fit``."""
    root = tmp_path_factory.mktemp("user")
    subprocess.run(
        [str(BIN / "kedro"), "new", "--name", "sensors", "--tools", "none", "--example", "n"],
        cwd=root,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"},  # `kedro new` is not ours
        capture_output=True,
        check=True,
        timeout=120,
    )
    project = root / "sensors"
    shutil.copytree(FILES, project, dirs_exist_ok=True)
    raw = project / "data" / "01_raw"
    raw.mkdir(parents=True)  # `--tools none` makes no data folders
    rng = random.Random(1)
    rows = [f"s{i % 3},{rng.gauss(10 * (i % 3 + 1), 1):.3f}" for i in range(300)]
    (raw / "readings.csv").write_text("sensor,value\n" + "\n".join(rows) + "\n")
    ok(project, "kedro", "run", "--pipeline", "fit")
    return project


@pytest.fixture(scope="module")
def broker(project: Path) -> Iterator[str]:
    """``kedro-stream broker --port P`` from the project, as a user starts it for scripts."""
    port = free_port()
    process = subprocess.Popen(
        # One partition: the records below arrive as one batch.
        [str(BIN / "kedro-stream"), "broker", "--port", str(port), *TOPIC_WITH_ONE_PARTITION],
        cwd=project,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline().strip()  # blocks until the broker is up
        assert first == f"{BOOTSTRAP_PREFIX}127.0.0.1:{port}"
        yield first.removeprefix(BOOTSTRAP_PREFIX)
    finally:
        process.terminate()
        process.wait(timeout=10)


def dead_letters(bootstrap: str, topic: str, count: int) -> list[dict[str, str]]:
    """The headers of the first ``count`` dead letters, keyed by name, with the value."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "dlq-reader", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    found: list[dict[str, str]] = []
    try:
        for _ in range(60):  # bounded: at most 60 polls of 0.5 s
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            headers = {k: v.decode() for k, v in message.headers() or []}
            found.append({**headers, "value": (message.value() or b"").decode()})
            if len(found) == count:
                break
    finally:
        consumer.close()
    return found


def test_compile_checks_every_stream_without_a_broker(project: Path) -> None:
    done = ok(project, "kedro", "stream", "compile", "--pipeline", "detection")
    assert "stream detection" in done.stdout and "ok" in done.stdout
    assert "'enriched'" in " ".join(done.stdout.split())  # the unpublished output's warning

    typo = project / "conf" / "typo"
    typo.mkdir(exist_ok=True)
    stream_yml = (project / "conf" / "base" / "stream.yml").read_text()
    (typo / "stream.yml").write_text(stream_yml.replace("    on_failure:", "    on_falure:"))
    error = one_error(run(project, "kedro", "stream", "compile", "-e", "typo"))
    assert (
        "streams.detection.on_falure: Extra inputs are not permitted "
        "(did you mean 'on_failure'?)" in error
    )


def test_a_stream_in_a_user_project(project: Path, broker: str) -> None:
    """Default logging: machine lines alone on stdout, kedro-stream's progress on stderr, no
    library noise; a failed batch keeps the decode error of its undecodable record."""
    lines = [
        json.dumps({"sensor": "s0", "value": 10.2}),
        "not json",
        json.dumps({"sensor": "zz", "value": 1.0}),  # an unknown sensor: the node raises
        json.dumps({"sensor": "s1", "value": 50.0}),
    ]
    records = project / "readings.jsonl"
    records.write_text("\n".join(lines) + "\n")
    to_broker = ("--bootstrap-servers", broker)
    ok(project, "kedro", "stream", "produce", "-t", "readings", "-f", str(records), *to_broker)

    consume = ("kedro", "stream", "consume", "--topic", "readings", *to_broker)
    done = ok(project, *consume, "--idle-timeout-s", "3", "--metrics-port", "0")

    ours = [line for line in done.stdout.splitlines() if "=" in line and "://" in line]
    assert [line.split("=")[0] for line in ours] == ["metrics", "healthz", "readyz"]
    assert "committed 4 records" in done.stdout
    log = log_text(done.stderr)
    assert "Assigned readings[0]" in log  # INFO lines of kedro-stream reach stderr
    assert "Namespace 'detection' outputs ['enriched'], which stream.yml does not publish" in log
    assert not any(noise in done.stdout + done.stderr for noise in NOISE)

    by_value = {d["value"]: d for d in dead_letters(broker, "readings.dlq", 4)}
    assert by_value["not json"]["kedro-stream.error.stage"] == "decode"
    assert by_value["not json"]["kedro-stream.error.class"] == "DecodeError"
    poison = by_value[lines[2]]
    assert (poison["kedro-stream.error.stage"], poison["kedro-stream.error.class"]) == (
        "pipeline",
        "KeyError",
    )


def test_exactly_once_on_the_development_broker_is_warned_of(project: Path, broker: str) -> None:
    consume = ("kedro", "stream", "consume", "-t", "readings", "--bootstrap-servers", broker)
    done = ok(
        project,
        *consume,
        "--guarantee",
        "exactly-once",
        "--group-id",
        "eos",
        "--idle-timeout-s",
        "2",
    )
    assert "Exactly-once on the development broker" in log_text(done.stderr)


def test_each_first_hour_mistake_is_one_error_line(project: Path, broker: str) -> None:
    consume = ("kedro", "stream", "consume", "-t", "readings", "--bootstrap-servers", broker)
    consume += ("--idle-timeout-s", "1")

    assert "pipelines: '__default__', 'detection', 'fit'" in one_error(
        run(project, *consume, "-p", "detectoin")
    )
    assert "Environment 'prod' has no folder conf/prod" in one_error(
        run(project, *consume, "-e", "prod")
    )
    assert "No stream in stream.yml reads topic 'reading';" in one_error(
        run(project, *consume[:4], "reading", *consume[5:])
    )

    artifact = project / "data" / "06_models" / "reference_stats.json"
    moved = artifact.with_suffix(".bak")
    artifact.rename(moved)
    try:
        error = one_error(run(project, *consume))
        preflight = run(project, "kedro", "stream", "compile", "--pipeline", "detection")
    finally:
        moved.rename(artifact)
    assert "Artifact 'reference_stats'" in error and "kedro run --pipeline fit" in error
    assert preflight.returncode != 0
    assert "create it with `kedro run --pipeline fit`" in " ".join(preflight.stdout.split())

    avro = project / "conf" / "avro"
    avro.mkdir(exist_ok=True)
    stream_yml = (project / "conf" / "base" / "stream.yml").read_text()
    (avro / "stream.yml").write_text(
        stream_yml.replace(
            "      dataset: readings\n",
            "      dataset: readings\n      format: avro\n      schema: schemas/reading.avsc\n",
        )
    )
    error = one_error(run(project, *consume, "-e", "avro"))
    assert "input.schema:" in error and "reading.avsc does not exist" in error

    schema = project / "schemas" / "reading.avsc"
    schema.parent.mkdir(exist_ok=True)
    fields = [{"name": "sensor", "type": "string"}, {"name": "value", "type": "double"}]
    schema.write_text(json.dumps({"type": "record", "name": "Reading", "fields": fields}))
    bad = project / "bad.jsonl"
    bad.write_text('{"sensor": "s0", "value": 1.5}\n{"sensor": "s0", "value": "high"}\n')
    produce = ("kedro", "stream", "produce", "-t", "readings-avro", "-f", str(bad))
    produce += ("--format", "avro", "--schema", str(schema), "--bootstrap-servers", broker)
    error = one_error(run(project, *produce))
    assert error.startswith("Error: line 2 of bad.jsonl does not match the schema")


def test_an_unreachable_broker_is_said_once_then_one_error_line(project: Path) -> None:
    """A closed port: librdkafka's ~25 lines a second become one warning in kedro-stream's
    words, and a consume that never reached Kafka before its idle timeout fails."""
    address = f"127.0.0.1:{free_port()}"  # nothing listens there once the probe socket closed
    consume = ("kedro", "stream", "consume", "-t", "readings", "--bootstrap-servers", address)
    done = run(project, *consume, "--idle-timeout-s", "4")

    error = one_error(done)
    assert error.startswith(f"Error: Never reached Kafka at {address} within 4 s"), error
    output = done.stdout + done.stderr
    assert "%3|" not in output and "Connect to ipv4" not in output, output
    log = log_text(done.stderr)
    assert log.count(f"Cannot reach Kafka at {address} (connection refused); retrying") == 1, log
    assert "committed" not in done.stdout
    # Kedro's boot lines, the unpublished-output warning, ours: a handful of records in all.
    records = re.findall(r" (?:DEBUG|INFO|WARNING|ERROR) ", done.stderr)
    assert len(records) <= 8, output
