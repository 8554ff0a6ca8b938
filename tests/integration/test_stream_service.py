"""The stream loop against a broker process over TCP: outputs, dead letters, retries, commits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from confluent_kafka import KafkaError

from kedro_stream.devbroker.cluster import ApiKey
from kedro_stream.service.giving_up import StreamStopped
from tests.kafka_helpers import (
    committed,
    headers,
    message_count,
    produce,
    produce_payments,
    read_topic,
)
from tests.reconcile import (
    assert_reconciled,
    expected_outputs,
    reconcile_alerts,
    reconcile_dead_letters,
    reconcile_features,
    reconcile_scores,
)
from tests.stream_helpers import (
    GROUP_PROTOCOLS,
    configure,
    create_input,
    payments,
    run_stream,
    topics,
    use_group_protocol,
)

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
    bootstrap = kafka_broker.bootstrap_servers
    create_input(kafka_broker, names, partitions=3)
    configure(stream_project, names, **{"batch.max_size": 100})
    good = payments(stream_project, 3000)  # enough synthetic payments to hold some fraud
    produce_payments(bootstrap, names["input"], good[:1500])
    produce(bootstrap, names["input"], POISON)
    produce_payments(bootstrap, names["input"], good[1500:])
    total = len(good) + len(POISON)

    progress = run_stream(stream_project, names, bootstrap, max_messages=total, idle_timeout_s=30)

    assert progress.records == total
    assert progress.dead_lettered == len(POISON)
    expected = expected_outputs(stream_project, good)
    assert expected.alerts, "3000 synthetic payments hold some fraud"
    # Every output of the namespace, both ways, each record exactly once (nothing failed).
    assert_reconciled(
        reconcile_features(expected, read_topic(bootstrap, names["features"], expect=len(good))),
        reconcile_scores(expected, read_topic(bootstrap, names["scores"], expect=len(good))),
        reconcile_alerts(expected, read_topic(bootstrap, names["alerts"])),
        reconcile_dead_letters(
            POISON,
            read_topic(bootstrap, names["dlq"], expect=len(POISON)),
            stage="decode",
            error_class="DecodeError",
        ),
        exact=True,
    )
    for message in read_topic(bootstrap, names["dlq"], expect=len(POISON)):
        h = headers(message)
        assert h["kedro-stream.source.topic"] == names["input"].encode()
        assert int(h["kedro-stream.source.offset"]) >= 0
        assert h["kedro-stream.namespace"] == b"scoring"

    # Committed offsets are exactly the end of what was processed.
    assert sum(committed(bootstrap, names["group"], names["input"]).values()) == total


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
    produce_payments(kafka_broker.bootstrap_servers, names["input"], [broken])
    progress = run_stream(
        stream_project, names, kafka_broker.bootstrap_servers, max_messages=1, idle_timeout_s=30
    )
    assert progress.dead_lettered == 1
    dead = read_topic(kafka_broker.bootstrap_servers, names["dlq"], expect=1)
    assert headers(dead[0])["kedro-stream.error.stage"] == b"pipeline"
    assert headers(dead[0])["kedro-stream.error.class"] == b"ValueError"  # the model's NaN check
    assert json.loads(dead[0].value())["payment_id"] == "p-broken"
    # The one record is committed, on its partition alone.
    assert list(
        committed(kafka_broker.bootstrap_servers, names["group"], names["input"]).values()
    ) == [1]


def test_a_failing_batch_stops_the_service_without_commit(
    kafka_broker, stream_project: Path
) -> None:
    names = topics("fail-stop")
    configure(
        stream_project, names, **{"on_failure": "stop", "retry.attempts": 2, "retry.backoff_ms": 10}
    )
    broken = {**payments(stream_project, 1)[0], "payment_id": "p-broken", "amount": -1e308}
    produce_payments(kafka_broker.bootstrap_servers, names["input"], [broken])
    with pytest.raises(StreamStopped, match=r"failed 2 times.*nothing committed"):
        run_stream(stream_project, names, kafka_broker.bootstrap_servers, idle_timeout_s=30)
    assert committed(kafka_broker.bootstrap_servers, names["group"], names["input"]) == {}
    assert message_count(kafka_broker.bootstrap_servers, names["dlq"]) == 0


@pytest.mark.parametrize("group_protocol", GROUP_PROTOCOLS)
def test_a_commit_overtaken_by_a_rebalance_is_not_a_failure(
    fault_injector, kafka_broker, stream_project: Path, group_protocol: str
) -> None:
    """Regressions: a commit refused with REBALANCE_IN_PROGRESS used to count as a failed batch
    (re-run, then dead-lettered although its outputs were acknowledged); then, abandoned, its
    offsets were never committed when no later record arrived on those partitions; then the
    batch was run again and its outputs published twice. Now the commit is deferred until the
    group allows it."""
    names = topics("rebalance")
    create_input(kafka_broker, names, partitions=1)
    configure(
        stream_project,
        names,
        **{"on_failure": "dead-letter", "retry.attempts": 1, "batch.max_size": 100},
    )
    use_group_protocol(stream_project, group_protocol)
    produce_payments(kafka_broker.bootstrap_servers, names["input"], payments(stream_project, 100))
    fault_injector.push_request_errors(ApiKey.OffsetCommit, [KafkaError.REBALANCE_IN_PROGRESS])
    progress = run_stream(
        stream_project, names, kafka_broker.bootstrap_servers, max_messages=100, idle_timeout_s=30
    )
    assert progress.dead_lettered == 0
    assert message_count(kafka_broker.bootstrap_servers, names["dlq"]) == 0
    assert committed(kafka_broker.bootstrap_servers, names["group"], names["input"]) == {0: 100}
    scores = read_topic(kafka_broker.bootstrap_servers, names["scores"])
    assert len(scores) == 100
