"""confluent-kafka clients built from ``stream.yml``, with the settings the commit protocol needs.

Defaults that are part of the protocol (manual commits, idempotence) are set last and cannot
be switched off by accident from ``kafka.consumer``/``kafka.producer``. Every client logs
through :data:`~kedro_stream.kafka.client_log.CLIENT_LOG`.

Both consumer group protocols work: the classic one (the default; cooperative-sticky
assignment) and the next-generation one (KIP-848, ``group.protocol: consumer``), whose
assignment is incremental too and whose session and heartbeat are set on the broker. Its
consumers refuse the classic-only settings, so they are dropped from its configs, with one
warning naming those ``stream.yml`` set.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient

from kedro_stream.config import Guarantee, KafkaConfig, StreamConfig
from kedro_stream.kafka.client_log import CLIENT_LOG

logger = logging.getLogger(__name__)

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
# librdkafka refuses these under group.protocol=consumer: its broker runs the assignment
# (group.remote.assignor) and sets the session and heartbeat (group.consumer.*.ms).
_CLASSIC_ONLY = (
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "group.protocol.type",
)

DeliveryCallback = Callable[[KafkaError | None, Message], None]
# librdkafka's mock cluster (the development broker) names itself so. It accepts transactions
# but stores no offset sent in one: under exactly-once, nothing would ever count as committed.
_MOCK_CLUSTER_ID_PREFIX = "mockCluster"
#: How long the start-up check of the broker's kind waits for metadata.
METADATA_TIMEOUT_S = 5.0


def is_next_generation(kafka: KafkaConfig) -> bool:
    """Whether consumers join their group with the KIP-848 protocol."""
    protocol = kafka.client_properties("consumer").get("group.protocol", "classic")
    return str(protocol).lower() == "consumer"


def dropped_classic_settings(kafka: KafkaConfig) -> list[str]:
    """The classic-only settings ``stream.yml`` gives consumers that the next-generation
    protocol drops (none under the classic protocol)."""
    if not is_next_generation(kafka):
        return []
    return [key for key in _CLASSIC_ONLY if key in kafka.client_properties("consumer")]


def for_group_protocol(kafka: KafkaConfig, config: dict[str, Any]) -> dict[str, Any]:
    """``config`` without the settings librdkafka refuses under the group protocol ``kafka``
    sets: any consumer built from ``kafka.consumer`` goes through this."""
    if not is_next_generation(kafka):
        return config
    return {k: v for k, v in config.items() if k not in _CLASSIC_ONLY}


def consumer_config(kafka: KafkaConfig, stream: StreamConfig) -> dict[str, Any]:
    """The service's group member: manual commits only, cooperative-sticky by default,
    read_committed under exactly-once."""
    config = {
        **_CONSUMER_DEFAULTS,
        **kafka.client_properties("consumer"),
        "group.id": stream.group_id,
        "max.poll.interval.ms": int(stream.max_poll_interval_s * 1000),
        **_CONSUMER_FIXED,
        "logger": CLIENT_LOG,
    }
    if stream.guarantee is Guarantee.EXACTLY_ONCE:
        config["isolation.level"] = "read_committed"
    return for_group_protocol(kafka, config)


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
        "logger": CLIENT_LOG,
    }
    if stream.guarantee is Guarantee.EXACTLY_ONCE:
        config["isolation.level"] = "read_committed"
    return for_group_protocol(kafka, config)


def transactional_id(stream: StreamConfig) -> str:
    """Stable per instance, so a restarted instance fences the one it replaces."""
    return stream.transactional_id or f"{stream.group_id}-{socket.gethostname()}"


def producer_config(kafka: KafkaConfig, stream: StreamConfig) -> dict[str, Any]:
    """The service's producer: idempotent, acks=all, reporting failed deliveries only;
    transactional (with a stable id) under exactly-once."""
    config = {
        **_PRODUCER_DEFAULTS,
        **kafka.client_properties("producer"),
        **_PRODUCER_FIXED,
        "logger": CLIENT_LOG,
    }
    if stream.guarantee is Guarantee.EXACTLY_ONCE:
        config["transactional.id"] = transactional_id(stream)
    return config


def admin_config(kafka: KafkaConfig) -> dict[str, Any]:
    """The admin client that makes changelog topics at start."""
    return {**kafka.client_properties("admin"), "logger": CLIENT_LOG}


def make_consumer(kafka: KafkaConfig, stream: StreamConfig) -> Consumer:
    """The service's group member (the one client that says which settings it dropped)."""
    dropped = dropped_classic_settings(kafka)
    if dropped:
        logger.warning(
            "group.protocol is consumer (KIP-848): ignoring %s of kafka.consumer, which only "
            "the classic protocol has (the broker sets the session and heartbeat, "
            "group.consumer.session.timeout.ms and group.consumer.heartbeat.interval.ms, and "
            "assigns partitions, group.remote.assignor)",
            ", ".join(dropped),
        )
    return Consumer(consumer_config(kafka, stream))


def make_restore_consumer(kafka: KafkaConfig, stream: StreamConfig) -> Consumer:
    """The consumer that reads changelogs back into state stores (see
    :func:`restore_consumer_config`)."""
    return Consumer(restore_consumer_config(kafka, stream))


def make_admin(kafka: KafkaConfig) -> AdminClient:
    """An admin client from :func:`admin_config`."""
    return AdminClient(admin_config(kafka))


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


def is_development_broker(consumer: Consumer, timeout_s: float = METADATA_TIMEOUT_S) -> bool:
    """Whether the cluster is librdkafka's mock cluster (False when it cannot be told in
    ``timeout_s``: the consumer will report an unreachable broker itself)."""
    try:
        cluster_id = consumer.list_topics(timeout=timeout_s).cluster_id
    except KafkaException:
        return False
    return bool(cluster_id) and cluster_id.startswith(_MOCK_CLUSTER_ID_PREFIX)
