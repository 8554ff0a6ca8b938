"""Consumer configs under both group protocols: the classic one keeps its settings, the
next-generation one (KIP-848) gets none of those librdkafka refuses with it."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import Consumer

from kedro_stream.config import KafkaConfig
from kedro_stream.kafka.clients import (
    consumer_config,
    make_consumer,
    restore_consumer_config,
)
from kedro_stream.kafka.command_clients import offsets_consumer_config
from tests.fake_clients import stream_config

# What the example's stream.yml sets for the classic protocol.
CLASSIC_SESSION = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
# No broker listens there: building a client makes no request.
NOWHERE = "127.0.0.1:1"


def kafka(protocol: str) -> KafkaConfig:
    consumer = {**CLASSIC_SESSION, "group.protocol": protocol}
    return KafkaConfig(bootstrap_servers=NOWHERE, consumer=consumer)


def test_the_classic_protocol_keeps_its_settings() -> None:
    config = consumer_config(kafka("classic"), stream_config())
    assert config["partition.assignment.strategy"] == "cooperative-sticky"
    assert config["session.timeout.ms"] == 6000


@pytest.mark.parametrize("build", [consumer_config, restore_consumer_config])
def test_kip_848_consumers_get_no_classic_only_setting(build) -> None:
    config = build(kafka("consumer"), stream_config())
    for key in ("partition.assignment.strategy", "session.timeout.ms", "heartbeat.interval.ms"):
        assert key not in config
    Consumer(config).close()  # librdkafka accepts it


def test_the_dropped_settings_are_named_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "kedro_stream")
    make_consumer(kafka("consumer"), stream_config()).close()
    # Only the clients module's own words: the client may also have tried NOWHERE already, and
    # the client log (logger kedro_stream.kafka) said so.
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name == "kedro_stream.kafka.clients"
    ]
    assert len(warnings) == 1
    assert "ignoring session.timeout.ms, heartbeat.interval.ms of kafka.consumer" in warnings[0]


def test_the_commands_offsets_reader_gets_no_classic_only_setting() -> None:
    """`kedro stream lag` and `reset` read stream.yml's kafka.consumer too."""
    config = offsets_consumer_config(kafka("consumer"), "g")
    assert "session.timeout.ms" not in config
    Consumer(config).close()
