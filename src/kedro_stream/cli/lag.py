"""``kedro stream lag``: a consumer group's committed offsets, high watermarks and lag.

Without ``--topic``, the topics are those the streams of ``stream.yml`` with that group read;
outside a project, or for a group no stream has, those the group has committed offsets on.
"""

from __future__ import annotations

import click
from rich.console import Console

from kedro_stream.cli import options
from kedro_stream.cli.errors import error_line
from kedro_stream.cli.printers import lag_table
from kedro_stream.config import Project, StreamFile, command_stream_file
from kedro_stream.errors import did_you_mean
from kedro_stream.metrics.lag import group_lag


@click.command("lag")
@click.option("--group", "-g", required=True, help="Consumer group id.")
@click.option(
    "--topic",
    "-t",
    "topics",
    multiple=True,
    help="Only these topics (repeatable); default: those the group's streams in stream.yml "
    "read, else every topic the group committed on.",
)
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
    rows = group_lag(file.kafka, group, topics or _read_by_group(file, group))
    if not rows:
        groups = {stream.group_id for stream in file.streams.values()}
        raise click.ClickException(
            f"group {group!r} has no committed offsets{did_you_mean(group, groups)}"
        )
    Console().print(lag_table(group, rows))


def _read_by_group(file: StreamFile, group: str) -> list[str]:
    """The topics the streams of ``group`` read, in stream.yml's order, each once."""
    read = (t for s in file.streams.values() if s.group_id == group for t in s.input.topics)
    return list(dict.fromkeys(read))
