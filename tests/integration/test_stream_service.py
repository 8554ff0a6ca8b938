"""The stream loop against a broker process over TCP: outputs, dead letters, retries, commits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from confluent_kafka import KafkaError

from kedro_stream.kafka.mock_api import ApiKey
from kedro_stream.service.loop import StreamStopped
from kedro_stream.testing.brokers import create_topic
from tests.kafka_helpers import (
    committed,
    headers,
    message_count,
    produce,
    produce_json,
    read_topic,
)
from tests.stream_helpers import configure, payments, run_stream, topics

pytestmark = pytest.mark.integration

POISON = [
    b"not json at all",
    b'{"payment_id": "p-x"',  # truncated
    b"[1, 2, 3]",  # not an object
    b"\xff\xfe\xfd",  # invalid UTF-8
    json.dumps({"payment_id": "p-y", "amount": "a lot"}).encode(),  # wrong types, missing fields
]


def test_every_good_record_is_scored_and_every_poison_record_dead_lettered(
    kafka_broker, stream_project: Path
) -> None:
    names = topics("alo")
    create_topic(kafka_broker, names["input"], partitions=3)
    configure(stream_project, names, **{"batch.max_size": 100})
    good = payments(stream_project, 400)
    produce_json(kafka_broker.bootstrap_servers, names["input"], good[:200])
    produce(kafka_broker.bootstrap_servers, names["input"], POISON)
    produce_json(kafka_broker.bootstrap_servers, names["input"], good[200:])

    progress = run_stream(
        stream_project, names, kafka_broker.bootstrap_servers, max_messages=405, idle_timeout_s=30
    )

    assert progress.records == 405
    assert progress.dead_lettered == len(POISON)
    scores = read_topic(kafka_broker.bootstrap_servers, names["scores"], expect=400)
    scored_ids = [json.loads(m.value())["payment_id"] for m in scores]
    assert sorted(scored_ids) == sorted(p["payment_id"] for p in good)
    assert all(m.key() == json.loads(m.value())["payment_id"].encode() for m in scores)

    dead = read_topic(kafka_broker.bootstrap_servers, names["dlq"], expect=len(POISON))
    assert sorted(m.value() for m in dead) == sorted(POISON)  # bytes kept as they were
    for message in dead:
        h = headers(message)
        assert h["kedro-stream.error.stage"] == b"decode"
        assert h["kedro-stream.error.class"] == b"DecodeError"
        assert h["kedro-stream.error.message"]
        assert h["kedro-stream.source.topic"] == names["input"].encode()
        assert int(h["kedro-stream.source.offset"]) >= 0
        assert h["kedro-stream.namespace"] == b"scoring"

    # Committed offsets are exactly the end of what was processed: 405 records.
    assert (
        sum(committed(kafka_broker.bootstrap_servers, names["group"], names["input"]).values())
        == 405
    )


def test_alerts_are_a_subset_of_scores_above_the_threshold(
    kafka_broker, stream_project: Path
) -> None:
    names = topics("alerts")
    configure(stream_project, names)
    good = payments(stream_project, 3000)
    produce_json(kafka_broker.bootstrap_servers, names["input"], good)
    run_stream(
        stream_project, names, kafka_broker.bootstrap_servers, max_messages=3000, idle_timeout_s=30
    )
    scores = {
        s["payment_id"]: s["score"]
        for s in (
            json.loads(m.value())
            for m in read_topic(kafka_broker.bootstrap_servers, names["scores"], expect=3000)
        )
    }
    alerts = [
        json.loads(m.value()) for m in read_topic(kafka_broker.bootstrap_servers, names["alerts"])
    ]
    assert alerts, "3000 synthetic payments hold some fraud"
    assert all(scores[a["payment_id"]] >= 0.8 for a in alerts)


def test_a_failing_batch_is_retried_then_dead_lettered(kafka_broker, stream_project: Path) -> None:
    names = topics("fail-dlq")
    configure(
        stream_project,
        names,
        **{
            "on_failure": "dead-letter",
            "retry.attempts": 2,
            "retry.backoff_ms": 10,
            "batch.max_size": 50,
        },
    )
    # A payment with a negative amount passes the schema but makes the model's log1p fail.
    broken = {**payments(stream_project, 1)[0], "payment_id": "p-broken", "amount": -1e308}
    produce_json(kafka_broker.bootstrap_servers, names["input"], [broken])
    progress = run_stream(
        stream_project, names, kafka_broker.bootstrap_servers, max_messages=1, idle_timeout_s=30
    )
    assert progress.dead_lettered == 1
    dead = read_topic(kafka_broker.bootstrap_servers, names["dlq"], expect=1)
    assert headers(dead[0])["kedro-stream.error.stage"] == b"pipeline"
    assert json.loads(dead[0].value())["payment_id"] == "p-broken"
    assert committed(kafka_broker.bootstrap_servers, names["group"], names["input"]) != {}


def test_a_failing_batch_stops_the_service_without_commit(
    kafka_broker, stream_project: Path
) -> None:
    names = topics("fail-stop")
    configure(
        stream_project, names, **{"on_failure": "stop", "retry.attempts": 2, "retry.backoff_ms": 10}
    )
    broken = {**payments(stream_project, 1)[0], "payment_id": "p-broken", "amount": -1e308}
    produce_json(kafka_broker.bootstrap_servers, names["input"], [broken])
    with pytest.raises(StreamStopped, match=r"failed 2 times.*nothing committed"):
        run_stream(stream_project, names, kafka_broker.bootstrap_servers, idle_timeout_s=30)
    assert committed(kafka_broker.bootstrap_servers, names["group"], names["input"]) == {}
    assert message_count(kafka_broker.bootstrap_servers, names["dlq"]) == 0


def test_a_commit_overtaken_by_a_rebalance_is_not_a_failure(
    fault_injector, kafka_broker, stream_project: Path
) -> None:
    """Regressions: a commit refused with REBALANCE_IN_PROGRESS used to count as a failed batch
    (re-run, then dead-lettered although its outputs were acknowledged); then, abandoned, its
    offsets were never committed when no later record arrived on those partitions."""
    names = topics("rebalance")
    create_topic(kafka_broker, names["input"], partitions=1)
    configure(
        stream_project,
        names,
        **{"on_failure": "dead-letter", "retry.attempts": 1, "batch.max_size": 100},
    )
    produce_json(kafka_broker.bootstrap_servers, names["input"], payments(stream_project, 100))
    fault_injector.push_request_errors(ApiKey.OffsetCommit, [KafkaError.REBALANCE_IN_PROGRESS])
    progress = run_stream(
        stream_project, names, kafka_broker.bootstrap_servers, max_messages=100, idle_timeout_s=30
    )
    assert progress.dead_lettered == 0
    assert message_count(kafka_broker.bootstrap_servers, names["dlq"]) == 0
    # The one batch was processed again and committed: its outputs appear twice.
    assert committed(kafka_broker.bootstrap_servers, names["group"], names["input"]) == {0: 100}
    scores = read_topic(kafka_broker.bootstrap_servers, names["scores"], expect=200)
    assert len(scores) == 200
