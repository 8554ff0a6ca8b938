"""``kedro stream reset`` against fake clients: what a dry run plans and an executed reset commits,
when it is refused (a live group, a stateful stream asked for what its state cannot follow), the
state it clears before the commit, and how broker errors reach the user.

The broker's own behaviour (its answers to a commit beside a live group, the development
broker's quirks) is tested against broker processes in tests/integration/test_reset.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import (
    OFFSET_INVALID,
    ConsumerGroupState,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from kedro_stream.config import StreamFile, parse_stream_file
from kedro_stream.kafka.errors import KafkaUnreachable
from kedro_stream.ops.offsets import Mode, Move, Target
from kedro_stream.ops.reset import GroupActive, ResetError, ResetPlan, StatePlan, reset
from kedro_stream.state.layout import StoreLayout

UTC = timezone.utc  # datetime.UTC is 3.11+
TOPIC, GROUP = "in", "g"
RESET = "kedro_stream.ops.reset"  # where the fakes replace the clients it talks through
EARLIEST = Target(Mode.EARLIEST)
CHANGELOG = "g-counts-changelog"


@dataclass(frozen=True)
class Described:
    """A group as ``describe_consumer_groups`` answers it."""

    members: tuple[object, ...]
    state: ConsumerGroupState


IDLE = Described((), ConsumerGroupState.EMPTY)


def kafka_error(code: int) -> KafkaException:
    return KafkaException(KafkaError(code))


@dataclass
class Cluster:
    """Topic ``in`` and group ``g`` as the fake clients see them. ``group`` is what describing
    the group answers (an exception: raised); ``fail`` maps a client call to what it raises;
    ``events`` lists what the reset changed, in order, with the stores on disk at each commit."""

    marks: dict[int, tuple[int, int]]  # partition → (low, high)
    committed: dict[int, int] = field(default_factory=dict)
    topics: set[str] = field(default_factory=lambda: {TOPIC})
    group: Any = IDLE
    by_time: dict[int, int] = field(default_factory=dict)
    fail: dict[str, Exception] = field(default_factory=dict)
    stores: list[Path] = field(default_factory=list)
    asked_times: list[int] = field(default_factory=list)
    commits: list[dict[int, int]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    def call(self, name: str) -> None:
        if name in self.fail:
            raise self.fail[name]


@dataclass
class Answer:
    """A future of the admin client, already answered."""

    value: Any = None

    def result(self, timeout: float | None = None) -> Any:
        if isinstance(self.value, Exception):
            raise self.value
        return self.value


@dataclass
class OffsetsConsumer:
    """The group's consumer that never subscribes; also the development broker's member, which
    is given ``given`` partitions once it polls."""

    cluster: Cluster
    given: list[int] = field(default_factory=list)
    subscribed: list[str] = field(default_factory=list)
    polls: int = 0
    closed: bool = False

    def list_topics(self, topic: str, timeout: float) -> SimpleNamespace:
        self.cluster.call("list_topics")
        found = SimpleNamespace(partitions=dict.fromkeys(self.cluster.marks), error=None)
        return SimpleNamespace(topics={topic: found} if topic in self.cluster.topics else {})

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        self.cluster.call("committed")
        offsets = self.cluster.committed
        return [
            TopicPartition(tp.topic, tp.partition, offsets.get(tp.partition, OFFSET_INVALID))
            for tp in partitions
        ]

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        return self.cluster.marks[tp.partition]

    def offsets_for_times(
        self, partitions: list[TopicPartition], timeout: float
    ) -> list[TopicPartition]:
        self.cluster.asked_times += [tp.offset for tp in partitions]
        found = self.cluster.by_time
        return [TopicPartition(tp.topic, tp.partition, found[tp.partition]) for tp in partitions]

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool) -> list[TopicPartition]:
        assert not asynchronous
        self.cluster.call("commit")
        on_disk = sum(store.exists() for store in self.cluster.stores)
        self.cluster.events.append(f"commit with {on_disk} stores on disk")
        self.cluster.commits.append({tp.partition: tp.offset for tp in offsets})
        self.cluster.committed.update(self.cluster.commits[-1])
        return offsets

    def subscribe(self, topics: list[str]) -> None:
        self.subscribed = topics

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(TOPIC, p) for p in self.given] if self.polls else []

    def poll(self, timeout: float) -> None:
        self.polls += 1

    def close(self) -> None:
        self.closed = True


@dataclass
class Admin:
    cluster: Cluster
    described: list[str] = field(default_factory=list)

    def list_topics(self, timeout: float) -> SimpleNamespace:
        return SimpleNamespace(topics=dict.fromkeys(self.cluster.topics))

    def describe_consumer_groups(
        self, groups: list[str], request_timeout: float
    ) -> dict[str, Answer]:
        self.described += groups
        return {group: Answer(self.cluster.group) for group in groups}

    def delete_topics(self, names: list[str], operation_timeout: float) -> dict[str, Answer]:
        self.cluster.events.append(f"delete {' '.join(names)}")
        self.cluster.topics -= set(names)
        return {name: Answer() for name in names}


@dataclass
class Clients:
    cluster: Cluster
    consumer: OffsetsConsumer
    admin: Admin
    member: OffsetsConsumer


def use_clients(
    monkeypatch: pytest.MonkeyPatch, cluster: Cluster, *, development: bool = False
) -> Clients:
    """Fake clients on ``cluster`` in place of the reset's; the development broker's member is
    given every partition of the topic."""
    clients = Clients(
        cluster,
        OffsetsConsumer(cluster),
        Admin(cluster),
        OffsetsConsumer(cluster, given=list(cluster.marks)),
    )
    monkeypatch.setattr(f"{RESET}.command_admin", lambda kafka: clients.admin)
    monkeypatch.setattr(f"{RESET}.offsets_consumer", lambda kafka, group: clients.consumer)
    monkeypatch.setattr(f"{RESET}.ensure_reachable", lambda client, kafka: None)
    monkeypatch.setattr(f"{RESET}.is_development_broker", lambda consumer: development)
    monkeypatch.setattr(f"{RESET}.joining_consumer", lambda kafka, group: clients.member)
    monkeypatch.setattr(f"{RESET}.member_session_ms", lambda kafka: 1000)
    return clients


def stream_file(**state: dict[str, str]) -> StreamFile:
    """``stream.yml`` with one stream reading ``in`` as group ``g``, keeping ``state``."""
    stream = {
        "namespace": "ns",
        "group_id": GROUP,
        "input": {"topics": [TOPIC], "dataset": "batch"},
        "state": state,
    }
    return parse_stream_file({"streams": {"counting": stream}}, {})


STATELESS = stream_file()
STATEFUL = stream_file(counts={"input": "counts", "updates": "counts_updates", "key": "k"})
TWO_STATES = stream_file(
    counts={"input": "counts", "updates": "counts_updates", "key": "k"},
    totals={"input": "totals", "updates": "totals_updates", "key": "k"},
)


def run_reset(
    file: StreamFile = STATELESS,
    project: Path | None = None,
    *,
    group: str = GROUP,
    target: Target = EARLIEST,
    **options: Any,
) -> ResetPlan:
    return reset(file.kafka, file, project, group=group, topic=TOPIC, target=target, **options)


def make_stores(file: StreamFile, project: Path, *where: tuple[str, int]) -> list[Path]:
    """Store directories of the stream's group, one per (state, partition)."""
    layout = StoreLayout.of(file.streams["counting"], project)
    stores = [layout.store(state, partition) for state, partition in where]
    for store in stores:
        store.mkdir(parents=True)
        (store / "CURRENT").write_text("MANIFEST-000001\n")
    return stores


# --- the offsets ------------------------------------------------------------------------------


def test_a_dry_run_computes_each_partitions_move_and_commits_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = Cluster(marks={0: (0, 100), 1: (10, 50), 2: (5, 5)}, committed={0: 80, 1: 40})
    use_clients(monkeypatch, cluster)

    plan = run_reset(target=Target(Mode.SHIFT, -35))

    assert plan.moves == [
        Move(TOPIC, 0, current=80, new=45, low=0, high=100),
        Move(TOPIC, 1, current=40, new=10, low=10, high=50),  # clamped to the retained records
        Move(TOPIC, 2, current=None, new=5, low=5, high=5),  # nothing committed
    ]
    assert (plan.group, plan.topic, plan.state) == (GROUP, TOPIC, None)
    assert cluster.commits == []


def test_execute_commits_the_new_offsets(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = Cluster(marks={0: (0, 100), 1: (10, 50)}, committed={0: 80, 1: 40})
    clients = use_clients(monkeypatch, cluster)

    run_reset(target=Target(Mode.OFFSET, 30), execute=True)

    assert cluster.commits == [{0: 30, 1: 30}]
    assert clients.consumer.closed


def test_partitions_limits_the_reset_to_those_partitions(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = Cluster(marks={0: (0, 100), 1: (0, 50), 2: (0, 9)}, committed={0: 80, 1: 40})
    use_clients(monkeypatch, cluster)

    plan = run_reset(partitions=(1,), execute=True)

    assert [m.partition for m in plan.moves] == [1]
    assert cluster.commits == [{1: 0}]


def test_a_partition_the_topic_does_not_have_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = Cluster(marks={0: (0, 1), 1: (0, 1)})
    use_clients(monkeypatch, cluster)

    with pytest.raises(ResetError, match=r"no partition 4: its partitions are 0\.\.1"):
        run_reset(partitions=(0, 4), execute=True)
    assert cluster.commits == []


def test_a_topic_that_does_not_exist_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    use_clients(monkeypatch, Cluster(marks={0: (0, 1)}, topics=set()))

    with pytest.raises(ResetError, match="topic 'in' does not exist"):
        run_reset()


def test_a_reset_by_time_moves_to_the_offsets_the_broker_finds_for_that_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = Cluster(marks={0: (0, 100), 1: (0, 50)}, by_time={0: 60, 1: -1})
    use_clients(monkeypatch, cluster)
    when = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)

    plan = run_reset(target=Target(Mode.DATETIME, when=when))

    assert cluster.asked_times == [int(when.timestamp() * 1000)] * 2
    assert [m.new for m in plan.moves] == [60, 50]  # -1: no record that late, nothing to read


def test_the_development_broker_cannot_reset_by_time(monkeypatch: pytest.MonkeyPatch) -> None:
    use_clients(monkeypatch, Cluster(marks={0: (0, 1)}), development=True)

    with pytest.raises(ResetError, match="cannot look offsets up by time"):
        run_reset(target=Target(Mode.DATETIME, when=datetime(2026, 1, 1, tzinfo=UTC)))


# --- a live group -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "described",
    [
        Described((object(),), ConsumerGroupState.EMPTY),
        Described((), ConsumerGroupState.STABLE),
        Described((), ConsumerGroupState.PREPARING_REBALANCING),
    ],
    ids=["members", "stable", "rebalancing"],
)
def test_a_live_group_is_refused_and_nothing_committed(
    monkeypatch: pytest.MonkeyPatch, described: Described
) -> None:
    cluster = Cluster(marks={0: (0, 100)}, committed={0: 80}, group=described)
    clients = use_clients(monkeypatch, cluster)

    with pytest.raises(GroupActive, match=r"group 'g' is active .*nothing was changed"):
        run_reset(execute=True)

    assert clients.admin.described == [GROUP]
    assert cluster.commits == []


def test_a_broker_that_cannot_describe_groups_leaves_the_check_to_the_commit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = Cluster(marks={0: (0, 100)}, group=kafka_error(KafkaError._UNSUPPORTED_FEATURE))
    use_clients(monkeypatch, cluster)

    run_reset(execute=True)

    assert cluster.commits == [{0: 0}]


@pytest.mark.parametrize(
    "code",
    [KafkaError.REBALANCE_IN_PROGRESS, KafkaError.UNKNOWN_MEMBER_ID],
    ids=["rebalance-in-progress", "unknown-member-id"],
)
def test_a_commit_the_broker_refuses_beside_live_members_is_group_active(
    monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    cluster = Cluster(marks={0: (0, 100)}, fail={"commit": kafka_error(code)})
    use_clients(monkeypatch, cluster)

    with pytest.raises(GroupActive, match="the broker refused the commit"):
        run_reset(execute=True)


def test_any_other_refused_commit_is_a_reset_error(monkeypatch: pytest.MonkeyPatch) -> None:
    error = kafka_error(KafkaError.GROUP_AUTHORIZATION_FAILED)
    use_clients(monkeypatch, Cluster(marks={0: (0, 100)}, fail={"commit": error}))

    with pytest.raises(ResetError, match="the commit failed") as raised:
        run_reset(execute=True)
    assert not isinstance(raised.value, GroupActive)


def test_a_cluster_that_does_not_answer_is_kafka_unreachable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = Cluster(marks={0: (0, 100)}, fail={"committed": kafka_error(KafkaError._TRANSPORT)})
    clients = use_clients(monkeypatch, cluster)

    with pytest.raises(KafkaUnreachable, match="cannot reach Kafka at"):
        run_reset(execute=True)
    assert clients.consumer.closed


# --- the development broker: committed as the group's only member -----------------------------


def test_on_the_development_broker_the_reset_commits_as_the_groups_only_member(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = Cluster(marks={0: (0, 100), 1: (0, 50)}, committed={0: 80, 1: 40})
    clients = use_clients(monkeypatch, cluster, development=True)

    run_reset(execute=True)

    assert clients.member.subscribed == [TOPIC]
    assert cluster.commits == [{0: 0, 1: 0}]
    assert clients.member.closed


def test_on_the_development_broker_a_member_given_only_some_partitions_commits_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The other partitions are held by live members, which would commit over the reset."""
    cluster = Cluster(marks={0: (0, 100), 1: (0, 50)})
    clients = use_clients(monkeypatch, cluster, development=True)
    clients.member.given = [1]

    with pytest.raises(GroupActive, match="live members hold some of its partitions"):
        run_reset(execute=True)
    assert cluster.commits == []
    assert clients.member.closed


# --- a stateful stream ------------------------------------------------------------------------


def test_a_stateful_stream_plans_to_clear_its_changelogs_and_stores(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cluster = Cluster(marks={0: (0, 1), 1: (0, 1), 2: (0, 1)}, topics={TOPIC, CHANGELOG})
    use_clients(monkeypatch, cluster)
    stores = make_stores(TWO_STATES, tmp_path, ("totals", 1), ("counts", 2), ("counts", 0))

    plan = run_reset(TWO_STATES, tmp_path)

    assert plan.state == StatePlan(
        stream="counting",
        states=["counts", "totals"],
        changelogs=[CHANGELOG],  # totals' changelog was never made
        stores=sorted(stores),
        state_dir=tmp_path / "data" / "state" / GROUP,
        blocked=None,
    )
    assert all(store.exists() for store in stores)


def test_without_a_project_a_stateful_stream_plans_its_changelogs_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_clients(monkeypatch, Cluster(marks={0: (0, 1)}, topics={TOPIC, CHANGELOG}))

    plan = run_reset(STATEFUL, None)

    assert plan.state is not None
    assert plan.state.changelogs == [CHANGELOG]
    assert (plan.state.stores, plan.state.state_dir) == ([], None)


def test_execute_deletes_the_changelogs_and_stores_before_the_commit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A crash between the two then leaves the offsets where they were and no state: running the
    reset again finishes it. State cleared after the commit would leave the old rows counted
    again by the replay."""
    cluster = Cluster(marks={0: (0, 100), 1: (0, 50)}, committed={0: 80, 1: 40})
    cluster.topics.add(CHANGELOG)
    cluster.stores = make_stores(STATEFUL, tmp_path, ("counts", 0), ("counts", 1))
    use_clients(monkeypatch, cluster)

    run_reset(STATEFUL, tmp_path, execute=True)

    assert cluster.events == [f"delete {CHANGELOG}", "commit with 0 stores on disk"]
    assert cluster.topics == {TOPIC}
    assert cluster.commits == [{0: 0, 1: 0}]
    assert (tmp_path / "data" / "state" / GROUP / "counts").is_dir()  # only the stores go


def test_a_stateful_reset_elsewhere_than_earliest_needs_clear_state(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cluster = Cluster(marks={0: (0, 100)}, committed={0: 80}, topics={TOPIC, CHANGELOG})
    use_clients(monkeypatch, cluster)

    with pytest.raises(ResetError, match="add --clear-state"):
        run_reset(STATEFUL, tmp_path, target=Target(Mode.SHIFT, -10), execute=True)
    assert (cluster.events, cluster.topics) == ([], {TOPIC, CHANGELOG})

    run_reset(STATEFUL, tmp_path, target=Target(Mode.SHIFT, -10), clear_state=True, execute=True)
    assert cluster.events == [f"delete {CHANGELOG}", "commit with 0 stores on disk"]
    assert cluster.commits == [{0: 70}]


def test_a_stateful_stream_cannot_reset_some_partitions(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Its changelog topics are cleared whole, for every partition."""
    cluster = Cluster(marks={0: (0, 100), 1: (0, 1)}, topics={TOPIC, CHANGELOG})
    use_clients(monkeypatch, cluster)
    stores = make_stores(STATEFUL, tmp_path, ("counts", 0))

    with pytest.raises(ResetError, match="drop --partition"):
        run_reset(STATEFUL, tmp_path, partitions=(0,), clear_state=True, execute=True)
    assert (cluster.events, cluster.topics) == ([], {TOPIC, CHANGELOG})
    assert stores[0].exists()


def test_a_live_stateful_group_keeps_its_state(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    live = Described((object(),), ConsumerGroupState.STABLE)
    cluster = Cluster(marks={0: (0, 100)}, topics={TOPIC, CHANGELOG}, group=live)
    use_clients(monkeypatch, cluster)
    stores = make_stores(STATEFUL, tmp_path, ("counts", 0))

    with pytest.raises(GroupActive):
        run_reset(STATEFUL, tmp_path, execute=True)
    assert (cluster.events, cluster.topics) == ([], {TOPIC, CHANGELOG})
    assert stores[0].exists()


def test_clear_state_for_a_stream_without_state_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = Cluster(marks={0: (0, 100)})
    use_clients(monkeypatch, cluster)

    with pytest.raises(ResetError, match=r"no stream of stream\.yml keeps state"):
        run_reset(clear_state=True, execute=True)
    assert cluster.commits == []


def test_the_state_of_a_stream_run_under_another_group_is_that_groups_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``consume --group-id g2`` kept its state in g2's changelog and stores, not in g's; a
    group that never ran the stream has no state to clear."""
    cluster = Cluster(marks={0: (0, 1)}, topics={TOPIC, CHANGELOG, "g2-counts-changelog"})
    use_clients(monkeypatch, cluster)

    plan = run_reset(STATEFUL, tmp_path, group="g2")
    never = run_reset(STATEFUL, tmp_path, group="g3")

    assert plan.state is not None
    assert plan.state.changelogs == ["g2-counts-changelog"]
    assert plan.state.state_dir == tmp_path / "data" / "state" / "g2"
    assert never.state is None


def test_the_development_broker_cannot_clear_a_changelog(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cluster = Cluster(marks={0: (0, 100)}, committed={0: 80}, topics={TOPIC, CHANGELOG})
    use_clients(monkeypatch, cluster, development=True)
    stores = make_stores(STATEFUL, tmp_path, ("counts", 0))

    plan = run_reset(STATEFUL, tmp_path)
    assert plan.state is not None
    assert plan.state.blocked is not None

    with pytest.raises(ResetError, match=r"cannot delete topics.*nothing was changed"):
        run_reset(STATEFUL, tmp_path, execute=True)
    assert (cluster.events, cluster.commits) == ([], [])
    assert stores[0].exists()
