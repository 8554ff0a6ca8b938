"""``kedro stream compile``: how each namespace's datasets are compiled, and every stream of
stream.yml checked as ``consume`` would check it at start, without a broker.

With no ``--pipeline`` or ``--namespace``, what is compiled is what stream.yml declares: each
stream's namespace in its pipeline, with the roles stream.yml gives (state), as ``consume``
compiles it. The flags choose a pipeline's namespaces instead; without stream.yml, the
``__default__`` pipeline's (for the Python API).
"""

from __future__ import annotations

import click
from rich.console import Console

from kedro_stream.cli import options
from kedro_stream.cli.errors import error_line
from kedro_stream.cli.printers import print_check, roles_table
from kedro_stream.config import NoStreamFile, Project, StreamFile, read_stream_file
from kedro_stream.service.namespace_io import state_specs
from kedro_stream.service.preflight import StreamCheck, check_streams
from kedro_stream.session.boot import compile_project

DEFAULT_PIPELINE = "__default__"


@click.command("compile")
@click.option(
    "--pipeline",
    "-p",
    default=None,
    help="Compile this pipeline's namespaces. Default: those the streams of stream.yml run, "
    f"each in its own pipeline; without stream.yml, {DEFAULT_PIPELINE}'s.",
)
@click.option("--namespace", "-n", "namespaces", multiple=True, help="Repeat for several.")
@options.env
@options.project
@error_line()
def compile_command(
    project: Project | None, pipeline: str | None, namespaces: tuple[str, ...], env: str | None
) -> None:
    """Print how each namespace's datasets are compiled, then check every stream of stream.yml
    as `consume` would at start, without a broker: exit 1 on any problem."""
    project = options.required(project, "compile")
    try:
        file: StreamFile | None = read_stream_file(project, env)
    except NoStreamFile:
        file = None
    console = Console()
    if file is not None and file.streams and pipeline is None and not namespaces:
        checks = check_streams(project, file, env)
        _print_streams(console, checks)
    else:
        _print_namespaces(
            console,
            project,
            file,
            pipeline=pipeline or DEFAULT_PIPELINE,
            namespaces=namespaces,
            env=env,
        )
        if file is None:
            click.echo("No stream.yml: only the namespaces were compiled (for the Python API).")
            return
        checks = check_streams(project, file, env)
        for check in checks:
            print_check(console, check)
    problems = sum(len(check.problems) for check in checks)
    if problems:
        raise click.ClickException(
            f"{problems} problem{'s' if problems > 1 else ''} found (listed above); "
            "consume would stop on the first"
        )


def _print_streams(console: Console, checks: list[StreamCheck]) -> None:
    """Each stream's namespace as consume compiles it (once for streams that share one), then
    the stream's verdict."""
    shown: set[tuple[str, str | None]] = set()
    for check in checks:
        where = (check.stream.pipeline, check.stream.namespace)
        if check.compiled is not None and where not in shown:
            shown.add(where)
            console.print(roles_table(check.compiled))
        print_check(console, check)


def _print_namespaces(
    console: Console,
    project: Project,
    file: StreamFile | None,
    *,
    pipeline: str,
    namespaces: tuple[str, ...],
    env: str | None,
) -> None:
    """The chosen pipeline's namespaces, with the roles stream.yml gives those its streams run."""
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
    for namespace in compiled:
        console.print(roles_table(namespace))
