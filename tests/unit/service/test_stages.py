"""Each stage of a batch on its own: decode, encode, dead letters (and their log lines),
assignment, backoff, ledger."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import islice

import pandas as pd
import pytest

from kedro_stream.config import Format
from kedro_stream.metrics import StreamMetrics
from kedro_stream.serde import EncodeError, build_codec
from kedro_stream.service import dead_letters
from kedro_stream.service.batch import Batch
from kedro_stream.service.dead_letters import LOG_INTERVAL_S, DeadLetterLog, DeadLetters, Stage
from kedro_stream.service.decode import Decoder
from kedro_stream.service.encode import Encoder, PublishedOutput
from kedro_stream.service.progress import CommitLedger
from kedro_stream.service.rebalance import Assignment, Overtaken
from kedro_stream.service.retry import Backoff
from tests.fake_clients import FakeConsumer, FakeMessage, records

JSON = build_codec(Format.JSON, None)
DLQ = DeadLetters("in.dlq", "ns")


def test_decode_sets_bad_values_aside_as_dead_letters() -> None:
    messages = records("in", 3, [{"n": 1}, {"n": 2}])
    messages[0]._value = b"[1]"
    decoded = Decoder(JSON, DLQ, with_metadata=False).decode(Batch(messages))

    assert [record for _, record in decoded.good] == [{"n": 2}]
    [dead] = decoded.dead
    headers = dict(dead.headers or [])
    assert (dead.topic, dead.value) == ("in.dlq", b"[1]")
    assert headers["kedro-stream.error.stage"] == b"decode"
    assert headers["kedro-stream.error.message"] == b"expected a JSON object, got list"
    assert (headers["kedro-stream.source.partition"], headers["kedro-stream.source.offset"]) == (
        b"3",
        b"0",
    )
    assert headers["kedro-stream.namespace"] == b"ns"


def test_decode_adds_the_metadata_columns_when_asked() -> None:
    message = FakeMessage("in", 2, 7, b'{"n": 1}', _key=b"k")
    decoded = Decoder(JSON, DLQ, with_metadata=True).decode(Batch([message]))

    assert decoded.good[0][1] == {
        "n": 1,
        "_key": "k",
        "_topic": "in",
        "_partition": 2,
        "_offset": 7,
        "_timestamp": 1,
    }


class _WithHeaders(FakeMessage):
    def headers(self) -> list[tuple[str, bytes]]:  # type: ignore[override]
        return [("trace", b"abc")]


def test_encode_drops_metadata_and_carries_the_source_headers() -> None:
    source = _WithHeaders("in", 0, 5, b"{}")
    encoder = Encoder([PublishedOutput("out", "t", JSON, key="id")], with_metadata=True)
    frame = pd.DataFrame({"id": [9], "_topic": ["in"], "_partition": [0], "_offset": [5]})

    [message] = encoder.encode({"out": frame}, [(source, {})])

    assert (message.topic, message.value, message.key) == ("t", b'{"id":9}', b"9")
    assert message.headers == [("trace", b"abc")]


def test_encode_refuses_an_output_that_is_not_records() -> None:
    encoder = Encoder([PublishedOutput("out", "t", JSON, key=None)], with_metadata=False)
    with pytest.raises(EncodeError, match=r"output 'out': .* got int"):
        encoder.encode({"out": 3}, [])


def test_encode_of_no_run_is_nothing() -> None:
    encoder = Encoder([PublishedOutput("out", "t", JSON, key=None)], with_metadata=False)
    assert encoder.encode({}, []) == []


def test_a_batch_is_overtaken_by_a_partition_revoked_since_it_began() -> None:
    metrics = StreamMetrics(group="g", namespace="ns", guarantee="at-least-once")
    assignment = Assignment(metrics, "g")
    batch = Batch(records("in", 0, [{}, {}]) + records("in", 1, [{}]))
    consumer = FakeConsumer([batch.messages])
    consumer.subscribe(["in"], on_assign=assignment.on_assign, on_revoke=assignment.on_revoke)

    assignment.batch_started()
    assert [(tp.partition, tp.offset) for tp in assignment.still_owned(batch)] == [(0, 2), (1, 1)]
    consumer.revoke("in", 1)
    with pytest.raises(Overtaken, match=r"in\[1\] revoked while the batch was in flight"):
        assignment.still_owned(batch)
    assert assignment.owned == {("in", 0)}
    assignment.batch_started()  # the next batch may commit partition 1 again once reassigned
    assert len(assignment.still_owned(batch)) == 2


def test_backoff_doubles_up_to_its_bound() -> None:
    assert list(islice(Backoff(0.2, 1.0).delays(), 5)) == [0.2, 0.4, 0.8, 1.0, 1.0]


def test_the_ledger_counts_a_committed_batch_once() -> None:
    metrics = StreamMetrics(group="g", namespace="ns", guarantee="at-least-once")
    ledger = CommitLedger(metrics, "g", "in.dlq")
    batch = Batch(records("in", 0, [{}, {}, {}]))
    ledger.committed(batch, [], [DLQ.of(batch.messages[1], ValueError("x"), Stage.DECODE)])

    p = ledger.progress
    assert (p.batches, p.records, p.dead_lettered, p.produced) == (1, 3, 1, 0)
    assert metrics.dead_lettered.labels("g", "in.dlq", "decode")._value.get() == 1
    assert metrics.consumed.labels("g", "in")._value.get() == 3
    sampled = {s.labels.get("stage") for m in metrics.registry.collect() for s in m.samples}
    assert "pipeline" not in sampled  # no series for a stage that dead-lettered nothing


# --- the dead-letter log: one line a batch, at most one every LOG_INTERVAL_S ------------------


@dataclass
class Clock:
    """The log's clock, moved by the test."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def letters(count: int, stage: Stage = Stage.DECODE, first_offset: int = 0) -> list[dict[str, str]]:
    """The reasons of ``count`` dead letters of partition 3, offsets from ``first_offset``."""
    messages = [FakeMessage("in", 3, first_offset + i, b"?") for i in range(count)]
    errors = [ValueError(f"bad value {i}\nat line 2") for i in range(count)]
    return [
        dead_letters.reason_of(DLQ.of(m, e, stage)) for m, e in zip(messages, errors, strict=True)
    ]


def said(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records]


def test_a_batch_with_dead_letters_is_one_warning_with_count_stages_and_first_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = DeadLetterLog("in.dlq", clock=Clock())
    caplog.set_level(logging.INFO, dead_letters.__name__)

    log.committed([*letters(2), *letters(1, Stage.PIPELINE, first_offset=7)], records=10)
    log.committed([], records=5)  # no dead letter: nothing to say

    assert said(caplog) == [
        (
            "WARNING",
            "Dead-lettered 3 of 10 records to in.dlq (2 at stage decode, 1 at stage pipeline); "
            "the first, in partition 3 offset 0: ValueError: bad value 0",
        )
    ]


def test_a_flood_is_one_line_an_interval_the_rest_summed_into_the_next(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    log = DeadLetterLog("in.dlq", clock=clock)
    caplog.set_level(logging.INFO, dead_letters.__name__)

    first = clock.now
    log.committed(letters(1), records=1)
    for i in range(37):  # within the interval of the first line: counted, not said
        clock.now = first + i * (LOG_INTERVAL_S / 40)
        log.committed(letters(11), records=100)
    assert len(caplog.records) == 1
    clock.now = first + LOG_INTERVAL_S
    log.committed(letters(2, Stage.ENCODE), records=2)

    assert [message for _, message in said(caplog)] == [
        "Dead-lettered 1 of 1 records to in.dlq (1 at stage decode); the first, in partition 3 "
        "offset 0: ValueError: bad value 0",
        "Dead-lettered 2 of 2 records to in.dlq (2 at stage encode); the first, in partition 3 "
        "offset 0: ValueError: bad value 0; and 407 more dead-lettered in 37 batches since the "
        "last line",
    ]


def test_the_interval_counts_from_the_last_line_said(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    log = DeadLetterLog("in.dlq", interval_s=10, clock=clock)
    caplog.set_level(logging.INFO, dead_letters.__name__)

    for at in (0, 6, 12, 19, 21):  # said at 0 and 12; 6, 19 and 21 held back
        clock.now = 1000.0 + at
        log.committed(letters(1), records=1)

    assert [message.endswith("since the last line") for _, message in said(caplog)] == [
        False,
        True,
    ]


def test_what_was_held_back_is_said_when_the_stream_stops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    log = DeadLetterLog("in.dlq", clock=clock)
    caplog.set_level(logging.INFO, dead_letters.__name__)
    log.committed(letters(1), records=1)
    log.flush()  # nothing held back: nothing to say
    clock.now += 1
    log.committed(letters(4), records=4)

    log.flush()
    log.flush()  # said once

    assert said(caplog)[1:] == [
        ("WARNING", "Dead-lettered to in.dlq: 4 more dead-lettered in 1 batch since the last line")
    ]


def test_the_reason_of_a_replayed_dead_letter_is_its_latest() -> None:
    replayed = DLQ.of(FakeMessage("in", 0, 5, b"?"), ValueError("first life"), Stage.PIPELINE)
    again = FakeMessage("in", 1, 9, b"?")
    again.headers = lambda: replayed.headers  # type: ignore[method-assign]

    reason = dead_letters.reason_of(DLQ.of(again, ValueError("second life"), Stage.DECODE))

    assert (reason["error.message"], reason["error.stage"], reason["source.offset"]) == (
        "second life",
        "decode",
        "9",
    )
