"""What the commands print: tables and lines for people, ``name=URL`` lines for scripts."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kedro_stream.metrics.http import PATHS
from kedro_stream.metrics.lag import PartitionLag
from kedro_stream.ops.reset import ResetPlan
from kedro_stream.service.preflight import StreamCheck
from kedro_stream.session import CompiledNamespace, Role

ROLE_STYLE = {
    Role.INPUT: "bold green",
    Role.OUTPUT: "bold cyan",
    Role.ARTIFACT: "magenta",
    Role.PARAMETER: "yellow",
    Role.TEMPLATE: "blue",
    Role.INTERMEDIATE: "dim",
    Role.STATE: "bold yellow",
}


def roles_table(compiled: CompiledNamespace) -> Table:
    """One namespace's datasets: role, type and why, the roles in the order a run meets them."""
    table = Table(title=f"namespace: {compiled.namespace}", title_justify="left")
    table.add_column("dataset", no_wrap=True)
    table.add_column("role", no_wrap=True)
    table.add_column("type")
    table.add_column("why")
    order = list(Role)
    for entry in sorted(compiled.report, key=lambda e: (order.index(e.role), e.name)):
        table.add_row(
            entry.name,
            f"[{ROLE_STYLE[entry.role]}]{entry.role.value}[/]",
            entry.dataset_type,
            entry.reason,
        )
    return table


def print_check(console: Console, check: StreamCheck) -> None:
    """One stream of stream.yml: where it reads and writes, then its warnings and problems."""
    stream = check.stream
    published = ", ".join(f"{name} → {spec.topic}" for name, spec in stream.outputs.items())
    console.print(
        f"stream [bold]{check.name}[/]: {', '.join(stream.input.topics)} → namespace "
        f"{stream.namespace!r} (pipeline {stream.pipeline}) → {published or 'nothing'}; "
        f"dead letters → {stream.dead_letter_topic}",
        highlight=False,
    )
    # Escaped: a message quoting YAML (``columns: [account_id, ...]``) is not markup.
    for warning in check.warnings:
        console.print(f"  [yellow]warning[/]: {escape(warning)}", highlight=False)
    for problem in check.problems:
        console.print(f"  [red]problem[/]: {escape(problem)}", highlight=False)
    if not check.problems:
        console.print("  [green]ok[/]", highlight=False)


def print_endpoints(host: str, port: int) -> None:
    """One ``name=URL`` line per endpoint, on stdout: what scripts and people look for."""
    reachable = "127.0.0.1" if host == "0.0.0.0" else host  # every interface: loopback too
    for path in PATHS:
        click.echo(f"{path.lstrip('/')}=http://{reachable}:{port}{path}")


def lag_table(group: str, rows: list[PartitionLag]) -> Table:
    """A consumer group's lag per partition, and its total."""
    table = Table(title=f"consumer group: {group}", title_justify="left")
    for column in ("topic", "partition", "committed", "high watermark", "lag"):
        table.add_column(column, justify="left" if column == "topic" else "right")
    for row in rows:
        committed = str(row.committed) if row.committed >= 0 else "-"  # no commit there yet
        table.add_row(row.topic, str(row.partition), committed, str(row.high), str(row.lag))
    table.add_row("total", "", "", "", str(sum(r.lag for r in rows)), style="bold")
    return table


def print_reset(plan: ResetPlan, *, execute: bool, project: Path | None) -> None:
    """A reset's moves per partition, what happens to the state, and whether it was applied."""
    console = Console()
    table = Table(
        title=f"group {plan.group}, topic {plan.topic} → {plan.target.describe()}",
        title_justify="left",
    )
    for column in ("partition", "current", "new", "lag now", "lag after", "change"):
        table.add_column(column, justify="right")
    for move in plan.moves:
        table.add_row(
            str(move.partition),
            "-" if move.current is None else str(move.current),
            str(move.new),
            str(move.lag_before),
            str(move.lag_after),
            f"{move.lag_after - move.lag_before:+d}",
        )
    before = sum(m.lag_before for m in plan.moves)
    after = sum(m.lag_after for m in plan.moves)
    table.add_row("total", "", "", str(before), str(after), f"{after - before:+d}", style="bold")
    console.print(table)
    state = plan.state
    if state is not None:
        where = state.state_dir.relative_to(project) if state.state_dir and project else None
        done = "deleted" if execute else "would delete"
        topics = ", ".join(state.changelogs) or "none exists"
        console.print(
            f"state of stream {state.stream} ({', '.join(state.states)}) starts empty: "
            f"{done} changelog topics ({topics}; consume makes them again) and "
            f"{len(state.stores)} local stores under {where or 'this project (none)'}; on "
            "other machines that ran this group, delete that directory too",
            highlight=False,
        )
        if state.blocked and not execute:
            console.print(f"--execute will refuse: {state.blocked}", highlight=False)
    if execute:
        console.print(f"committed the new offsets of group {plan.group}", highlight=False)
    else:
        console.print("dry run: nothing changed; add --execute to apply", highlight=False)
