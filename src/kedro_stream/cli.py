"""``kedro stream ...``: thin commands that parse flags, build objects and run them."""

from __future__ import annotations

import click
from kedro.framework.startup import ProjectMetadata
from rich.console import Console
from rich.table import Table

from kedro_stream.errors import KedroStreamError
from kedro_stream.session import Role
from kedro_stream.session.boot import compile_project
from kedro_stream.session.compiler import CompiledNamespace

_ROLE_STYLE = {
    Role.INPUT: "bold green",
    Role.OUTPUT: "bold cyan",
    Role.ARTIFACT: "magenta",
    Role.PARAMETER: "yellow",
    Role.TEMPLATE: "blue",
    Role.INTERMEDIATE: "dim",
}


@click.group(name="kedro-stream")
def commands() -> None:
    """Kedro project commands contributed by kedro-stream."""


@commands.group()
def stream() -> None:
    """Run pipeline namespaces as Kafka stream processors."""


def _table(compiled: CompiledNamespace) -> Table:
    table = Table(title=f"namespace: {compiled.namespace}", title_justify="left")
    table.add_column("dataset", no_wrap=True)
    table.add_column("role", no_wrap=True)
    table.add_column("type")
    table.add_column("why")
    order = list(Role)
    for entry in sorted(compiled.report, key=lambda e: (order.index(e.role), e.name)):
        table.add_row(
            entry.name,
            f"[{_ROLE_STYLE[entry.role]}]{entry.role.value}[/]",
            entry.dataset_type,
            entry.reason,
        )
    return table


@stream.command("compile")
@click.option("--pipeline", "-p", default="__default__", show_default=True)
@click.option("--namespace", "-n", "namespaces", multiple=True, help="Repeat for several.")
@click.option("--env", "-e", default=None, help="Kedro configuration environment.")
@click.pass_obj
def compile_(
    metadata: ProjectMetadata, pipeline: str, namespaces: tuple[str, ...], env: str | None
) -> None:
    """Print how each namespace's datasets are compiled: inputs, outputs, parameters,
    artifacts, templates."""
    try:
        compiled = compile_project(
            metadata.project_path, pipeline=pipeline, env=env, namespaces=namespaces or None
        )
    except KedroStreamError as exc:
        raise click.ClickException(str(exc)) from exc
    console = Console()
    for namespace in compiled:
        console.print(_table(namespace))
