"""``on_failure: isolate`` in the stream loop, against fake clients: which records it
dead-letters, what it publishes, how many runs it spends, what it commits."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from kedro_stream.config import KafkaConfig, Project
from kedro_stream.service.loop import StreamService
from tests.fake_clients import FakeConsumer, FakeProducer, FakeSession, records, stream_config

ISOLATE = {"on_failure": "isolate", "batch": {"max_wait_ms": 10}}  # retry.attempts: 2


def service(
    session: FakeSession, consumer: FakeConsumer, producer: FakeProducer, **config: Any
) -> StreamService:
    return StreamService(
        session,  # type: ignore[arg-type]
        stream_config(**{**ISOLATE, **config}),
        KafkaConfig(),
        project=Project(Path(".")),
        consumer_factory=lambda: consumer,  # type: ignore[arg-type,return-value]
        producer_factory=lambda _deliveries: producer,  # type: ignore[arg-type,return-value]
        idle_timeout_s=0.01,
    )


def failing_on(*poison: int):
    """A node that raises on a batch holding any of ``poison``, naming the first."""

    def node(frame: pd.DataFrame) -> pd.DataFrame:
        bad = [n for n in frame["n"] if n in poison]
        if bad:
            raise ValueError(f"cannot score n={bad[0]}")
        return frame

    return node


def outputs(producer: FakeProducer) -> list[int]:
    return [orjson.loads(value)["n"] for topic, value, _ in producer.produced if topic == "out"]


def dead(producer: FakeProducer) -> list[tuple[int, str, str, str]]:
    """(n, stage, error class, error message) of each dead letter of a record that decoded."""
    return [
        (
            orjson.loads(value)["n"],
            h["kedro-stream.error.stage"].decode(),
            h["kedro-stream.error.class"].decode(),
            h["kedro-stream.error.message"].decode(),
        )
        for (topic, value, _), h in zip(producer.produced, producer.headers, strict=True)
        if topic == "in.dlq" and h["kedro-stream.error.stage"] != b"decode"
    ]


def test_one_poison_record_is_dead_lettered_alone_and_the_rest_published_once() -> None:
    batch = records("in", 0, [{"n": n} for n in range(8)])
    consumer, producer, session = FakeConsumer([batch]), FakeProducer(), FakeSession(failing_on(5))
    stream = service(session, consumer, producer)

    progress = stream.run()

    assert dead(producer) == [(5, "pipeline", "ValueError", "cannot score n=5")]
    assert outputs(producer) == [0, 1, 2, 3, 4, 6, 7]  # the last run's only, once each
    assert consumer.commits == [[("in", 0, 8)]]  # the whole batch, once
    # 2 attempts, 2 runs on each of 3 levels (8 → 4 → 2 → 1), 1 run without the poison
    assert session.runs == 2 + 6 + 1
    assert stream.metrics.isolation_runs.labels("g")._value.get() == 6
    assert stream.metrics.isolated.labels("g")._value.get() == 1
    assert (progress.records, progress.produced, progress.dead_lettered) == (8, 7, 1)
    assert stream.metrics.dead_lettered.labels("g", "in.dlq", "pipeline")._value.get() == 1


def test_each_poison_record_keeps_its_own_error_and_decode_failures_their_stage() -> None:
    batch = records("in", 0, [{"n": n} for n in range(10)])
    batch[2]._value = b"not json"
    consumer, producer, session = (
        FakeConsumer([batch]),
        FakeProducer(),
        FakeSession(failing_on(4, 9)),
    )

    progress = service(session, consumer, producer).run()

    assert sorted(dead(producer)) == [
        (4, "pipeline", "ValueError", "cannot score n=4"),
        (9, "pipeline", "ValueError", "cannot score n=9"),
    ]
    assert producer.stages().count("decode") == 1
    assert outputs(producer) == [0, 1, 3, 5, 6, 7, 8]
    assert consumer.commits == [[("in", 0, 10)]]
    assert (progress.produced, progress.dead_lettered) == (7, 3)


def test_an_output_that_cannot_be_encoded_is_isolated_without_retry() -> None:
    """A record whose output no topic format can hold is that record's problem: its batch is
    bisected at once (no retry) and the record goes alone, with stage ``encode``."""
    batch = records("in", 0, [{"n": n} for n in range(4)])
    consumer, producer = FakeConsumer([batch]), FakeProducer()
    session = FakeSession(
        lambda frame: frame.assign(bad=[object() if n == 1 else n for n in frame["n"]])
    )

    service(session, consumer, producer).run()

    assert [(n, stage) for n, stage, _, _ in dead(producer)] == [(1, "encode")]
    assert outputs(producer) == [0, 2, 3]
    assert session.runs == 1 + 4 + 1
    assert consumer.commits == [[("in", 0, 4)]]


def test_records_that_fail_only_together_go_to_the_dead_letter_topic_whole() -> None:
    """No record fails on its own: the batch runs once more whole, fails, and is dead-lettered
    as under ``dead-letter``."""

    def node(frame: pd.DataFrame) -> pd.DataFrame:
        if {0, 3} <= set(frame["n"]):
            raise ValueError("0 and 3 clash")
        return frame

    batch = records("in", 0, [{"n": n} for n in range(4)])
    consumer, producer, session = FakeConsumer([batch]), FakeProducer(), FakeSession(node)

    progress = service(session, consumer, producer).run()

    assert [(n, stage) for n, stage, _, _ in dead(producer)] == [(n, "pipeline") for n in range(4)]
    assert outputs(producer) == []
    assert session.runs == 2 + 2 + 1
    assert consumer.commits == [[("in", 0, 4)]]
    assert progress.dead_lettered == 4


def test_a_batch_whose_every_record_fails_is_dead_lettered_record_by_record() -> None:
    batch = records("in", 0, [{"n": n} for n in range(4)])
    consumer, producer = FakeConsumer([batch]), FakeProducer()
    session = FakeSession(failing_on(0, 1, 2, 3))

    progress = service(session, consumer, producer).run()

    assert [(n, message) for n, _, _, message in dead(producer)] == [
        (n, f"cannot score n={n}") for n in range(4)
    ]
    assert session.runs == 2 + (2 * 4 - 2)  # the run without them has no record: not run
    assert consumer.commits == [[("in", 0, 4)]]
    assert (progress.produced, progress.dead_lettered) == (0, 4)


def test_a_hung_run_is_not_isolated() -> None:
    """Every run judging a part of the batch could hang as well, each leaving a thread behind:
    the batch goes to the dead-letter topic whole."""

    def node(frame: pd.DataFrame) -> pd.DataFrame:
        if 1 in set(frame["n"]):
            time.sleep(0.5)
        return frame

    batch = records("in", 0, [{"n": n} for n in range(4)])
    consumer, producer, session = FakeConsumer([batch]), FakeProducer(), FakeSession(node)

    service(session, consumer, producer, run_timeout_s=0.05).run()

    assert session.runs == 2
    assert {(stage, cls) for _, stage, cls, _ in dead(producer)} == {("pipeline", "RunTimeout")}
    assert len(dead(producer)) == 4


def test_a_long_isolation_polls_between_its_runs() -> None:
    """Many short runs in a row, none long enough for the keep-alive to poll: isolation polls
    (paused) once it has gone as long without a poll, so the member keeps its partitions and
    the loop counts as alive."""
    batch = records("in", 0, [{"n": n} for n in range(16)])
    polls: list[int] = []  # the runs done at each poll

    class Consumer(FakeConsumer):
        def poll(self, timeout: float) -> None:
            polls.append(session.runs)

    def node(frame: pd.DataFrame) -> pd.DataFrame:
        time.sleep(0.02)
        return failing_on(11)(frame)

    consumer, producer, session = Consumer([batch]), FakeProducer(), FakeSession(node)
    # Polls are due after max_poll_interval_s / 4 = 0.05 s; isolation is 8 runs of 0.02 s.
    service(session, consumer, producer, max_poll_interval_s=0.2).run()

    assert [n for n, *_ in dead(producer)] == [11]
    during = [runs for runs in polls if 2 <= runs < 2 + 8]  # after the 2 attempts
    assert len(set(during)) >= 2
