"""Choosing a command's stream and applying its overrides."""

from __future__ import annotations

import pytest

from kedro_stream.config import (
    ConfigError,
    Guarantee,
    apply_overrides,
    select_stream,
)
from tests.unit.config.sample import STREAM, parse


def test_select_stream_by_topic_and_namespace() -> None:
    other = {**STREAM, "namespace": "audit", "group_id": "a"}
    parsed = parse({"streams": {"s": STREAM, "t": other}})
    assert select_stream(parsed, topic="payments", namespace="audit").group_id == "a"
    with pytest.raises(ConfigError, match=r"Several streams read topic 'payments'"):
        select_stream(parsed, topic="payments", namespace=None)
    with pytest.raises(ConfigError, match=r"No stream in stream.yml reads topic 'refunds'"):
        select_stream(parsed, topic="refunds", namespace=None)


def test_overrides_win_and_are_validated() -> None:
    stream = parse({"streams": {"s": STREAM}}).streams["s"]
    changed = apply_overrides(
        stream, {"batch.max_size": 10, "guarantee": "exactly-once", "group_id": None}
    )
    assert changed.batch.max_size == 10
    assert changed.guarantee is Guarantee.EXACTLY_ONCE
    assert changed.group_id == "g"
    with pytest.raises(ConfigError, match=r"batch.max_size"):
        apply_overrides(stream, {"batch.max_size": -1})


def test_a_default_changelog_follows_an_overridden_group() -> None:
    """Regression: the default changelog kept the file's group, so two deployments with their
    own --group-id shared (and mixed) one state."""
    states = {
        "activity": {"input": "a", "updates": "a_updates", "key": "k"},
        "named": {"input": "b", "updates": "b_updates", "key": "k", "changelog_topic": "mine"},
    }
    stream = parse({"streams": {"s": {**STREAM, "state": states}}}).streams["s"]
    assert stream.state["activity"].changelog_topic == "g-activity-changelog"

    moved = apply_overrides(stream, {"group_id": "g2"})

    assert moved.state["activity"].changelog_topic == "g2-activity-changelog"
    assert moved.state["named"].changelog_topic == "mine"
    assert apply_overrides(stream, {}).state["activity"].changelog_topic == "g-activity-changelog"


def test_an_unmatched_topic_names_the_streams_without_a_none_namespace() -> None:
    parsed = parse({"streams": {"s": STREAM}})
    with pytest.raises(ConfigError) as error:
        select_stream(parsed, topic="refunds", namespace=None)
    assert "reads topic 'refunds'; streams: s (topics ['payments']" in str(error.value)
    assert "namespace None" not in str(error.value)
    with pytest.raises(ConfigError, match=r"reads topic 'payments' and runs namespace 'audit';"):
        select_stream(parsed, topic="payments", namespace="audit")
