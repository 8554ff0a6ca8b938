"""``python -m kedro_stream.devbroker [--brokers N] [--partitions P] [--topic T ...]
[--control-port PORT]``: serve an embedded broker until SIGTERM or SIGINT.

The first stdout line is ``bootstrap.servers=HOST:PORT[,...]``, the second
``control=127.0.0.1:PORT`` (see :func:`kedro_stream.devbroker.process.serve`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from kedro_stream.devbroker.cluster import AUTO_CREATE_PARTITIONS
from kedro_stream.devbroker.process import serve
from kedro_stream.errors import KedroStreamError


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kedro_stream.devbroker",
        description="Serve librdkafka's mock Kafka cluster on loopback until SIGTERM/SIGINT.",
    )
    parser.add_argument("--brokers", type=_positive_int, default=1)
    parser.add_argument(
        "--partitions",
        type=_positive_int,
        default=AUTO_CREATE_PARTITIONS,
        help="partitions of each --topic (auto-created topics always get "
        f"{AUTO_CREATE_PARTITIONS})",
    )
    parser.add_argument("--topic", dest="topics", action="append", default=[])
    parser.add_argument("--control-port", type=int, default=0, help="0: any free port")
    parser.add_argument("--initial-rebalance-delay-ms", type=int, default=0)
    parser.add_argument(
        "--exit-with-parent", action="store_true", help="exit when stdin reaches EOF"
    )
    args = parser.parse_args(argv)
    try:
        serve(
            brokers=args.brokers,
            partitions=args.partitions,
            topics=args.topics,
            control_port=args.control_port,
            initial_rebalance_delay_ms=args.initial_rebalance_delay_ms,
            exit_with_parent=args.exit_with_parent,
        )
    except (KedroStreamError, OSError) as exc:
        parser.exit(1, f"{parser.prog}: error: {exc}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
