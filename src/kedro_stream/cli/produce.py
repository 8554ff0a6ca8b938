"""``kedro stream produce``: publish the records of a file to a topic (the upstream simulator).

Records are keyed by the state key of a stateful stream that reads the topic, unless ``--key``
says otherwise: a stateful stream dead-letters records whose message key is not their state
key, and a user producing test data should not have to know that.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as ProgressBar

from kedro_stream.cli import options
from kedro_stream.cli.errors import error_line
from kedro_stream.config import Project, StreamFile, command_stream_file
from kedro_stream.errors import did_you_mean
from kedro_stream.kafka.command_clients import command_producer, ensure_reachable
from kedro_stream.kafka.file_producer import check_records, produce_file, read_messages


@click.command("produce")
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
@options.env
@options.bootstrap_servers
@options.project
@error_line(ValueError, OSError)
def produce_command(
    project: Project | None,
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
    file = command_stream_file(project, env, bootstrap_servers)
    if (unread := _unread_warning(file, topic)) is not None:
        click.echo(unread, err=True)
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
    # Every record is checked before any is sent (or the broker reached): a bad one found
    # halfway would leave those before it sent, and the fixed file sent again would repeat them.
    check_records(path, fmt=fmt, schema_path=schema, key_field=key_field, count=count)
    producer = command_producer(file.kafka)
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
    click.echo(f"delivered {report.delivered} of {report.sent} records to {topic}")
    if report.failed:
        raise click.ClickException(f"{report.failed} records failed: {report.first_error}")


def _state_key(file: StreamFile, topic: str) -> tuple[str, list[str]] | None:
    """The state key of the stateful streams reading ``topic``, and their names."""
    keys: dict[str, list[str]] = {}
    for name, stream in file.readers(topic, stateful=True).items():
        assert stream.state_key is not None  # a stateful reader
        keys.setdefault(stream.state_key, []).append(name)
    if len(keys) > 1:
        described = "; ".join(f"{key} ({', '.join(names)})" for key, names in keys.items())
        raise click.ClickException(
            f"streams reading {topic} keep state under different keys: {described}; choose "
            "one with --key"
        )
    return next(iter(keys.items()), None)


def _unread_warning(file: StreamFile, topic: str) -> str | None:
    """The warning for a ``topic`` that none of stream.yml's streams read: a typo would deliver
    without a word. Only a warning (other consumers may read the topic), and none without
    streams: outside a project, or in one without stream.yml."""
    read = sorted({t for stream in file.streams.values() for t in stream.input.topics})
    if not read or topic in read:
        return None
    return (
        f"warning: no stream of stream.yml reads {topic}{did_you_mean(topic, read)}; its "
        f"streams read {', '.join(read)}"
    )
