"""The shared record types: a message to publish is a tuple the commit protocol's producer loop
unpacks by position, and every header kedro-stream adds to a dead letter carries its prefix."""

from __future__ import annotations

from kedro_stream.records import HEADER_PREFIX, Outgoing
from kedro_stream.service.dead_letters import DeadLetters, Stage
from tests.fake_clients import FakeMessage


def test_a_message_unpacks_as_topic_value_key_headers_partition() -> None:
    headers = [("trace", b"1")]
    message = Outgoing("scores", b"{}", b"k", headers, 3)

    topic, value, key, unpacked_headers, partition = message

    assert (topic, value, key, unpacked_headers, partition) == ("scores", b"{}", b"k", headers, 3)
    assert Outgoing(topic="scores", value=b"{}", key=b"k", headers=headers, partition=3) == message


def test_key_headers_and_partition_default_to_none() -> None:
    assert tuple(Outgoing("scores", b"{}")) == ("scores", b"{}", None, None, None)
    assert tuple(Outgoing("scores", None)) == ("scores", None, None, None, None)  # a tombstone


def test_a_message_is_a_tuple_of_five() -> None:
    assert isinstance(Outgoing("t", b""), tuple)
    assert len(Outgoing("t", b"")) == 5


def test_every_header_a_dead_letter_adds_starts_with_the_prefix() -> None:
    message = FakeMessage("payments", 2, 41, b"not json", b"acct-1")
    error = ValueError("not a JSON document\nat line 1")

    letter = DeadLetters("payments.dlq", "scoring").of(message, error, Stage.DECODE)

    assert HEADER_PREFIX == "kedro-stream."
    assert letter.headers
    assert all(name.startswith(HEADER_PREFIX) for name, _ in letter.headers)
    assert dict(letter.headers)[f"{HEADER_PREFIX}error.stage"] == b"decode"
    assert (letter.topic, letter.value, letter.key, letter.partition) == (
        "payments.dlq",
        b"not json",
        b"acct-1",
        None,
    )
