"""Reading ``stream.yml`` through the project's own Kedro config loader, credentials attached.

Through the loader, ``stream.yml`` gets what every Kedro config file gets: environments
(``base`` overridden by ``local`` or ``--env``), OmegaConf interpolation and the project's
``CONFIG_LOADER_ARGS``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kedro.config import AbstractConfigLoader, MissingConfigException
from pydantic import ValidationError

from kedro_stream.config.credentials import secrets_of, token_of
from kedro_stream.config.errors import ConfigError, NoStreamFile, described
from kedro_stream.config.models import StreamFile
from kedro_stream.errors import choices

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


def check_environment(conf_source: Path, env: str | None) -> None:
    """Kedro reads a missing environment folder as a missing file; name the real problem."""
    env = env or os.environ.get("KEDRO_ENV")
    if not env or not conf_source.is_dir() or (conf_source / env).is_dir():
        return
    found = [p.name for p in conf_source.iterdir() if p.is_dir()]
    raise ConfigError(
        f"Environment {env!r} has no folder {conf_source.name}/{env}: create it (it may stay "
        f"empty: base still applies) or choose another --env; environments: {choices(found)}"
    )


def read_stream_file(project_path: Path, env: str | None) -> StreamFile:
    """``stream.yml`` of ``env``, read through the project's own config loader."""
    # Imported here: importing kedro.framework configures logging, which a module that only
    # validates configuration must not do to its importer.
    from kedro.framework.project import settings
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project_path)
    check_environment(project_path / settings.CONF_SOURCE, env)
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(project_path / settings.CONF_SOURCE),
        env=env,
        **settings.CONFIG_LOADER_ARGS,
    )
    return load_stream_file(loader)


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
    project_path: Path | None, env: str | None, bootstrap_servers: str | None
) -> StreamFile:
    """The configuration of a command beside ``consume`` (``produce``, ``lag``, ``reset``): the
    environment's ``stream.yml``, whose ``kafka`` section (address, ``client`` properties,
    credentials) reaches their clients as it reaches ``consume``'s. Outside a project, or in one
    without ``stream.yml``, an empty file: the defaults. ``bootstrap_servers`` (the flag or
    ``KAFKA_BOOTSTRAP_SERVERS``) overrides the address either way."""
    try:
        file = StreamFile() if project_path is None else read_stream_file(project_path, env)
    except NoStreamFile:
        file = StreamFile()
    if not bootstrap_servers:
        return file
    kafka = file.kafka.model_copy(update={"bootstrap_servers": bootstrap_servers})
    return file.model_copy(update={"kafka": kafka})
