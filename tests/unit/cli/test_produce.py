"""``produce`` keys records by the state key of the stateful streams reading the topic: a
stateful stream dead-letters records keyed by anything else. ``_state_key`` finds that key,
and refuses to guess when two such streams disagree. A topic no stream reads is warned of."""

from __future__ import annotations

from typing import Any

import click
import pytest

from kedro_stream.cli.produce import _state_key, _unread_warning
from kedro_stream.config import StreamFile, parse_stream_file


def stream(topic: str, key: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"group_id": "g", "input": {"topics": [topic], "dataset": "events"}}
    if key is not None:
        spec["state"] = {"totals": {"input": "totals", "updates": "totals_updates", "key": key}}
    return spec


def stream_file(**streams: dict[str, Any]) -> StreamFile:
    return parse_stream_file({"streams": streams}, {})


def test_no_state_key_without_streams() -> None:
    assert _state_key(stream_file(), "events") is None


def test_no_state_key_when_the_readers_keep_no_state() -> None:
    assert _state_key(stream_file(plain=stream("events")), "events") is None


def test_a_stateful_stream_of_another_topic_does_not_count() -> None:
    assert _state_key(stream_file(other=stream("clicks", key="account")), "events") is None


def test_the_state_key_and_the_stream_that_keeps_it() -> None:
    file = stream_file(plain=stream("events"), tally=stream("events", key="account"))

    assert _state_key(file, "events") == ("account", ["tally"])


def test_streams_sharing_a_key_are_named_together() -> None:
    file = stream_file(tally=stream("events", key="account"), audit=stream("events", key="account"))

    assert _state_key(file, "events") == ("account", ["tally", "audit"])


def test_two_stateful_readers_with_different_keys_are_refused_naming_both() -> None:
    file = stream_file(
        tally=stream("events", key="account"),
        fraud=stream("events", key="card"),
        more=stream("events", key="card"),
    )

    with pytest.raises(click.ClickException) as raised:
        _state_key(file, "events")

    assert raised.value.message == (
        "streams reading events keep state under different keys: account (tally); "
        "card (fraud, more); choose one with --key"
    )


def test_a_topic_no_stream_reads_is_warned_of_with_the_one_meant() -> None:
    file = stream_file(a=stream("clicks"), b=stream("payments"), c=stream("clicks"))

    assert _unread_warning(file, "click") == (
        "warning: no stream of stream.yml reads click (did you mean 'clicks'?); its streams "
        "read clicks, payments"
    )
    assert _unread_warning(file, "audit") == (
        "warning: no stream of stream.yml reads audit; its streams read clicks, payments"
    )


def test_a_topic_a_stream_reads_or_a_file_without_streams_is_not_warned_of() -> None:
    assert _unread_warning(stream_file(a=stream("clicks")), "clicks") is None
    assert _unread_warning(stream_file(), "clicks") is None  # no project, or no stream.yml
