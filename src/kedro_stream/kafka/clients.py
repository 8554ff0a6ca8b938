"""confluent-kafka clients built from ``stream.yml``, with the settings the commit protocol needs.

Defaults that are part of the protocol (manual commits, idempotence) are set last and cannot
be switched off by accident from ``kafka.consumer``/``kafka.producer``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer

from kedro_stream.config import Guarantee, KafkaConfig, StreamConfig

# Offsets are committed by the service after outputs are acknowledged, never by the client.
_CONSUMER_FIXED = {"enable.auto.commit": False, "enable.auto.offset.store": False}
_CONSUMER_DEFAULTS = {
    "auto.offset.reset": "earliest",
    "partition.assignment.strategy": "cooperative-sticky",
}
# Delivery reports only for failures: the commit protocol learns of success from ``flush``
# returning with nothing pending, and a Python callback per acknowledged record costs ~1 µs.
_PRODUCER_DEFAULTS = {"linger.ms": 5, "delivery.report.only.error": True}
_PRODUCER_FIXED = {"enable.idempotence": True, "acks": "all"}

DeliveryCallback = Callable[[KafkaError | None, Message], None]
# librdkafka's mock cluster (the development broker) names itself so. It accepts transactions
# but stores no offset sent in one: under exactly-once, nothing would ever count as committed.
_MOCK_CLUSTER_ID_PREFIX = "mockCluster"
#: How long the start-up check of the broker's kind waits for metadata.
METADATA_TIMEOUT_S = 5.0


def consumer_config(kafka: KafkaConfig, stream: StreamConfig) -> dict[str, Any]:
    config = {
        **_CONSUMER_DEFAULTS,
        **kafka.client_properties("consumer"),
        "group.id": stream.group_id,
        "max.poll.interval.ms": int(stream.max_poll_interval_s * 1000),
        **_CONSUMER_FIXED,
    }
    if stream.guarantee is Guarantee.EXACTLY_ONCE:
        config["isolation.level"] = "read_committed"
    return config


def restore_consumer_config(kafka: KafkaConfig, stream: StreamConfig) -> dict[str, Any]:
    """The consumer that reads changelogs back into state stores: assigned partitions only, no
    commits; under exactly-once it sees committed transactions only."""
    config = {
        **kafka.client_properties("consumer"),
        "group.id": f"{stream.group_id}.state-restore",  # never joined: assign() only
        "enable.auto.commit": False,
        "enable.partition.eof": True,  # the end of a changelog partition is an event
        "auto.offset.reset": "earliest",
        # Whole partitions are read back: large fetches, and no wait for more once data is in.
        "fetch.wait.max.ms": 10,
        "max.partition.fetch.bytes": 8 << 20,
    }
    if stream.guarantee is Guarantee.EXACTLY_ONCE:
        config["isolation.level"] = "read_committed"
    return config


def transactional_id(stream: StreamConfig) -> str:
    """Stable per instance, so a restarted instance fences the one it replaces."""
    return stream.transactional_id or f"{stream.group_id}-{socket.gethostname()}"


def producer_config(kafka: KafkaConfig, stream: StreamConfig) -> dict[str, Any]:
    config = {**_PRODUCER_DEFAULTS, **kafka.client_properties("producer"), **_PRODUCER_FIXED}
    if stream.guarantee is Guarantee.EXACTLY_ONCE:
        config["transactional.id"] = transactional_id(stream)
    return config


def make_consumer(kafka: KafkaConfig, stream: StreamConfig) -> Consumer:
    return Consumer(consumer_config(kafka, stream))


def make_producer(
    kafka: KafkaConfig,
    stream: StreamConfig,
    *,
    on_delivery: DeliveryCallback | None = None,
) -> Producer:
    """``on_delivery`` is the producer's one delivery callback (for failures only, by default)."""
    config = producer_config(kafka, stream)
    if on_delivery is not None:
        config["on_delivery"] = on_delivery
    return Producer(config)


def is_development_broker(consumer: Consumer) -> bool:
    """Whether the cluster is librdkafka's mock cluster (False when it cannot be told in
    ``METADATA_TIMEOUT_S``: the consumer will report an unreachable broker itself)."""
    try:
        cluster_id = consumer.list_topics(timeout=METADATA_TIMEOUT_S).cluster_id
    except KafkaException:
        return False
    return bool(cluster_id) and cluster_id.startswith(_MOCK_CLUSTER_ID_PREFIX)
