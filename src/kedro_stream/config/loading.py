"""Reading ``stream.yml`` through the project's own Kedro config loader, credentials attached.

Through the loader, ``stream.yml`` gets what every Kedro config file gets: environments
(``base`` overridden by ``local`` or ``--env``), OmegaConf interpolation and the project's
``CONFIG_LOADER_ARGS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kedro.config import AbstractConfigLoader, MissingConfigException
from pydantic import ValidationError

from kedro_stream.config.credentials import secrets_of, token_of
from kedro_stream.config.errors import ConfigError, NoStreamFile, described
from kedro_stream.config.models import StreamFile
from kedro_stream.config.project import Project

STREAM_PATTERNS = ["stream*", "stream*/**", "**/stream*"]


def parse_stream_file(raw: Mapping[str, Any], credentials: Mapping[str, Any]) -> StreamFile:
    """Validate ``stream.yml`` and attach the credentials it references."""
    try:
        parsed = StreamFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"stream.yml is invalid: {described(exc, StreamFile)}") from None
    if parsed.kafka.credentials is not None:
        parsed.kafka._secrets = secrets_of(
            credentials, parsed.kafka.credentials, "kafka.credentials"
        )
    registry = parsed.kafka.schema_registry
    if registry is not None and registry.credentials is not None:
        registry._secrets = secrets_of(
            credentials, registry.credentials, "kafka.schema_registry.credentials"
        )
    queries = parsed.metrics.state_queries
    if queries.enabled and queries.credentials is not None:
        queries._token = token_of(credentials, queries.credentials)
    return parsed


def read_stream_file(project: Project, env: str | None) -> StreamFile:
    """``stream.yml`` of ``env``, read through the project's own config loader."""
    return load_stream_file(project.config_loader(env))


def load_stream_file(config_loader: AbstractConfigLoader) -> StreamFile:
    """Read ``stream*.yml`` of the run environment through the project's config loader."""
    patterns = getattr(config_loader, "config_patterns", None)
    if isinstance(patterns, dict):
        patterns.setdefault("stream", STREAM_PATTERNS)
    try:
        raw = config_loader["stream"]
    except (KeyError, MissingConfigException):
        raise NoStreamFile(
            "No stream.yml found: add conf/base/stream.yml (see the README, "
            '"Add kedro-stream to your project")'
        ) from None
    try:
        credentials = config_loader["credentials"]
    except (KeyError, MissingConfigException):
        credentials = {}
    return parse_stream_file(raw or {}, credentials or {})


def command_stream_file(
    project: Project | None, env: str | None, bootstrap_servers: str | None
) -> StreamFile:
    """The configuration of a command beside ``consume`` (``produce``, ``lag``, ``reset``): the
    environment's ``stream.yml``, whose ``kafka`` section (address, ``client`` properties,
    credentials) reaches their clients as it reaches ``consume``'s. Outside a project, or in one
    without ``stream.yml``, an empty file: the defaults. ``bootstrap_servers`` (the flag or
    ``KAFKA_BOOTSTRAP_SERVERS``) overrides the address either way."""
    try:
        file = StreamFile() if project is None else read_stream_file(project, env)
    except NoStreamFile:
        file = StreamFile()
    if not bootstrap_servers:
        return file
    kafka = file.kafka.model_copy(update={"bootstrap_servers": bootstrap_servers})
    return file.model_copy(update={"kafka": kafka})
