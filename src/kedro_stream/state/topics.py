"""Changelog topics: one partition per input partition, compacted, made at start if missing."""

from __future__ import annotations

import logging

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from kedro_stream.state.errors import StateError

logger = logging.getLogger(__name__)
#: How long topic metadata and topic creation may take at start.
TOPICS_TIMEOUT_S = 15.0


def ensure_changelogs(
    admin: AdminClient,
    input_topic: str,
    changelogs: list[str],
    *,
    development_broker: bool,
    timeout_s: float = TOPICS_TIMEOUT_S,
    bootstrap_servers: str = "HOST:PORT",
) -> None:
    """Each changelog topic exists with the input topic's partition count (creating missing
    ones), or :class:`StateError` says what to create (``bootstrap_servers`` in the command it
    gives). ``timeout_s`` bounds the first metadata request, the one that finds out whether the
    cluster answers at all."""
    topics = admin.list_topics(timeout=timeout_s).topics
    if input_topic not in topics:
        raise StateError(
            _create_input_first(input_topic, changelogs, development_broker, bootstrap_servers)
        )
    partitions = len(topics[input_topic].partitions)
    missing = [name for name in changelogs if name not in topics]
    if missing:
        _create(admin, missing, partitions, development_broker=development_broker)
        topics = admin.list_topics(timeout=TOPICS_TIMEOUT_S).topics
    for name in changelogs:
        found = len(topics[name].partitions) if name in topics else 0
        if found != partitions:
            fix = (
                # It makes a missing topic with its fixed partition count when asked for one.
                f"start the development broker with `--topic {name} --partitions {partitions}`"
                if development_broker
                else "delete and recreate the changelog, or name another"
            )
            raise StateError(
                f"changelog topic {name!r} has {found} partitions, input topic {input_topic!r} "
                f"{partitions}: state is kept per input partition, so they must match (co-"
                f"partitioning); {fix}"
            )


def _create_input_first(
    input_topic: str, changelogs: list[str], development_broker: bool, bootstrap_servers: str
) -> str:
    """How to create a missing input topic, and why its partition count matters."""
    said = (
        f"input topic {input_topic!r} does not exist: a stateful stream lays out its changelogs "
        "by the input's partition count, so create it first"
    )
    if development_broker:
        # It has no CreateTopics: a topic gets a count of the user's choosing only at its start.
        named = " ".join(f"--topic {name}" for name in [input_topic, *changelogs])
        return (
            f"{said}. The development broker gives a topic the partitions you choose only at its "
            f"start: restart it with the topic and its changelogs, `kedro-stream broker {named} "
            f"--partitions N` (N: the most instances that may share the work), or produce to "
            f"{input_topic} first (it and the changelogs then get the development broker's "
            "default count)"
        )
    return (
        f"{said}, e.g. `kafka-topics.sh --bootstrap-server {bootstrap_servers} --create "
        f"--topic {input_topic} --partitions N`. Choose N with care, as the most instances that "
        "may share the work: the changelogs are made with N partitions and must keep it, and a "
        "topic's partitions can grow but never shrink"
    )


def _create(
    admin: AdminClient, names: list[str], partitions: int, *, development_broker: bool
) -> None:
    if development_broker:
        # The development broker has no CreateTopics; asking for a topic's metadata creates it
        # (with its fixed partition count, checked by the caller).
        for name in names:
            admin.list_topics(topic=name, timeout=TOPICS_TIMEOUT_S)
        return
    new = [
        NewTopic(name, num_partitions=partitions, config={"cleanup.policy": "compact"})
        for name in names
    ]
    for name, future in admin.create_topics(new, request_timeout=TOPICS_TIMEOUT_S).items():
        try:
            future.result()
            logger.info("Created changelog topic %s (%d partitions, compacted)", name, partitions)
        except KafkaException as exc:
            raise StateError(
                f"cannot create changelog topic {name!r}: {exc}; create it with {partitions} "
                "partitions and cleanup.policy=compact"
            ) from None
