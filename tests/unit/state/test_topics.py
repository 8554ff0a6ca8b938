"""The changelog topics at start: each must have the input topic's partition count (state is
kept per input partition), so they are made when missing and refused when they differ, with
an error that says what to do; a real cluster and the development broker make topics
differently."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewTopic

from kedro_stream.state.errors import StateError
from kedro_stream.state.topics import ensure_changelogs

COUNTS = "g-counts-changelog"
TOTALS = "g-totals-changelog"


@dataclass
class FakeAdmin:
    """A cluster's topics by partition count. As the development broker (``makes``), asking
    for a missing topic's metadata makes it with that fixed count; ``refuse`` fails every
    creation."""

    partitions: dict[str, int]
    makes: int | None = None
    refuse: KafkaError | None = None
    created: list[NewTopic] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)  # topics whose metadata was asked for
    timeouts: list[float] = field(default_factory=list)

    def list_topics(self, timeout: float, topic: str | None = None) -> SimpleNamespace:
        self.timeouts.append(timeout)
        if topic is not None:
            self.asked.append(topic)
            if self.makes is not None:
                self.partitions.setdefault(topic, self.makes)
        topics = {
            name: SimpleNamespace(partitions=dict.fromkeys(range(count)))
            for name, count in self.partitions.items()
        }
        return SimpleNamespace(topics=topics)

    def create_topics(
        self, new_topics: list[NewTopic], request_timeout: float
    ) -> dict[str, Future[None]]:
        futures = {}
        for new in new_topics:
            future: Future[None] = Future()
            if self.refuse is not None:
                future.set_exception(KafkaException(self.refuse))
            else:
                self.created.append(new)
                self.partitions[new.topic] = new.num_partitions
                future.set_result(None)
            futures[new.topic] = future
        return futures


def test_an_input_topic_that_does_not_exist_is_an_error_saying_how_to_create_it() -> None:
    admin = FakeAdmin({COUNTS: 3})
    with pytest.raises(StateError) as raised:
        ensure_changelogs(
            admin,  # type: ignore[arg-type]
            "in",
            [COUNTS],
            development_broker=False,
            bootstrap_servers="k:9092",
        )
    assert admin.created == []
    assert str(raised.value) == (
        "input topic 'in' does not exist: a stateful stream lays out its changelogs by the "
        "input's partition count, so create it first, e.g. `kafka-topics.sh --bootstrap-server "
        "k:9092 --create --topic in --partitions N`. Choose N with care, as the most instances "
        "that may share the work: the changelogs are made with N partitions and must keep it, "
        "and a topic's partitions can grow but never shrink"
    )


def test_on_the_development_broker_the_missing_input_is_made_at_its_start() -> None:
    """It has no CreateTopics: the input and its changelogs get a count of the user's choosing
    only as ``--topic``s of its start."""
    admin = FakeAdmin({}, makes=4)
    with pytest.raises(StateError) as raised:
        ensure_changelogs(admin, "in", [COUNTS, TOTALS], development_broker=True)  # type: ignore[arg-type]
    assert admin.asked == []  # asking would have made it, with a count nobody chose
    assert str(raised.value).endswith(
        "so create it first. The development broker gives a topic the partitions you choose "
        "only at its start: restart it with the topic and its changelogs, `kedro-stream broker "
        f"--topic in --topic {COUNTS} --topic {TOTALS} --partitions N` (N: the most instances "
        "that may share the work), or produce to in first (it and the changelogs then get the "
        "development broker's default count)"
    )


def test_changelogs_with_the_input_partition_count_pass_as_they_are() -> None:
    admin = FakeAdmin({"in": 3, COUNTS: 3, TOTALS: 3})
    ensure_changelogs(admin, "in", [COUNTS, TOTALS], development_broker=False, timeout_s=2.5)  # type: ignore[arg-type]
    assert admin.created == []
    assert admin.asked == []
    assert admin.timeouts == [2.5]  # the first request is the one bounded by the caller


def test_a_missing_changelog_is_created_compacted_with_the_input_partition_count() -> None:
    admin = FakeAdmin({"in": 3, COUNTS: 3})
    ensure_changelogs(admin, "in", [COUNTS, TOTALS], development_broker=False)  # type: ignore[arg-type]
    assert [(t.topic, t.num_partitions, t.config) for t in admin.created] == [
        (TOTALS, 3, {"cleanup.policy": "compact"})
    ]


def test_the_development_broker_makes_a_missing_changelog_when_asked_for_it() -> None:
    """It has no CreateTopics: asking for a topic's metadata makes it."""
    admin = FakeAdmin({"in": 3}, makes=3)
    ensure_changelogs(admin, "in", [COUNTS, TOTALS], development_broker=True)  # type: ignore[arg-type]
    assert admin.asked == [COUNTS, TOTALS]
    assert admin.created == []
    assert admin.partitions == {"in": 3, COUNTS: 3, TOTALS: 3}


@pytest.mark.parametrize(
    ("found", "development_broker", "fix"),
    [
        ({COUNTS: 2}, False, "delete and recreate the changelog, or name another"),
        (
            {},  # made when asked for, with the broker's own fixed count
            True,
            f"start the development broker with `--topic {COUNTS} --partitions 3`",
        ),
    ],
    ids=["cluster", "development broker"],
)
def test_a_partition_count_mismatch_names_both_counts_and_the_fix(
    found: dict[str, int], development_broker: bool, fix: str
) -> None:
    admin = FakeAdmin({"in": 3, **found}, makes=2 if development_broker else None)
    with pytest.raises(StateError) as raised:
        ensure_changelogs(admin, "in", [COUNTS], development_broker=development_broker)  # type: ignore[arg-type]
    message = str(raised.value)
    assert f"changelog topic {COUNTS!r} has 2 partitions, input topic 'in' 3" in message
    assert message.endswith(fix)


def test_a_changelog_that_cannot_be_created_says_how_to_create_it_by_hand() -> None:
    admin = FakeAdmin(
        {"in": 4}, refuse=KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "not allowed")
    )
    with pytest.raises(
        StateError,
        match=rf"cannot create changelog topic {COUNTS!r}: .*not allowed.*; create it with 4 "
        r"partitions and cleanup.policy=compact",
    ):
        ensure_changelogs(admin, "in", [COUNTS], development_broker=False)  # type: ignore[arg-type]
