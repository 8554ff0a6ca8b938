"""``kedro stream reset``, ``lag`` and ``produce`` as a user runs them: separate processes, the
project's stream.yml, credentials that never show."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from kedro_stream.testing.brokers import create_topic
from tests.conftest import KEDRO, kedro, run_kedro
from tests.kafka_helpers import committed, produce_keyed

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
SECRET = "s3cret-e2e-0b7a"


def write_stream(project: Path, source: str, group: str, kafka: dict[str, Any]) -> None:
    stream = {
        "namespace": "slow",
        "pipeline": "slow",
        "group_id": group,
        "input": {"topics": [source], "dataset": "batch"},
        "outputs": {"echoed": {"topic": f"{source}-out"}},
    }
    config = {"kafka": kafka, "streams": {"slow": stream}}
    (project / "conf" / "base" / "stream.yml").write_text(yaml.safe_dump(config))


def rows(output: str) -> list[list[str]]:
    """The cells of each row of a rich table."""
    return [
        [cell.strip() for cell in line.strip("│ ").split("│")]
        for line in output.splitlines()
        if line.startswith("│")
    ]


@pytest.mark.unsupported_broker(
    "tansu", "its high watermark is the start of the last batch + 1, so lag reads wrong"
)
def test_reset_as_a_user(kafka_broker: Any, mini_project: Path) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    run_id = uuid.uuid4().hex[:8]
    source, group = f"ops-in-{run_id}", f"ops-{run_id}"
    write_stream(mini_project, source, group, {"bootstrap_servers": bootstrap})
    create_topic(kafka_broker, source, 1)
    (mini_project / "ids.jsonl").write_text("".join(f'{{"id": {i}}}\n' for i in range(30)))
    produced = kedro(mini_project, "stream", "produce", "-t", source, "-f", "ids.jsonl")
    assert "delivered 30 of 30 records" in produced.stdout
    reset = ("stream", "reset", "--group", group, "--topic", source)

    dry = kedro(mini_project, *reset, "--to-offset", "2")
    assert committed(bootstrap, group, source) == {}
    done = kedro(mini_project, *reset, "--to-offset", "2", "--execute")
    back = kedro(mini_project, *reset, "--shift-by", "-5")
    lag = kedro(mini_project, "stream", "lag", "--group", group, "--topic", source)

    # partition, current, new, lag now, lag after, change
    assert rows(dry.stdout) == [
        ["0", "-", "2", "30", "28", "-2"],
        ["total", "", "", "30", "28", "-2"],
    ]
    assert "dry run: nothing changed; add --execute to apply" in dry.stdout
    assert f"committed the new offsets of group {group}" in done.stdout
    assert committed(bootstrap, group, source) == {0: 2}
    assert rows(back.stdout)[0] == ["0", "2", "0", "28", "30", "+2"]  # clamped at the start
    assert rows(lag.stdout)[0] == [source, "0", "2", "30", "28"]
    unsure = run_kedro(mini_project, *reset, "--to-earliest", "--to-latest")
    assert unsure.returncode == 2
    assert "give exactly one of --to-earliest, --to-latest, --to-offset" in unsure.stderr


@pytest.mark.unsupported_broker(
    "tansu", "its high watermark is the start of the last batch + 1, so lag reads wrong"
)
def test_lag_without_a_topic_shows_the_partitions_the_group_consumed(
    kafka_broker: Any, mini_project: Path
) -> None:
    """From stream.yml's streams of the group when it has some (a topic it never committed on
    too); else from the group's own commits (which the development broker lists only
    partition by partition)."""
    bootstrap = kafka_broker.bootstrap_servers
    run_id = uuid.uuid4().hex[:8]
    source, group = f"lag-in-{run_id}", f"lag-{run_id}"
    idle = f"{source}-idle"  # read by the stream, never produced to
    write_stream(mini_project, source, "another-group", {"bootstrap_servers": bootstrap})
    create_topic(kafka_broker, source, 2)
    create_topic(kafka_broker, idle, 1)
    produce_keyed(bootstrap, source, ((str(i).encode(), b'{"id": 1}') for i in range(30)))
    consume = ("stream", "consume", "-t", source, "--group-id", group, "--max-messages", "30")
    kedro(mini_project, *consume, "--idle-timeout-s", "30")
    offsets = committed(bootstrap, group, source)
    assert sorted(offsets) == [0, 1] and sum(offsets.values()) == 30  # both partitions consumed
    expected = [[source, str(p), str(n), str(n), "0"] for p, n in sorted(offsets.items())]

    # stream.yml has no stream of this group: the group's commits
    from_commits = kedro(mini_project, "stream", "lag", "--group", group)
    write_stream(mini_project, source, group, {"bootstrap_servers": bootstrap})
    path = mini_project / "conf" / "base" / "stream.yml"
    config = yaml.safe_load(path.read_text())
    config["streams"]["slow"]["input"]["topics"].append(idle)
    path.write_text(yaml.safe_dump(config))
    from_stream_yml = kedro(mini_project, "stream", "lag", "--group", group)
    typo = run_kedro(mini_project, "stream", "lag", "--group", group, "--topic", f"{source}x")

    assert rows(from_commits.stdout) == [*expected, ["total", "", "", "", "0"]]
    assert rows(from_stream_yml.stdout) == [
        *expected,
        [idle, "0", "-", "0", "0"],
        ["total", "", "", "", "0"],
    ]
    assert typo.returncode == 1
    [error] = [line for line in typo.stderr.splitlines() if line.startswith("Error:")]
    assert error.startswith(
        f"Error: topic '{source}x' does not exist (did you mean '{source}'?); topics: "
    )


def test_produce_to_a_topic_no_stream_reads_warns_then_delivers(
    kafka_broker: Any, mini_project: Path
) -> None:
    run_id = uuid.uuid4().hex[:8]
    source, typo = f"clicks-{run_id}", f"click-{run_id}"
    write_stream(mini_project, source, f"g-{run_id}", {})
    for topic in (source, typo):  # producing to any topic is legitimate: both exist
        create_topic(kafka_broker, topic, 1)
    (mini_project / "ids.jsonl").write_text('{"id": 1}\n{"id": 2}\n')
    produce = ("stream", "produce", "-f", "ids.jsonl", "--bootstrap-servers")

    to_typo = kedro(mini_project, *produce, kafka_broker.bootstrap_servers, "-t", typo)
    to_source = kedro(mini_project, *produce, kafka_broker.bootstrap_servers, "-t", source)

    assert f"delivered 2 of 2 records to {typo}" in to_typo.stdout
    assert (
        f"warning: no stream of stream.yml reads {typo} (did you mean '{source}'?); its streams "
        f"read {source}"
    ) in to_typo.stderr.splitlines()
    assert f"delivered 2 of 2 records to {source}" in to_source.stdout
    assert "no stream of stream.yml reads" not in to_source.stderr


def test_no_command_shows_a_secret_or_librdkafkas_noise(
    kafka_broker: Any, mini_project: Path
) -> None:
    """The test broker has no SASL listener: every client's authentication fails, so each
    command gives up after its bounded wait, saying so in one line."""
    kafka = {
        "bootstrap_servers": kafka_broker.bootstrap_servers,
        "credentials": "kafka",
        "client": {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN"},
    }
    write_stream(mini_project, "ops-secret", "ops-secret", kafka)
    credentials = {"kafka": {"sasl.username": "svc-ops", "sasl.password": SECRET}}
    (mini_project / "conf" / "local" / "credentials.yml").write_text(yaml.safe_dump(credentials))
    (mini_project / "ids.jsonl").write_text('{"id": 1}\n')
    commands = {
        "produce": ["produce", "-t", "ops-secret", "-f", "ids.jsonl"],
        "lag": ["lag", "--group", "ops-secret"],
        "reset": ["reset", "--group", "ops-secret", "-t", "ops-secret", "--to-earliest"],
        "unreachable": ["lag", "--group", "ops-secret", "--bootstrap-servers", "127.0.0.1:1"],
    }
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "COLUMNS": "200"}
    started = {
        name: subprocess.Popen(
            [KEDRO, "stream", *args],
            cwd=mini_project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, args in commands.items()
    }
    finished = {name: process.communicate(timeout=120) for name, process in started.items()}

    for name, (out, err) in finished.items():
        address = "127.0.0.1:1" if name == "unreachable" else kafka_broker.bootstrap_servers
        assert started[name].returncode == 1, (name, out, err)
        errors = [line for line in err.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, (name, err)
        assert re.match(
            rf"Error: cannot reach Kafka at {re.escape(address)} within 10 s", errors[0]
        )
        assert SECRET not in out + err, name
        assert "Traceback" not in err and not re.search(r"^%\d\|", err, re.MULTILINE), (name, err)
