"""``kedro stream reset``: move a stopped group's committed offsets (a dry run unless
``--execute``); the work is :mod:`kedro_stream.ops.reset`."""

from __future__ import annotations

import click

from kedro_stream.cli import options
from kedro_stream.cli.errors import error_line
from kedro_stream.cli.printers import print_reset
from kedro_stream.config import Project, command_stream_file
from kedro_stream.ops.offsets import Mode, Target, parse_time
from kedro_stream.ops.reset import reset


@click.command("reset")
@click.option("--group", "-g", required=True, help="Consumer group id.")
@click.option("--topic", "-t", required=True, help="Input topic whose offsets move.")
@click.option(
    "--partition",
    "partitions",
    type=click.IntRange(min=0),
    multiple=True,
    help="Only these partitions (repeatable); default: all.",
)
@click.option("--to-earliest", is_flag=True, help="The earliest retained record.")
@click.option("--to-latest", is_flag=True, help="The end: skip everything retained.")
@click.option("--to-offset", type=click.IntRange(min=0), default=None, help="This offset.")
@click.option(
    "--to-datetime",
    default=None,
    help="The first record at or after this ISO-8601 time, with its zone (2026-12-03T09:00Z).",
)
@click.option(
    "--shift-by", type=int, default=None, help="The committed offset plus N (N < 0: back)."
)
@click.option(
    "--clear-state",
    is_flag=True,
    help="A stateful stream: start its state empty from the new offsets (implied by "
    "--to-earliest).",
)
@click.option("--execute", is_flag=True, help="Apply the reset; without it nothing changes.")
@options.env
@options.bootstrap_servers
@options.project
@error_line()
def reset_command(
    project: Project | None,
    *,
    group: str,
    topic: str,
    partitions: tuple[int, ...],
    to_earliest: bool,
    to_latest: bool,
    to_offset: int | None,
    to_datetime: str | None,
    shift_by: int | None,
    clear_state: bool,
    execute: bool,
    env: str | None,
    bootstrap_servers: str | None,
) -> None:
    """Move GROUP's committed offsets on TOPIC, to process records again (or skip them).

    A dry run unless --execute: prints each partition's current and new offset and what
    happens to a stateful stream's state. The group must be stopped."""
    target = _target(to_earliest, to_latest, to_offset, to_datetime, shift_by)
    file = command_stream_file(project, env, bootstrap_servers)
    root = None if project is None else project.path  # where its stores are
    plan = reset(
        file.kafka,
        file,
        root,
        group=group,
        topic=topic,
        target=target,
        partitions=partitions,
        clear_state=clear_state,
        execute=execute,
    )
    print_reset(plan, execute=execute, project=root)


def _target(
    to_earliest: bool,
    to_latest: bool,
    to_offset: int | None,
    to_datetime: str | None,
    shift_by: int | None,
) -> Target:
    """The one target the flags name; a usage error for none or several."""
    given = [
        target
        for target, chosen in (
            (lambda: Target(Mode.EARLIEST), to_earliest),
            (lambda: Target(Mode.LATEST), to_latest),
            (lambda: Target(Mode.OFFSET, to_offset or 0), to_offset is not None),
            (lambda: Target(Mode.DATETIME, when=parse_time(to_datetime or "")), to_datetime),
            (lambda: Target(Mode.SHIFT, shift_by or 0), shift_by is not None),
        )
        if chosen
    ]
    if len(given) != 1:
        raise click.UsageError(
            "give exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by"
        )
    try:
        return given[0]()
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--to-datetime") from None
