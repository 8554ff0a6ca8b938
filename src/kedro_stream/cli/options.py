"""Options that several commands share, declared once so their help reads the same."""

from __future__ import annotations

from pathlib import Path

import click
from kedro.framework.startup import ProjectMetadata

bootstrap_servers = click.option(
    "--bootstrap-servers",
    envvar="KAFKA_BOOTSTRAP_SERVERS",
    default=None,
    help="Overrides stream.yml kafka.bootstrap_servers (env KAFKA_BOOTSTRAP_SERVERS).",
)
env = click.option("--env", "-e", default=None, help="Kedro configuration environment.")


def project_path(metadata: ProjectMetadata | None) -> Path | None:
    """The project a command runs in; ``None`` outside one (commands beside ``consume`` and
    ``compile`` also run there, with stream.yml's defaults)."""
    return metadata.project_path if metadata else None
