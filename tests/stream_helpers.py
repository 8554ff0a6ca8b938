"""Edit the example project's stream.yml and run its stream in-process, as the CLI would."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from kedro_stream.service.app import consume, load_config
from kedro_stream.service.loop import Progress

STREAM = "payment-scoring"


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
        project,
        env=None,
        topic=names["input"],
        namespace=None,
        overrides={},
        bootstrap_servers=bootstrap,
    )
    return consume(project, kafka, stream, env=None, **limits)


def payments(project: Path, count: int, start: int = 0) -> list[dict[str, Any]]:
    events = pd.read_json(project / "data/01_raw/payments.jsonl", lines=True, dtype=False)
    return json.loads(events.iloc[start : start + count].to_json(orient="records"))
