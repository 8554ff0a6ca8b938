"""The clients of the commands beside ``consume`` (``produce``, ``lag``, ``reset``), built in one
place from ``stream.yml``'s ``kafka`` section, so that each gets the cluster's address,
``client`` properties and credentials as ``consume`` does.

A command talks to the cluster once and ends, so it waits a bounded time and then says in one
line that the cluster cannot be reached. librdkafka would print every failed connection attempt
to stderr (``%3|...|FAIL|...``); its log lines go to a Python logger instead, which keeps the
last problem it reported for that one line and shows nothing else.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from kedro_stream.config import KafkaConfig
from kedro_stream.kafka.clients import for_group_protocol
from kedro_stream.kafka.errors import KafkaUnreachable

#: How long a command waits for the cluster's first answer before it gives up.
CONNECT_TIMEOUT_S = 10.0
#: How long a produced record may wait for its acknowledgement (librdkafka's default: 5 min).
DELIVERY_TIMEOUT_S = 30.0
_LIBRDKAFKA_WARNING = logging.WARNING


class _LastProblem(logging.Handler):
    """Keeps librdkafka's latest warning or error, for the line that says why a command gave up."""

    def __init__(self) -> None:
        super().__init__(level=_LIBRDKAFKA_WARNING)
        self.message: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        # "FAIL [rdkafka#consumer-1] [thrd:host:port/bootstrap]: host:port/bootstrap: Connect...":
        # the part after the client's and thread's names says it.
        self.message = record.getMessage().rsplit("]: ", 1)[-1]


_LAST_PROBLEM = _LastProblem()
#: Where librdkafka's log lines of command clients go: nowhere but the handler above.
LIBRDKAFKA_LOGGER = logging.getLogger("kedro_stream.kafka.librdkafka")
LIBRDKAFKA_LOGGER.propagate = False
LIBRDKAFKA_LOGGER.addHandler(_LAST_PROBLEM)


def _config(kafka: KafkaConfig, role: str, **settings: Any) -> dict[str, Any]:
    return {**kafka.client_properties(role), **settings, "logger": LIBRDKAFKA_LOGGER}  # type: ignore[arg-type]


def producer_config(kafka: KafkaConfig) -> dict[str, Any]:
    """``kedro stream produce``'s producer: deliveries wait a bounded time."""
    return _config(
        kafka, "producer", **{"linger.ms": 5, "message.timeout.ms": int(DELIVERY_TIMEOUT_S * 1000)}
    )


def offsets_consumer_config(kafka: KafkaConfig, group: str) -> dict[str, Any]:
    """A consumer of ``group`` that reads and commits its offsets and never subscribes: it
    never joins the group."""
    config = _config(kafka, "consumer", **{"group.id": group, "enable.auto.commit": False})
    return for_group_protocol(kafka, config)


def joining_consumer(kafka: KafkaConfig, group: str) -> Consumer:
    """A consumer that joins ``group`` only to commit its offsets, with the group's own
    consumer settings: the development broker never answers a join whose session timeout is
    shorter than the one the group's members had."""
    return Consumer(offsets_consumer_config(kafka, group))


def member_session_ms(kafka: KafkaConfig) -> int:
    """The session timeout the group's members run with (librdkafka's default if unset)."""
    return int(kafka.client_properties("consumer").get("session.timeout.ms", 45_000))


def admin_config(kafka: KafkaConfig) -> dict[str, Any]:
    """A command's admin client (``lag`` lists group offsets, ``reset`` deletes changelogs)."""
    return _config(kafka, "admin")


def command_producer(kafka: KafkaConfig) -> Producer:
    """A producer from :func:`producer_config`."""
    return Producer(producer_config(kafka))


def offsets_consumer(kafka: KafkaConfig, group: str) -> Consumer:
    """A consumer from :func:`offsets_consumer_config`."""
    return Consumer(offsets_consumer_config(kafka, group))


def command_admin(kafka: KafkaConfig) -> AdminClient:
    """An admin client from :func:`admin_config`."""
    return AdminClient(admin_config(kafka))


def ensure_reachable(client: Producer | Consumer | AdminClient, kafka: KafkaConfig) -> None:
    """Ask for the cluster's metadata; :class:`KafkaUnreachable` when it does not come in
    ``CONNECT_TIMEOUT_S``."""
    _LAST_PROBLEM.message = None
    try:
        client.list_topics(timeout=CONNECT_TIMEOUT_S)
    except KafkaException:
        client.poll(0)  # librdkafka's log lines reach the logger when the client is polled
        raise unreachable(kafka) from None


def unreachable(kafka: KafkaConfig) -> KafkaUnreachable:
    """The one-line error of a cluster that does not answer a command, with librdkafka's last
    word."""
    seen = f" (last problem: {_LAST_PROBLEM.message})" if _LAST_PROBLEM.message else ""
    return KafkaUnreachable(
        f"cannot reach Kafka at {kafka.bootstrap_servers} within {CONNECT_TIMEOUT_S:.0f} s"
        f"{seen}: check --bootstrap-servers (or KAFKA_BOOTSTRAP_SERVERS, or stream.yml "
        "kafka.bootstrap_servers) and that the broker is up"
    )
