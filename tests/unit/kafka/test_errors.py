"""What a confluent-kafka exception says: its ``KafkaError`` and code, whether no broker
answered (the one case that becomes ``KafkaUnreachable``) and whether the client is fatally
gone; anything that is not a ``KafkaException`` carrying a ``KafkaError`` says none of it."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException

from kedro_stream.errors import KedroStreamError
from kedro_stream.kafka.errors import (
    NO_ANSWER,
    KafkaUnreachable,
    error_code,
    is_fatal,
    is_no_answer,
    kafka_error,
)


def raised(code: int, *, fatal: bool = False) -> KafkaException:
    return KafkaException(KafkaError(code, "reason", fatal=fatal))


NOT_CARRYING = [
    pytest.param(KafkaException("a message, no KafkaError"), id="message"),
    pytest.param(KafkaException(), id="no-args"),
    pytest.param(ValueError(KafkaError(KafkaError._TRANSPORT)), id="not-kafka-exception"),
    pytest.param(TimeoutError("timed out"), id="timeout"),
]


def test_the_kafka_error_of_a_kafka_exception() -> None:
    inner = KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, "no such topic")

    assert kafka_error(KafkaException(inner)) is inner
    assert error_code(KafkaException(inner)) == KafkaError.UNKNOWN_TOPIC_OR_PART


@pytest.mark.parametrize("error", NOT_CARRYING)
def test_anything_else_carries_no_kafka_error(error: BaseException) -> None:
    assert kafka_error(error) is None
    assert error_code(error) is None
    assert not is_no_answer(error)
    assert not is_fatal(error)


def test_no_answer_means_transport_timeout_or_all_brokers_down() -> None:
    assert {
        KafkaError._TRANSPORT,
        KafkaError._TIMED_OUT,
        KafkaError._ALL_BROKERS_DOWN,
    } == NO_ANSWER


@pytest.mark.parametrize(
    "code", [pytest.param(code, id=KafkaError(code).name()) for code in sorted(NO_ANSWER)]
)
def test_a_request_no_broker_answered_is_no_answer(code: int) -> None:
    assert is_no_answer(raised(code))


@pytest.mark.parametrize(
    "code",
    [
        pytest.param(KafkaError.UNKNOWN_TOPIC_OR_PART, id="UNKNOWN_TOPIC_OR_PART"),
        pytest.param(KafkaError.SASL_AUTHENTICATION_FAILED, id="SASL_AUTHENTICATION_FAILED"),
        # the broker's own answer that a request timed out: a broker was there
        pytest.param(KafkaError.REQUEST_TIMED_OUT, id="REQUEST_TIMED_OUT"),
    ],
)
def test_a_broker_s_answer_is_not_no_answer(code: int) -> None:
    assert not is_no_answer(raised(code))


def test_a_fatal_error_is_fatal_and_others_are_not() -> None:
    assert is_fatal(raised(KafkaError._FENCED, fatal=True))
    assert not is_fatal(raised(KafkaError._FENCED))
    assert not is_fatal(raised(KafkaError._TRANSPORT))


def test_unreachable_is_an_error_the_cli_shows_as_one_line() -> None:
    assert issubclass(KafkaUnreachable, KedroStreamError)
