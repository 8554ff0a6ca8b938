"""What a confluent-kafka exception says: the one place that unpacks ``KafkaException``, and the
one error that says no broker answered."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException

from kedro_stream.errors import KedroStreamError

#: Codes of a request no broker answered: a wrong address, a refused connection, a cluster down.
NO_ANSWER = frozenset({KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._ALL_BROKERS_DOWN})


class KafkaUnreachable(KedroStreamError):
    """No broker answered in time: a wrong address or security setting, or the cluster is down.

    Raised by the service (at start, or by an idle stop that never heard from the cluster) and
    by the commands beside ``consume``; each message says how long it waited and the last
    failure its clients saw, because that failure is what the user has to fix."""


def kafka_error(error: BaseException) -> KafkaError | None:
    """The :class:`KafkaError` a ``KafkaException`` carries, if it carries one."""
    if not isinstance(error, KafkaException) or not error.args:
        return None
    first = error.args[0]
    return first if isinstance(first, KafkaError) else None


def error_code(error: BaseException) -> int | None:
    """The code of the :class:`KafkaError` ``error`` carries (``None``: it carries none)."""
    found = kafka_error(error)
    return None if found is None else found.code()


def is_no_answer(error: BaseException) -> bool:
    """Whether ``error`` says that no broker answered (see :data:`NO_ANSWER`)."""
    return error_code(error) in NO_ANSWER


def is_fatal(error: BaseException) -> bool:
    """A fenced or otherwise fatal client: retrying cannot help, another instance took over."""
    found = kafka_error(error)
    return found is not None and found.fatal()
