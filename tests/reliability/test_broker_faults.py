"""The broker fault matrix: the running service meets each fault mid-stream and must recover on
its own, never commit an offset whose outputs are not in their topic, and lose nothing.

Faults come from the embedded broker's fault injection, on a cluster of its own (three brokers,
so leaders and coordinators can move; injected errors cannot leak into other tests). Inputs go
to known partitions in order, so record ``i`` sits at offset ``i // PARTITIONS`` of partition
``i % PARTITIONS``: a committed offset names exactly which records it claims are done. A
watcher samples, all through the fault, the committed offsets and *then* the outputs, and
flags any committed record without its output.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from kedro_stream.kafka.embedded import EmbeddedBroker, FaultInjector
from kedro_stream.kafka.mock_api import ApiKey
from kedro_stream.testing.brokers import BrokerHandle
from tests.kafka_helpers import committed, wait_until
from tests.stream_helpers import configure, consume_command, fast_group, payments, topics

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
PARTITIONS, BROKERS = 6, 3
OUTPUTS_BROKER = 2
BEFORE, DURING = 1_500, 1_500  # records produced before the fault, and while it lasts
POISON_EVERY = 101
ENV = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}


@pytest.fixture(scope="module")
def cluster(kafka_broker: BrokerHandle) -> Iterator[EmbeddedBroker]:
    if kafka_broker.kind != "embedded":
        pytest.skip(
            f"fault injection needs the embedded broker; this run uses the {kafka_broker.kind} one"
        )
    with EmbeddedBroker.start(brokers=BROKERS) as broker:
        yield broker


@dataclass
class Case:
    name: str
    inject: Callable[[FaultInjector, dict[str, str]], None]
    heal: Callable[[FaultInjector, dict[str, str]], None] = lambda faults, names: None
    #: False where the service promises to ride the fault out without processing any record
    #: twice (the client retries, or the commit is asked again in place).
    reprocesses: bool = True
    lasts_s: float = 3.0
    #: A line the service must log, where the fault leaves one: proof it met the fault.
    met: str | None = None


def errors(api_key: ApiKey, *codes: int) -> Callable[[FaultInjector, dict[str, str]], None]:
    """The next requests of ``api_key``, to whichever broker, fail with ``codes`` in turn."""
    return lambda faults, names: faults.push_request_errors(api_key, list(codes))


def output_errors(*codes: int) -> Callable[[FaultInjector, dict[str, str]], None]:
    """The next Produce requests to the outputs' broker fail with ``codes`` in turn. Aimed at
    that broker, not at any: the test's own input producer, which leaves no gap in its
    partitions' offsets, must not meet the fault instead of the service."""
    return lambda faults, names: faults.push_broker_request_errors(
        OUTPUTS_BROKER, ApiKey.Produce, list(codes)
    )


def placed_leader(topic: str) -> int:
    """Where each topic's partitions lead from the start: inputs on broker 1, the service's
    outputs (and dead letters) on OUTPUTS_BROKER."""
    return 1 if topic == "input" else OUTPUTS_BROKER


def set_leaders(faults: FaultInjector, names: dict[str, str], leader: Callable[[str], int]) -> None:
    for topic in ("input", "scores", "alerts", "dlq"):
        for partition in range(PARTITIONS):
            faults.partition_set_leader(names[topic], partition, leader(topic))


def move_leaders(faults: FaultInjector, names: dict[str, str]) -> None:
    """Every partition to the broker after its placed one: each leader moves."""
    set_leaders(faults, names, lambda topic: placed_leader(topic) % BROKERS + 1)


CASES = [
    Case(
        "broker 2 down, then up",
        inject=lambda faults, names: faults.broker_down(2),
        heal=lambda faults, names: faults.broker_up(2),
    ),
    Case(
        "every broker down, then up",
        inject=lambda faults, names: faults.broker_down(-1),
        heal=lambda faults, names: faults.broker_up(-1),
    ),
    Case(
        "Produce: retriable errors",
        output_errors(*[KafkaError.NOT_LEADER_FOR_PARTITION] * 3),
        reprocesses=False,
    ),
    Case(
        "Produce: a record rejected",
        output_errors(KafkaError.MSG_SIZE_TOO_LARGE),
        met="outputs failed",
    ),
    Case(
        "OffsetCommit: coordinator moving",
        errors(
            ApiKey.OffsetCommit,
            KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
            KafkaError.NOT_COORDINATOR,
            KafkaError.REQUEST_TIMED_OUT,
        ),
        reprocesses=False,
    ),
    Case(
        "OffsetCommit: commit refused",
        errors(ApiKey.OffsetCommit, KafkaError.OFFSET_METADATA_TOO_LARGE),
        met="OFFSET_METADATA_TOO_LARGE",
    ),
    Case(
        "Fetch: leader and topic errors",
        errors(
            ApiKey.Fetch,
            KafkaError.NOT_LEADER_FOR_PARTITION,
            KafkaError.UNKNOWN_TOPIC_OR_PART,
            KafkaError.FENCED_LEADER_EPOCH,
        ),
        reprocesses=False,
    ),
    Case("every partition leader moves", move_leaders, reprocesses=False),
    Case(
        "group coordinator moves",
        inject=lambda faults, names: faults.coordinator_set("group", names["group"], 3),
        reprocesses=False,
    ),
]


@dataclass
class Watch:
    """Samples of (committed records, records with output) taken during the fault."""

    samples: int = 0
    ahead: list[str] = field(default_factory=list)


class Inputs:
    def __init__(self, project: Path) -> None:
        pool = payments(project, 2_000)
        self.values: list[bytes] = []
        self.good: dict[int, str] = {}
        self.poison: set[bytes] = set()
        for i in range(BEFORE + DURING):
            if i % POISON_EVERY == 0:
                value = f'{{"poison": {i}'.encode()
                self.poison.add(value)
            else:
                self.good[i] = f"f-{i:05d}"
                value = json.dumps({**pool[i % len(pool)], "payment_id": self.good[i]}).encode()
            self.values.append(value)

    def produce(self, bootstrap: str, topic: str, start: int, stop: int) -> None:
        producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
        for i in range(start, stop):
            producer.produce(topic, self.values[i], partition=i % PARTITIONS)
            producer.poll(0)
        assert producer.flush(60) == 0

    def claimed(self, offsets: dict[int, int]) -> set[str]:
        """The good records a set of committed offsets says are done."""
        return {
            self.good[i]
            for partition, offset in offsets.items()
            for i in range(partition, offset * PARTITIONS, PARTITIONS)
            if i in self.good
        }


def read_all(bootstrap: str, topic: str, timeout_s: float) -> list[bytes] | None:
    """Every value now in ``topic``, or None when some partition cannot be read to its end
    offset within ``timeout_s`` (a broker down): a partial read must not pass for a full one."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "fault-reader",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 10,
        }
    )
    try:
        ends = {}
        for partition in range(PARTITIONS):
            _, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout_s
            )
            ends[partition] = high
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends if ends[p]])
        reached = dict.fromkeys(ends, 0)
        values: list[bytes] = []
        deadline = time.monotonic() + timeout_s
        while any(reached[p] < ends[p] for p in ends):
            if time.monotonic() > deadline:
                return None
            for message in consumer.consume(1000, 0.1):
                if message.error() is None and message.offset() < ends[message.partition()]:
                    values.append(message.value())
                    reached[message.partition()] = message.offset() + 1
        return values
    except Exception:  # the broker is down: no sample
        return None
    finally:
        consumer.close()


def watch(
    bootstrap: str, names: dict[str, str], inputs: Inputs, stop: threading.Event, out: Watch
) -> None:
    while not stop.is_set():
        try:
            offsets = committed(bootstrap, names["group"], names["input"])
        except Exception:  # the broker is down: no sample
            offsets = None
        outputs = read_all(bootstrap, names["scores"], timeout_s=2) if offsets else None
        if offsets and outputs is not None:
            done = {json.loads(v)["payment_id"] for v in outputs}
            missing = inputs.claimed(offsets) - done
            out.samples += 1
            if missing:
                out.ahead.append(f"{len(missing)} committed without output, e.g. {min(missing)}")
        stop.wait(0.1)


HEADER = f"{'fault':<36}{'recovery':>9}{'samples':>9}{'ahead':>7}{'lost':>6}{'duplicates':>12}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_service_rides_out_the_fault(
    case: Case,
    cluster: EmbeddedBroker,
    stream_project: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bootstrap, faults = cluster.bootstrap_servers, cluster.faults
    names = topics("fault")
    for topic in ("input", "scores", "alerts", "dlq"):
        faults.create_topic(names[topic], PARTITIONS)
    set_leaders(faults, names, placed_leader)
    configure(stream_project, names, **{"batch.max_size": 200})
    fast_group(stream_project)
    inputs = Inputs(stream_project)
    inputs.produce(bootstrap, names["input"], 0, BEFORE)
    total = BEFORE + DURING

    def progress() -> int:
        return sum(committed(bootstrap, names["group"], names["input"]).values())

    log = tmp_path / "service.log"  # a file: a full pipe would block the service
    service = subprocess.Popen(
        consume_command(names, bootstrap),
        cwd=stream_project,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    watched, stop_watching = Watch(), threading.Event()
    watcher = threading.Thread(
        target=watch, args=(bootstrap, names, inputs, stop_watching, watched), daemon=True
    )
    try:
        wait_until(lambda: progress() > 0, 60, "the first commit")
        watcher.start()
        case.inject(faults, names)
        # Records keep arriving while the fault lasts.
        producing = threading.Thread(
            target=inputs.produce, args=(bootstrap, names["input"], BEFORE, total)
        )
        producing.start()
        time.sleep(case.lasts_s)  # the fault's duration, not a wait for a condition
        case.heal(faults, names)
        producing.join(timeout=120)
        healed = time.monotonic()
        wait_until(lambda: progress() == total, 120, "every record committed after the fault")
        recovery_s = time.monotonic() - healed
        assert service.poll() is None, f"the service stopped:\n{log.read_text()[-3000:]}"
    finally:
        stop_watching.set()
        faults.reset()  # brokers up, errors no request consumed dropped
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
    watcher.join(timeout=30)
    assert service.returncode == 0, log.read_text()[-3000:]

    outputs = read_all(bootstrap, names["scores"], timeout_s=30)
    dead = read_all(bootstrap, names["dlq"], timeout_s=30)
    assert outputs is not None and dead is not None
    scored = [json.loads(v)["payment_id"] for v in outputs]
    lost = set(inputs.good.values()) - set(scored)
    duplicates = len(scored) - len(set(scored))
    with capsys.disabled():
        sys.stdout.write(
            f"\n{HEADER}\n{case.name:<36}{recovery_s:>9.1f}{watched.samples:>9}"
            f"{len(watched.ahead):>7}{len(lost):>6}{duplicates:>12}\n"
        )
    assert not watched.ahead, watched.ahead[:3]
    assert watched.samples > 0, "the watcher never saw a full sample"
    assert not lost, f"{len(lost)} records without output, e.g. {sorted(lost)[:5]}"
    if case.met is not None:
        assert case.met in log.read_text(), f"the service never met the fault ({case.met!r})"
    assert inputs.poison <= set(dead)
    assert set(scored) <= set(inputs.good.values())
    if not case.reprocesses:
        assert duplicates == 0, f"{duplicates} records processed twice"
