"""stream.yml against the compiled namespace: what fails at start, and what is only warned of."""

from __future__ import annotations

from typing import Any

import pytest

from kedro_stream.config import StreamConfig
from kedro_stream.errors import KedroStreamError
from kedro_stream.service.namespace_io import (
    check_published,
    check_state_key,
    input_dataset,
    state_key_fields,
    unchecked_state_key_warning,
    undeclared,
    undeclared_states,
    undeclared_states_message,
    unpublished_outputs,
    unpublished_warning,
)
from kedro_stream.session import Role
from kedro_stream.session.compiler import CompiledNamespace, DatasetEntry
from tests.fake_clients import stream_config

INPUTS = {"batch": "batch"}
OUTPUTS = {"ns.out": "out", "ns.enriched": "enriched", "ns.audit": "audit"}


def test_the_input_must_be_an_input_of_the_namespace() -> None:
    assert input_dataset(INPUTS, stream_config()) == "batch"
    wrong = stream_config(input={"topics": ["in"], "dataset": "batches"})
    with pytest.raises(KedroStreamError, match=r"feeds dataset 'batches'.*inputs: \['batch'\]"):
        input_dataset(INPUTS, wrong)


def test_a_misspelt_input_is_answered_with_the_closest_input() -> None:
    wrong = stream_config(input={"topics": ["in"], "dataset": "btach"})
    with pytest.raises(KedroStreamError, match=r"namespace 'ns' \(did you mean 'batch'\?\);"):
        input_dataset(INPUTS, wrong)


def test_an_input_the_stream_cannot_feed_is_refused() -> None:
    """A second injectable input (say a state dataset stream.yml forgot) would fail every run."""
    inputs = {"batch": "ns.batch", "account_activity": "ns.account_activity"}
    with pytest.raises(
        KedroStreamError,
        match=r"takes \['ns.account_activity'\] as injected inputs.*injects 'batch' alone.*state:",
    ):
        input_dataset(inputs, stream_config())
    # Kept as state, it is fed.
    assert input_dataset(inputs, stream_config(), ["account_activity"]) == "batch"


def test_published_outputs_must_be_outputs() -> None:
    check_published(OUTPUTS, stream_config())
    wrong = stream_config(outputs={"scores": {"topic": "scores"}})
    with pytest.raises(KedroStreamError, match=r"publishes \['scores'\], which namespace 'ns'"):
        check_published(OUTPUTS, wrong)


def test_outputs_neither_published_nor_ignored_are_named() -> None:
    assert unpublished_outputs(OUTPUTS, stream_config()) == ["audit", "enriched"]
    ignoring = stream_config(ignore_outputs=["audit"])
    assert unpublished_outputs(OUTPUTS, ignoring) == ["enriched"]
    message = unpublished_warning(["enriched"], ignoring)
    assert "Namespace 'ns' outputs ['enriched'], which stream.yml does not publish" in message
    assert unpublished_outputs(OUTPUTS, stream_config(ignore_outputs=["audit", "enriched"])) == []


def test_an_ignored_output_must_be_an_output() -> None:
    with pytest.raises(KedroStreamError, match=r"ignores \['audti'\], which namespace 'ns'"):
        unpublished_outputs(OUTPUTS, stream_config(ignore_outputs=["audti"]))


def test_an_input_with_no_catalog_entry_is_said_to_lack_one_not_to_be_unfeedable() -> None:
    """A forgotten catalog entry is the likely mistake: the message says what to add."""
    inputs = {"batch": "ns.batch", "rates": "ns.rates", "activity": "ns.activity"}

    with pytest.raises(KedroStreamError) as raised:
        input_dataset(inputs, stream_config(), undeclared={"ns.rates"})

    message = str(raised.value)
    assert message.startswith(
        "namespace 'ns' takes ['ns.rates'], which the catalog has no entry for, and the stream "
        "injects 'batch' alone: add an entry to the catalog (conf/base/catalog.yml) saying where "
        "it is loaded from"
    )
    # A declared input the stream cannot feed is still named, as before.
    assert "also takes ['ns.activity'] as injected inputs, which the stream cannot feed" in message
    assert input_dataset(inputs, stream_config(), ["activity", "rates"]) == "batch"


ACTIVITY = {"input": "activity", "updates": "activity_updates"}


def entry(
    name: str, *, declared: bool = True, columns: tuple[str, ...] | None = None
) -> DatasetEntry:
    return DatasetEntry(name, Role.STATE, "StateDataset", "", declared=declared, columns=columns)


def namespace(*report: DatasetEntry) -> CompiledNamespace:
    return CompiledNamespace(
        namespace="ns",
        steps=(),
        inputs={"batch": "ns.batch", "activity": "ns.activity"},
        outputs={"ns.out": "out", "ns.activity_updates": "activity_updates"},
        parameters={},
        static={},
        template_inputs=(),
        template_saves={},
        states={"activity": "activity_updates"},
        report=report,
    )


def stateful(key: str, **changes: Any) -> StreamConfig:
    """A stream keeping state ``activity`` by ``key``."""
    return stream_config(state={"activity": {**ACTIVITY, "key": key}}, **changes)


def test_the_state_key_is_checked_against_the_input_schema_and_the_declared_columns() -> None:
    compiled = namespace(
        entry("ns.activity", columns=("user_id", "count", "total")), entry("ns.activity_updates")
    )
    stream = stateful("user", input={"topics": ["in"], "dataset": "batch", "schema": "in.avsc"})
    known = state_key_fields(compiled, stream, ("event_id", "user_id", "amount"))
    assert known == {
        "the input schema in.avsc": ("event_id", "user_id", "amount"),
        "state dataset 'activity'": ("user_id", "count", "total"),
    }

    with pytest.raises(KedroStreamError) as raised:
        check_state_key(known, stream, "tally")

    assert str(raised.value) == (
        "stream 'tally' keeps state 'activity' by key 'user', which is not a field of the input "
        "schema in.avsc nor of state dataset 'activity' (did you mean 'user_id'?). Fields: the "
        "input schema in.avsc: ['event_id', 'user_id', 'amount']; state dataset 'activity': "
        "['user_id', 'count', 'total']. The key is a field of every record, state row and "
        "update: fix streams.tally.state.<state>.key in stream.yml"
    )
    check_state_key(known, stateful("user_id"), "tally")


def test_consume_names_the_stream_by_its_topic_and_only_where_the_key_lacks() -> None:
    compiled = namespace(entry("ns.activity", columns=("account", "count")))
    known = state_key_fields(compiled, stateful("user"), ("user", "amount"))

    with pytest.raises(KedroStreamError) as raised:
        check_state_key(known, stateful("user"))

    assert str(raised.value).startswith(
        "the stream reading 'in' keeps state 'activity' by key 'user', which is not a field of "
        "state dataset 'activity'. Fields: state dataset 'activity': ['account', 'count']."
    )


def test_a_state_key_with_nothing_to_check_it_against_passes_and_is_warned_of() -> None:
    stream = stateful("anything")
    known = state_key_fields(namespace(entry("ns.activity")), stream, None)

    assert known == {}
    check_state_key(known, stream, "tally")
    check_state_key({"the input schema in.avsc": ("a",)}, stream_config(), "stateless")
    assert "State key 'anything' of stream 'tally' is checked against nothing" in (
        unchecked_state_key_warning(stream, "tally")
    )


def test_a_state_with_no_catalog_entry_is_named_with_the_entry_to_add() -> None:
    """The stream injects the rows and needs no entry; `kedro run` of the namespace does."""
    stream = stateful("user")
    compiled = namespace(entry("ns.activity", declared=False), entry("ns.activity_updates"))

    assert undeclared(compiled) == {"ns.activity"}
    assert undeclared_states(compiled, stream) == ["activity"]
    assert undeclared_states(namespace(entry("ns.activity")), stream) == []
    assert undeclared_states_message(["activity"], stream) == (
        "stream.yml keeps state in ['activity'], which the catalog has no entry for: the stream "
        "injects the rows, but `kedro run` of namespace 'ns' has nothing to load them from and "
        "fails. Add to conf/base/catalog.yml: ns.activity: {type: "
        "kedro_stream.datasets.StateDataset, columns: [user, ...]}"
    )
