"""The crash loop with per-key state: 100 000 events keyed by account stream in while the consumer
is SIGKILLed ten times, at-least-once.

After the last instance drains the topic, every account's state (in the stores the last
instance left, and as rebuilt from the changelog alone) equals the state recomputed from the
input log, and every feature row published, duplicates included, equals what one batch over all
events computes: no update was applied twice, none was lost.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from confluent_kafka import Consumer, Producer

from kedro_stream.config import KafkaConfig, StreamConfig
from kedro_stream.kafka.clients import restore_consumer_config
from kedro_stream.state.restore import restore
from kedro_stream.state.rows import decode_row
from kedro_stream.state.store import PartitionStore
from kedro_stream.testing.brokers import create_topic
from tests.conftest import KEDRO
from tests.kafka_helpers import committed, read_topic, wait_until
from tests.stream_helpers import run_last_instance

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
TOTAL, KILLS, PARTITIONS, ACCOUNTS = 100_000, 10, 16, 2_000
ENV = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
CRASH_LOOP_BUDGET_S = 1200


def event(i: int) -> dict[str, Any]:
    account = (i * 7919) % ACCOUNTS
    return {
        "id": i,
        "account": f"acct-{account:04d}",
        "amount": round(0.5 + (i % 17) * 1.13 + i / 1000, 6),
        "event_time": 1_700_000_000 + i,
    }


def partition_of(account: str) -> int:
    return int(account.rsplit("-", 1)[1]) % PARTITIONS  # one partition per key, always


def produce(bootstrap: str, topic: str, rows: list[dict[str, Any]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for row in rows:
        account = row["account"]
        producer.produce(
            topic, json.dumps(row).encode(), account.encode(), partition=partition_of(account)
        )
        producer.poll(0)
    assert producer.flush(60) == 0


def expected(rows: list[dict[str, Any]]) -> tuple[dict[int, dict], dict[str, dict]]:
    """Features per event and the final row per account, as `kedro run` computes them."""
    from mini_project.nodes import tally

    empty = pd.DataFrame(columns=["account", "count", "total", "last"])
    features, updates = tally(pd.DataFrame(rows), empty)
    by_id = {r["id"]: r for r in features.to_dict(orient="records")}
    return by_id, {r["account"]: r for r in updates.to_dict(orient="records")}


def configure(project: Path, names: dict[str, str]) -> None:
    stream = {
        "namespace": "tally",
        "pipeline": "tally",
        "group_id": names["group"],
        "input": {"topics": [names["input"]], "dataset": "events"},
        "outputs": {"features": {"topic": names["features"], "key": "account"}},
        "state": {
            "activity": {"input": "activity", "updates": "activity_updates", "key": "account"}
        },
        "batch": {"max_size": 1000, "max_wait_ms": 100},
    }
    consumer = {"fetch.wait.max.ms": 20, "session.timeout.ms": 3000, "heartbeat.interval.ms": 300}
    config = {"kafka": {"consumer": consumer}, "streams": {"tally": stream}}
    (project / "conf" / "base" / "stream.yml").write_text(yaml.safe_dump(config))


def stream_names(kafka_broker: Any, project: Path, prefix: str) -> dict[str, str]:
    """Fresh topics (input, features, changelog) laid out alike, and the stream on them."""
    run = uuid.uuid4().hex[:6]
    names = {
        "input": f"{prefix}-events-{run}",
        "features": f"{prefix}-features-{run}",
        "group": f"{prefix}-group-{run}",
    }
    names["changelog"] = f"{names['group']}-activity-changelog"
    for topic in ("input", "features", "changelog"):
        create_topic(kafka_broker, names[topic], PARTITIONS)
    configure(project, names)
    return names


def log_text(path: Path) -> str:
    """A log file as one line: rich (the project's default logging) wraps records and adds a
    file:line column."""
    return re.sub(r" \S+\.py:\d+", "", " ".join(path.read_text().split()))


def owned(log: Path, topic: str) -> set[int]:
    """The partitions of ``topic`` that the "Assigned" and "Revoked" lines of ``log`` leave its
    service (assignments are incremental under cooperative-sticky)."""
    held: set[int] = set()
    pattern = rf"(Assigned|Revoked) ((?:{re.escape(topic)}\[\d+\],? ?)+)"
    for verb, listed in re.findall(pattern, log_text(log)):
        partitions = {int(p) for p in re.findall(r"\[(\d+)\]", listed)}
        held = held | partitions if verb == "Assigned" else held - partitions
    return held


def progress(bootstrap: str, names: dict[str, str]) -> int:
    return sum(committed(bootstrap, names["group"], names["input"]).values())


def same_row(got: dict[str, Any], want: dict[str, Any]) -> bool:
    gap = None if pd.isna(want.get("gap")) else want.get("gap")
    return (
        got["count"] == want["count"]
        and abs(got["total"] - want["total"]) <= 1e-9
        and got["last"] == want["last"]
        and got.get("gap", gap) == gap
    )


def rebuilt_state(
    bootstrap: str, names: dict[str, str], project: Path, folder: Path
) -> dict[str, dict]:
    """Every account's row as a new instance would restore it from the changelog alone."""
    config = yaml.safe_load((project / "conf" / "base" / "stream.yml").read_text())
    stream = StreamConfig.model_validate(config["streams"]["tally"])
    offsets = committed(bootstrap, names["group"], names["input"])
    consumer = Consumer(restore_consumer_config(KafkaConfig(bootstrap_servers=bootstrap), stream))
    stores = {p: PartitionStore(folder / str(p)) for p in range(PARTITIONS)}
    try:
        restore(stores, consumer, names["changelog"], {p: offsets.get(p) for p in stores})
        return rows_of(stores.values())
    finally:
        consumer.close()
        for store in stores.values():
            store.close()


def rows_of(stores: Iterable[PartitionStore]) -> dict[str, dict]:
    rows = (decode_row(value) for store in stores for _, value in store.items())
    return {row["account"]: row for row in rows}


@pytest.mark.timeout(CRASH_LOOP_BUDGET_S)
def test_state_survives_ten_sigkills_with_no_update_counted_twice(
    kafka_broker: Any, mini_project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = stream_names(kafka_broker, mini_project, "state")
    bootstrap = kafka_broker.bootstrap_servers
    rows = [event(i) for i in range(TOTAL)]
    features, final = expected(rows)
    consume = [KEDRO, "stream", "consume", "--topic", names["input"]]
    consume += ["--bootstrap-servers", bootstrap, "--idle-timeout-s", "8"]
    if kafka_broker.faults is not None:
        # 20 ms to every broker widens the time between the acks and the commit, so that
        # some kills land there: changelog rows of batches that never committed.
        kafka_broker.faults.set_rtt(-1, 20)
    rng = random.Random(11)
    chunk = TOTAL // KILLS
    try:
        with ThreadPoolExecutor(1) as producer:
            sending = []
            for kill in range(KILLS):
                part = rows[kill * chunk : (kill + 1) * chunk]
                sending.append(producer.submit(produce, bootstrap, names["input"], part))
                before = progress(bootstrap, names)
                service = subprocess.Popen(
                    consume,
                    cwd=mini_project,
                    env=ENV,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                try:
                    wait_until(lambda b=before: progress(bootstrap, names) > b, 90, "progress")
                    time.sleep(rng.uniform(0.0, 0.5))  # a random point in the next batches
                finally:
                    service.send_signal(signal.SIGKILL)
                    service.wait(timeout=10)
            for sent in sending:
                sent.result(timeout=120)
    finally:
        if kafka_broker.faults is not None:
            kafka_broker.faults.reset()
    run_last_instance(consume, mini_project, TOTAL - progress(bootstrap, names))
    assert progress(bootstrap, names) == TOTAL

    published = read_topic(bootstrap, names["features"], expect=None, timeout_s=120)
    seen: set[int] = set()
    wrong = []
    for message in published:
        row = json.loads(message.value())
        seen.add(row["id"])
        if not same_row(row, features[row["id"]]):
            wrong.append((row, features[row["id"]]))
    assert not wrong, f"{len(wrong)} feature rows differ from the batch computation: {wrong[:3]}"
    assert seen == set(features)
    with capsys.disabled():
        sys.stdout.write(f"\nstate crash loop: {len(published)} feature rows for {TOTAL} events\n")

    state_dir = mini_project / "data" / "state" / names["group"] / "activity"
    left = [PartitionStore(path) for path in sorted(p for p in state_dir.iterdir() if p.is_dir())]
    try:
        stores = rows_of(left)
    finally:
        for store in left:
            store.close()
    rebuilt = rebuilt_state(bootstrap, names, mini_project, tmp_path / "rebuilt")
    for label, state in (("left by the last instance", stores), ("rebuilt", rebuilt)):
        assert state.keys() == final.keys(), label
        bad = [a for a, row in final.items() if not same_row(state[a], row)]
        assert not bad, f"state {label}: {len(bad)} accounts differ, e.g. {bad[:3]}"


@pytest.mark.timeout(600)
def test_a_survivor_restores_the_partitions_of_a_killed_member(
    kafka_broker: Any, mini_project: Path
) -> None:
    """Two instances in one group, each with a disk of its own (environments ``a`` and ``b``);
    one is SIGKILLed mid-stream. The survivor restores its partitions from the changelog, and
    every feature still equals the batch computation."""
    names = stream_names(kafka_broker, mini_project, "handover")
    bootstrap = kafka_broker.bootstrap_servers
    base = yaml.safe_load((mini_project / "conf" / "base" / "stream.yml").read_text())
    for env in ("a", "b"):
        (mini_project / "conf" / env).mkdir()
        base["streams"]["tally"]["state_dir"] = f"data/state-{env}"
        (mini_project / "conf" / env / "stream.yml").write_text(yaml.safe_dump(base))
    rows = [event(i) for i in range(20_000)]
    features, final = expected(rows)

    def start(env: str, log: Path) -> subprocess.Popen[bytes]:
        command = [KEDRO, "stream", "consume", "--topic", names["input"], "--env", env]
        command += ["--bootstrap-servers", bootstrap, "--idle-timeout-s", "10"]
        return subprocess.Popen(
            command, cwd=mini_project, env=ENV, stdout=subprocess.DEVNULL, stderr=log.open("wb")
        )

    doomed_log, survivor_log = mini_project / "a.log", mini_project / "b.log"
    doomed = start("a", doomed_log)
    survivor = start("b", survivor_log)
    try:
        # The group settles before the records come, so that each member has records of its
        # own partitions to process: a killed while handing partitions over would leave b with
        # none until a's session expired, past b's idle timeout.
        def settled() -> bool:
            a, b = owned(doomed_log, names["input"]), owned(survivor_log, names["input"])
            return bool(a) and bool(b) and not a & b

        wait_until(settled, 90, "the partitions shared by a and b")
        mine = owned(doomed_log, names["input"])
        produce(bootstrap, names["input"], rows[:10_000])

        def doomed_committed() -> bool:
            # a's partitions are a's alone: their offsets move only when a commits, after its
            # changelog records are acknowledged.
            now = committed(bootstrap, names["group"], names["input"])
            return any(now.get(p, 0) > 0 for p in mine)

        wait_until(doomed_committed, 90, "a commit by a")
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
    produce(bootstrap, names["input"], rows[10_000:])
    assert survivor.wait(timeout=300) == 0, survivor_log.read_text()[-2000:]
    assert progress(bootstrap, names) == len(rows)

    log = log_text(survivor_log)
    restored = re.findall(r"Restored state activity of .+? in [\d.]+ s: (\d+) changelog", log)
    assert any(int(n) > 0 for n in restored), "the survivor restored nothing from the changelog"
    published = read_topic(bootstrap, names["features"], expect=None, timeout_s=60)
    wrong = [
        row
        for row in (json.loads(m.value()) for m in published)
        if not same_row(row, features[row["id"]])
    ]
    assert not wrong, f"{len(wrong)} feature rows differ, e.g. {wrong[:2]}"
    assert {json.loads(m.value())["id"] for m in published} == set(features)
    stores = [
        PartitionStore(path)
        for path in sorted(
            (mini_project / "data" / "state-b" / names["group"] / "activity").iterdir()
        )
    ]
    try:
        held = rows_of(stores)
    finally:
        for store in stores:
            store.close()
    assert held.keys() == final.keys()
    assert all(same_row(held[a], row) for a, row in final.items())
