"""stream.yml validation: clear errors, no unknown keys, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from kedro_stream.config import (
    ConfigError,
    Guarantee,
    OnFailure,
    apply_overrides,
    check_environment,
    parse_stream_file,
    select_stream,
)

STREAM = {
    "namespace": "scoring",
    "group_id": "g",
    "input": {"topics": ["payments"], "dataset": "payments"},
    "outputs": {"scores": {"topic": "scores"}},
}


def parse(raw: dict, credentials: dict | None = None):
    return parse_stream_file(raw, credentials or {})


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


def test_credentials_are_attached_but_never_rendered() -> None:
    raw = {"kafka": {"credentials": "kafka", "client": {"security.protocol": "SASL_SSL"}}}
    parsed = parse(raw, {"kafka": {"sasl.username": "svc", "sasl.password": "hunter2"}})
    assert parsed.kafka.client_properties("consumer")["sasl.password"] == "hunter2"
    for shown in (repr(parsed), str(parsed), parsed.model_dump_json(), repr(parsed.kafka)):
        assert "hunter2" not in shown


def test_missing_credentials_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"kafka.credentials is 'kafka'"):
        parse({"kafka": {"credentials": "kafka"}})


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


@pytest.mark.parametrize(
    ("queries", "credentials", "message"),
    [
        ({"enabled": True}, {}, r"state_queries: Value error, enabled state queries need creden"),
        (
            {"enabled": True, "credentials": "queries"},
            {},
            r"metrics.state_queries.credentials is 'queries', which credentials.yml does not",
        ),
        (
            {"enabled": True, "credentials": "queries"},
            {"queries": {"password": "x"}},
            r"'queries', whose entry in credentials.yml has no token",
        ),
        (
            {"enabled": True, "credentials": "queries", "token": "hunter2"},
            {"queries": {"token": "x"}},
            r"metrics.state_queries.token: Extra inputs are not permitted",
        ),
    ],
)
def test_state_queries_need_a_token_from_credentials(
    queries: dict, credentials: dict, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse({"metrics": {"state_queries": queries}}, credentials)
    assert "hunter2" not in str(caught.value)


def test_the_state_queries_token_is_attached_but_never_rendered() -> None:
    raw = {"metrics": {"host": "127.0.0.1", "state_queries": {"enabled": True, "credentials": "q"}}}
    parsed = parse(raw, {"q": {"token": "hunter2"}})
    queries = parsed.metrics.state_queries
    assert queries.token is not None and queries.token.get_secret_value() == "hunter2"
    assert parsed.metrics.host == "127.0.0.1"
    shown = (repr(parsed), str(parsed), parsed.model_dump_json(), repr(queries), str(queries))
    for text in (*shown, str(parsed.model_dump()), str(queries.model_dump())):
        assert "hunter2" not in text
    copied = parsed.metrics.model_copy(update={"port": 0})  # as --metrics-port does
    assert copied.state_queries.token == queries.token


def test_select_stream_by_topic_and_namespace() -> None:
    other = {**STREAM, "namespace": "audit", "group_id": "a"}
    parsed = parse({"streams": {"s": STREAM, "t": other}})
    assert select_stream(parsed, topic="payments", namespace="audit").group_id == "a"
    with pytest.raises(ConfigError, match=r"Several streams read topic 'payments'"):
        select_stream(parsed, topic="payments", namespace=None)
    with pytest.raises(ConfigError, match=r"No stream in stream.yml reads topic 'refunds'"):
        select_stream(parsed, topic="refunds", namespace=None)


def test_overrides_win_and_are_validated() -> None:
    stream = parse({"streams": {"s": STREAM}}).streams["s"]
    changed = apply_overrides(
        stream, {"batch.max_size": 10, "guarantee": "exactly-once", "group_id": None}
    )
    assert changed.batch.max_size == 10
    assert changed.guarantee is Guarantee.EXACTLY_ONCE
    assert changed.group_id == "g"
    with pytest.raises(ConfigError, match=r"batch.max_size"):
        apply_overrides(stream, {"batch.max_size": -1})


def test_a_default_changelog_follows_an_overridden_group() -> None:
    """Regression: the default changelog kept the file's group, so two deployments with their
    own --group-id shared (and mixed) one state."""
    states = {
        "activity": {"input": "a", "updates": "a_updates", "key": "k"},
        "named": {"input": "b", "updates": "b_updates", "key": "k", "changelog_topic": "mine"},
    }
    stream = parse({"streams": {"s": {**STREAM, "state": states}}}).streams["s"]
    assert stream.state["activity"].changelog_topic == "g-activity-changelog"

    moved = apply_overrides(stream, {"group_id": "g2"})

    assert moved.state["activity"].changelog_topic == "g2-activity-changelog"
    assert moved.state["named"].changelog_topic == "mine"
    assert apply_overrides(stream, {}).state["activity"].changelog_topic == "g-activity-changelog"


def test_an_unmatched_topic_names_the_streams_without_a_none_namespace() -> None:
    parsed = parse({"streams": {"s": STREAM}})
    with pytest.raises(ConfigError) as error:
        select_stream(parsed, topic="refunds", namespace=None)
    assert "reads topic 'refunds'; streams: s (topics ['payments']" in str(error.value)
    assert "namespace None" not in str(error.value)
    with pytest.raises(ConfigError, match=r"reads topic 'payments' and runs namespace 'audit';"):
        select_stream(parsed, topic="payments", namespace="audit")


def test_an_output_cannot_be_both_published_and_ignored() -> None:
    raw = {"streams": {"s": {**STREAM, "ignore_outputs": ["scores"]}}}
    with pytest.raises(ConfigError, match=r"ignore_outputs: \['scores'\] are also published"):
        parse(raw)


def test_an_environment_without_its_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "local").mkdir()
    check_environment(tmp_path, "local")
    check_environment(tmp_path, None)
    with pytest.raises(ConfigError) as error:
        check_environment(tmp_path, "prod")
    assert str(error.value).startswith(f"Environment 'prod' has no folder {tmp_path.name}/prod")
    assert str(error.value).endswith("environments: 'base', 'local'")


def test_the_states_of_a_stream_share_the_message_key() -> None:
    states = {
        "a": {"input": "a", "updates": "a_updates", "key": "account_id"},
        "b": {"input": "b", "updates": "b_updates", "key": "merchant_id"},
    }
    with pytest.raises(ConfigError, match=r"share one key, the message key; got \['account_id',"):
        parse({"streams": {"s": {**STREAM, "state": states}}})
