"""One Kafka broker for a test run, picked from what this machine offers.

In order: the cluster named by ``KAFKA_BOOTSTRAP_SERVERS``; Apache Kafka (KRaft) in Docker through
testcontainers when a Docker engine answers; else the embedded broker (librdkafka's mock cluster in
a child process), the only kind with fault injection. Tests written against a
:class:`BrokerHandle` run unchanged on all three.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, cast

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from kedro_stream.devbroker.control import FaultInjector
from kedro_stream.devbroker.process import EmbeddedBroker

BrokerKind = Literal["external", "testcontainers", "embedded", "tansu"]
#: Names the implementation behind KAFKA_BOOTSTRAP_SERVERS (e.g. ``tansu``), so tests can mark
#: the defects of that implementation; unset means ``external``.
KIND_VARIABLE = "KAFKA_BROKER_KIND"

#: Apache Kafka image for the testcontainers tier (cp-kafka >= 7.0 runs in KRaft mode).
KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"
_DOCKER_PING_TIMEOUT_S = 3


@dataclass(frozen=True)
class BrokerHandle:
    """Where the test broker listens, what it is, and its fault injection (embedded only)."""

    bootstrap_servers: str
    kind: BrokerKind
    faults: FaultInjector | None


@contextmanager
def kafka_broker() -> Iterator[BrokerHandle]:
    """The first available broker: external, then testcontainers, then embedded."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        kind = os.environ.get(KIND_VARIABLE, "external")
        if kind not in ("external", "tansu"):
            raise ValueError(f"{KIND_VARIABLE}={kind!r}: use 'external' or 'tansu'")
        yield BrokerHandle(external, cast(BrokerKind, kind), None)
    elif _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer(KAFKA_IMAGE).with_kraft() as container:
            yield BrokerHandle(container.get_bootstrap_server(), "testcontainers", None)
    else:
        with EmbeddedBroker.start() as broker:
            yield BrokerHandle(broker.bootstrap_servers, "embedded", broker.faults)


def _docker_answers() -> bool:
    """testcontainers is installed and a Docker engine replies to a ping."""
    try:
        import docker  # testcontainers' own dependency; absent when testcontainers is

        docker.from_env(timeout=_DOCKER_PING_TIMEOUT_S).ping()
    except Exception:  # no SDK, no socket, refused, timed out: all mean "no Docker here"
        return False
    return True


def create_topic(
    handle: BrokerHandle,
    name: str,
    partitions: int,
    replication_factor: int = 1,
    timeout_s: float = 30.0,
) -> None:
    """Create a topic on any broker kind and return once its metadata shows every partition.

    The embedded broker goes through fault injection because the mock has no CreateTopics.
    """
    if handle.faults is not None:
        handle.faults.create_topic(name, partitions, replication_factor)
        return
    admin = AdminClient({"bootstrap.servers": handle.bootstrap_servers})
    futures = admin.create_topics(
        [NewTopic(name, partitions, replication_factor)], operation_timeout=timeout_s
    )
    futures[name].result(timeout=timeout_s)
    # Kafka answers CreateTopics before every broker's metadata cache has the topic.
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            topic = admin.list_topics(name, timeout=timeout_s).topics.get(name)
        except KafkaException:
            topic = None
        if topic is not None and topic.error is None and len(topic.partitions) == partitions:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {name} not in metadata with {partitions} partitions")
        time.sleep(0.1)


def unique_topic(prefix: str = "test") -> str:
    """A topic name no earlier run used, so tests sharing a broker never see each other's data."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"
