"""The stream loop's decisions, against fake clients: what it commits and what it re-reads."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kedro_stream.config import KafkaConfig
from kedro_stream.service.loop import StreamService
from tests.fake_clients import (
    FakeConsumer,
    FakeProducer,
    FakeSession,
    records,
    stream_config,
)


def service(
    session: FakeSession, consumer: FakeConsumer, producer: FakeProducer, **limits: int
) -> StreamService:
    return StreamService(
        session,  # type: ignore[arg-type]
        stream_config(),
        KafkaConfig(),
        project_path=Path("."),
        consumer_factory=lambda: consumer,  # type: ignore[arg-type,return-value]
        producer_factory=lambda _deliveries: producer,  # type: ignore[arg-type,return-value]
        **limits,
    )


def test_a_partition_revoked_during_the_run_is_not_committed() -> None:
    """Its outputs may not be acknowledged under the new owner's watch: the batch commits the
    partitions it still owns, and the revoked one restarts from its committed offset."""
    batch = records("in", 0, [{"n": 1}, {"n": 2}]) + records("in", 1, [{"n": 3}])
    consumer, producer = FakeConsumer([batch]), FakeProducer()

    def node(frame: pd.DataFrame) -> pd.DataFrame:
        consumer.revoke("in", 1)  # the group moves partition 1 while the namespace runs
        return frame

    progress = service(FakeSession(node), consumer, producer, max_messages=3).run()

    assert consumer.commits == [[("in", 0, 2)]]
    assert progress.records == 3
    assert producer.topics() == ["out"] * 3
