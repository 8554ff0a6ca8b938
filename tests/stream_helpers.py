"""Edit the example project's stream.yml and run its stream in-process, as the CLI would."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from kedro_stream.config import Project, default_changelog_topic
from kedro_stream.service.app import consume, load_config
from kedro_stream.service.progress import Progress
from kedro_stream.testing.brokers import BrokerHandle, create_topic

STREAM = "payment-scoring"
#: Longer than the example's whole span of payments (30 days).
LAP_MS = 31 * 24 * 3_600_000
#: Both consumer group protocols, for the tests of rebalancing (see ``use_group_protocol``).
GROUP_PROTOCOLS = [
    "classic",
    pytest.param(
        "consumer",
        marks=pytest.mark.unsupported_broker(
            "tansu",
            "the next-generation group protocol (KIP-848) never assigns a partition: the "
            "service (and a bare subscribed consumer) waited 30 s with nothing assigned and no "
            "error, then stopped idle",
        ),
    ),
]


def topics(prefix: str = "t") -> dict[str, str]:
    """Fresh topic names, so tests on a shared broker never see each other's records."""
    run = uuid.uuid4().hex[:8]
    return {
        "input": f"{prefix}-payments-{run}",
        "features": f"{prefix}-features-{run}",
        "scores": f"{prefix}-scores-{run}",
        "alerts": f"{prefix}-alerts-{run}",
        "dlq": f"{prefix}-payments-{run}.dlq",
        "group": f"{prefix}-group-{run}",
    }


def changelog(names: dict[str, str]) -> str:
    """The example state's changelog topic: stream.yml's default name."""
    return default_changelog_topic(names["group"], "activity")


def create_input(handle: BrokerHandle, names: dict[str, str], partitions: int) -> None:
    """The input topic, and on the embedded broker the state's changelog laid out like it: that
    broker makes a missing topic with 4 partitions whatever is asked (no CreateTopics), so a
    user starts it with the changelog among its ``--topic``s. Other brokers let the service
    create it, compacted."""
    create_topic(handle, names["input"], partitions)
    if handle.kind == "embedded":
        create_topic(handle, changelog(names), partitions)


def configure(project: Path, names: dict[str, str], **changes: Any) -> None:
    """Point the example stream at ``names``' topics and apply ``changes`` (dotted keys)."""
    path = project / "conf" / "base" / "stream.yml"
    config = yaml.safe_load(path.read_text())
    stream = config["streams"][STREAM]
    stream["group_id"] = names["group"]
    stream["input"]["topics"] = [names["input"]]
    stream["outputs"]["payment_features"]["topic"] = names["features"]
    stream["outputs"]["scores"]["topic"] = names["scores"]
    stream["outputs"]["alerts"]["topic"] = names["alerts"]
    stream["dead_letter_topic"] = names["dlq"]
    stream["batch"]["max_wait_ms"] = 100
    config["kafka"]["consumer"].update({"fetch.wait.max.ms": 20, "heartbeat.interval.ms": 300})
    for key, value in changes.items():
        target = stream
        *parents, leaf = key.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    path.write_text(yaml.safe_dump(config))


def consume_command(names: dict[str, str], bootstrap: str, *options: str) -> list[str]:
    """``kedro stream consume`` of the example stream on ``names``' input topic."""
    from tests.conftest import KEDRO

    return [
        KEDRO,
        "stream",
        "consume",
        "--topic",
        names["input"],
        "--bootstrap-servers",
        bootstrap,
        *options,
    ]


def fast_group(project: Path) -> None:
    """Short sessions, so a killed member's partitions move on within seconds."""
    path = project / "conf" / "base" / "stream.yml"
    config = yaml.safe_load(path.read_text())
    config["kafka"]["consumer"].update({"session.timeout.ms": 3000, "heartbeat.interval.ms": 300})
    path.write_text(yaml.safe_dump(config))


def run_stream(project: Path, names: dict[str, str], bootstrap: str, **limits: Any) -> Progress:
    kafka, stream, _metrics = load_config(
        Project(project),
        env=None,
        topic=names["input"],
        namespace=None,
        overrides={},
        bootstrap_servers=bootstrap,
    )
    return consume(Project(project), kafka, stream, env=None, **limits)


def payments(project: Path, count: int, start: int = 0) -> list[dict[str, Any]]:
    events = pd.read_json(project / "data/01_raw/payments.jsonl", lines=True, dtype=False)
    return json.loads(events.iloc[start : start + count].to_json(orient="records"))


def pinned_payment(pool: list[dict[str, Any]], i: int, partitions: int, payment_id: str) -> dict:
    """Payment ``i`` of an endless stream cycling over ``pool``, for tests that write record
    ``i`` to partition ``i % partitions`` (so an offset names its record). Its account is
    renamed per partition, so every account lives on one partition as keyed records would, and
    each lap over ``pool`` comes later in event time, so every account's payments stay in
    event-time order: the velocity features then have one right answer."""
    base = pool[i % len(pool)]
    return {
        **base,
        "payment_id": payment_id,
        "account_id": f"{base['account_id']}-p{i % partitions}",
        "event_time": base["event_time"] + (i // len(pool)) * LAP_MS,
    }


def use_group_protocol(project: Path, protocol: str) -> None:
    """Consumers join with ``protocol``: ``classic`` or ``consumer`` (KIP-848). The classic-only
    settings other helpers write stay in stream.yml: the service drops them under KIP-848."""
    path = project / "conf" / "base" / "stream.yml"
    config = yaml.safe_load(path.read_text())
    config["kafka"]["consumer"]["group.protocol"] = protocol
    path.write_text(yaml.safe_dump(config))


def run_last_instance(consume: list[str], project: Path, rest: int) -> None:
    """The last instance of a crash loop: it stops once it has taken the ``rest`` records left
    uncommitted (or, short of them, when idle: the caller's check of the committed total then
    fails), instead of waiting out its idle timeout."""
    done = subprocess.run(
        [*consume, *(["--max-messages", str(rest)] if rest else [])],
        cwd=project,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
