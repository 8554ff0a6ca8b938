"""Each stage of a batch on its own: decode, encode, dead letters, assignment, backoff, ledger."""

from __future__ import annotations

from collections import Counter
from itertools import islice

import pandas as pd
import pytest

from kedro_stream.config import Format
from kedro_stream.metrics import StreamMetrics
from kedro_stream.serde import EncodeError, build_codec
from kedro_stream.service.batch import Batch
from kedro_stream.service.dead_letters import DeadLetters, Stage
from kedro_stream.service.decode import Decoder
from kedro_stream.service.encode import Encoder, PublishedOutput
from kedro_stream.service.progress import CommitLedger
from kedro_stream.service.rebalance import Assignment
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


def test_assignment_commits_only_partitions_not_revoked_during_the_batch() -> None:
    metrics = StreamMetrics(group="g", namespace="ns", guarantee="at-least-once")
    assignment = Assignment(metrics, "g")
    batch = Batch(records("in", 0, [{}, {}]) + records("in", 1, [{}]))
    consumer = FakeConsumer([batch.messages])
    consumer.subscribe(["in"], on_assign=assignment.on_assign, on_revoke=assignment.on_revoke)

    consumer.revoke("in", 1)
    assert [(tp.partition, tp.offset) for tp in assignment.committable(batch)] == [(0, 2)]
    assert assignment.owned == {("in", 0)}
    assignment.batch_started()  # the next batch may commit partition 1 again once reassigned
    assert len(assignment.committable(batch)) == 2


def test_backoff_doubles_up_to_its_bound() -> None:
    assert list(islice(Backoff(0.2, 1.0).delays(), 5)) == [0.2, 0.4, 0.8, 1.0, 1.0]


def test_the_ledger_counts_a_committed_batch_once() -> None:
    metrics = StreamMetrics(group="g", namespace="ns", guarantee="at-least-once")
    ledger = CommitLedger(metrics, "g", "in.dlq")
    batch = Batch(records("in", 0, [{}, {}, {}]))
    ledger.committed(batch, [], Counter({Stage.DECODE: 1, Stage.PIPELINE: 0}))

    p = ledger.progress
    assert (p.batches, p.records, p.dead_lettered, p.produced) == (1, 3, 1, 0)
    assert metrics.dead_lettered.labels("g", "in.dlq", "decode")._value.get() == 1
    assert metrics.consumed.labels("g", "in")._value.get() == 3
    sampled = {s.labels.get("stage") for m in metrics.registry.collect() for s in m.samples}
    assert "pipeline" not in sampled  # no series for a stage that dead-lettered nothing
