"""The crash loop: 100 000 payments streamed in while the consumer is SIGKILLed at random points
ten times and restarted, in both guarantees.

At-least-once: every good input has at least one output (duplicates counted and reported, never
lost) and every poison record is in the dead-letter topic. Exactly-once: the same, plus, on a
broker whose read_committed readers hide aborted transactions, exactly one output per input.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition

from kedro_stream.testing.brokers import BrokerHandle, create_topic
from tests.conftest import copy_project
from tests.kafka_helpers import assert_retained, committed, partitions, read_topic, wait_until
from tests.stream_helpers import configure, consume_command, fast_group, payments, topics

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
TOTAL, KILLS, POISON_EVERY, PARTITIONS = 100_000, 10, 97, 16
ENV = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}


@dataclass(frozen=True)
class CrashRun:
    names: dict[str, str]
    good: set[str]
    poison: set[bytes]
    committed: int
    #: After each kill: committed records whose output was not in the output topic.
    ahead_at_kills: list[int]


def good_id(i: int) -> str | None:
    return None if i % POISON_EVERY == 0 else f"c-{i:06d}"


def inputs(project: Path) -> tuple[list[bytes], set[str], set[bytes]]:
    pool = payments(project, 20_000)
    values, good, poison = [], set(), set()
    for i in range(TOTAL):
        payment_id = good_id(i)
        if payment_id is None:
            value = f'{{"poison": {i}'.encode()  # truncated JSON, unique per record
            poison.add(value)
        else:
            good.add(payment_id)
            value = json.dumps({**pool[i % len(pool)], "payment_id": payment_id}).encode()
        values.append(value)
    return values, good, poison


def produce_in_order(bootstrap: str, topic: str, values: list[bytes], start: int) -> None:
    """Record ``i`` to partition ``i % PARTITIONS``, in order: it lands at offset
    ``i // PARTITIONS``, so a committed offset names exactly the records it claims."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    first: dict[int, int] = {}

    def delivered(err: object, msg: Message) -> None:
        if err is None:
            first.setdefault(msg.partition(), msg.offset())

    for i, value in enumerate(values, start):
        producer.produce(topic, value, partition=i % PARTITIONS, on_delivery=delivered)
        producer.poll(0)
    assert producer.flush(60) == 0
    assert_retained(bootstrap, topic, first)


def claimed(offsets: dict[int, int]) -> set[str]:
    """The good records that committed ``offsets`` say are done."""
    indices = (p + k * PARTITIONS for p, offset in offsets.items() for k in range(offset))
    return {payment_id for i in indices if (payment_id := good_id(i)) is not None}


def missing_outputs(bootstrap: str, topic: str, expected: set[str], timeout_s: float) -> set[str]:
    """Which of ``expected`` has no output in ``topic``: reads until all are seen or the
    timeout (no watermarks needed, so it holds on brokers whose watermarks are wrong)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"crash-check-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 20,
        }
    )
    missing = set(expected)
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        deadline = time.monotonic() + timeout_s
        while missing and time.monotonic() < deadline:
            for message in consumer.consume(5000, 0.2):
                if message.error() is None:
                    missing.discard(json.loads(message.value())["payment_id"])
    finally:
        consumer.close()
    return missing


def crash_loop(handle: BrokerHandle, project: Path, guarantee: str) -> CrashRun:
    """Stream the inputs in while killing the consumer ``KILLS`` times, then let a last
    instance drain the topic."""
    names = topics(f"crash-{guarantee}")
    bootstrap = handle.bootstrap_servers
    # 16 partitions keep each one far below the embedded broker's ~5 MiB retention.
    for topic in ("input", "scores", "alerts", "dlq"):
        create_topic(handle, names[topic], partitions=PARTITIONS)
    configure(project, names, **{"batch.max_size": 1000, "guarantee": guarantee})
    fast_group(project)
    values, good, poison = inputs(project)
    consume = consume_command(names, bootstrap, "--idle-timeout-s", "8")
    if handle.faults is not None:
        # 20 ms to every broker widens the time between the outputs' acks and the commit, so
        # some kills land there (they show up as duplicates).
        handle.faults.set_rtt(-1, 20)
    try:
        ahead_at_kills = stream_in_and_kill(project, names, bootstrap, values, consume)
    finally:
        if handle.faults is not None:
            handle.faults.reset()
    final = subprocess.run(
        consume, cwd=project, env=ENV, capture_output=True, text=True, timeout=300, check=False
    )
    assert final.returncode == 0, final.stderr[-2000:]
    for output in ("scores", "dlq"):  # a broker that dropped outputs is not a lost output
        everything = dict.fromkeys(partitions(bootstrap, names[output]), 0)
        assert_retained(bootstrap, names[output], everything)
    return CrashRun(names, good, poison, progress(bootstrap, names), ahead_at_kills)


def progress(bootstrap: str, names: dict[str, str]) -> int:
    return sum(committed(bootstrap, names["group"], names["input"]).values())


def stream_in_and_kill(
    project: Path, names: dict[str, str], bootstrap: str, values: list[bytes], consume: list[str]
) -> list[int]:
    """A tenth of the inputs is produced as each instance starts, so it meets a growing
    backlog; it is SIGKILLed at a random point after its first commit. After each kill, the
    committed offsets are read and then the outputs: returns, per kill, how many committed
    records had no output (a commit ahead of its outputs)."""
    rng = random.Random(7)
    chunk = len(values) // KILLS
    ahead_at_kills = []
    with ThreadPoolExecutor(1) as producer:
        streaming = []
        for kill in range(KILLS):
            start = kill * chunk
            sending = values[start : start + chunk]
            streaming.append(
                producer.submit(produce_in_order, bootstrap, names["input"], sending, start)
            )
            before = progress(bootstrap, names)
            service = subprocess.Popen(
                consume, cwd=project, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            try:
                wait_until(
                    lambda b=before: progress(bootstrap, names) > b, 90, "progress", every_s=0.1
                )
                time.sleep(rng.uniform(0.0, 0.5))  # a random point in the next batches
            finally:
                service.send_signal(signal.SIGKILL)
                service.wait(timeout=10)
            done = claimed(committed(bootstrap, names["group"], names["input"]))
            ahead_at_kills.append(len(missing_outputs(bootstrap, names["scores"], done, 30)))
        for sent in streaming:
            sent.result(timeout=120)
    return ahead_at_kills


def reconciliation(run: CrashRun, outputs: Counter[str], dead: Counter[bytes]) -> str:
    rows = [
        ("good", run.good, outputs),
        ("poison", run.poison, dead),
    ]
    lines = [f"{'records':<8}{'inputs':>9}{'with output':>13}{'missing':>9}{'duplicates':>12}"]
    for name, sent, seen in rows:
        found = len(sent & seen.keys())
        extra = sum(seen.values()) - len(seen)
        lines.append(f"{name:<8}{len(sent):>9}{found:>13}{len(sent) - found:>9}{extra:>12}")
    return "\n".join(lines)


def check_nothing_lost(
    handle: BrokerHandle, run: CrashRun, title: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bootstrap = handle.bootstrap_servers
    outputs = Counter(
        json.loads(m.value())["payment_id"]
        for m in read_topic(bootstrap, run.names["scores"], timeout_s=120)  # duplicates too
    )
    dead = Counter(m.value() for m in read_topic(bootstrap, run.names["dlq"], timeout_s=60))
    table = reconciliation(run, outputs, dead)
    table += f"\ncommitted records without output, after each kill: {run.ahead_at_kills}"
    with capsys.disabled():
        sys.stdout.write(f"\ncrash loop, {title}, {KILLS} SIGKILLs:\n{table}\n")
    assert not any(run.ahead_at_kills), table
    assert run.committed == TOTAL
    assert run.good <= outputs.keys(), table
    assert run.poison <= dead.keys(), table
    assert outputs.keys() <= run.good, "an output for an input that was never sent"


def test_at_least_once_sigkill_ten_times_loses_nothing(
    kafka_broker, stream_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = crash_loop(kafka_broker, stream_project, "at-least-once")
    check_nothing_lost(kafka_broker, run, "at-least-once", capsys)


@pytest.fixture(scope="module")
def exactly_once_run(kafka_broker, project_after_kedro_run: Path, tmp_path_factory) -> CrashRun:
    """One exactly-once crash loop shared by the checks below. It skips itself on the embedded
    broker (module fixtures are set up before ``unsupported_broker`` markers are read)."""
    if kafka_broker.kind == "embedded":
        pytest.skip(
            "unsupported on the embedded broker: the librdkafka mock does not store offsets sent "
            "with send_offsets_to_transaction, so a restart never moves on"
        )
    project = copy_project(
        project_after_kedro_run, tmp_path_factory.mktemp("eos") / "project", with_data=True
    )
    return crash_loop(kafka_broker, project, "exactly-once")


def test_exactly_once_sigkill_ten_times_loses_nothing(
    kafka_broker, exactly_once_run: CrashRun, capsys: pytest.CaptureFixture[str]
) -> None:
    check_nothing_lost(kafka_broker, exactly_once_run, "exactly-once, read_uncommitted", capsys)


@pytest.mark.unsupported_broker("tansu", "Tansu's read_committed readers see aborted records")
def test_exactly_once_sigkill_ten_times_outputs_each_input_once(
    kafka_broker, exactly_once_run: CrashRun, capsys: pytest.CaptureFixture[str]
) -> None:
    scores = read_topic(
        kafka_broker.bootstrap_servers,
        exactly_once_run.names["scores"],
        timeout_s=120,
        isolation="read_committed",
    )
    outputs = Counter(json.loads(m.value())["payment_id"] for m in scores)
    dead = Counter(
        m.value()
        for m in read_topic(
            kafka_broker.bootstrap_servers,
            exactly_once_run.names["dlq"],
            timeout_s=60,
            isolation="read_committed",
        )
    )
    table = reconciliation(exactly_once_run, outputs, dead)
    with capsys.disabled():
        sys.stdout.write(f"\ncrash loop, exactly-once, read_committed:\n{table}\n")
    assert outputs == Counter(exactly_once_run.good), table
    assert dead == Counter(exactly_once_run.poison), table
