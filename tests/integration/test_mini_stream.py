"""Stream features the example does not exercise, on the mini project: metadata columns and
header propagation, and a run longer than ``max.poll.interval.ms``."""

from __future__ import annotations

import gc
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from kedro_stream.config import MetricsConfig, Project
from kedro_stream.service.app import consume, load_config
from tests.kafka_helpers import committed, produce, read_topic
from tests.stream_helpers import GROUP_PROTOCOLS

pytestmark = pytest.mark.integration


def write_stream(project: Path, stream: dict[str, Any], consumer: dict[str, Any]) -> None:
    # Short sessions: a broker may hold a new group's first join for the session timeout.
    consumer = {"session.timeout.ms": 3000, "heartbeat.interval.ms": 300, **consumer}
    config = {"kafka": {"consumer": consumer}, "streams": {"mini": stream}}
    (project / "conf" / "base" / "stream.yml").write_text(yaml.safe_dump(config))


def run(project: Path, topic: str, bootstrap: str, **limits: Any):
    kafka, stream, _metrics = load_config(
        Project(project),
        env=None,
        topic=topic,
        namespace=None,
        overrides={},
        bootstrap_servers=bootstrap,
    )
    return consume(Project(project), kafka, stream, env=None, **limits)


def rows(count: int) -> list[bytes]:
    return [json.dumps({"id": i, "kind": "b", "amount": float(i)}).encode() for i in range(count)]


def test_metadata_columns_reach_the_nodes_and_headers_follow_the_record(
    kafka_broker, mini_project: Path
) -> None:
    run_id = uuid.uuid4().hex[:8]
    source, target = f"mini-in-{run_id}", f"mini-enriched-{run_id}"
    write_stream(
        mini_project,
        {
            "namespace": "ns",
            "group_id": f"mini-{run_id}",
            "input": {"topics": [source], "dataset": "batch", "metadata_columns": True},
            "outputs": {"enriched": {"topic": target, "key": "id"}},
            "batch": {"max_wait_ms": 100},
        },
        {"fetch.wait.max.ms": 20},
    )
    producer_headers = [("trace-id", b"abc")]
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap_servers})
    for value in rows(5):
        producer.produce(source, value=value, key=b"k", headers=producer_headers)
    assert producer.flush(10) == 0

    run(mini_project, source, kafka_broker.bootstrap_servers, max_messages=5, idle_timeout_s=30)

    out = read_topic(kafka_broker.bootstrap_servers, target, expect=5)
    assert len(out) == 5
    for message in out:
        body = json.loads(message.value())
        assert not any(k.startswith("_") for k in body), "metadata columns are not published"
        assert body["value"] == body["amount"] * 3 * 2  # weight of kind b, times factor
        assert dict(message.headers() or [])["trace-id"] == b"abc"
        assert message.key() == str(body["id"]).encode()


@pytest.mark.parametrize("group_protocol", GROUP_PROTOCOLS)
def test_a_run_longer_than_max_poll_interval_keeps_the_partitions(
    kafka_broker, mini_project: Path, group_protocol: str
) -> None:
    run_id = uuid.uuid4().hex[:8]
    source, target = f"slow-in-{run_id}", f"slow-out-{run_id}"
    params = mini_project / "conf" / "base" / "parameters.yml"
    params.write_text(params.read_text().replace("seconds: 0.0", "seconds: 6.0"))
    write_stream(
        mini_project,
        {
            "namespace": "slow",
            "pipeline": "slow",
            "group_id": f"slow-{run_id}",
            "input": {"topics": [source], "dataset": "batch"},
            "outputs": {"echoed": {"topic": target}},
            "batch": {"max_wait_ms": 500},
            "max_poll_interval_s": 4,
        },
        {
            "fetch.wait.max.ms": 20,
            "session.timeout.ms": 3000,
            "heartbeat.interval.ms": 300,
            "group.protocol": group_protocol,
        },
    )
    produce(kafka_broker.bootstrap_servers, source, rows(10))
    progress = run(
        mini_project, source, kafka_broker.bootstrap_servers, max_messages=10, idle_timeout_s=30
    )
    # One 6 s run, committed: the consumer stayed in the group although it ran past 4 s.
    assert progress.batches == 1
    assert sum(committed(kafka_broker.bootstrap_servers, f"slow-{run_id}", source).values()) == 10
    assert len(read_topic(kafka_broker.bootstrap_servers, target, expect=10)) == 10


def _failing_stream(project: Path, namespace: str, run_id: str, **extra: Any) -> tuple[str, str]:
    source, dlq = f"{namespace}-in-{run_id}", f"{namespace}-dlq-{run_id}"
    output = "echoed" if namespace == "slow" else "count"
    write_stream(
        project,
        {
            "namespace": namespace,
            "pipeline": namespace,
            "group_id": f"{namespace}-{run_id}",
            "input": {"topics": [source], "dataset": "batch"},
            "outputs": {output: {"topic": f"{namespace}-out-{run_id}"}},
            "batch": {"max_wait_ms": 300},
            "retry": {"attempts": 2, "backoff_ms": 10},
            "on_failure": "dead-letter",
            "dead_letter_topic": dlq,
            **extra,
        },
        {"fetch.wait.max.ms": 20},
    )
    return source, dlq


def test_a_run_past_its_timeout_is_dead_lettered_and_the_loop_goes_on(
    kafka_broker, mini_project: Path
) -> None:
    params = mini_project / "conf" / "base" / "parameters.yml"
    params.write_text(params.read_text().replace("seconds: 0.0", "seconds: 3.0"))
    source, dlq = _failing_stream(mini_project, "slow", uuid.uuid4().hex[:8], run_timeout_s=0.5)
    produce(kafka_broker.bootstrap_servers, source, rows(5))
    started = time.monotonic()
    progress = run(mini_project, source, kafka_broker.bootstrap_servers, max_messages=5)
    assert time.monotonic() - started < 30  # two 0.5 s attempts, not two 3 s runs
    assert progress.dead_lettered == 5
    dead = read_topic(kafka_broker.bootstrap_servers, dlq, expect=5)
    assert {dict(m.headers())["kedro-stream.error.class"] for m in dead} == {b"RunTimeout"}


def test_an_output_of_the_wrong_type_is_dead_lettered(kafka_broker, mini_project: Path) -> None:
    source, dlq = _failing_stream(mini_project, "wrong", uuid.uuid4().hex[:8])
    produce(kafka_broker.bootstrap_servers, source, rows(3))
    progress = run(mini_project, source, kafka_broker.bootstrap_servers, max_messages=3)
    assert progress.dead_lettered == 3
    dead = read_topic(kafka_broker.bootstrap_servers, dlq, expect=3)
    reasons = {
        tuple(dict(m.headers())[f"kedro-stream.error.{k}"] for k in ("stage", "class", "message"))
        for m in dead
    }
    # No run would change the output's type: encode failures are dead-lettered without retry.
    assert reasons == {
        (
            b"encode",
            b"EncodeError",
            b"output 'count': an output published to Kafka must be a DataFrame, a list of "
            b"dicts or a dict, got int",
        )
    }


def test_the_loop_runs_with_the_boot_objects_kept_out_of_garbage_collection(
    kafka_broker, mini_project: Path
) -> None:
    """A full collection over everything boot allocated stalled the loop ~200 ms (the whole
    end-to-end p99 at 1k records/s); frozen objects are skipped by every collection."""
    run_id = uuid.uuid4().hex[:8]
    source = f"gc-in-{run_id}"
    write_stream(
        mini_project,
        {
            "namespace": "ns",
            "group_id": f"gc-{run_id}",
            "input": {"topics": [source], "dataset": "batch"},
            "outputs": {"enriched": {"topic": f"gc-out-{run_id}"}},
            "batch": {"max_wait_ms": 100},
        },
        {"fetch.wait.max.ms": 20},
    )
    produce(kafka_broker.bootstrap_servers, source, rows(3))
    frozen_while_serving: list[int] = []
    try:
        run(
            mini_project,
            source,
            kafka_broker.bootstrap_servers,
            max_messages=3,
            idle_timeout_s=30,
            metrics=MetricsConfig(port=0),
            on_ready=lambda _port: frozen_while_serving.append(gc.get_freeze_count()),
        )
    finally:
        gc.unfreeze()
    assert frozen_while_serving and frozen_while_serving[0] > 10_000
