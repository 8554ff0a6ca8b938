"""Options that several commands share, declared once so their help reads the same."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from kedro.framework.startup import ProjectMetadata

from kedro_stream.config import ConfigError, Project

F = TypeVar("F", bound=Callable[..., Any])

bootstrap_servers = click.option(
    "--bootstrap-servers",
    envvar="KAFKA_BOOTSTRAP_SERVERS",
    default=None,
    help="Overrides stream.yml kafka.bootstrap_servers (env KAFKA_BOOTSTRAP_SERVERS).",
)
env = click.option("--env", "-e", default=None, help="Kedro configuration environment.")

_package = click.option(
    "--package",
    envvar="KEDRO_STREAM_PACKAGE",
    default=None,
    help="An installed (packaged) Kedro project to run, instead of the project around the "
    "working directory (env KEDRO_STREAM_PACKAGE).",
)
_conf_source = click.option(
    "--conf-source",
    envvar="KEDRO_STREAM_CONF_SOURCE",
    type=click.Path(path_type=Path),
    default=None,
    help="Configuration folder, or the archive `kedro package` writes; default: the project's "
    "conf/ (env KEDRO_STREAM_CONF_SOURCE).",
)
_credentials = click.option(
    "--credentials",
    envvar="KEDRO_STREAM_CREDENTIALS",
    type=click.Path(path_type=Path),
    default=None,
    help="A credentials.yml (e.g. mounted from a secret) laid over the conf source's "
    "(env KEDRO_STREAM_CREDENTIALS).",
)


def project(command: F) -> F:
    """``--package``, ``--conf-source`` and ``--credentials``, and in place of Kedro's project
    metadata the :class:`Project` they name: the project around the working directory, an
    installed package, or ``None`` outside both (commands beside ``consume`` and ``compile``
    also run there, with stream.yml's defaults). Put it where ``click.pass_obj`` would go."""

    @functools.wraps(command)
    def run(
        metadata: ProjectMetadata | None,
        *args: Any,
        package: str | None,
        conf_source: Path | None,
        credentials: Path | None,
        **kwargs: Any,
    ) -> Any:
        found = project_of(
            metadata, package=package, conf_source=conf_source, credentials=credentials
        )
        return command(found, *args, **kwargs)

    for option in (_credentials, _conf_source, _package):
        run = option(run)
    return click.pass_obj(run)  # type: ignore[return-value]


def project_of(
    metadata: ProjectMetadata | None,
    *,
    package: str | None = None,
    conf_source: Path | None = None,
    credentials: Path | None = None,
) -> Project | None:
    """The project the flags name, else the one the command runs in, else ``None``."""
    path = metadata.project_path if metadata else Path.cwd()
    if package is None and metadata is None:
        if conf_source is not None or credentials is not None:
            raise click.UsageError(
                "--conf-source and --credentials need a project: run in one, or name the "
                "installed one with --package"
            )
        return None
    return Project(
        path.resolve(),
        package=package,
        conf_source=None if conf_source is None else conf_source.resolve(),
        credentials=None if credentials is None else credentials.resolve(),
    )


def required(project: Project | None, command: str) -> Project:
    """``consume`` and ``compile`` run a project: outside one, say how to name it."""
    if project is None:
        raise ConfigError(
            f"No Kedro project here (no pyproject.toml with [tool.kedro]): run `kedro stream "
            f"{command}` in the project's folder, or name the installed project: kedro-stream "
            f"{command} --package NAME --conf-source conf-NAME.tar.gz"
        )
    return project
