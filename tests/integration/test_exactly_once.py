"""Exactly-once: outputs and offsets travel in one transaction; a failure aborts it; no separate
offset commit ever happens. The request sequence is read from the embedded broker's tracking;
the stored offsets need a broker whose transactions store them (the mock's do not)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from confluent_kafka import KafkaError

from kedro_stream.devbroker.cluster import ApiKey
from kedro_stream.service.giving_up import StreamStopped
from tests.kafka_helpers import committed, produce_payments, read_topic
from tests.stream_helpers import configure, payments, run_stream, topics

pytestmark = pytest.mark.integration
EOS = {"guarantee": "exactly-once", "batch.max_size": 100}


def api_keys(fault_injector) -> list[ApiKey]:
    return [ApiKey(r.api_key) for r in fault_injector.get_requests() if r.api_key in set(ApiKey)]


def test_outputs_and_offsets_share_the_transaction(
    fault_injector, kafka_broker, stream_project: Path
) -> None:
    names = topics("eos")
    configure(stream_project, names, **EOS, transactional_id=f"{names['group']}-0")
    produce_payments(kafka_broker.bootstrap_servers, names["input"], payments(stream_project, 250))
    fault_injector.start_request_tracking()
    progress = run_stream(
        stream_project, names, kafka_broker.bootstrap_servers, max_messages=250, idle_timeout_s=30
    )
    keys = api_keys(fault_injector)
    fault_injector.stop_request_tracking()

    assert progress.records == 250
    assert ApiKey.OffsetCommit not in keys, "offsets must only travel inside the transaction"
    assert keys.count(ApiKey.TxnOffsetCommit) >= progress.batches
    # The first transaction holds outputs and offsets before its EndTxn (the producer may send
    # the offsets before its lingering Produce requests: both become visible only at EndTxn).
    first = keys[: keys.index(ApiKey.EndTxn)]
    in_transaction = (
        ApiKey.AddPartitionsToTxn,
        ApiKey.Produce,
        ApiKey.AddOffsetsToTxn,
        ApiKey.TxnOffsetCommit,
    )
    for key in in_transaction:
        assert key in first, f"{key.name} missing from the first transaction"
    scores = read_topic(kafka_broker.bootstrap_servers, names["scores"], expect=250)
    assert len({json.loads(m.value())["payment_id"] for m in scores}) == 250


def test_a_failing_batch_aborts_and_commits_nothing(
    fault_injector, kafka_broker, stream_project: Path
) -> None:
    names = topics("eos-fail")
    configure(
        stream_project,
        names,
        **EOS,
        transactional_id=f"{names['group']}-0",
        on_failure="stop",
        **{"retry.attempts": 2, "retry.backoff_ms": 10},
    )
    broken = {**payments(stream_project, 1)[0], "amount": -1e308}
    produce_payments(kafka_broker.bootstrap_servers, names["input"], [broken])
    fault_injector.start_request_tracking()
    with pytest.raises(StreamStopped, match="nothing committed"):
        run_stream(stream_project, names, kafka_broker.bootstrap_servers, idle_timeout_s=30)
    keys = api_keys(fault_injector)
    fault_injector.stop_request_tracking()
    assert ApiKey.OffsetCommit not in keys
    assert ApiKey.TxnOffsetCommit not in keys and ApiKey.AddOffsetsToTxn not in keys
    assert committed(kafka_broker.bootstrap_servers, names["group"], names["input"]) == {}


@pytest.mark.unsupported_broker(
    "embedded", "the librdkafka mock does not store offsets sent with send_offsets_to_transaction"
)
def test_committed_offsets_come_from_the_transaction(kafka_broker, stream_project: Path) -> None:
    names = topics("eos-offsets")
    configure(stream_project, names, **EOS, transactional_id=f"{names['group']}-0")
    produce_payments(kafka_broker.bootstrap_servers, names["input"], payments(stream_project, 120))
    run_stream(
        stream_project, names, kafka_broker.bootstrap_servers, max_messages=120, idle_timeout_s=60
    )
    assert (
        sum(committed(kafka_broker.bootstrap_servers, names["group"], names["input"]).values())
        == 120
    )


def test_a_fenced_producer_stops_the_service_with_nothing_committed(
    fault_injector, kafka_broker, stream_project: Path
) -> None:
    # The broker answers as it does to a zombie once a newer instance took its transactional id.
    names = topics("eos-fenced")
    configure(stream_project, names, **EOS, transactional_id=f"{names['group']}-0")
    produce_payments(kafka_broker.bootstrap_servers, names["input"], payments(stream_project, 20))
    # On broker 1 (the only one): once any test pushed per-broker Produce errors, the mock no
    # longer consults its cluster-wide stack for Produce. Exactly one, because per-broker
    # errors outlive the fixture's reset: the service's first Produce takes it.
    fault_injector.push_broker_request_errors(
        1, ApiKey.Produce, [KafkaError.INVALID_PRODUCER_EPOCH]
    )
    fault_injector.start_request_tracking()
    with pytest.raises(StreamStopped, match=r"Fatal Kafka error, nothing committed.*_FENCED"):
        run_stream(stream_project, names, kafka_broker.bootstrap_servers, idle_timeout_s=30)
    keys = api_keys(fault_injector)
    assert ApiKey.EndTxn not in keys and ApiKey.OffsetCommit not in keys
    assert committed(kafka_broker.bootstrap_servers, names["group"], names["input"]) == {}
