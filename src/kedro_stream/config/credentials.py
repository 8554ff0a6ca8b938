"""Secrets of ``stream.yml``: they live in ``credentials.yml``, referenced by key, never inline.

Kedro keeps secrets in ``conf/local/credentials.yml`` (or the deployment's own source of it);
``stream.yml`` names an entry of it. A secret written inline in ``stream.yml`` would land in
version control, so the models refuse it, naming where it belongs. Secrets are held as
``SecretStr``: no dump, repr or log line shows them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from kedro_stream.config.errors import ConfigError

# librdkafka properties whose values are secrets: kept as SecretStr, shown as "**********".
SECRET_KEYS = frozenset(
    {
        "sasl.password",
        "sasl.oauthbearer.client.secret",
        "ssl.key.password",
        "ssl.keystore.password",
        "ssl.key.pem",
        "ssl_key",
        "basic.auth.user.info",
        "bearer.auth.client.secret",
        "bearer.auth.token",
    }
)


def refuse_inline_secrets(value: dict[str, Any], credentials_key: str) -> dict[str, Any]:
    """``value`` (client properties) if it holds no secret; otherwise say where secrets go."""
    inline = sorted(SECRET_KEYS & value.keys())
    if inline:
        raise ValueError(
            f"secret properties {inline} belong in conf/local/credentials.yml, referenced "
            f"by {credentials_key}"
        )
    return value


def secrets_of(credentials: Mapping[str, Any], name: str, key: str) -> dict[str, SecretStr]:
    """The properties of entry ``name`` of credentials.yml, which ``stream.yml`` names at
    ``key``."""
    if name not in credentials:
        raise ConfigError(f"stream.yml {key} is {name!r}, which credentials.yml does not define")
    return {k: SecretStr(str(v)) for k, v in credentials[name].items()}


def token_of(credentials: Mapping[str, Any], name: str) -> SecretStr:
    """The bearer token of the state queries: ``token`` of entry ``name``."""
    key = "metrics.state_queries.credentials"
    token = secrets_of(credentials, name, key).get("token")
    if token is None or not token.get_secret_value():
        raise ConfigError(
            f"stream.yml {key} is {name!r}, whose entry in credentials.yml has no token"
        )
    return token
