"""``kedro stream ...``: thin commands that parse flags, build objects and run them."""

from __future__ import annotations

import time
from pathlib import Path

import click
from confluent_kafka import KafkaException
from kedro.framework.startup import ProjectMetadata
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as ProgressBar
from rich.table import Table

from kedro_stream.config import (
    ConfigError,
    Guarantee,
    NoStreamFile,
    StreamFile,
    command_stream_file,
    read_stream_file,
)
from kedro_stream.devbroker.cli import broker
from kedro_stream.errors import KedroStreamError, one_line_message
from kedro_stream.kafka.command_clients import command_producer, ensure_reachable
from kedro_stream.kafka.file_producer import produce_file, read_messages
from kedro_stream.metrics.http import PATHS
from kedro_stream.metrics.lag import group_lag
from kedro_stream.ops.offsets import Mode, Target, parse_time
from kedro_stream.ops.reset import ResetPlan, reset
from kedro_stream.process_setup import prepare_command_process
from kedro_stream.service.app import consume, load_config
from kedro_stream.service.preflight import StreamCheck, check_streams
from kedro_stream.service.wiring import state_specs
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
    Role.STATE: "bold yellow",
}


@click.group(name="kedro-stream")
def commands() -> None:
    """Kedro project commands contributed by kedro-stream."""


@commands.group()
def stream() -> None:
    """Run pipeline namespaces as Kafka stream processors."""
    prepare_command_process()


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
    """Print how each namespace's datasets are compiled, then check every stream of stream.yml
    as `consume` would at start, without a broker: exit 1 on any problem."""
    project_path = metadata.project_path
    try:
        file: StreamFile | None = read_stream_file(project_path, env)
    except NoStreamFile:
        file = None
    except ConfigError as exc:
        raise click.ClickException(one_line_message(exc)) from exc
    # The roles stream.yml gives (state) show in the tables too.
    specs = {
        spec.namespace: spec
        for stream in (file.streams.values() if file else ())
        if stream.pipeline == pipeline and (not namespaces or stream.namespace in namespaces)
        for spec in state_specs(stream)
    }
    try:
        compiled = compile_project(
            project_path,
            pipeline=pipeline,
            env=env,
            namespaces=namespaces or None,
            specs=specs.values(),
        )
    except KedroStreamError as exc:
        raise click.ClickException(one_line_message(exc)) from exc
    console = Console()
    for namespace in compiled:
        console.print(_table(namespace))
    if file is None:
        click.echo("No stream.yml: only the namespaces were compiled (for the Python API).")
        return
    checks = check_streams(project_path, file, env)
    problems = 0
    for check in checks:
        _print_check(console, check)
        problems += len(check.problems)
    if problems:
        raise click.ClickException(
            f"{problems} problem{'s' if problems > 1 else ''} found (listed above); "
            "consume would stop on the first"
        )


def _print_check(console: Console, check: StreamCheck) -> None:
    stream = check.stream
    published = ", ".join(f"{name} → {spec.topic}" for name, spec in stream.outputs.items())
    console.print(
        f"stream [bold]{check.name}[/]: {', '.join(stream.input.topics)} → namespace "
        f"{stream.namespace!r} (pipeline {stream.pipeline}) → {published or 'nothing'}; "
        f"dead letters → {stream.dead_letter_topic}",
        highlight=False,
    )
    for warning in check.warnings:
        console.print(f"  [yellow]warning[/]: {warning}", highlight=False)
    for problem in check.problems:
        console.print(f"  [red]problem[/]: {problem}", highlight=False)
    if not check.problems:
        console.print("  [green]ok[/]", highlight=False)


_BOOTSTRAP = click.option(
    "--bootstrap-servers",
    envvar="KAFKA_BOOTSTRAP_SERVERS",
    default=None,
    help="Overrides stream.yml kafka.bootstrap_servers (env KAFKA_BOOTSTRAP_SERVERS).",
)


@stream.command("consume")
@click.option("--topic", "-t", required=True, help="Input topic; selects the stream in stream.yml.")
@click.option("--namespace", "-n", default=None, help="When several streams read the topic.")
@click.option("--pipeline", "-p", default=None, help="Overrides the stream's pipeline.")
@click.option("--env", "-e", default=None, help="Kedro configuration environment.")
@click.option("--group-id", default=None)
@_BOOTSTRAP
@click.option("--max-batch-size", type=click.IntRange(min=1), default=None)
@click.option("--max-batch-wait-ms", type=click.IntRange(min=1), default=None)
@click.option("--guarantee", type=click.Choice([g.value for g in Guarantee]), default=None)
@click.option(
    "--max-messages", type=click.IntRange(min=1), default=None, help="Exit 0 once committed."
)
@click.option(
    "--idle-timeout-s",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Stop after this long without a record, counted from the first assignment; exit 1 "
    "if Kafka was never reached.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(min=0, max=65535),
    default=None,
    help="Serve /metrics, /healthz, /readyz here (overrides stream.yml metrics.port).",
)
@click.pass_obj
def consume_(
    metadata: ProjectMetadata,
    *,
    topic: str,
    namespace: str | None,
    pipeline: str | None,
    env: str | None,
    group_id: str | None,
    bootstrap_servers: str | None,
    max_batch_size: int | None,
    max_batch_wait_ms: int | None,
    guarantee: str | None,
    max_messages: int | None,
    idle_timeout_s: float | None,
    metrics_port: int | None,
) -> None:
    """Run the namespace that stream.yml attaches to TOPIC on its micro-batches."""
    overrides = {
        "pipeline": pipeline,
        "group_id": group_id,
        "batch.max_size": max_batch_size,
        "batch.max_wait_ms": max_batch_wait_ms,
        "guarantee": guarantee,
    }
    try:
        kafka, config, metrics = load_config(
            metadata.project_path,
            env=env,
            topic=topic,
            namespace=namespace,
            overrides=overrides,
            bootstrap_servers=bootstrap_servers,
        )
        if metrics_port is not None:
            metrics = metrics.model_copy(update={"port": metrics_port})
        progress = consume(
            metadata.project_path,
            kafka,
            config,
            env=env,
            max_messages=max_messages,
            idle_timeout_s=idle_timeout_s,
            metrics=metrics,
            on_ready=lambda port: _print_endpoints(metrics.host, port),
        )
    except (KedroStreamError, KafkaException) as exc:
        raise click.ClickException(one_line_message(exc)) from exc
    elapsed = time.monotonic() - progress.started
    click.echo(
        f"committed {progress.records} records in {progress.batches} batches "
        f"({progress.produced} outputs, {progress.dead_lettered} dead-lettered) "
        f"in {elapsed:.1f} s"
    )


def _print_endpoints(host: str, port: int) -> None:
    """One ``name=URL`` line per endpoint, on stdout: what scripts and people look for."""
    reachable = "127.0.0.1" if host == "0.0.0.0" else host  # every interface: loopback too
    for path in PATHS:
        click.echo(f"{path.lstrip('/')}=http://{reachable}:{port}{path}")


def _command_file(
    metadata: ProjectMetadata | None, env: str | None, bootstrap_servers: str | None
) -> StreamFile:
    """stream.yml's kafka section for a command; outside a project, the defaults."""
    try:
        return command_stream_file(
            metadata.project_path if metadata else None, env, bootstrap_servers
        )
    except KedroStreamError as exc:
        raise click.ClickException(one_line_message(exc)) from exc


def _state_key(file: StreamFile, topic: str) -> tuple[str, list[str]] | None:
    """The state key of the stateful streams reading ``topic``, and their names."""
    keys: dict[str, list[str]] = {}
    for name, stream in file.streams.items():
        if topic in stream.input.topics and stream.state:
            keys.setdefault(next(iter(stream.state.values())).key, []).append(name)
    if len(keys) > 1:
        described = "; ".join(f"{key} ({', '.join(names)})" for key, names in keys.items())
        raise click.ClickException(
            f"streams reading {topic} keep state under different keys: {described}; choose "
            "one with --key"
        )
    return next(iter(keys.items()), None)


@stream.command("produce")
@click.option("--topic", "-t", required=True)
@click.option(
    "--file",
    "-f",
    "path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON Lines (one record per line) or an Avro container file.",
)
@click.option("--format", "fmt", type=click.Choice(["json", "avro"]), default="json")
@click.option(
    "--schema",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Avro schema (.avsc) to encode JSON Lines records with --format avro.",
)
@click.option(
    "--key",
    "key_field",
    default=None,
    help="Record field used as the message key; default: the state key of the stream that "
    "reads TOPIC, if it keeps state.",
)
@click.option(
    "--rate", type=click.FloatRange(min=0, min_open=True), default=None, help="Records/s."
)
@click.option("--count", type=click.IntRange(min=1), default=None, help="Send at most N records.")
@click.option("--env", "-e", default=None, help="Kedro configuration environment.")
@_BOOTSTRAP
@click.pass_obj
def produce_(
    metadata: ProjectMetadata | None,
    *,
    topic: str,
    path: Path,
    fmt: str,
    schema: Path | None,
    key_field: str | None,
    rate: float | None,
    count: int | None,
    env: str | None,
    bootstrap_servers: str | None,
) -> None:
    """Publish the records of a file to TOPIC (the upstream simulator)."""
    file = _command_file(metadata, env, bootstrap_servers)
    stateful = _state_key(file, topic)
    if key_field is None and stateful is not None:
        key_field = stateful[0]
        click.echo(
            f"message key: field {key_field}, the state key of stream "
            f"{', '.join(stateful[1])}, which reads {topic} (--key chooses another)"
        )
    elif stateful is not None and key_field != stateful[0]:
        click.echo(
            f"warning: stream {', '.join(stateful[1])} keeps state by {stateful[0]} and "
            f"dead-letters records keyed by anything else (here: {key_field})",
            err=True,
        )
    producer = command_producer(file.kafka)
    try:
        ensure_reachable(producer, file.kafka)
        messages = read_messages(path, fmt=fmt, schema_path=schema, key_field=key_field)
        with ProgressBar(
            TextColumn(f"producing to {topic}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            transient=False,
        ) as bar:
            task = bar.add_task("produce", total=count)
            report = produce_file(
                producer,
                topic,
                messages,
                count=count,
                rate=rate,
                on_progress=lambda n: bar.advance(task, n),
            )
    except (KedroStreamError, ValueError, OSError, KafkaException) as exc:
        raise click.ClickException(one_line_message(exc)) from exc
    click.echo(f"delivered {report.delivered} of {report.sent} records to {topic}")
    if report.failed:
        raise click.ClickException(f"{report.failed} records failed: {report.first_error}")


# The broker needs no project: the same command is ``kedro-stream broker`` outside one.
stream.add_command(broker)


@stream.command("lag")
@click.option("--group", "-g", required=True, help="Consumer group id.")
@click.option("--topic", "-t", "topics", multiple=True, help="Only these topics (repeatable).")
@click.option("--env", "-e", default=None, help="Kedro configuration environment.")
@_BOOTSTRAP
@click.pass_obj
def lag_(
    metadata: ProjectMetadata | None,
    *,
    group: str,
    topics: tuple[str, ...],
    env: str | None,
    bootstrap_servers: str | None,
) -> None:
    """Committed offset, high watermark and lag per partition of a consumer group."""
    file = _command_file(metadata, env, bootstrap_servers)
    try:
        rows = group_lag(file.kafka, group, topics)
    except (KedroStreamError, KafkaException) as exc:
        raise click.ClickException(one_line_message(exc)) from exc
    if not rows:
        raise click.ClickException(f"group {group!r} has no committed offsets")
    table = Table(title=f"consumer group: {group}", title_justify="left")
    for column in ("topic", "partition", "committed", "high watermark", "lag"):
        table.add_column(column, justify="left" if column == "topic" else "right")
    for row in rows:
        table.add_row(
            row.topic, str(row.partition), str(row.committed), str(row.high), str(row.lag)
        )
    table.add_row("total", "", "", "", str(sum(r.lag for r in rows)), style="bold")
    Console().print(table)


@stream.command("reset")
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
@click.option("--env", "-e", default=None, help="Kedro configuration environment.")
@_BOOTSTRAP
@click.pass_obj
def reset_(
    metadata: ProjectMetadata | None,
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
    file = _command_file(metadata, env, bootstrap_servers)
    try:
        plan = reset(
            file.kafka,
            file,
            metadata.project_path if metadata else None,
            group=group,
            topic=topic,
            target=target,
            partitions=partitions,
            clear_state=clear_state,
            execute=execute,
        )
    except (KedroStreamError, KafkaException) as exc:
        raise click.ClickException(one_line_message(exc)) from exc
    _print_reset(plan, execute=execute, project=metadata.project_path if metadata else None)


def _target(
    to_earliest: bool,
    to_latest: bool,
    to_offset: int | None,
    to_datetime: str | None,
    shift_by: int | None,
) -> Target:
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


def _print_reset(plan: ResetPlan, *, execute: bool, project: Path | None) -> None:
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
