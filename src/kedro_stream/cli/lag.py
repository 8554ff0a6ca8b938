"""``kedro stream lag``: a consumer group's committed offsets, high watermarks and lag."""

from __future__ import annotations

import click
from rich.console import Console

from kedro_stream.cli import options
from kedro_stream.cli.errors import error_line
from kedro_stream.cli.printers import lag_table
from kedro_stream.config import Project, command_stream_file
from kedro_stream.metrics.lag import group_lag


@click.command("lag")
@click.option("--group", "-g", required=True, help="Consumer group id.")
@click.option("--topic", "-t", "topics", multiple=True, help="Only these topics (repeatable).")
@options.env
@options.bootstrap_servers
@options.project
@error_line()
def lag_command(
    project: Project | None,
    *,
    group: str,
    topics: tuple[str, ...],
    env: str | None,
    bootstrap_servers: str | None,
) -> None:
    """Committed offset, high watermark and lag per partition of a consumer group."""
    file = command_stream_file(project, env, bootstrap_servers)
    rows = group_lag(file.kafka, group, topics)
    if not rows:
        raise click.ClickException(f"group {group!r} has no committed offsets")
    Console().print(lag_table(group, rows))
