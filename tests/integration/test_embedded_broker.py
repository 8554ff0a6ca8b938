"""The test broker tiers and the embedded broker's fault injection, over TCP.

Tests taking ``kafka_broker`` run on whichever broker the session found; ``fault_injector`` tests
need the embedded broker; the process tests start their own embedded broker.
"""

from __future__ import annotations

import http.client
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from kedro_stream.devbroker.cluster import AUTO_CREATE_PARTITIONS, ApiKey
from kedro_stream.devbroker.control import EmbeddedBrokerError, FaultInjector
from kedro_stream.devbroker.process import EmbeddedBroker
from kedro_stream.testing.brokers import BrokerHandle, create_topic, unique_topic

pytestmark = pytest.mark.integration

# Per brokers.md: fast heartbeats, and a short fetch wait because the mock never ends one early.
CONSUMER = {
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 300,
    "fetch.wait.max.ms": 20,
    "auto.offset.reset": "earliest",
    "enable.auto.commit": False,
}
TIMEOUT_S = 15.0
#: How long a stopped broker may take to exit by itself; it usually takes ~0.03 s, and a bound
#: on a busy machine's timing is no part of the claim.
STOP_GRACE_S = 10.0


def consumer(handle: BrokerHandle, group: str) -> Consumer:
    return Consumer({"bootstrap.servers": handle.bootstrap_servers, "group.id": group} | CONSUMER)


def producer(handle: BrokerHandle, **extra: Any) -> Producer:
    return Producer({"bootstrap.servers": handle.bootstrap_servers, "linger.ms": 0} | extra)


def consume(client: Consumer, count: int, timeout_s: float = TIMEOUT_S) -> list[Message]:
    """Exactly ``count`` messages, failing on a consumer error or at the deadline."""
    messages: list[Message] = []
    deadline = time.monotonic() + timeout_s
    while len(messages) < count:
        assert time.monotonic() < deadline, f"{len(messages)} of {count} messages arrived"
        for message in client.consume(count - len(messages), timeout=0.2):
            assert message.error() is None, message.error()
            messages.append(message)
    return messages


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        time.sleep(0.02)


class Deliveries:
    """Delivery reports of one producer, polled until the ones we wait for arrive."""

    def __init__(self, client: Producer) -> None:
        self.client = client
        self.reports: list[tuple[KafkaError | None, Message]] = []

    def produce(self, topic: str, value: bytes) -> None:
        self.client.produce(topic, value, on_delivery=lambda e, m: self.reports.append((e, m)))

    def wait(
        self, count: int, timeout_s: float = TIMEOUT_S
    ) -> list[tuple[KafkaError | None, Message]]:
        wait_until(
            lambda: self.client.poll(0.05) >= 0 and len(self.reports) >= count,
            f"{count} delivery reports",
            timeout_s,
        )
        return self.reports


# --------------------------------------------------------------------------- every broker kind


def test_produce_then_consume_round_trip(kafka_broker: BrokerHandle) -> None:
    topic = unique_topic("round-trip")
    create_topic(kafka_broker, topic, partitions=1)
    sent = [f"value-{i}".encode() for i in range(20)]
    client = producer(kafka_broker)
    for value in sent:
        client.produce(topic, value, key=b"k")
    assert client.flush(TIMEOUT_S) == 0

    reader = consumer(kafka_broker, unique_topic("group"))
    reader.subscribe([topic])
    try:
        received = consume(reader, len(sent))
    finally:
        reader.close()
    assert [m.value() for m in received] == sent
    assert [m.offset() for m in received] == list(range(len(sent)))
    assert {m.key() for m in received} == {b"k"}


def test_group_commit_is_what_committed_and_a_restarted_reader_see(
    kafka_broker: BrokerHandle,
) -> None:
    topic, group = unique_topic("commit"), unique_topic("group")
    create_topic(kafka_broker, topic, partitions=2)
    client = producer(kafka_broker)
    for i in range(10):
        client.produce(topic, f"{i}".encode(), partition=0)
    assert client.flush(TIMEOUT_S) == 0

    first = consumer(kafka_broker, group)
    first.subscribe([topic])
    try:
        messages = consume(first, 10)
        first.commit(message=messages[-1], asynchronous=False)
        [committed] = first.committed([TopicPartition(topic, 0)], timeout=TIMEOUT_S)
    finally:
        first.close()
    assert committed.offset == 10

    client.produce(topic, b"after-commit", partition=0)
    assert client.flush(TIMEOUT_S) == 0
    # assign(), not subscribe(): the group's committed offset is what matters, and a rejoin would
    # wait out the mock's rebalance delay (session.timeout.ms - 1 s).
    second = consumer(kafka_broker, group)
    second.assign([TopicPartition(topic, 0)])
    try:
        [resumed] = consume(second, 1)
    finally:
        second.close()
    assert (resumed.offset(), resumed.value()) == (10, b"after-commit")


def test_created_topic_has_its_partitions_in_metadata(kafka_broker: BrokerHandle) -> None:
    topic = unique_topic("six")
    create_topic(kafka_broker, topic, partitions=6)
    metadata = producer(kafka_broker).list_topics(topic, timeout=TIMEOUT_S).topics[topic]
    assert metadata.error is None
    assert sorted(metadata.partitions) == list(range(6))


@pytest.mark.unsupported_broker("embedded", reason="checks that the marker skips this kind")
def test_unsupported_broker_marker_skips_the_named_kind(kafka_broker: BrokerHandle) -> None:
    assert kafka_broker.kind != "embedded"


# --------------------------------------------------------------------------- fault injection


def test_broker_down_holds_or_times_out_produce_and_broker_up_delivers(
    kafka_broker: BrokerHandle, fault_injector: FaultInjector
) -> None:
    topic = unique_topic("down")
    create_topic(kafka_broker, topic, partitions=1)
    patient = Deliveries(
        producer(kafka_broker, **{"message.timeout.ms": 20000, "reconnect.backoff.max.ms": 200})
    )
    patient.produce(topic, b"warm-up")  # connected, with metadata, before the broker goes down
    [(error, _)] = patient.wait(1)
    assert error is None

    fault_injector.broker_down(-1)
    hasty = Deliveries(producer(kafka_broker, **{"message.timeout.ms": 500}))
    hasty.produce(topic, b"gives up")
    patient.produce(topic, b"waits")
    [(error, _)] = hasty.wait(1)
    assert error is not None and error.code() == KafkaError._MSG_TIMED_OUT
    patient.client.poll(0.1)  # serves any delivery report that arrived meanwhile
    assert len(patient.reports) == 1, "delivered while every broker was down"

    fault_injector.broker_up(-1)
    (_, _), (error, message) = patient.wait(2)
    assert error is None
    assert (message.value(), message.offset()) == (b"waits", 1)


def test_request_tracking_records_produce_before_offset_commit(
    kafka_broker: BrokerHandle, fault_injector: FaultInjector
) -> None:
    topic = unique_topic("tracked")
    create_topic(kafka_broker, topic, partitions=1)
    reader = consumer(kafka_broker, unique_topic("group"))
    fault_injector.clear_requests()
    fault_injector.start_request_tracking()
    client = producer(kafka_broker)
    client.produce(topic, b"tracked")
    assert client.flush(TIMEOUT_S) == 0
    reader.subscribe([topic])
    try:
        [message] = consume(reader, 1)
        reader.commit(message=message, asynchronous=False)
    finally:
        fault_injector.stop_request_tracking()
        reader.close()

    requests = fault_injector.get_requests()
    keys = [r.api_key for r in requests]
    assert keys.count(ApiKey.Produce) == 1
    assert keys.count(ApiKey.OffsetCommit) == 1
    assert keys.index(ApiKey.Produce) < keys.index(ApiKey.OffsetCommit)
    assert {ApiKey.Metadata, ApiKey.JoinGroup, ApiKey.SyncGroup, ApiKey.Fetch} <= set(keys)
    stamps = [r.timestamp_us for r in requests]
    assert stamps == sorted(stamps)
    assert {r.broker_id for r in requests} == {1}


def test_retriable_produce_errors_are_retried_and_the_record_lands_once(
    kafka_broker: BrokerHandle, fault_injector: FaultInjector
) -> None:
    topic = unique_topic("retried")
    create_topic(kafka_broker, topic, partitions=1)
    retriable = [KafkaError.NOT_ENOUGH_REPLICAS, KafkaError.NOT_ENOUGH_REPLICAS]
    fault_injector.push_request_errors(ApiKey.Produce, retriable)
    fault_injector.start_request_tracking()
    client = Deliveries(producer(kafka_broker))
    client.produce(topic, b"eventually")
    [(error, message)] = client.wait(1)
    fault_injector.stop_request_tracking()

    assert error is None
    assert message.offset() == 0  # the refused attempts appended nothing
    produces = [r for r in fault_injector.get_requests() if r.api_key == ApiKey.Produce]
    assert len(produces) == len(retriable) + 1


def test_broker_errors_and_delays_apply_in_push_order(
    kafka_broker: BrokerHandle, fault_injector: FaultInjector
) -> None:
    topic = unique_topic("per-broker")
    create_topic(kafka_broker, topic, partitions=1)
    client = Deliveries(producer(kafka_broker))
    client.produce(topic, b"warm-up")
    client.wait(1)
    fault_injector.push_broker_request_errors(
        1, ApiKey.Produce, [KafkaError.NOT_ENOUGH_REPLICAS, 0], rtts_ms=[0, 400]
    )
    fault_injector.start_request_tracking()
    started = time.monotonic()
    client.produce(topic, b"late")
    (_, _), (error, message) = client.wait(2)
    elapsed = time.monotonic() - started
    fault_injector.stop_request_tracking()

    assert error is None
    assert message.offset() == 1
    assert elapsed >= 0.4  # the successful second attempt was answered after its 400 ms
    produces = [r for r in fault_injector.get_requests() if r.api_key == ApiKey.Produce]
    assert len(produces) == 2


def test_control_endpoint_reports_refused_calls(fault_injector: FaultInjector) -> None:
    with pytest.raises(EmbeddedBrokerError, match="BROKER_NOT_AVAILABLE"):
        fault_injector.broker_down(99)
    topic = unique_topic("twice")
    fault_injector.create_topic(topic, 2)
    with pytest.raises(EmbeddedBrokerError, match="TOPIC_ALREADY_EXISTS"):
        fault_injector.create_topic(topic, 2)
    with pytest.raises(EmbeddedBrokerError, match="at least 1 partition"):
        fault_injector.create_topic(unique_topic("empty"), 0)

    host, _, port = fault_injector.address.rpartition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT_S)
    try:
        connection.request("POST", "/no_such_fault", "{}")
        response = connection.getresponse()
        assert response.status == 404
        assert json.loads(response.read()) == {"error": "unknown method 'no_such_fault'"}
    finally:
        connection.close()


# --------------------------------------------------------------------------- the child process


def running(pid: int) -> bool:
    """Alive, counting an exited child that nobody reaped yet (a zombie) as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rpartition(") ")[2].startswith("Z"))


def test_start_creates_requested_topics_and_stop_is_prompt_and_clean() -> None:
    topic = unique_topic("precreated")
    broker = EmbeddedBroker.start(brokers=2, partitions=3, topics=[topic])
    try:
        handle = BrokerHandle(broker.bootstrap_servers, "embedded", broker.faults)
        metadata = producer(handle).list_topics(topic, timeout=TIMEOUT_S)
        assert sorted(metadata.topics[topic].partitions) == [0, 1, 2]
        assert sorted(metadata.brokers) == [1, 2]
    finally:
        # Within stop's grace period, or it would have been killed (exit code -9, not 0).
        code = broker.stop(timeout_s=STOP_GRACE_S)
    assert code == 0
    assert not running(broker.pid)


def test_broker_exits_when_its_parent_dies_without_stopping_it() -> None:
    parent = textwrap.dedent(
        """
        import os
        from kedro_stream.devbroker.process import EmbeddedBroker
        print(EmbeddedBroker.start().pid, flush=True)
        os._exit(0)  # no stop(), no atexit: as if the test run was killed
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", parent], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    orphan = int(done.stdout.strip().splitlines()[-1])
    wait_until(lambda: not running(orphan), "the orphaned broker exits", timeout_s=5)


def test_startup_failure_raises_with_the_child_stderr() -> None:
    with pytest.raises(EmbeddedBrokerError) as failure:
        EmbeddedBroker.start(brokers=0)
    message = str(failure.value)
    assert "did not start" in message
    assert "Invalid value for '--brokers': 0 is not in the range x>=1" in message


def read_lines_until(process: subprocess.Popen[bytes], prefix: str, timeout_s: float) -> list[str]:
    """Stdout lines up to and including the first one starting with ``prefix``."""
    assert process.stdout is not None
    output = b""
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while True:
            lines = output.decode().split("\n")[:-1]
            ends = [i for i, line in enumerate(lines) if line.startswith(prefix)]
            if ends:
                return lines[: ends[0] + 1]
            assert selector.select(deadline - time.monotonic()), f"no {prefix} line: {lines}"
            chunk = os.read(process.stdout.fileno(), 4096)  # unbuffered, unlike readline()
            assert chunk, f"stdout closed before a {prefix} line: {lines}"
            output += chunk


@pytest.fixture
def entry_point(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m kedro_stream.devbroker`` as a user starts it (no --exit-with-parent),
    from a directory that is not a Kedro project."""
    env = {k: v for k, v in os.environ.items() if k != "KEDRO_LOGGING_CONFIG"}
    process = subprocess.Popen(
        [sys.executable, "-m", "kedro_stream.devbroker", "--brokers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
        env=env,
    )
    yield process
    process.kill()
    process.wait()
    process.stdout.close()


def test_entry_point_serves_until_ctrl_c(entry_point: subprocess.Popen[bytes]) -> None:
    lines = read_lines_until(entry_point, "control=", timeout_s=20)
    assert lines[-2].startswith("bootstrap.servers=127.0.0.1:")
    assert len(lines[-2].split(",")) == 2
    assert lines[-1].startswith("control=127.0.0.1:")
    faults = FaultInjector(lines[-1].removeprefix("control="))
    faults.create_topic(unique_topic("alive"), 1)

    entry_point.send_signal(signal.SIGINT)
    assert entry_point.wait(timeout=STOP_GRACE_S) == 0  # exits by itself, cleanly


def test_entry_point_prints_the_bootstrap_line_first(
    entry_point: subprocess.Popen[bytes],
) -> None:
    lines = read_lines_until(entry_point, "control=", timeout_s=20)
    assert lines[0].startswith("bootstrap.servers="), lines


@pytest.mark.parametrize(
    ("module", "usage"),
    [
        (["kedro_stream.devbroker"], "Usage: python -m kedro_stream.devbroker [OPTIONS]"),
        (["kedro_stream", "broker"], "Usage: python -m kedro_stream broker [OPTIONS]"),
    ],
)
def test_entry_point_warns_nothing_and_imports_no_kedro(
    tmp_path: Path, module: list[str], usage: str
) -> None:
    """``python -m`` on the package neither finds its ``__main__`` already imported (runpy would
    warn) nor imports Kedro, whose logging would write to stdout before the bootstrap line."""
    done = subprocess.run(
        [sys.executable, "-W", "error", "-X", "importtime", "-m", *module, "-h"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(usage)
    imported = [
        line.rpartition("|")[2].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    ]
    assert "kedro_stream.devbroker.process" in imported  # what -h loads before it exits
    assert [name for name in imported if name == "kedro" or name.startswith("kedro.")] == []
    assert "Warning" not in done.stderr


# --------------------------------------------------------------------------- --port


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive ports free right now (held while probing)."""
    for _ in range(50):
        held: list[socket.socket] = []
        try:
            held.append(socket.create_server(("127.0.0.1", 0)))
            first = held[0].getsockname()[1]
            if first + count > 65536:
                continue
            for port in range(first + 1, first + count):
                held.append(socket.create_server(("127.0.0.1", port)))
            return first
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise AssertionError(f"no {count} consecutive free ports")


@contextmanager
def public_broker(cwd: Path, port: int, *args: str) -> Iterator[list[str]]:
    """``python -m kedro_stream broker --port PORT`` run from ``cwd``; yields its stdout lines
    up to the control line."""
    env = {k: v for k, v in os.environ.items() if k != "KEDRO_LOGGING_CONFIG"}
    process = subprocess.Popen(
        [sys.executable, "-m", "kedro_stream", "broker", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=cwd,
        env=env,
    )
    try:
        yield read_lines_until(process, "control=", timeout_s=20)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=STOP_GRACE_S) == 0
    finally:
        process.kill()
        process.wait()
        process.stdout.close()


def test_port_serves_a_consumer_group_outside_a_kedro_project(tmp_path: Path) -> None:
    port = free_ports(1)
    topic, group = unique_topic("public"), unique_topic("group")
    with public_broker(tmp_path, port, "--topic", topic, "--partitions", "2") as lines:
        assert lines[0] == f"bootstrap.servers=127.0.0.1:{port}"
        handle = BrokerHandle(f"127.0.0.1:{port}", "embedded", None)
        client = producer(handle)
        sent = [f"value-{i}".encode() for i in range(6)]
        for i, value in enumerate(sent):
            client.produce(topic, value, partition=i % 2)
        assert client.flush(TIMEOUT_S) == 0

        reader = consumer(handle, group)
        reader.subscribe([topic])
        try:
            received = consume(reader, len(sent))
            reader.commit(asynchronous=False)
        finally:
            reader.close()
        assert sorted(m.value() for m in received) == sent

        restarted = consumer(handle, group)
        try:
            committed = restarted.committed(
                [TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=TIMEOUT_S
            )
        finally:
            restarted.close()
        assert [tp.offset for tp in committed] == [3, 3]


def test_two_brokers_advertise_their_forwarded_ports(tmp_path: Path) -> None:
    port = free_ports(2)
    topic = unique_topic("two")
    with public_broker(tmp_path, port, "--brokers", "2", "--topic", topic) as lines:
        assert lines[0] == f"bootstrap.servers=127.0.0.1:{port},127.0.0.1:{port + 1}"
        handle = BrokerHandle(f"127.0.0.1:{port + 1}", "embedded", None)
        client = producer(handle)
        metadata = client.list_topics(topic, timeout=TIMEOUT_S)
        brokers = {b.id: (b.host, b.port) for b in metadata.brokers.values()}
        assert brokers == {1: ("127.0.0.1", port), 2: ("127.0.0.1", port + 1)}
        leaders = {p.leader for p in metadata.topics[topic].partitions.values()}
        assert leaders == {1, 2}
        for partition in range(AUTO_CREATE_PARTITIONS):  # one per leader and more
            client.produce(topic, b"x", partition=partition)
        assert client.flush(TIMEOUT_S) == 0


def _broker_errors(tmp_path: Path, *options: str) -> list[str]:
    """The lines of a development broker that fails to start, which prints nothing on stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "kedro_stream", "broker", *options],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert done.stdout == ""
    return done.stderr.splitlines()


@pytest.mark.parametrize(("brokers", "taken"), [(1, 0), (2, 1)])
def test_port_in_use_is_one_error_line(tmp_path: Path, brokers: int, taken: int) -> None:
    port = free_ports(brokers)
    with socket.create_server(("127.0.0.1", port + taken)):
        errors = _broker_errors(tmp_path, "--port", str(port), "--brokers", str(brokers))
    assert errors == [
        f"Error: port {port + taken} is in use: stop what listens there, choose another --port, "
        "or leave it out for any free port"
    ]


def test_a_control_port_in_use_is_one_error_line(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        errors = _broker_errors(tmp_path, "--control-port", str(port))
    assert errors == [
        f"Error: control port {port} is in use: stop what listens there, choose another "
        "--control-port, or leave it out for any free port"
    ]
