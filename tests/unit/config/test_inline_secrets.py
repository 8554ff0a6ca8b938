"""The secrets helpers of stream.yml, on their own: a secret written inline is refused with the
place it belongs, an entry of credentials.yml becomes ``SecretStr`` properties, and the state
queries' token must be there and non-empty."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from kedro_stream.config.credentials import refuse_inline_secrets, secrets_of, token_of
from kedro_stream.config.errors import ConfigError

#: librdkafka's and the registry client's secret properties, listed here rather than read from
#: the module, so that dropping one from it fails.
SECRETS = [
    "sasl.password",
    "sasl.oauthbearer.client.secret",
    "ssl.key.password",
    "ssl.keystore.password",
    "ssl.key.pem",
    "ssl_key",
    "basic.auth.user.info",
    "bearer.auth.client.secret",
    "bearer.auth.token",
]


def test_inline_secrets_are_refused_naming_them_and_where_they_belong() -> None:
    client = {"sasl.password": "hunter2", "ssl.key.password": "x", "sasl.mechanism": "PLAIN"}

    with pytest.raises(ValueError) as raised:
        refuse_inline_secrets(client, "kafka.credentials")

    assert str(raised.value) == (
        "secret properties ['sasl.password', 'ssl.key.password'] belong in "
        "conf/local/credentials.yml, referenced by kafka.credentials"
    )
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize("key", SECRETS)
def test_every_secret_key_is_refused(key: str) -> None:
    with pytest.raises(ValueError, match=r"referenced by kafka.schema_registry.credentials"):
        refuse_inline_secrets({key: "x"}, "kafka.schema_registry.credentials")


def test_properties_without_secrets_pass_unchanged() -> None:
    client = {"security.protocol": "SASL_SSL", "sasl.username": "svc", "linger.ms": 5}

    assert refuse_inline_secrets(client, "kafka.credentials") is client
    assert refuse_inline_secrets({}, "kafka.credentials") == {}


def test_an_unknown_entry_is_a_config_error_naming_the_key_and_the_entry() -> None:
    with pytest.raises(ConfigError) as raised:
        secrets_of({"other": {}}, "kafka", "kafka.credentials")

    assert str(raised.value) == (
        "stream.yml kafka.credentials is 'kafka', which credentials.yml does not define"
    )


def test_an_entry_s_values_become_secret_strings() -> None:
    credentials = {"kafka": {"sasl.username": "svc", "sasl.password": "hunter2", "port": 9093}}

    secrets = secrets_of(credentials, "kafka", "kafka.credentials")

    assert set(secrets) == {"sasl.username", "sasl.password", "port"}
    assert all(isinstance(value, SecretStr) for value in secrets.values())
    assert secrets["sasl.password"].get_secret_value() == "hunter2"
    assert secrets["port"].get_secret_value() == "9093"
    assert "hunter2" not in repr(secrets)


def test_the_token_of_an_entry() -> None:
    token = token_of({"queries": {"token": "t0ken"}}, "queries")

    assert isinstance(token, SecretStr)
    assert token.get_secret_value() == "t0ken"


@pytest.mark.parametrize("entry", [{"password": "x"}, {"token": ""}])
def test_an_entry_without_a_token_is_refused(entry: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as raised:
        token_of({"queries": entry}, "queries")

    assert str(raised.value) == (
        "stream.yml metrics.state_queries.credentials is 'queries', whose entry in "
        "credentials.yml has no token"
    )


def test_a_missing_token_entry_names_the_state_queries_key() -> None:
    with pytest.raises(ConfigError, match=r"metrics.state_queries.credentials is 'queries', which"):
        token_of({}, "queries")
