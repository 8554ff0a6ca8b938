"""The crash loop: 100 000 payments streamed in while the consumer is SIGKILLed at random points
ten times and restarted, in both guarantees.

At-least-once: every good input has its velocity features, equal to the batch computation
(the per-account state survives every kill without counting a payment twice), its score, and
its alert when it scores at or above the threshold (duplicates counted and reported, never
lost), every poison record is in the
dead-letter topic as a decode error, and nothing else is in any of them. After every kill, no
committed record may lack any of its outputs. Exactly-once: the same, plus, on a broker whose
read_committed readers hide aborted transactions, exactly one output per input.
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
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition

from kedro_stream.testing.brokers import BrokerHandle, create_topic
from tests.conftest import copy_project
from tests.kafka_helpers import assert_retained, committed, partitions, read_topic, wait_until
from tests.reconcile import (
    Expected,
    assert_reconciled,
    expected_outputs,
    reconcile_alerts,
    reconcile_dead_letters,
    reconcile_features,
    reconcile_scores,
    table,
)
from tests.stream_helpers import (
    configure,
    consume_command,
    create_input,
    fast_group,
    payments,
    pinned_payment,
    run_last_instance,
    topics,
)

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
TOTAL, KILLS, POISON_EVERY, PARTITIONS = 100_000, 10, 97, 16
ENV = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
#: A budget for one crash loop with its checks: ten restarts, each joining the group, then a
#: full drain and reads of every output; Tansu's exactly-once restarts are the slowest.
CRASH_LOOP_BUDGET_S = 1200


@dataclass(frozen=True)
class CrashRun:
    names: dict[str, str]
    expected: Expected
    poison: set[bytes]
    committed: int
    #: After each kill: committed records lacking one of their outputs, in any output topic.
    ahead_at_kills: list[int]


def good_id(i: int) -> str | None:
    return None if i % POISON_EVERY == 0 else f"c-{i:06d}"


def poison_value(i: int) -> bytes:
    return f'{{"poison": {i}'.encode()  # truncated JSON, unique per record


def inputs(project: Path) -> tuple[list[bytes], list[dict], set[bytes]]:
    """The input values in order, the good payments among them, and the poison values."""
    pool = payments(project, 20_000)
    values, good, poison = [], [], set()
    for i in range(TOTAL):
        payment_id = good_id(i)
        if payment_id is None:
            value = poison_value(i)
            poison.add(value)
        else:
            good.append(pinned_payment(pool, i, PARTITIONS, payment_id))
            value = json.dumps(good[-1]).encode()
        values.append(value)
    return values, good, poison


def produce_in_order(bootstrap: str, topic: str, values: list[bytes], start: int) -> None:
    """Record ``i`` to partition ``i % PARTITIONS``, in order: it lands at offset
    ``i // PARTITIONS``, so a committed offset names exactly the records it claims. A payment's
    message key is its account, pinned to that partition (``pinned_payment``)."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    first: dict[int, int] = {}

    def delivered(err: object, msg: Message) -> None:
        if err is None:
            first.setdefault(msg.partition(), msg.offset())

    for i, value in enumerate(values, start):
        key = account_key(value)
        producer.produce(topic, value, key, partition=i % PARTITIONS, on_delivery=delivered)
        producer.poll(0)
    assert producer.flush(60) == 0
    assert_retained(bootstrap, topic, first)


def account_key(value: bytes) -> bytes | None:
    try:
        return json.loads(value)["account_id"].encode()
    except ValueError:
        return None  # poison


def claimed(offsets: dict[int, int]) -> tuple[set[str], set[bytes]]:
    """The good records (by id) and the poison ones (by value) that committed ``offsets`` say
    are done."""
    indices = [p + k * PARTITIONS for p, offset in offsets.items() for k in range(offset)]
    good = {payment_id for i in indices if (payment_id := good_id(i)) is not None}
    poison = {poison_value(i) for i in indices if good_id(i) is None}
    return good, poison


class OutputsSeen:
    """What the output topics hold so far, read on from where the last look stopped: each
    check after a kill reads only what was published since the one before (reading every topic
    from its start after each kill cost ~3.5 s a kill). Reads until the owed records are seen
    or the timeout (no watermarks needed, so it holds on brokers whose watermarks are wrong)."""

    def __init__(self, bootstrap: str, names: dict[str, str], expected: Expected) -> None:
        self._keys = {names[topic]: key for topic, (_, key) in expected.owed(set(), set()).items()}
        self._seen: dict[str, set] = {topic: set() for topic in self._keys}
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"crash-check-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 20,
            }
        )
        self._consumer.assign(
            [
                TopicPartition(topic, p, OFFSET_BEGINNING)
                for topic in self._keys
                for p in range(PARTITIONS)
            ]
        )

    def missing(self, owed: dict[str, set], timeout_s: float) -> int:
        """How many of the ``owed`` records (per topic name) have no record yet."""
        deadline = time.monotonic() + timeout_s
        while (left := self._left(owed)) and time.monotonic() < deadline:
            for message in self._consumer.consume(5000, 0.2):
                if message.error() is None:
                    topic = message.topic()
                    self._seen[topic].add(self._keys[topic](message))
        return left

    def _left(self, owed: dict[str, set]) -> int:
        return sum(len(want - self._seen[topic]) for topic, want in owed.items())

    def close(self) -> None:
        self._consumer.close()


def committed_without_output(
    bootstrap: str, names: dict[str, str], expected: Expected, outputs: OutputsSeen
) -> int:
    """Committed records lacking an output: a score, an alert where one is due, a dead letter."""
    owed = expected.owed(*claimed(committed(bootstrap, names["group"], names["input"])))
    return outputs.missing({names[topic]: want for topic, (want, _) in owed.items()}, 30)


def crash_loop(handle: BrokerHandle, project: Path, guarantee: str) -> CrashRun:
    """Stream the inputs in while killing the consumer ``KILLS`` times, then let a last
    instance drain the topic."""
    names = topics(f"crash-{guarantee}")
    bootstrap = handle.bootstrap_servers
    # 16 partitions keep each one far below the embedded broker's ~5 MiB retention.
    create_input(handle, names, PARTITIONS)
    for topic in ("features", "scores", "alerts", "dlq"):
        create_topic(handle, names[topic], partitions=PARTITIONS)
    configure(project, names, **{"batch.max_size": 1000, "guarantee": guarantee})
    fast_group(project)
    values, good, poison = inputs(project)
    expected = expected_outputs(project, good)
    consume = consume_command(names, bootstrap, "--idle-timeout-s", "8")
    if handle.faults is not None:
        # 20 ms to every broker widens the time between the outputs' acks and the commit, so
        # some kills land there (they show up as duplicates).
        handle.faults.set_rtt(-1, 20)
    try:
        ahead_at_kills = stream_in_and_kill(
            project, names, bootstrap, values, consume, expected=expected
        )
    finally:
        if handle.faults is not None:
            handle.faults.reset()
    run_last_instance(consume, project, TOTAL - progress(bootstrap, names))
    for output in (
        "features",
        "scores",
        "alerts",
        "dlq",
    ):  # a broker that dropped them is not a loss
        everything = dict.fromkeys(partitions(bootstrap, names[output]), 0)
        assert_retained(bootstrap, names[output], everything)
    return CrashRun(names, expected, poison, progress(bootstrap, names), ahead_at_kills)


def progress(bootstrap: str, names: dict[str, str]) -> int:
    return sum(committed(bootstrap, names["group"], names["input"]).values())


def stream_in_and_kill(
    project: Path,
    names: dict[str, str],
    bootstrap: str,
    values: list[bytes],
    consume: list[str],
    *,
    expected: Expected,
) -> list[int]:
    """A tenth of the inputs is produced as each instance starts, so it meets a growing
    backlog; it is SIGKILLed at a random point after its first commit. After each kill, the
    committed offsets are read and then every output topic: returns, per kill, how many
    committed records lacked an output (a commit ahead of its outputs)."""
    rng = random.Random(7)
    chunk = len(values) // KILLS
    ahead_at_kills = []
    outputs = OutputsSeen(bootstrap, names, expected)
    with ThreadPoolExecutor(1) as producer, closing(outputs):
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
            ahead_at_kills.append(committed_without_output(bootstrap, names, expected, outputs))
            # Fail at the first kill that shows it: each later one would wait out its reads.
            assert not ahead_at_kills[-1], (
                f"after kill {kill + 1}, {ahead_at_kills[-1]} committed records lack an output"
            )
        for sent in streaming:
            sent.result(timeout=120)
    return ahead_at_kills


def check_nothing_lost(
    handle: BrokerHandle,
    run: CrashRun,
    title: str,
    capsys: pytest.CaptureFixture[str],
    isolation: str = "read_uncommitted",
) -> None:
    """Every output topic against the oracle, both ways; with ``exact``, each record once."""
    bootstrap = handle.bootstrap_servers

    def read(topic: str, timeout_s: float) -> list[Message]:
        return read_topic(bootstrap, run.names[topic], timeout_s=timeout_s, isolation=isolation)

    rows = (
        # Every feature row, repeats of uncommitted batches included, equals the batch
        # computation: the state restored after each kill counted no payment twice.
        reconcile_features(run.expected, read("features", 120)),
        reconcile_scores(run.expected, read("scores", 120)),  # duplicates too
        reconcile_alerts(run.expected, read("alerts", 60)),
        reconcile_dead_letters(
            run.poison, read("dlq", 60), stage="decode", error_class="DecodeError"
        ),
    )
    with capsys.disabled():
        sys.stdout.write(f"\ncrash loop, {title}, {KILLS} SIGKILLs:\n{table(*rows)}")
        sys.stdout.write(
            f"\ncommitted records without output, after each kill: {run.ahead_at_kills}\n"
        )
    assert not any(run.ahead_at_kills), run.ahead_at_kills
    assert run.committed == TOTAL
    assert_reconciled(*rows, exact=isolation == "read_committed")


@pytest.mark.timeout(CRASH_LOOP_BUDGET_S)
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


@pytest.mark.timeout(CRASH_LOOP_BUDGET_S)  # the first user of the fixture runs the loop
def test_exactly_once_sigkill_ten_times_loses_nothing(
    kafka_broker, exactly_once_run: CrashRun, capsys: pytest.CaptureFixture[str]
) -> None:
    check_nothing_lost(kafka_broker, exactly_once_run, "exactly-once, read_uncommitted", capsys)


@pytest.mark.unsupported_broker("tansu", "Tansu's read_committed readers see aborted records")
@pytest.mark.timeout(CRASH_LOOP_BUDGET_S)
def test_exactly_once_sigkill_ten_times_outputs_each_input_once(
    kafka_broker, exactly_once_run: CrashRun, capsys: pytest.CaptureFixture[str]
) -> None:
    check_nothing_lost(
        kafka_broker, exactly_once_run, "exactly-once, read_committed", capsys, "read_committed"
    )
