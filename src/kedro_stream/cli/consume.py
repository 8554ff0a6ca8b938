"""``kedro stream consume``: run the stream that reads a topic until stopped, idle or done."""

from __future__ import annotations

import time

import click

from kedro_stream.cli import options
from kedro_stream.cli.errors import error_line
from kedro_stream.cli.printers import print_endpoints
from kedro_stream.config import Guarantee, Project
from kedro_stream.service.app import consume, load_config


@click.command("consume")
@click.option("--topic", "-t", required=True, help="Input topic; selects the stream in stream.yml.")
@click.option("--namespace", "-n", default=None, help="When several streams read the topic.")
@click.option("--pipeline", "-p", default=None, help="Overrides the stream's pipeline.")
@options.env
@click.option("--group-id", default=None)
@options.bootstrap_servers
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
@options.project
@error_line()
def consume_command(
    project: Project | None,
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
    project = options.required(project, "consume")
    kafka, config, metrics = load_config(
        project,
        env=env,
        topic=topic,
        namespace=namespace,
        overrides=overrides,
        bootstrap_servers=bootstrap_servers,
    )
    if metrics_port is not None:
        metrics = metrics.model_copy(update={"port": metrics_port})
    progress = consume(
        project,
        kafka,
        config,
        env=env,
        max_messages=max_messages,
        idle_timeout_s=idle_timeout_s,
        metrics=metrics,
        on_ready=lambda port: print_endpoints(metrics.host, port),
    )
    elapsed = time.monotonic() - progress.started
    click.echo(
        f"committed {progress.records} records in {progress.batches} batches "
        f"({progress.produced} outputs, {progress.dead_lettered} dead-lettered) "
        f"in {elapsed:.1f} s"
    )
