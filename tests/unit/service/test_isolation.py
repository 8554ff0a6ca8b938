"""``on_failure: isolate`` on its own: what a batch's poison records take out of it, when a
failure is worth a search, and what the search finds (each record with its own error and
stage), counts, and does to stay in its group. ``test_loop_isolate.py`` shows the loop use it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest
from confluent_kafka import KafkaError, KafkaException

from kedro_stream.config import Format
from kedro_stream.metrics import StreamMetrics
from kedro_stream.records import Decoded, Outgoing
from kedro_stream.serde import EncodeError, build_codec
from kedro_stream.service.batch import Batch
from kedro_stream.service.commit import DeliveryError
from kedro_stream.service.dead_letters import DeadLetters, Stage
from kedro_stream.service.decode import DecodedBatch
from kedro_stream.service.encode import Encoder, PublishedOutput
from kedro_stream.service.isolation import Poison, PoisonSearch
from kedro_stream.service.keepalive import RunTimeout
from kedro_stream.service.runner import NamespaceRunner
from kedro_stream.state.errors import StateUpdateError
from tests.fake_clients import FakeSession, records, stream_config

DLQ = DeadLetters("in.dlq", "ns")
ISOLATE = {"on_failure": "isolate"}


def decoded(count: int) -> DecodedBatch:
    """Records ``{"n": 0}`` to ``{"n": count - 1}``, all good."""
    values = [{"n": n} for n in range(count)]
    return DecodedBatch(good=list(zip(records("in", 0, values), values, strict=True)), dead=[])


@dataclass
class KeepAlive:
    """Runs each call at once, as if each took a second without a poll; a sleep is a poll.
    ``log`` says in which order runs and polls came."""

    unpolled_s: float = 0.0
    log: list[str] = field(default_factory=list)

    def call(self, fn: Any, timeout_s: float | None = None) -> Any:
        self.log.append("run")
        self.unpolled_s += 1.0
        return fn()

    def sleep(self, seconds: float) -> None:
        assert 0 < seconds < 1
        self.log.append("poll")
        self.unpolled_s = 0.0


@dataclass
class State:
    """No rows; the updates of a part holding record ``n`` in ``refused`` do not fit."""

    refused: set[int] = field(default_factory=set)

    def read(self, good: list[Decoded]) -> dict[str, Any]:
        return {}

    def changes(self, outputs: Any, good: list[Decoded], offsets: Any) -> None:
        bad = [record["n"] for _, record in good if record["n"] in self.refused]
        if bad:
            raise StateUpdateError(f"an update of n={bad[0]} for a key not in the batch")


def scoring(
    *, failing: Collection[int], unwritable: Collection[int]
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """A node that raises on a batch holding a record of ``failing``, and writes an object no
    topic format can hold for those of ``unwritable``."""

    def node(frame: pd.DataFrame) -> pd.DataFrame:
        bad = [n for n in frame["n"] if n in failing]
        if bad:
            raise ValueError(f"cannot score n={bad[0]}")
        return frame.assign(score=[object() if n in unwritable else n for n in frame["n"]])

    return node


@dataclass
class Search:
    """A search over a real runner and encoder, a fake state and a fake keep-alive."""

    search: PoisonSearch
    metrics: StreamMetrics
    keepalive: KeepAlive
    session: FakeSession


def search_for(
    *,
    failing: Collection[int] = (),
    unwritable: Collection[int] = (),
    refused: Collection[int] = (),
    pause_after_s: float = 100.0,
    **config: Any,
) -> Search:
    stream = stream_config(**{**ISOLATE, **config})
    metrics = StreamMetrics(group="g", namespace="ns", guarantee="at-least-once")
    session = FakeSession(scoring(failing=failing, unwritable=unwritable))
    keepalive = KeepAlive()
    search = PoisonSearch(
        stream,
        metrics,
        dead_letters=DLQ,
        state=State(set(refused)),  # type: ignore[arg-type]
        runner=NamespaceRunner(
            session,  # type: ignore[arg-type]
            stream,
            input_name="batch",
            fields=None,
            metrics=metrics,
        ),
        encoder=Encoder(
            [PublishedOutput("out", "out", build_codec(Format.JSON, None), key=None)],
            with_metadata=False,
        ),
        pause_after_s=pause_after_s,
        unpolled_s=lambda: keepalive.unpolled_s,
    )
    return Search(search, metrics, keepalive, session)


def headers(letter: Outgoing | None) -> dict[str, str]:
    assert letter is not None
    return {k.removeprefix("kedro-stream."): v.decode() for k, v in letter.headers or []}


def test_no_poison_takes_nothing_out_and_has_no_dead_letter() -> None:
    batch = decoded(3)
    poison = Poison()

    assert poison.without(batch.good) == batch.good
    assert poison.letter(batch.good[0][0]) is None
    assert poison.dead == []
    assert not poison.searched


def test_poison_takes_its_records_out_and_gives_their_dead_letters() -> None:
    batch = decoded(4)
    (one, _), (three, _) = batch.good[1], batch.good[3]
    letters = {id(one): Outgoing("in.dlq", b"1"), id(three): Outgoing("in.dlq", b"3")}
    poison = Poison(searched=True, letters=letters)

    assert [record for _, record in poison.without(batch.good)] == [{"n": 0}, {"n": 2}]
    assert poison.letter(one) is letters[id(one)]
    assert poison.letter(batch.good[0][0]) is None
    assert poison.dead == [letters[id(one)], letters[id(three)]]


def test_a_record_s_failure_under_isolate_is_worth_a_search() -> None:
    search = search_for().search
    assert search.worth_searching(decoded(2), Poison(), ValueError("cannot score"))


@pytest.mark.parametrize(
    ("config", "batch", "poison", "error"),
    [
        ({"on_failure": "stop"}, decoded(2), Poison(), ValueError("x")),
        ({"on_failure": "dead-letter"}, decoded(2), Poison(), ValueError("x")),
        (ISOLATE, decoded(2), Poison(searched=True), ValueError("x")),
        (ISOLATE, None, Poison(), ValueError("x")),
        (ISOLATE, DecodedBatch(good=[], dead=[]), Poison(), ValueError("x")),
        (ISOLATE, decoded(2), Poison(), KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT))),
        (ISOLATE, decoded(2), Poison(), DeliveryError("1 outputs failed")),
        (ISOLATE, decoded(2), Poison(), RunTimeout("namespace run exceeded run_timeout_s=1")),
    ],
    ids=[
        "on_failure stop",
        "on_failure dead-letter",
        "already searched",
        "nothing decoded",
        "no good record",
        "a broker error",
        "a failed delivery",
        "a hung run",
    ],
)
def test_no_search_is_made_where_it_cannot_help(
    config: dict[str, Any], batch: DecodedBatch | None, poison: Poison, error: Exception
) -> None:
    search = search_for(**config).search
    assert not search.worth_searching(batch, poison, error)


def test_the_search_finds_each_poison_record_with_its_own_error_and_stage() -> None:
    found = search_for(failing={2}, unwritable={5}, refused={6})
    batch = decoded(8)
    messages = [message for message, _ in batch.good]

    poison = found.search.search(
        Batch(messages), batch, ValueError("cannot score n=2"), found.keepalive
    )

    assert poison.searched
    assert [record for _, record in poison.without(batch.good)] == [
        {"n": n} for n in (0, 1, 3, 4, 7)
    ]
    said = {n: headers(poison.letter(messages[n])) for n in (2, 5, 6)}
    assert {n: h["error.stage"] for n, h in said.items()} == {
        2: "pipeline",
        5: "encode",
        6: "state",
    }
    assert said[2]["error.class"] == "ValueError"
    assert said[2]["error.message"] == "cannot score n=2"
    assert said[5]["error.class"] == EncodeError.__name__
    assert said[6]["error.message"] == "an update of n=6 for a key not in the batch"
    assert {n: said[n]["source.offset"] for n in said} == {2: "2", 5: "5", 6: "6"}
    assert poison.stages == Counter({Stage.PIPELINE: 1, Stage.ENCODE: 1, Stage.STATE: 1})


def test_the_search_counts_its_runs_and_the_records_it_isolates() -> None:
    found = search_for(failing={1, 6})
    batch = decoded(8)

    found.search.search(Batch([m for m, _ in batch.good]), batch, ValueError("x"), found.keepalive)

    runs = found.keepalive.log.count("run")
    assert runs == found.session.runs == 2 + 4 + 4  # halves of 8, of 4 (2 fail), of 2 (2 fail)
    assert found.metrics.isolation_runs.labels("g")._value.get() == runs
    assert found.metrics.isolated.labels("g")._value.get() == 2


@pytest.mark.parametrize(
    ("pause_after_s", "log"),
    [
        (2.5, ["run", "run", "run", "poll", "run", "run", "run"]),
        (100.0, ["run"] * 6),
    ],
)
def test_a_long_search_polls_between_its_runs_once_as_long_unpolled_as_a_paused_run(
    pause_after_s: float, log: list[str]
) -> None:
    """Each trial run is short, so the keep-alive never polls during one: without a poll
    between them, a long search would outlive ``max.poll.interval.ms``."""
    found = search_for(failing={5}, pause_after_s=pause_after_s)
    batch = decoded(8)

    found.search.search(Batch([m for m, _ in batch.good]), batch, ValueError("x"), found.keepalive)

    assert found.keepalive.log == log
