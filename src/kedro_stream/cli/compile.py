"""``kedro stream compile``: how each namespace's datasets are compiled, and every stream of
stream.yml checked as ``consume`` would check it at start, without a broker."""

from __future__ import annotations

import click
from rich.console import Console

from kedro_stream.cli import options
from kedro_stream.cli.errors import error_line
from kedro_stream.cli.printers import print_check, roles_table
from kedro_stream.config import NoStreamFile, Project, StreamFile, read_stream_file
from kedro_stream.service.namespace_io import state_specs
from kedro_stream.service.preflight import check_streams
from kedro_stream.session.boot import compile_project


@click.command("compile")
@click.option("--pipeline", "-p", default="__default__", show_default=True)
@click.option("--namespace", "-n", "namespaces", multiple=True, help="Repeat for several.")
@options.env
@options.project
@error_line()
def compile_command(
    project: Project | None, pipeline: str, namespaces: tuple[str, ...], env: str | None
) -> None:
    """Print how each namespace's datasets are compiled, then check every stream of stream.yml
    as `consume` would at start, without a broker: exit 1 on any problem."""
    project = options.required(project, "compile")
    try:
        file: StreamFile | None = read_stream_file(project, env)
    except NoStreamFile:
        file = None
    # The roles stream.yml gives (state) show in the tables too.
    specs = {
        spec.namespace: spec
        for stream in (file.streams.values() if file else ())
        if stream.pipeline == pipeline and (not namespaces or stream.namespace in namespaces)
        for spec in state_specs(stream)
    }
    compiled = compile_project(
        project,
        pipeline=pipeline,
        env=env,
        namespaces=namespaces or None,
        specs=specs.values(),
    )
    console = Console()
    for namespace in compiled:
        console.print(roles_table(namespace))
    if file is None:
        click.echo("No stream.yml: only the namespaces were compiled (for the Python API).")
        return
    checks = check_streams(project, file, env)
    problems = 0
    for check in checks:
        print_check(console, check)
        problems += len(check.problems)
    if problems:
        raise click.ClickException(
            f"{problems} problem{'s' if problems > 1 else ''} found (listed above); "
            "consume would stop on the first"
        )
