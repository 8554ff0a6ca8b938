"""Build a runnable stream from a project: config, booted session, clients, signal handling."""

from __future__ import annotations

import gc
import logging
import signal
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import FrameType
from typing import Any

from kedro_stream.config import (
    KafkaConfig,
    MetricsConfig,
    Project,
    StreamConfig,
    apply_overrides,
    read_stream_file,
    select_stream,
)
from kedro_stream.kafka.clients import consumer_config, make_consumer, make_producer
from kedro_stream.metrics.http import MetricsServer, StateQueries
from kedro_stream.metrics.lag import LagRefresher
from kedro_stream.service.codecs import check_schemas
from kedro_stream.service.loop import StreamService
from kedro_stream.service.namespace_io import state_specs
from kedro_stream.service.probes import healthy, ready
from kedro_stream.service.progress import Progress
from kedro_stream.session.boot import boot

logger = logging.getLogger(__name__)


def load_config(
    project: Project,
    *,
    env: str | None,
    topic: str | None,
    namespace: str | None,
    overrides: Mapping[str, Any],
    bootstrap_servers: str | None,
) -> tuple[KafkaConfig, StreamConfig, MetricsConfig]:
    """The stream reading ``topic`` from the environment's ``stream.yml``, CLI flags applied."""
    file = read_stream_file(project, env)
    stream = apply_overrides(select_stream(file, topic=topic, namespace=namespace), overrides)
    kafka = file.kafka
    if bootstrap_servers:
        kafka = kafka.model_copy(update={"bootstrap_servers": bootstrap_servers})
    return kafka, stream, file.metrics


@contextmanager
def stop_on_signals(service: StreamService) -> Iterator[None]:
    """SIGTERM/SIGINT finish the current batch, commit and leave the group."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        logger.info("Received %s: finishing the current batch", signal.Signals(signum).name)
        service.stop()

    previous = {s: signal.signal(s, handle) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def consume(
    project: Project,
    kafka: KafkaConfig,
    stream: StreamConfig,
    *,
    env: str | None,
    max_messages: int | None = None,
    idle_timeout_s: float | None = None,
    metrics: MetricsConfig | None = None,
    on_ready: Callable[[int], None] = lambda _port: None,
) -> Progress:
    """Boot the stream's namespace and run the loop until stopped, idle or done.

    With ``metrics.port`` set, ``/metrics``, ``/healthz`` and ``/readyz`` (and ``/state`` if
    ``metrics.state_queries`` is on) are served there (port 0 picks a free one, passed to
    ``on_ready``) and consumer lag is refreshed in the background.
    """
    check_schemas(stream, project)  # before boot: a path typo fails in a second
    session = boot(
        project,
        pipeline=stream.pipeline,
        env=env,
        namespaces=[stream.namespace],
        specs=state_specs(stream),
    )
    with session:
        service = StreamService(
            session,
            stream,
            kafka,
            project=project,
            consumer_factory=lambda: make_consumer(kafka, stream),
            producer_factory=lambda on_delivery: make_producer(
                kafka, stream, on_delivery=on_delivery
            ),
            max_messages=max_messages,
            idle_timeout_s=idle_timeout_s,
        )
        _freeze_boot_objects()
        with stop_on_signals(service), _observed(service, kafka, stream, metrics, on_ready):
            return service.run()


def _freeze_boot_objects() -> None:
    """Keep the objects of boot (Kedro, the catalog, loaded models: often millions) out of
    every later garbage collection. Without this, a full collection walks all of them
    and stalls the loop: ~200 ms once ~10 s into a stream of small batches, the whole p99."""
    gc.collect()
    gc.freeze()


@contextmanager
def _observed(
    service: StreamService,
    kafka: KafkaConfig,
    stream: StreamConfig,
    config: MetricsConfig | None,
    on_ready: Callable[[int], None],
) -> Iterator[None]:
    if config is None or config.port is None:
        yield
        return
    lag = LagRefresher(
        consumer_config(kafka, stream),
        service.metrics,
        lambda: set(service.owned),
        interval_s=config.lag_interval_s,
    )
    token = config.state_queries.token
    server = MetricsServer(
        service.metrics.registry,
        port=config.port,
        host=config.host,
        healthy=lambda: healthy(service, stream),
        ready=lambda: ready(service, stream),
        state_queries=None if token is None else StateQueries(service.state_row, token),
    )
    lag.start()
    server.start()
    logger.info(
        "Serving /metrics, /healthz and /readyz%s on %s port %d",
        "" if token is None else " and /state (bearer token)",
        config.host,
        server.port,
    )
    on_ready(server.port)
    try:
        yield
    finally:
        server.stop()
        lag.stop()
