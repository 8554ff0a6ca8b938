"""The stream loop's decisions, against fake clients: what it commits, dead-letters, re-reads,
and when it stops."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from confluent_kafka import KafkaError, KafkaException

from kedro_stream.config import KafkaConfig, Project
from kedro_stream.service import dead_letters
from kedro_stream.service.giving_up import StreamStopped
from kedro_stream.service.loop import StreamService
from tests.fake_clients import (
    FakeConsumer,
    FakeProducer,
    FakeSession,
    records,
    stream_config,
)


def service(
    session: FakeSession,
    consumer: FakeConsumer,
    producer: FakeProducer,
    *,
    config: dict[str, Any] | None = None,
    **limits: int,
) -> StreamService:
    return StreamService(
        session,  # type: ignore[arg-type]
        stream_config(**(config or {})),
        KafkaConfig(),
        project=Project(Path(".")),
        consumer_factory=lambda: consumer,  # type: ignore[arg-type,return-value]
        producer_factory=lambda _deliveries: producer,  # type: ignore[arg-type,return-value]
        **limits,
    )


def test_a_batch_is_committed_after_its_outputs_and_dead_letters() -> None:
    batch = records("in", 0, [{"n": 1}, {"n": 2}])
    batch[1]._value = b"not json"
    consumer, producer = FakeConsumer([batch]), FakeProducer()

    progress = service(FakeSession(), consumer, producer, max_messages=2).run()

    assert consumer.commits == [[("in", 0, 2)]]
    assert producer.topics() == ["out", "in.dlq"]
    assert producer.stages() == ["decode"]
    assert (progress.records, progress.produced, progress.dead_lettered) == (2, 1, 1)


def test_a_batch_overtaken_during_its_run_publishes_nothing_and_is_read_again() -> None:
    """The new owner of the revoked partition processes its records; publishing this run's
    outputs too would repeat them. The partition this member kept is read again."""
    batch = records("in", 0, [{"n": 1}, {"n": 2}]) + records("in", 1, [{"n": 3}])
    again = records("in", 0, [{"n": 1}, {"n": 2}])
    consumer, producer = FakeConsumer([batch, again]), FakeProducer()
    revoked: list[int] = []

    def node(frame: pd.DataFrame) -> pd.DataFrame:
        if not revoked:  # the group moves partition 1 while the first run goes on
            revoked.append(1)
            consumer.revoke("in", 1)
        return frame

    session = FakeSession(node)
    stream = service(session, consumer, producer, max_messages=2)
    progress = stream.run()

    assert session.runs == 2
    assert consumer.seeks == [("in", 0, 0)]  # only the partition still owned
    assert consumer.commits == [[("in", 0, 2)]]
    assert producer.topics() == ["out", "out"]  # the second run's, once
    assert progress.records == 2
    assert stream.metrics.commit_failures.labels("g")._value.get() == 1


def test_a_batch_overtaken_while_it_was_collected_is_not_run() -> None:
    """A partition revoked between two ``consume`` calls of one batch: its records may already
    be in the batch, and they are its new owner's."""
    first = records("in", 0, [{"n": 1}])
    consumer, producer, session = FakeConsumer([first]), FakeProducer(), FakeSession()
    consumer.revoke_on_consume = ("in", 0)
    consumer.list_topics = lambda timeout: None  # type: ignore[attr-defined]  # idle, unowned
    service(session, consumer, producer, idle_timeout_s=0.01).run()

    assert producer.produced == []
    assert consumer.commits == []
    assert consumer.seeks == []  # nothing of the batch is this member's any more


def test_a_commit_refused_by_a_rebalance_is_deferred_not_run_again() -> None:
    """The outputs are acknowledged: running the batch again would publish them twice. The
    offsets are committed once the group allows it, here by the idle loop's next turn."""
    batch = records("in", 0, [{"n": 1}, {"n": 2}]) + records("in", 1, [{"n": 3}])
    refused = KafkaException(KafkaError(KafkaError.REBALANCE_IN_PROGRESS))
    consumer = FakeConsumer([batch], commit_errors=[refused])
    producer, session = FakeProducer(), FakeSession()
    stream = service(session, consumer, producer, idle_timeout_s=0.5)

    progress = stream.run()

    assert session.runs == 1
    assert consumer.seeks == []
    assert producer.topics() == ["out"] * 3
    assert consumer.commits == [[("in", 0, 2), ("in", 1, 1)]]
    assert progress.records == 3


def test_deferred_offsets_are_committed_when_their_partition_is_revoked() -> None:
    """The last moment this member may commit them: after the callback, the next owner reads
    from the committed offset."""
    batch = records("in", 0, [{"n": 1}, {"n": 2}])
    refused = KafkaException(KafkaError(KafkaError.ILLEGAL_GENERATION))
    consumer = FakeConsumer([batch], commit_errors=[refused])
    producer, session = FakeProducer(), FakeSession()
    consume = consumer.consume

    def consume_then_lose_partition_0(num_messages: int, timeout: float) -> list[Any]:
        polled = consume(num_messages, timeout)
        if not polled and consumer.owned:  # the batch is done: the group moves its partition
            consumer.revoke("in", 0)
        return polled

    consumer.consume = consume_then_lose_partition_0  # type: ignore[method-assign]
    consumer.list_topics = lambda timeout: None  # type: ignore[attr-defined]  # idle, unowned
    service(session, consumer, producer, idle_timeout_s=0.01).run()

    assert consumer.commits == [[("in", 0, 2)]]
    assert session.runs == 1


def test_an_output_that_cannot_be_encoded_is_dead_lettered_at_once() -> None:
    """Retrying would fail the same way: one run, then every record of the batch goes to the
    dead-letter topic with stage ``encode``, and the batch is committed."""
    batch = records("in", 0, [{"n": 1}, {"n": 2}])
    consumer, producer = FakeConsumer([batch]), FakeProducer()
    session = FakeSession(lambda frame: frame.assign(bad=[object(), object()]))

    progress = service(
        session, consumer, producer, config={"on_failure": "dead-letter"}, max_messages=2
    ).run()

    assert session.runs == 1
    assert producer.topics() == ["in.dlq", "in.dlq"]
    assert producer.stages() == ["encode", "encode"]
    assert consumer.commits == [[("in", 0, 2)]]
    assert (progress.records, progress.dead_lettered, progress.produced) == (2, 2, 0)


def test_an_output_that_cannot_be_encoded_stops_at_once_under_on_failure_stop() -> None:
    batch = records("in", 0, [{"n": 1}])
    consumer, producer = FakeConsumer([batch]), FakeProducer()
    session = FakeSession(lambda frame: [1, 2])  # not records: cannot be published

    with pytest.raises(StreamStopped, match=r"failed at stage encode.*nothing committed"):
        service(session, consumer, producer, config={"on_failure": "stop"}).run()

    assert session.runs == 1
    assert consumer.commits == []


def test_a_failing_run_is_retried_then_dead_lettered_as_a_pipeline_failure() -> None:
    batch = records("in", 0, [{"n": 1}, {"n": 2}])
    consumer, producer = FakeConsumer([batch]), FakeProducer()

    def node(frame: pd.DataFrame) -> pd.DataFrame:
        raise KeyError("amount")

    session = FakeSession(node)
    progress = service(
        session, consumer, producer, config={"on_failure": "dead-letter"}, max_messages=2
    ).run()

    assert session.runs == 2  # retry.attempts
    assert producer.stages() == ["pipeline", "pipeline"]
    assert consumer.commits == [[("in", 0, 2)]]
    assert progress.dead_lettered == 2


def test_a_fatal_client_error_stops_the_loop_with_nothing_committed() -> None:
    """A fenced producer cannot be retried: another instance took over."""
    batch = records("in", 0, [{"n": 1}])
    fenced = KafkaException(KafkaError(KafkaError._FENCED, "fenced", fatal=True))
    consumer = FakeConsumer([batch, batch], commit_errors=[fenced])
    producer, session = FakeProducer(), FakeSession()

    with pytest.raises(StreamStopped, match=r"Fatal Kafka error.*nothing committed"):
        service(
            session, consumer, producer, config={"on_failure": "dead-letter"}, idle_timeout_s=0.01
        ).run()

    assert session.runs == 1  # not retried
    assert consumer.commits == []
    assert producer.stages() == []  # not dead-lettered either


def test_records_that_failed_decoding_keep_their_error_when_their_batch_fails() -> None:
    """A batch given up after its run failed dead-letters its good records with the run's error;
    a record that was never a record keeps its decode error, in offset order."""
    batch = records("in", 0, [{"n": 1}, {"n": 2}, {"n": 3}])
    batch[1]._value = b"not json"
    consumer, producer = FakeConsumer([batch]), FakeProducer()

    def node(frame: pd.DataFrame) -> pd.DataFrame:
        raise KeyError("zz")

    progress = service(
        FakeSession(node), consumer, producer, config={"on_failure": "dead-letter"}, max_messages=3
    ).run()

    assert producer.stages() == ["pipeline", "decode", "pipeline"]
    classes = [h["kedro-stream.error.class"].decode() for h in producer.headers]
    assert classes == ["KeyError", "DecodeError", "KeyError"]
    assert [offset for _, _, offset in consumer.commits[0]] == [3]
    assert progress.dead_lettered == 3


def dead_letter_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == dead_letters.__name__ and r.levelno == logging.WARNING
    ]


def test_bad_values_set_aside_are_said_in_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    batch = records("in", 0, [{"n": 1}, {"n": 2}, {"n": 3}])
    batch[1]._value = b"not json"
    consumer, producer = FakeConsumer([batch]), FakeProducer()
    caplog.set_level(logging.INFO, dead_letters.__name__)

    service(FakeSession(), consumer, producer, max_messages=3).run()

    [line] = dead_letter_lines(caplog)
    assert line.startswith(
        "Dead-lettered 1 of 3 records to in.dlq (1 at stage decode); the first, in partition 0 "
        "offset 1: DecodeError: "
    )


def test_a_batch_given_up_is_said_in_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    batch = records("in", 0, [{"n": 1}, {"n": 2}])
    consumer, producer = FakeConsumer([batch]), FakeProducer()
    session = FakeSession(lambda frame: frame.assign(bad=[object(), object()]))
    caplog.set_level(logging.INFO, dead_letters.__name__)

    service(session, consumer, producer, config={"on_failure": "dead-letter"}, max_messages=2).run()

    [line] = dead_letter_lines(caplog)
    assert line.startswith(
        "Dead-lettered 2 of 2 records to in.dlq (2 at stage encode); the first, in partition 0 "
        "offset 0: EncodeError: "
    )


def test_a_stream_that_stops_says_the_dead_letters_its_log_held_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The second batch comes within the log's interval of the first: no next line would say
    it once the stream has stopped."""
    first, second = records("in", 0, [{"n": 1}, {"n": 2}]), records("in", 1, [{"n": 3}])
    first[0]._value = second[0]._value = b"not json"
    consumer, producer = FakeConsumer([first, second]), FakeProducer()
    caplog.set_level(logging.INFO, dead_letters.__name__)

    service(FakeSession(), consumer, producer, max_messages=3).run()

    assert dead_letter_lines(caplog)[1:] == [
        "Dead-lettered to in.dlq: 1 more dead-lettered in 1 batch since the last line"
    ]
