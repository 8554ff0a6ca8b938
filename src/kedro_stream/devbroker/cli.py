"""``broker``: the development broker's one command, wherever it is run from.

``python -m kedro_stream.devbroker``, ``kedro-stream broker`` (``python -m kedro_stream broker``)
and ``kedro stream broker`` are this command. It imports click and this package only, never Kedro:
Kedro's default logging writes to stdout when imported, and the first stdout line must be the
bootstrap line.
"""

from __future__ import annotations

import click

from kedro_stream.devbroker.cluster import AUTO_CREATE_PARTITIONS
from kedro_stream.devbroker.process import serve
from kedro_stream.errors import KedroStreamError

__all__ = ["broker"]


@click.command("broker", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--port",
    type=click.IntRange(min=1, max=65535),
    default=None,
    help="Serve broker 1 on 127.0.0.1:PORT, broker N on PORT+N-1 (default: any free ports).",
)
@click.option("--brokers", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--topic", "topics", multiple=True, help="Create this topic at start (repeat for several)."
)
@click.option(
    "--partitions",
    type=click.IntRange(min=1),
    default=AUTO_CREATE_PARTITIONS,
    show_default=True,
    help=f"Partitions of the --topic topics (auto-created topics get {AUTO_CREATE_PARTITIONS}).",
)
@click.option(
    "--control-port",
    type=click.IntRange(min=0, max=65535),
    default=0,
    help="Port of the fault-injection endpoint (default: any free port).",
)
# For EmbeddedBroker and tests: exit when stdin reaches EOF (the parent died).
@click.option("--exit-with-parent", is_flag=True, hidden=True)
@click.option("--initial-rebalance-delay-ms", type=click.IntRange(min=0), default=0, hidden=True)
def broker(
    *,
    port: int | None,
    brokers: int,
    topics: tuple[str, ...],
    partitions: int,
    control_port: int,
    exit_with_parent: bool,
    initial_rebalance_delay_ms: int,
) -> None:
    """Run the development broker (librdkafka's mock Kafka cluster) until Ctrl-C or SIGTERM.

    The first stdout line is bootstrap.servers=HOST:PORT[,...], the second
    control=127.0.0.1:PORT. Not for production: it keeps everything in memory,
    about 5 MiB per partition.
    """
    try:
        serve(
            brokers=brokers,
            partitions=partitions,
            topics=topics,
            port=port,
            control_port=control_port,
            initial_rebalance_delay_ms=initial_rebalance_delay_ms,
            exit_with_parent=exit_with_parent,
        )
    except (KedroStreamError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
