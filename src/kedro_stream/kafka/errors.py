"""What a confluent-kafka exception says: the one place that unpacks ``KafkaException``."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException


def kafka_error(error: BaseException) -> KafkaError | None:
    """The :class:`KafkaError` a ``KafkaException`` carries, if it carries one."""
    if not isinstance(error, KafkaException) or not error.args:
        return None
    first = error.args[0]
    return first if isinstance(first, KafkaError) else None


def is_fatal(error: BaseException) -> bool:
    """A fenced or otherwise fatal client: retrying cannot help, another instance took over."""
    found = kafka_error(error)
    return found is not None and found.fatal()
