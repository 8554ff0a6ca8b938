"""``kedro stream reset`` against a broker: a dry run changes nothing, an executed reset makes the
stream process the records again, a live group is refused, and a stateful stream's replay
counts each event once."""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from kedro_stream.config import Project, command_stream_file
from kedro_stream.ops.offsets import Mode, Target
from kedro_stream.ops.reset import GroupActive, ResetError, reset
from kedro_stream.testing.brokers import create_topic
from tests.integration.test_state import (
    assert_same_features,
    batch_features,
    events,
    fresh_stream,
    produce_keyed,
    published,
    run,
)
from tests.kafka_helpers import committed, message_count, read_topic

pytestmark = pytest.mark.integration
UTC = timezone.utc  # datetime.UTC is 3.11+
EARLIEST = Target(Mode.EARLIEST)
PARTITIONS = 3


def echo_stream(kafka_broker: Any, project: Path) -> tuple[str, str, str]:
    """A stateless stream (the mini project's ``slow`` namespace, without delay) on a new
    topic: (input topic, group, output topic)."""
    run_id = uuid.uuid4().hex[:8]
    source, group, output = f"reset-in-{run_id}", f"reset-{run_id}", f"reset-out-{run_id}"
    stream = {
        "namespace": "slow",
        "pipeline": "slow",
        "group_id": group,
        "input": {"topics": [source], "dataset": "batch"},
        "outputs": {"echoed": {"topic": output}},
        "batch": {"max_wait_ms": 50},
    }
    consumer = {"fetch.wait.max.ms": 20, "session.timeout.ms": 6000}
    config = {"kafka": {"consumer": consumer}, "streams": {"slow": stream}}
    (project / "conf" / "base" / "stream.yml").write_text(yaml.safe_dump(config))
    create_topic(kafka_broker, source, PARTITIONS)
    return source, group, output


def produce_ids(bootstrap: str, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(count):
        producer.produce(topic, json.dumps({"id": i}).encode(), partition=i % PARTITIONS)
    assert producer.flush(30) == 0


def do_reset(project: Path, bootstrap: str, **options: Any) -> Any:
    file = command_stream_file(Project(project), None, bootstrap)
    return reset(file.kafka, file, project, **options)


def ran_once(kafka_broker: Any, project: Path, count: int) -> tuple[str, str, str]:
    """A stateless stream that processed ``count`` records: (input, group, output)."""
    bootstrap = kafka_broker.bootstrap_servers
    source, group, output = echo_stream(kafka_broker, project)
    produce_ids(bootstrap, source, count)
    run(project, source, bootstrap, max_messages=count, idle_timeout_s=30)
    return source, group, output


@pytest.mark.unsupported_broker(
    "tansu", "its high watermark is the start of the last batch + 1, so lag and clamping read wrong"
)
def test_a_dry_run_changes_nothing(kafka_broker: Any, mini_project: Path) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    source, group, _ = ran_once(kafka_broker, mini_project, 90)
    before = committed(bootstrap, group, source)
    assert before == dict.fromkeys(range(PARTITIONS), 30)

    plan = do_reset(mini_project, bootstrap, group=group, topic=source, target=EARLIEST)

    assert committed(bootstrap, group, source) == before
    assert [(m.partition, m.current, m.new, m.lag_before, m.lag_after) for m in plan.moves] == [
        (p, 30, 0, 0, 30) for p in range(PARTITIONS)
    ]
    assert plan.state is None


def test_an_executed_reset_replays_every_record(kafka_broker: Any, mini_project: Path) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    source, group, output = ran_once(kafka_broker, mini_project, 90)

    do_reset(mini_project, bootstrap, group=group, topic=source, target=EARLIEST, execute=True)

    assert committed(bootstrap, group, source) == dict.fromkeys(range(PARTITIONS), 0)
    progress = run(mini_project, source, bootstrap, max_messages=90, idle_timeout_s=30)
    assert progress.records == 90
    seen = [json.loads(m.value())["id"] for m in read_topic(bootstrap, output, expect=180)]
    assert sorted(seen) == sorted(list(range(90)) * 2)  # every record processed twice in all


@pytest.mark.unsupported_broker(
    "tansu", "its high watermark is the start of the last batch + 1, so lag and clamping read wrong"
)
def test_new_offsets_stay_within_the_retained_records(
    kafka_broker: Any, mini_project: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    source, group, _ = echo_stream(kafka_broker, mini_project)
    produce_ids(bootstrap, source, 30)  # 10 a partition

    do_reset(
        mini_project,
        bootstrap,
        group=group,
        topic=source,
        target=Target(Mode.OFFSET, 4),
        partitions=(0,),
        execute=True,
    )
    shifted = do_reset(
        mini_project, bootstrap, group=group, topic=source, target=Target(Mode.SHIFT, -7)
    )
    assert committed(bootstrap, group, source) == {0: 4}  # the dry run moved nothing
    beyond = do_reset(
        mini_project,
        bootstrap,
        group=group,
        topic=source,
        target=Target(Mode.OFFSET, 99),
        execute=True,
    )

    assert [(m.current, m.new) for m in shifted.moves] == [(4, 0), (None, 0), (None, 0)]
    assert [m.new for m in beyond.moves] == [10, 10, 10]
    assert committed(bootstrap, group, source) == dict.fromkeys(range(PARTITIONS), 10)


def test_a_live_group_is_refused(kafka_broker: Any, mini_project: Path) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    source, group, _ = echo_stream(kafka_broker, mini_project)
    produce_ids(bootstrap, source, 30)
    member = join(bootstrap, group, source)
    try:
        member.commit(offsets=[TopicPartition(source, 0, 5)], asynchronous=False)

        with polled(member), pytest.raises(GroupActive, match=f"group '{group}' is active "):
            do_reset(
                mini_project, bootstrap, group=group, topic=source, target=EARLIEST, execute=True
            )

        assert committed(bootstrap, group, source) == {0: 5}
    finally:
        member.close()


@pytest.mark.unsupported_broker("embedded", "it cannot describe groups, nor delete topics")
def test_a_live_stateful_group_keeps_its_changelog(kafka_broker: Any, mini_project: Path) -> None:
    """Refused before the state is touched: its live members still use it."""
    bootstrap, topic, group, _ = fresh_stream(kafka_broker, mini_project, "live")
    member = join(bootstrap, group, topic)
    try:
        with pytest.raises(GroupActive):
            do_reset(
                mini_project, bootstrap, group=group, topic=topic, target=EARLIEST, execute=True
            )

        assert f"{group}-activity-changelog" in topic_names(bootstrap)
    finally:
        member.close()


def join(bootstrap: str, group: str, topic: str) -> Consumer:
    """A live member of ``group``, holding partitions of ``topic``."""
    member = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 300,
        }
    )
    member.subscribe([topic])
    deadline = time.monotonic() + 30
    while not member.assignment():
        assert time.monotonic() < deadline, "the member never got partitions"
        member.poll(0.2)
    return member


@contextmanager
def polled(member: Consumer) -> Iterator[None]:
    """``member`` polled meanwhile, as a running service is: it answers rebalances, so a
    broker that cannot describe groups still sees it live when the reset joins."""
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            member.poll(0.1)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def topic_names(bootstrap: str) -> set[str]:
    return set(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics)


@pytest.mark.unsupported_broker("embedded", "its ListOffsets answers -1 for any time")
@pytest.mark.unsupported_broker(
    "tansu", "its ListOffsets by time answers a batch's first offset, and 0 for a later time"
)
def test_to_datetime_moves_to_the_first_record_at_or_after_the_time(
    kafka_broker: Any, mini_project: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    source, group, _ = echo_stream(kafka_broker, mini_project)
    start = 1_800_000_000_000
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(30):  # partition p holds records at start + 0, 3, 6, ... seconds (p = i % 3)
        producer.produce(
            source, json.dumps({"id": i}).encode(), partition=i % 3, timestamp=start + i * 1000
        )
    assert producer.flush(30) == 0
    when = datetime.fromtimestamp((start + 14_500) / 1000, UTC)  # after record 14, before 15

    plan = do_reset(
        mini_project, bootstrap, group=group, topic=source, target=Target(Mode.DATETIME, when=when)
    )
    late = do_reset(
        mini_project,
        bootstrap,
        group=group,
        topic=source,
        target=Target(Mode.DATETIME, when=datetime.fromtimestamp(start / 1000 + 3600, UTC)),
    )

    # Records 15, 16, 17 are the first at or after it: offsets 5, 5, 5 of partitions 0, 1, 2.
    assert [m.new for m in plan.moves] == [5, 5, 5]
    assert [m.new for m in late.moves] == [10, 10, 10]  # after the last record: the end


def test_a_reset_by_time_is_refused_on_the_development_broker(
    kafka_broker: Any, mini_project: Path
) -> None:
    if kafka_broker.kind != "embedded":
        pytest.skip("only the development broker answers every time with -1")
    bootstrap = kafka_broker.bootstrap_servers
    source, group, _ = echo_stream(kafka_broker, mini_project)
    produce_ids(bootstrap, source, 3)

    with pytest.raises(ResetError, match="the development broker cannot look offsets up by time"):
        do_reset(
            mini_project,
            bootstrap,
            group=group,
            topic=source,
            target=Target(Mode.DATETIME, when=datetime.now(UTC)),
        )


@pytest.mark.unsupported_broker(
    "embedded", "it cannot delete topics, so a changelog cannot be cleared there"
)
def test_a_stateful_replay_from_the_earliest_counts_each_event_once(
    kafka_broker: Any, mini_project: Path
) -> None:
    """The changelog and this machine's stores are deleted; a copy of a store kept elsewhere
    (another machine's) is put back after the reset and still not counted."""
    bootstrap, topic, group, features = fresh_stream(kafka_broker, mini_project, "reset")
    rows = events(300)
    produce_keyed(bootstrap, topic, rows)
    run(mini_project, topic, bootstrap, max_messages=len(rows), idle_timeout_s=30)
    stores = mini_project / "data" / "state" / group
    elsewhere = mini_project / "elsewhere"
    shutil.copytree(stores, elsewhere)

    dry = do_reset(mini_project, bootstrap, group=group, topic=topic, target=EARLIEST)
    assert dry.state is not None
    assert dry.state.changelogs == [f"{group}-activity-changelog"]
    assert len(dry.state.stores) == 8
    assert message_count(bootstrap, f"{group}-activity-changelog") > 0  # the dry run kept it
    do_reset(mini_project, bootstrap, group=group, topic=topic, target=EARLIEST, execute=True)
    assert f"{group}-activity-changelog" not in topic_names(bootstrap)
    assert not list(stores.glob("activity/*"))
    shutil.copytree(elsewhere, stores, dirs_exist_ok=True)
    run(mini_project, topic, bootstrap, max_messages=len(rows), idle_timeout_s=30)

    # The second run's features (read last per event) equal one batch over all events.
    assert_same_features(published(bootstrap, features, 2 * len(rows)), batch_features(rows))


@pytest.mark.unsupported_broker(
    "embedded", "it refuses offsets committed from outside a group that has had members"
)
def test_offsets_moved_back_under_a_kept_store_are_not_counted_twice(
    kafka_broker: Any, mini_project: Path
) -> None:
    """A store whose rows account for offsets beyond the committed ones (the offsets were moved
    back elsewhere, its changelog still there) is rebuilt rather than replayed onto."""
    bootstrap, topic, group, features = fresh_stream(kafka_broker, mini_project, "moved")
    rows = events(200)
    produce_keyed(bootstrap, topic, rows)
    run(mini_project, topic, bootstrap, max_messages=len(rows), idle_timeout_s=30)
    mover = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        moved = [TopicPartition(topic, p, 0) for p in range(8)]
        mover.commit(offsets=moved, asynchronous=False)
    finally:
        mover.close()

    run(mini_project, topic, bootstrap, max_messages=len(rows), idle_timeout_s=30)

    assert_same_features(published(bootstrap, features, 2 * len(rows)), batch_features(rows))
