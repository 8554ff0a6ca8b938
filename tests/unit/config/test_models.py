"""``stream.yml``'s models: safe defaults, clear errors naming the key, no unknown keys."""

from __future__ import annotations

import pytest

from kedro_stream.config import (
    ConfigError,
    Guarantee,
    OnFailure,
)
from tests.unit.config.sample import STREAM, parse


def test_defaults_are_safe() -> None:
    stream = parse({"streams": {"s": STREAM}}).streams["s"]
    assert stream.guarantee is Guarantee.AT_LEAST_ONCE
    assert stream.on_failure is OnFailure.STOP
    assert stream.dead_letter_topic == "payments.dlq"  # a bad record is never skipped silently
    assert stream.batch.max_size == 1000


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"streams": {"s": {**STREAM, "max_batch_size": 5}}}, r"streams.s.max_batch_size: Extra"),
        (
            {"streams": {"s": {**STREAM, "guarantee": "exactly_once"}}},
            r"streams.s.guarantee: Input should be 'at-least-once' or 'exactly-once'",
        ),
        (
            {"streams": {"s": {**STREAM, "batch": {"max_size": 0}}}},
            r"streams.s.batch.max_size: Input should be greater than 0",
        ),
        (
            {"streams": {"s": {**STREAM, "input": {**STREAM["input"], "format": "xml"}}}},
            r"streams.s.input.format: Input should be "
            r"'json', 'avro', 'avro-confluent', 'string' or 'bytes'",
        ),
        (
            {"streams": {"s": {**STREAM, "input": {**STREAM["input"], "format": "avro"}}}},
            r"input: format avro needs a schema",
        ),
        ({"kafka": {"bootstrap": "x"}}, r"kafka.bootstrap: Extra inputs are not permitted"),
        (
            {"kafka": {"client": {"sasl.password": "hunter2"}}},
            r"secret properties \['sasl.password'\] belong in conf/local/credentials.yml",
        ),
    ],
)
def test_bad_config_names_the_key_and_allowed_values(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse(raw)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"streams": {"s": {**STREAM, "on_falure": "isolate"}}},
            "streams.s.on_falure: Extra inputs are not permitted (did you mean 'on_failure'?)",
        ),
        (  # a key under its alias: stream.yml writes schema, not schema_path
            {"streams": {"s": {**STREAM, "input": {**STREAM["input"], "shcema": "a.avsc"}}}},
            "streams.s.input.shcema: Extra inputs are not permitted (did you mean 'schema'?)",
        ),
        (  # an optional section
            {"kafka": {"schema_registry": {"url": "http://r", "credentails": "r"}}},
            "kafka.schema_registry.credentails: Extra inputs are not permitted "
            "(did you mean 'credentials'?)",
        ),
        (  # an entry of a dict of models
            {"streams": {"s": {**STREAM, "outputs": {"scores": {"topic": "s", "kye": "id"}}}}},
            "streams.s.outputs.scores.kye: Extra inputs are not permitted (did you mean 'key'?)",
        ),
        (  # nothing close: no guess
            {"streams": {"s": {**STREAM, "colour": "blue"}}},
            "streams.s.colour: Extra inputs are not permitted",
        ),
    ],
)
def test_an_unknown_key_is_answered_with_the_closest_known_one(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(raw)
    assert str(caught.value) == f"stream.yml is invalid: {message}"


def test_state_queries_are_off_by_default_on_every_interface() -> None:
    metrics = parse({}).metrics
    assert (metrics.host, metrics.state_queries.enabled, metrics.state_queries.token) == (
        "0.0.0.0",
        False,
        None,
    )
    # credentials alone do not turn the endpoint on
    off = {"metrics": {"state_queries": {"credentials": "queries"}}}
    assert parse(off, {"queries": {"token": "t0k3n"}}).metrics.state_queries.token is None


def test_an_output_cannot_be_both_published_and_ignored() -> None:
    raw = {"streams": {"s": {**STREAM, "ignore_outputs": ["scores"]}}}
    with pytest.raises(ConfigError, match=r"ignore_outputs: \['scores'\] are also published"):
        parse(raw)


def test_the_states_of_a_stream_share_the_message_key() -> None:
    states = {
        "a": {"input": "a", "updates": "a_updates", "key": "account_id"},
        "b": {"input": "b", "updates": "b_updates", "key": "merchant_id"},
    }
    with pytest.raises(ConfigError, match=r"share one key, the message key; got \['account_id',"):
        parse({"streams": {"s": {**STREAM, "state": states}}})
