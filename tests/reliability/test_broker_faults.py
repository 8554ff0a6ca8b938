"""The broker fault matrix: the running service meets each fault mid-stream and must recover on
its own, never commit an offset whose outputs are not in their topics, and lose nothing.

Faults come from the embedded broker's fault injection, on a cluster of its own (three brokers,
so leaders and coordinators can move; injected errors cannot leak into other tests). Inputs lead
on broker 1 with the group's coordinator, outputs and dead letters on broker 2, so a fault is
aimed at what only the service touches, and each case proves the service met it. Inputs go to
known partitions in order, so record ``i`` sits at offset ``i // PARTITIONS`` of partition
``i % PARTITIONS``: a committed offset names exactly which records it claims are done.

A watcher samples the committed offsets all through the fault, then, when it can, every output
topic, and flags any committed record lacking an output (its score, its alert when one is due,
its dead letter). While the outputs' broker is down it cannot read them: there, no commit may
claim a record whose outputs were produced after the fault began, since none could be
acknowledged.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)

from kedro_stream.devbroker.cluster import ApiKey, MockRequest
from kedro_stream.devbroker.control import FaultInjector
from kedro_stream.devbroker.process import EmbeddedBroker
from kedro_stream.testing.brokers import BrokerHandle
from tests.kafka_helpers import committed, wait_until
from tests.reconcile import (
    Expected,
    assert_reconciled,
    expected_outputs,
    reconcile_alerts,
    reconcile_dead_letters,
    reconcile_features,
    reconcile_scores,
)
from tests.stream_helpers import (
    changelog,
    configure,
    consume_command,
    fast_group,
    payments,
    pinned_payment,
    topics,
)

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
PARTITIONS, BROKERS = 6, 3
INPUTS_BROKER, OUTPUTS_BROKER = 1, 2  # the group's coordinator sits with the inputs
BEFORE, DURING = 1_500, 1_500  # records produced before the fault, and while it lasts
POISON_EVERY = 101
OUTPUT_TOPICS = ("features", "scores", "alerts", "dlq")
ENV = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}


@pytest.fixture(scope="module")
def cluster(kafka_broker: BrokerHandle) -> Iterator[EmbeddedBroker]:
    if kafka_broker.kind != "embedded":
        pytest.skip(
            f"fault injection needs the embedded broker; this run uses the {kafka_broker.kind} one"
        )
    with EmbeddedBroker.start(brokers=BROKERS) as broker:
        yield broker


@dataclass(frozen=True)
class Evidence:
    """What the service left behind while the fault lasted."""

    log: str
    requests: list[MockRequest]  # tracked from the injection to the heal
    faults: FaultInjector


@dataclass
class Case:
    name: str
    inject: Callable[[FaultInjector, dict[str, str]], None]
    #: How the test knows the service, not another client, met the fault.
    met: Callable[[Evidence], bool]
    proof: str
    heal: Callable[[FaultInjector, dict[str, str]], None] = lambda faults, names: None
    #: False where the service promises to ride the fault out without processing any record
    #: twice (the client retries, or the commit is asked again in place).
    reprocesses: bool = True
    lasts_s: float = 3.0
    #: No output can be acknowledged while the fault lasts (the outputs' broker is down).
    outputs_frozen: bool = False
    #: The watcher can read committed offsets while the fault lasts.
    watchable: bool = True


def broker_errors(
    broker: int, api_key: ApiKey, *codes: int, delay_ms: int = 0
) -> Callable[..., None]:
    """The next ``api_key`` requests to ``broker`` fail with ``codes`` in turn, each answered
    after ``delay_ms``. Aimed at one broker, never at any: the test's own clients must not take
    the errors instead."""
    return lambda faults, names: faults.push_broker_request_errors(
        broker, api_key, list(codes), rtts_ms=[delay_ms] * len(codes)
    )


#: How long a failing Produce answer is held: a commit that does not wait for its outputs'
#: acknowledgement then stands ahead of them for long enough that the watcher samples it.
SLOW_PRODUCE_ERROR_MS = 600


def drained(broker: int, api_key: ApiKey) -> Callable[[Evidence], bool]:
    """Every error pushed for ``broker`` was taken by a request."""
    return lambda evidence: evidence.faults.broker_error_stack_count(broker, api_key) == 0


def requested(*wanted: tuple[int, ApiKey]) -> Callable[[Evidence], bool]:
    """Each (broker, request type) was received while the fault lasted."""
    return lambda evidence: all(
        any(r.broker_id == broker and r.api_key == api for r in evidence.requests)
        for broker, api in wanted
    )


def logged(pattern: str) -> Callable[[Evidence], bool]:
    return lambda evidence: re.search(pattern, evidence.log) is not None


def disconnected(client: str, broker: str) -> Callable[[Evidence], bool]:
    """librdkafka logged, for the service's ``client``, a lost connection."""
    return logged(rf"Kafka {client}: [^\n]*/{broker}: Disconnected")


def placed_leader(topic: str) -> int:
    """Where each topic's partitions lead from the start."""
    return INPUTS_BROKER if topic == "input" else OUTPUTS_BROKER


def set_leaders(faults: FaultInjector, names: dict[str, str], leader: Callable[[str], int]) -> None:
    for topic in ("input", *OUTPUT_TOPICS):
        for partition in range(PARTITIONS):
            faults.partition_set_leader(names[topic], partition, leader(topic))


def move_leaders(faults: FaultInjector, names: dict[str, str]) -> None:
    """Every partition to the broker after its placed one: each leader moves."""
    set_leaders(faults, names, lambda topic: placed_leader(topic) % BROKERS + 1)


CASES = [
    Case(
        "broker 2 down, then up",
        inject=lambda faults, names: faults.broker_down(OUTPUTS_BROKER),
        heal=lambda faults, names: faults.broker_up(OUTPUTS_BROKER),
        met=disconnected("producer", str(OUTPUTS_BROKER)),
        proof="the service's producer lost broker 2",
        outputs_frozen=True,
    ),
    Case(
        "every broker down, then up",
        inject=lambda faults, names: faults.broker_down(-1),
        heal=lambda faults, names: faults.broker_up(-1),
        met=lambda e: disconnected("consumer", "1")(e) and disconnected("producer", "2")(e),
        proof="the service's consumer and producer lost their brokers",
        outputs_frozen=True,
        watchable=False,  # the coordinator is down too: nobody can read a commit
    ),
    Case(
        "Produce: retriable errors",
        broker_errors(
            OUTPUTS_BROKER,
            ApiKey.Produce,
            *[KafkaError.NOT_LEADER_FOR_PARTITION] * 3,
            delay_ms=SLOW_PRODUCE_ERROR_MS,
        ),
        met=drained(OUTPUTS_BROKER, ApiKey.Produce),
        proof="the service's producer took the 3 errors",
        reprocesses=False,
    ),
    Case(
        "Produce: a record rejected",
        broker_errors(
            OUTPUTS_BROKER,
            ApiKey.Produce,
            KafkaError.MSG_SIZE_TOO_LARGE,
            delay_ms=3 * SLOW_PRODUCE_ERROR_MS,
        ),
        met=lambda e: drained(OUTPUTS_BROKER, ApiKey.Produce)(e) and "outputs failed" in e.log,
        proof="the service logged its failed outputs",
    ),
    Case(
        "OffsetCommit: coordinator moving",
        broker_errors(
            INPUTS_BROKER,
            ApiKey.OffsetCommit,
            KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
            KafkaError.NOT_COORDINATOR,
            KafkaError.REQUEST_TIMED_OUT,
        ),
        met=drained(INPUTS_BROKER, ApiKey.OffsetCommit),
        proof="the service's commits took the 3 errors",
        reprocesses=False,
    ),
    Case(
        "OffsetCommit: commit refused",
        broker_errors(INPUTS_BROKER, ApiKey.OffsetCommit, KafkaError.OFFSET_METADATA_TOO_LARGE),
        met=lambda e: "OFFSET_METADATA_TOO_LARGE" in e.log,
        proof="the service logged the refused commit",
    ),
    Case(
        "Fetch: leader and topic errors",
        broker_errors(
            INPUTS_BROKER,
            ApiKey.Fetch,
            KafkaError.NOT_LEADER_FOR_PARTITION,
            KafkaError.UNKNOWN_TOPIC_OR_PART,
            KafkaError.FENCED_LEADER_EPOCH,
        ),
        met=drained(INPUTS_BROKER, ApiKey.Fetch),
        proof="the service's consumer took the 3 errors",
        reprocesses=False,
    ),
    Case(
        "every partition leader moves",
        move_leaders,
        # Only the service fetches the inputs (now on 2) and produces outputs (now on 3).
        met=requested((2, ApiKey.Fetch), (3, ApiKey.Produce)),
        proof="the service fetched from the inputs' new leader and produced to the outputs'",
        reprocesses=False,
    ),
    Case(
        "group coordinator moves",
        inject=lambda faults, names: faults.coordinator_set("group", names["group"], 3),
        met=requested((3, ApiKey.OffsetCommit)),  # only the service commits
        proof="the service committed through the new coordinator",
        reprocesses=False,
    ),
]


@dataclass(frozen=True)
class Sample:
    at: float  # wall-clock seconds, as record timestamps are
    offsets: dict[int, int]
    #: Committed records lacking an output then, or None when the outputs could not be read.
    ahead: list[str] | None


@dataclass
class Watch:
    samples: list[Sample] = field(default_factory=list)

    def between(self, start: float, end: float) -> list[Sample]:
        return [s for s in self.samples if start <= s.at <= end]

    def ahead(self) -> list[str]:
        return [line for s in self.samples for line in s.ahead or []]


class Inputs:
    def __init__(self, project: Path) -> None:
        pool = payments(project, 2_000)
        self.values: list[bytes] = []
        self.good: dict[int, str] = {}
        self.records: list[dict] = []
        self.poison: dict[int, bytes] = {}
        self.keys: dict[int, bytes] = {}  # the message key of a good record: its account
        for i in range(BEFORE + DURING):
            if i % POISON_EVERY == 0:
                self.poison[i] = f'{{"poison": {i}'.encode()
                value = self.poison[i]
            else:
                self.good[i] = f"f-{i:05d}"
                self.records.append(pinned_payment(pool, i, PARTITIONS, self.good[i]))
                value = json.dumps(self.records[-1]).encode()
                self.keys[i] = self.records[-1]["account_id"].encode()
            self.values.append(value)

    def produce(self, bootstrap: str, topic: str, start: int, stop: int) -> None:
        producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
        for i in range(start, stop):
            key = None if i in self.poison else self.keys[i]
            producer.produce(topic, self.values[i], key, partition=i % PARTITIONS)
            producer.poll(0)
        assert producer.flush(60) == 0

    def claimed(self, offsets: dict[int, int]) -> tuple[set[str], set[bytes]]:
        """The good records (ids) and poison ones (values) committed offsets say are done."""
        done = [
            i for p, offset in offsets.items() for i in range(p, offset * PARTITIONS, PARTITIONS)
        ]
        return (
            {self.good[i] for i in done if i in self.good},
            {self.poison[i] for i in done if i in self.poison},
        )


def read_all(bootstrap: str, topic: str, timeout_s: float) -> list[Message] | None:
    """Every message now in ``topic``, or None when some partition cannot be read to its end
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
        messages: list[Message] = []
        deadline = time.monotonic() + timeout_s
        while any(reached[p] < ends[p] for p in ends):
            if time.monotonic() > deadline:
                return None
            for message in consumer.consume(1000, 0.1):
                if message.error() is None and message.offset() < ends[message.partition()]:
                    messages.append(message)
                    reached[message.partition()] = message.offset() + 1
        return messages
    except Exception:  # the broker is down: no sample
        return None
    finally:
        consumer.close()


def lacking(
    inputs: Inputs, expected: Expected, offsets: dict[int, int], outputs: dict[str, list[Message]]
) -> list[str]:
    """Committed records lacking an output among ``outputs`` (topic → its messages)."""
    found = []
    for topic, (want, key) in expected.owed(*inputs.claimed(offsets)).items():
        missing = want - {key(message) for message in outputs[topic]}
        if missing:
            found.append(f"{len(missing)} committed without {topic}, e.g. {min(missing)!r}")
    return found


def watch(
    bootstrap: str,
    names: dict[str, str],
    inputs: Inputs,
    expected: Expected,
    *,
    stop: threading.Event,
    out: Watch,
) -> None:
    """Committed offsets first, then every output topic: an output that appears between the
    two reads can only hide a problem, never invent one."""
    while not stop.is_set():
        at = time.time()
        try:
            offsets = committed(bootstrap, names["group"], names["input"])
        except Exception:  # the coordinator is down: no sample
            offsets = None
        if offsets:
            read = {
                topic: read_all(bootstrap, names[topic], timeout_s=2) for topic in OUTPUT_TOPICS
            }
            full = all(messages is not None for messages in read.values())
            ahead = lacking(inputs, expected, offsets, read) if full else None  # type: ignore[arg-type]
            out.samples.append(Sample(at, offsets, ahead))
        stop.wait(0.05)


def ahead_of_frozen_outputs(
    inputs: Inputs,
    expected: Expected,
    samples: list[Sample],
    outputs: dict[str, list[Message]],
    since: float,
) -> list[str]:
    """While no output can be acknowledged, a commit may claim only records whose outputs were
    produced (their record timestamp) before the fault began."""
    since_ms = since * 1000
    before = {
        topic: [m for m in messages if m.timestamp()[1] <= since_ms]
        for topic, messages in outputs.items()
    }
    return [line for s in samples for line in lacking(inputs, expected, s.offsets, before)]


HEADER = (
    f"{'fault':<36}{'recovery':>9}{'samples':>9}{'in fault':>9}{'ahead':>7}{'lost':>6}"
    f"{'duplicates':>12}"
)


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
    for topic in ("input", *OUTPUT_TOPICS):
        faults.create_topic(names[topic], PARTITIONS)
    faults.create_topic(changelog(names), PARTITIONS)  # as create_input does
    set_leaders(faults, names, placed_leader)
    faults.coordinator_set("group", names["group"], INPUTS_BROKER)
    configure(stream_project, names, **{"batch.max_size": 200})
    fast_group(stream_project)
    inputs = Inputs(stream_project)
    expected = expected_outputs(stream_project, inputs.records)
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
        target=watch,
        args=(bootstrap, names, inputs, expected),
        kwargs={"stop": stop_watching, "out": watched},
        daemon=True,
    )
    try:
        wait_until(lambda: progress() > 0, 60, "the first commit")
        watcher.start()
        faults.start_request_tracking()
        injected = time.time()
        case.inject(faults, names)
        # Records keep arriving while the fault lasts.
        producing = threading.Thread(
            target=inputs.produce, args=(bootstrap, names["input"], BEFORE, total)
        )
        producing.start()
        time.sleep(case.lasts_s)  # the fault's duration, not a wait for a condition
        healed = time.time()
        case.heal(faults, names)
        evidence_requests = faults.get_requests()
        faults.stop_request_tracking()
        producing.join(timeout=120)
        recovered_from = time.monotonic()
        wait_until(lambda: progress() == total, 120, "every record committed after the fault")
        recovery_s = time.monotonic() - recovered_from
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

    outputs = {topic: read_all(bootstrap, names[topic], timeout_s=30) for topic in OUTPUT_TOPICS}
    assert all(messages is not None for messages in outputs.values())
    rows = (
        reconcile_features(expected, outputs["features"]),  # type: ignore[arg-type]
        reconcile_scores(expected, outputs["scores"]),  # type: ignore[arg-type]
        reconcile_alerts(expected, outputs["alerts"]),  # type: ignore[arg-type]
        reconcile_dead_letters(
            inputs.poison.values(),
            outputs["dlq"],  # type: ignore[arg-type]
            stage="decode",
            error_class="DecodeError",
        ),
    )
    in_fault = watched.between(injected, healed)
    ahead = watched.ahead()
    if case.outputs_frozen:
        ahead += ahead_of_frozen_outputs(inputs, expected, in_fault, outputs, injected)  # type: ignore[arg-type]
    lost = len(rows[0].missing)
    with capsys.disabled():
        sys.stdout.write(
            f"\n{HEADER}\n{case.name:<36}{recovery_s:>9.1f}{len(watched.samples):>9}"
            f"{len(in_fault):>9}{len(ahead):>7}{lost:>6}{rows[0].duplicates:>12}\n"
        )
    evidence = Evidence(log.read_text(), evidence_requests, faults)
    assert case.met(evidence), f"no proof the service met the fault: {case.proof}"
    assert not ahead, ahead[:3]
    if case.watchable:
        assert in_fault, "the watcher took no sample while the fault lasted"
        if not case.outputs_frozen:
            assert any(s.ahead is not None for s in in_fault), "no full sample in the fault"
    assert_reconciled(*rows, exact=not case.reprocesses)
