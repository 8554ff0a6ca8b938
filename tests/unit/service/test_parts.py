"""The loop's parts built on their own from stream.yml and a (fake) compiled namespace: what a
stateless stream gets, which outputs it warns of, and a stream.yml that does not fit its
namespace refused before the first batch."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kedro_stream.config import KafkaConfig, Project
from kedro_stream.errors import KedroStreamError
from kedro_stream.metrics import StreamMetrics
from kedro_stream.service import parts
from kedro_stream.service.batch import Batch
from kedro_stream.service.parts import LoopParts, build_parts
from kedro_stream.session import Role
from kedro_stream.session.compiler import DatasetEntry
from kedro_stream.state.keeper import NoState
from tests.fake_clients import FakeMessage, FakeSession, stream_config


class Immediate:
    """A keep-alive that runs each call at once."""

    def call(self, fn: Any, timeout_s: float | None = None) -> Any:
        return fn()


def built(tmp_path: Path, **config: Any) -> LoopParts:
    return build_parts(
        FakeSession(),  # type: ignore[arg-type]
        stream_config(**config),
        KafkaConfig(),
        project=Project(tmp_path),
        metrics=StreamMetrics(group="g", namespace="ns", guarantee="at-least-once"),
    )


def test_a_stateless_stream_has_no_state_and_decodes_whatever_its_message_key(
    tmp_path: Path,
) -> None:
    """Only a stateful stream's record must carry its message key as its state key."""
    loop = built(tmp_path)

    assert isinstance(loop.state, NoState)
    keyed = FakeMessage("in", 0, 0, b'{"n": 1}', _key=b"someone")
    decoded = loop.decoder.decode(Batch([keyed]))  # type: ignore[list-item]
    assert [record for _, record in decoded.good] == [{"n": 1}]
    assert decoded.dead == []


def test_the_parts_read_the_stream_s_input_and_publish_its_outputs(tmp_path: Path) -> None:
    loop = built(tmp_path)
    message = FakeMessage("in", 0, 0, b'{"n": 1}')
    decoded = loop.decoder.decode(Batch([message]))  # type: ignore[list-item]

    datasets = loop.runner.run(decoded.good, {}, Immediate())  # type: ignore[arg-type]
    [out] = loop.encoder.encode(datasets, decoded.good)

    assert (out.topic, out.value) == ("out", b'{"n":1}')
    assert loop.dead_letters.topic == "in.dlq"


def test_an_output_neither_published_nor_ignored_is_warned_of(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=parts.__name__):
        built(tmp_path, outputs={})

    [warning] = caplog.records
    assert warning.getMessage().startswith(
        "Namespace 'ns' outputs ['out'], which stream.yml does not publish"
    )


def test_an_ignored_output_is_not_warned_of(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=parts.__name__):
        built(tmp_path, outputs={}, ignore_outputs=["out"])

    assert caplog.records == []


def test_an_input_the_namespace_does_not_take_is_refused_naming_its_inputs(
    tmp_path: Path,
) -> None:
    with pytest.raises(
        KedroStreamError,
        match=r"stream.yml feeds dataset 'events', which is not an input of namespace 'ns'; "
        r"inputs: \['batch'\]",
    ):
        built(tmp_path, input={"topics": ["in"], "dataset": "events"})


class StatefulSession(FakeSession):
    """Namespace ``ns`` with state ``counts`` (updates ``counts_updates``) beside ``batch``; the
    catalog declares the columns of ``counts``, or has no entry for it."""

    def __init__(self, *, declared: bool = True) -> None:
        super().__init__()
        columns = ("user_id", "n") if declared else None
        self.report = (
            DatasetEntry("ns.counts", Role.STATE, "StateDataset", "", False, declared, columns),
        )

    def compiled(self, namespace: str | None) -> SimpleNamespace:
        return SimpleNamespace(
            inputs={"batch": "ns.batch", "counts": "ns.counts"},
            outputs={"ns.out": "out", "ns.counts_updates": "counts_updates"},
            states={"counts": "counts_updates"},
            report=self.report,
        )


def built_stateful(tmp_path: Path, session: StatefulSession, key: str) -> LoopParts:
    state = {"counts": {"input": "counts", "updates": "counts_updates", "key": key}}
    return build_parts(
        session,  # type: ignore[arg-type]
        stream_config(state=state),
        KafkaConfig(),
        project=Project(tmp_path),
        metrics=StreamMetrics(group="g", namespace="ns", guarantee="at-least-once"),
    )


def test_a_state_key_that_is_not_a_declared_column_is_refused_before_the_first_batch(
    tmp_path: Path,
) -> None:
    """Else every record would be dead-lettered for lacking its state key."""
    assert built_stateful(tmp_path, StatefulSession(), "user_id").state.key == "user_id"

    with pytest.raises(KedroStreamError) as raised:
        built_stateful(tmp_path, StatefulSession(), "user")

    assert str(raised.value).startswith(
        "the stream reading 'in' keeps state 'counts' by key 'user', which is not a field of "
        "state dataset 'counts' (did you mean 'user_id'?)"
    )


def test_a_state_with_no_catalog_entry_is_only_warned_of_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The stream injects the rows itself: only `kedro run` needs the entry."""
    with caplog.at_level(logging.WARNING, logger=parts.__name__):
        built_stateful(tmp_path, StatefulSession(declared=False), "user")

    [warning] = caplog.records
    assert warning.getMessage().startswith(
        "stream.yml keeps state in ['counts'], which the catalog has no entry for"
    )
