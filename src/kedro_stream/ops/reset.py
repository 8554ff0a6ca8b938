"""``kedro stream reset``: move a stopped group's committed offsets, to reprocess after a fix.

The offsets are committed by a consumer of the group that never subscribes, so it never joins
the group; while the group has live members the reset is refused (a live member would commit
over it, and the broker refuses a commit from outside a live group anyway). The development
broker refuses such commits once a group has had members, so there the reset joins the group
and commits as its only member (:func:`_commit_as_member`).

A stateful stream's state is part of what the offsets mean: moving the offsets back while its
stores and changelog keep the rows would count the replayed records twice. State as of an
arbitrary offset cannot be rebuilt from a compacted changelog, which keeps one row per key; only
an empty state is exact, for a reset to the earliest offset. So the reset clears the state: it
deletes the changelog topics (``consume`` makes them again at start) and the stores under this
project's ``state_dir``. A store left on another machine is caught when it opens: its rows
account for offsets beyond the group's committed ones (see ``StateKeeper._local_store``).
For any other target, clearing must be asked for (``--clear-state``): the state then starts
empty from the new offsets, which is what the user chose.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import (
    Consumer,
    ConsumerGroupState,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from kedro_stream.config import (
    KafkaConfig,
    StreamConfig,
    StreamFile,
    apply_overrides,
    default_changelog_topic,
)
from kedro_stream.errors import KedroStreamError
from kedro_stream.kafka.clients import is_development_broker
from kedro_stream.kafka.command_clients import (
    command_admin,
    ensure_reachable,
    joining_consumer,
    member_session_ms,
    offsets_consumer,
    unreachable,
)
from kedro_stream.kafka.errors import error_code, is_no_answer, kafka_error
from kedro_stream.ops.offsets import Mode, Move, Target, new_offset
from kedro_stream.state.layout import StoreLayout

#: How long each answer of the cluster (offsets, watermarks, the group) may take.
REQUEST_TIMEOUT_S = 10.0
#: How much longer than the group's session timeout the development broker may take to give the
#: reset's member the group's partitions.
JOIN_SLACK_S = 10.0
#: How long deleted changelog topics may take to leave the cluster's metadata.
DELETE_TIMEOUT_S = 30.0
_LIVE_STATES = {
    ConsumerGroupState.STABLE,
    ConsumerGroupState.PREPARING_REBALANCING,
    ConsumerGroupState.COMPLETING_REBALANCING,
}
# What a broker answers a commit from outside a group that has live members.
_LIVE_GROUP_ERRORS = {
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.REBALANCE_IN_PROGRESS,
}


class ResetError(KedroStreamError):
    """The reset cannot be done as asked; nothing was changed unless the message says so."""


class GroupActive(ResetError):
    """The group has live members: their commits would undo the reset."""


@dataclass(frozen=True)
class StatePlan:
    """What the reset does to a stateful stream's state."""

    stream: str
    states: list[str]
    changelogs: list[str]  # existing changelog topics, to delete
    stores: list[Path]  # store directories on this machine, to delete
    state_dir: Path | None  # where this project keeps the group's stores (None: no project)
    blocked: str | None  # why the reset cannot clear it here (the development broker)


@dataclass(frozen=True)
class ResetPlan:
    """What a reset moves (or moved, with ``--execute``), for the table the command prints."""

    group: str
    topic: str
    target: Target
    moves: list[Move]
    state: StatePlan | None


def reset(
    kafka: KafkaConfig,
    file: StreamFile,
    project_path: Path | None,
    *,
    group: str,
    topic: str,
    target: Target,
    partitions: tuple[int, ...] = (),
    clear_state: bool = False,
    execute: bool = False,
) -> ResetPlan:
    """Work out the reset of ``group`` on ``topic``; with ``execute``, apply it."""
    admin = command_admin(kafka)
    consumer = offsets_consumer(kafka, group)
    try:
        ensure_reachable(consumer, kafka)
        development = is_development_broker(consumer)
        moves = _moves(consumer, topic, target, partitions, development=development)
        state = _state_plan(
            admin,
            file=file,
            project_path=project_path,
            group=group,
            topic=topic,
            development=development,
        )
        _check_state_choice(
            state,
            target=target,
            partitions=partitions,
            clear_state=clear_state,
            group=group,
            topic=topic,
        )
        _check_idle(admin, group)
        if execute:
            if state is not None:
                _clear_state(admin, state)
            if development:
                _commit_as_member(kafka, moves, group, topic)
            else:
                _commit(consumer, moves, group, cleared=state is not None)
        return ResetPlan(group, topic, target, moves, state)
    except KafkaException as exc:
        if is_no_answer(exc):
            raise unreachable(kafka) from None
        raise
    finally:
        consumer.close()


def _moves(
    consumer: Consumer,
    topic: str,
    target: Target,
    only: tuple[int, ...],
    *,
    development: bool,
) -> list[Move]:
    found = consumer.list_topics(topic, timeout=REQUEST_TIMEOUT_S).topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        raise ResetError(f"topic {topic!r} does not exist: check --topic")
    unknown = sorted(set(only) - set(found.partitions))
    if unknown:
        raise ResetError(
            f"topic {topic!r} has no partition {unknown[0]}: its partitions are "
            f"0..{len(found.partitions) - 1}"
        )
    tps = [TopicPartition(topic, p) for p in sorted(only or found.partitions)]
    committed = {
        tp.partition: (tp.offset if tp.offset >= 0 else None)
        for tp in consumer.committed(tps, timeout=REQUEST_TIMEOUT_S)
    }
    marks = {tp.partition: consumer.get_watermark_offsets(tp, REQUEST_TIMEOUT_S) for tp in tps}
    by_time = {}
    if target.mode is Mode.DATETIME:
        by_time = _offsets_for_time(consumer, tps, target, development=development)
    return [
        Move(
            topic,
            p,
            committed[p],
            new_offset(target, committed[p], *marks[p], by_time.get(p)),
            *marks[p],
        )
        for p in sorted(marks)
    ]


def _offsets_for_time(
    consumer: Consumer, tps: list[TopicPartition], target: Target, *, development: bool
) -> dict[int, int]:
    if development:
        # Its ListOffsets answers -1 ("no record that late") for any time.
        raise ResetError(
            "the development broker cannot look offsets up by time: use --to-offset or "
            "--shift-by there"
        )
    assert target.when is not None
    millis = int(target.when.timestamp() * 1000)
    asked = [TopicPartition(tp.topic, tp.partition, millis) for tp in tps]
    return {
        tp.partition: tp.offset
        for tp in consumer.offsets_for_times(asked, timeout=REQUEST_TIMEOUT_S)
    }


def _stateful_stream(file: StreamFile, topic: str, group: str) -> tuple[str, StreamConfig] | None:
    """The stream of ``stream.yml`` whose state ``group`` keeps for ``topic``: the one reading
    the topic with that group, or one run with ``--group-id group`` (its default changelogs
    then carry the group's name)."""
    readers = file.readers(topic, stateful=True).items()
    for name, stream in readers:
        if stream.group_id == group:
            return name, stream
    for name, stream in readers:
        overridden = apply_overrides(stream, {"group_id": group})
        own = {
            state: spec
            for state, spec in overridden.state.items()
            if spec.changelog_topic == default_changelog_topic(group, state)
        }
        if own:
            return name, overridden.model_copy(update={"state": own})
    return None


def _state_plan(
    admin: AdminClient,
    *,
    file: StreamFile,
    project_path: Path | None,
    group: str,
    topic: str,
    development: bool,
) -> StatePlan | None:
    found = _stateful_stream(file, topic, group)
    if found is None:
        return None
    name, stream = found
    existing = admin.list_topics(timeout=REQUEST_TIMEOUT_S).topics
    changelogs = [s.changelog_topic for s in stream.state.values() if s.changelog_topic in existing]
    root: Path | None = None
    stores: list[Path] = []
    if project_path is not None:
        layout = StoreLayout.of(stream, project_path)  # its group: the one reset
        root, stores = layout.root, layout.existing(stream.state)
    if stream.group_id != file.streams[name].group_id and not (changelogs or stores):
        return None  # a group that never ran the stream: no state of its own
    blocked = None
    if changelogs and development:
        blocked = (
            "the development broker cannot delete topics, so the changelog cannot be cleared: "
            "restart it to start over (it keeps everything in memory)"
        )
    return StatePlan(name, sorted(stream.state), changelogs, stores, root, blocked)


def _check_state_choice(
    state: StatePlan | None,
    *,
    target: Target,
    partitions: tuple[int, ...],
    clear_state: bool,
    group: str,
    topic: str,
) -> None:
    if state is None:
        if clear_state:
            raise ResetError(
                f"--clear-state: no stream of stream.yml keeps state for group {group!r} on "
                f"{topic!r}; drop the flag"
            )
        return
    if partitions:
        raise ResetError(
            f"stream {state.stream!r} keeps state, which is cleared for whole changelog topics: "
            "reset every partition (drop --partition)"
        )
    if target.mode is not Mode.EARLIEST and not clear_state:
        raise ResetError(
            f"stream {state.stream!r} keeps state ({', '.join(state.states)}), which cannot be "
            "rebuilt as of other offsets from its compacted changelog: add --clear-state to "
            "start it empty from the new offsets, or reset --to-earliest"
        )


def _check_idle(admin: AdminClient, group: str) -> None:
    """Refuse while the group has live members. A broker that cannot describe groups (the
    development broker) refuses the commit instead (:func:`_commit`)."""
    [future] = admin.describe_consumer_groups([group], request_timeout=REQUEST_TIMEOUT_S).values()
    try:
        described = future.result()
    except KafkaException as exc:
        if error_code(exc) == KafkaError._UNSUPPORTED_FEATURE:
            return
        raise
    if described.members or described.state in _LIVE_STATES:
        raise _active(group, f"{len(described.members)} members, state {described.state.name}")


def _active(group: str, seen: str) -> GroupActive:
    return GroupActive(
        f"group {group!r} is active ({seen}): stop its consumers, then reset; nothing was changed"
    )


def _clear_state(admin: AdminClient, state: StatePlan) -> None:
    if state.blocked:
        raise ResetError(f"{state.blocked}; nothing was changed")
    if state.changelogs:
        futures = admin.delete_topics(state.changelogs, operation_timeout=REQUEST_TIMEOUT_S)
        for name, future in futures.items():
            try:
                future.result()
            except KafkaException as exc:
                raise ResetError(
                    f"cannot delete changelog topic {name!r} ({_reason(exc)}): allow this "
                    "client to delete it, or delete it yourself, then reset again; the offsets "
                    "were not moved"
                ) from None
        _wait_deleted(admin, state.changelogs)
    for store in state.stores:
        shutil.rmtree(store)


def _wait_deleted(admin: AdminClient, names: list[str]) -> None:
    deadline = time.monotonic() + DELETE_TIMEOUT_S
    while True:
        left = set(names) & set(admin.list_topics(timeout=REQUEST_TIMEOUT_S).topics)
        if not left:
            return
        if time.monotonic() > deadline:
            raise ResetError(
                f"changelog topics {sorted(left)} still exist {DELETE_TIMEOUT_S:.0f} s after "
                "their deletion: reset again once they are gone; the offsets were not moved"
            )
        time.sleep(0.2)


def _commit_as_member(kafka: KafkaConfig, moves: list[Move], group: str, topic: str) -> None:
    """Commit as the group's only member. The development broker cannot describe groups and
    refuses offsets committed from outside a group that has had members, even gone ones; a
    member's commit it takes. Joining is its liveness check too: a member that is not given
    every partition of the topic shares the group with live members, and commits nothing."""
    member = joining_consumer(kafka, group)
    try:
        member.subscribe([topic])
        # It holds a join for the group's session timeout, less a second.
        session_s = int(member_session_ms(kafka)) / 1000
        deadline = time.monotonic() + session_s + JOIN_SLACK_S
        while not member.assignment():
            if time.monotonic() > deadline:
                raise _active(group, "the reset's member was given no partition")
            member.poll(0.1)
        owned = {tp.partition for tp in member.assignment() if tp.topic == topic}
        if not {m.partition for m in moves} <= owned:
            raise _active(group, "live members hold some of its partitions")
        _commit(member, moves, group, cleared=False)
    finally:
        member.close()


def _commit(consumer: Consumer, moves: list[Move], group: str, *, cleared: bool) -> None:
    offsets = [TopicPartition(m.topic, m.partition, m.new) for m in moves]
    after = " (the state was cleared: run this reset again)" if cleared else ""
    try:
        done = consumer.commit(offsets=offsets, asynchronous=False)
    except KafkaException as exc:
        if error_code(exc) in _LIVE_GROUP_ERRORS:
            raise GroupActive(
                f"group {group!r} is active (the broker refused the commit: {_reason(exc)}): "
                f"stop its consumers, then reset{after}"
            ) from None
        raise ResetError(f"the commit failed: {_reason(exc)}{after}") from None
    failed = [tp for tp in done or [] if tp.error is not None]
    if failed:
        raise ResetError(
            f"the commit failed for {failed[0].topic}[{failed[0].partition}]: "
            f"{failed[0].error.str()}{after}"
        )


def _reason(exc: KafkaException) -> str:
    """The broker's words for ``exc``, as librdkafka renders them."""
    error = kafka_error(exc)
    return str(exc) if error is None else error.str()
