"""Build a runnable stream from a project: config, booted session, clients, signal handling."""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from kedro.framework.project import settings
from kedro.framework.startup import bootstrap_project

from kedro_stream.config import (
    KafkaConfig,
    StreamConfig,
    apply_overrides,
    load_stream_file,
    select_stream,
)
from kedro_stream.kafka.clients import make_consumer, make_producer
from kedro_stream.service.loop import Progress, StreamService
from kedro_stream.session import boot_project

logger = logging.getLogger(__name__)


def load_config(
    project_path: Path,
    *,
    env: str | None,
    topic: str | None,
    namespace: str | None,
    overrides: Mapping[str, Any],
    bootstrap_servers: str | None,
) -> tuple[KafkaConfig, StreamConfig]:
    """The stream reading ``topic`` from the environment's ``stream.yml``, CLI flags applied."""
    bootstrap_project(project_path)
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(project_path / settings.CONF_SOURCE),
        env=env,
        **settings.CONFIG_LOADER_ARGS,
    )
    file = load_stream_file(loader)
    stream = apply_overrides(select_stream(file, topic=topic, namespace=namespace), overrides)
    kafka = file.kafka
    if bootstrap_servers:
        kafka = kafka.model_copy(update={"bootstrap_servers": bootstrap_servers})
    return kafka, stream


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
    project_path: Path,
    kafka: KafkaConfig,
    stream: StreamConfig,
    *,
    env: str | None,
    max_messages: int | None = None,
    idle_timeout_s: float | None = None,
) -> Progress:
    """Boot the stream's namespace and run the loop until stopped, idle or done."""
    session = boot_project(
        project_path, pipeline=stream.pipeline, env=env, namespaces=[stream.namespace]
    )
    with session:
        service = StreamService(
            session,
            stream,
            kafka,
            project_path=project_path,
            consumer_factory=lambda: make_consumer(kafka, stream),
            producer_factory=lambda: make_producer(kafka, stream),
            max_messages=max_messages,
            idle_timeout_s=idle_timeout_s,
        )
        with stop_on_signals(service):
            return service.run()
