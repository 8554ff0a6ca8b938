"""stream.yml against the compiled namespace: what fails at start, and what is only warned of."""

from __future__ import annotations

import pytest

from kedro_stream.errors import KedroStreamError
from kedro_stream.service.namespace_io import (
    check_published,
    input_dataset,
    unpublished_outputs,
    unpublished_warning,
)
from tests.fake_clients import stream_config

INPUTS = {"batch": "batch"}
OUTPUTS = {"ns.out": "out", "ns.enriched": "enriched", "ns.audit": "audit"}


def test_the_input_must_be_an_input_of_the_namespace() -> None:
    assert input_dataset(INPUTS, stream_config()) == "batch"
    wrong = stream_config(input={"topics": ["in"], "dataset": "batches"})
    with pytest.raises(KedroStreamError, match=r"feeds dataset 'batches'.*inputs: \['batch'\]"):
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
