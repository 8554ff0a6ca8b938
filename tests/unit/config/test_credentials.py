"""Secrets come from credentials.yml, referenced by key, and are never rendered."""

from __future__ import annotations

import pytest

from kedro_stream.config import (
    ConfigError,
)
from tests.unit.config.sample import parse


def test_credentials_are_attached_but_never_rendered() -> None:
    raw = {"kafka": {"credentials": "kafka", "client": {"security.protocol": "SASL_SSL"}}}
    parsed = parse(raw, {"kafka": {"sasl.username": "svc", "sasl.password": "hunter2"}})
    assert parsed.kafka.client_properties("consumer")["sasl.password"] == "hunter2"
    for shown in (repr(parsed), str(parsed), parsed.model_dump_json(), repr(parsed.kafka)):
        assert "hunter2" not in shown


def test_missing_credentials_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"kafka.credentials is 'kafka'"):
        parse({"kafka": {"credentials": "kafka"}})


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
