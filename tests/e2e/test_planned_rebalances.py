"""Planned rebalances publish nothing twice: a member joins, a member leaves with SIGTERM, or
two members restart one after the other while payments stream in, under both group protocols.

Each case checks every published score and feature row: one per payment, none missing, none
repeated, and every feature equal to the batch computation. Each member runs in a copy of the
project of its own, so its state stores start empty, as on a pod with an ``emptyDir``: a
partition that moves is restored from its changelog.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import copy_project
from tests.e2e.processes import assigned, finish, start
from tests.kafka_helpers import committed, read_topic, wait_until
from tests.reconcile import assert_reconciled, expected_outputs, reconcile_features
from tests.stream_helpers import (
    GROUP_PROTOCOLS,
    configure,
    create_input,
    fast_group,
    payments,
    topics,
    use_group_protocol,
)

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

#: Both group protocols; the embedded broker's classic groups cannot keep the promise.
PROTOCOLS = [
    pytest.param(
        "classic",
        marks=pytest.mark.unsupported_broker(
            "embedded",
            "the librdkafka mock refuses every offset commit while a classic group is joining "
            "or syncing (rd_kafka_mock_cgrp_check_state), even one from the revoke callback of "
            "a member of the current generation, which Apache Kafka accepts while the group "
            "prepares a rebalance: the revoked partitions' last batches are repeated by their "
            "next owner",
        ),
    ),
    *GROUP_PROTOCOLS[1:],
]
#: Payments sent while the group changes, and how fast: long enough that every case's
#: rebalances happen while records still stream in.
RECORDS = 12_000
RATE = 600


class Group:
    """Members of one consumer group, each a ``kedro stream consume`` with its own log and
    project copy."""

    def __init__(self, project: Path, names: dict[str, str], bootstrap: str) -> None:
        self._project, self._names, self._bootstrap = project, names, bootstrap
        self.members: dict[str, subprocess.Popen[str]] = {}
        self.logs: dict[str, Path] = {}  # of each member's current life
        self.lives: list[Path] = []  # every life's log
        self._lives = 0

    def join(self, name: str) -> None:
        """Start member ``name`` and wait until it owns partitions."""
        self._lives += 1
        home = copy_project(
            self._project, self._project.parent / f"{name}-{self._lives}", with_data=True
        )
        log = home / "consume.log"
        self.logs[name] = log
        self.lives.append(log)
        self.members[name] = start(
            home,
            *("consume", "--topic", self._names["input"]),
            *("--bootstrap-servers", self._bootstrap),
            log=log,
        )
        wait_until(lambda: assigned(log), 90, f"{name} owning partitions")

    def leave(self, name: str) -> None:
        """SIGTERM member ``name``: it finishes its batch, commits and leaves the group."""
        member = self.members.pop(name)
        member.send_signal(signal.SIGTERM)
        code, _, err = finish(member)
        assert code == 0, err

    def restored_twice(self) -> list[str]:
        """Partitions a member restored again while it still owned them: kept partitions must
        keep their stores across a rebalance."""
        twice = []
        for log in self.lives:
            held: set[str] = set()
            for line in log.read_text().splitlines():
                if "Revoked " in line:
                    held -= {p.strip() for p in line.split("Revoked ", 1)[1].split(",")}
                elif "Restored state " in line:
                    topic, numbers = line.split(" of ", 1)[1].split(" in ", 1)[0].split("[", 1)
                    partitions = {f"{topic}[{n.strip()}]" for n in numbers.rstrip("]").split(",")}
                    twice += sorted(partitions & held)
                    held |= partitions
        return twice

    def balanced(self) -> bool:
        """Every member owns partitions, and no partition has two owners."""
        owned = [assigned(log) for name, log in self.logs.items() if name in self.members]
        return all(owned) and sum(map(len, owned)) == len(set().union(*owned))


def _scenario(stream_project: Path, kafka_broker, group_protocol: str, changes: Callable) -> None:
    names = topics("planned")
    bootstrap = kafka_broker.bootstrap_servers
    create_input(kafka_broker, names, partitions=4)
    configure(stream_project, names, **{"batch.max_size": 500})
    fast_group(stream_project)
    use_group_protocol(stream_project, group_protocol)
    group = Group(stream_project, names, bootstrap)
    group.join("first")
    producer = start(
        stream_project,
        *("produce", "--topic", names["input"], "--bootstrap-servers", bootstrap),
        *("--file", str(stream_project / "data/01_raw/payments.jsonl"), "--key", "account_id"),
        *("--count", str(RECORDS), "--rate", str(RATE)),
    )
    wait_until(lambda: committed(bootstrap, names["group"], names["input"]), 60, "a first commit")
    changes(group)
    assert producer.poll() is None, "the producer finished first: the group changed too late"
    assert finish(producer, timeout_s=120)[0] == 0
    wait_until(
        lambda: sum(committed(bootstrap, names["group"], names["input"]).values()) == RECORDS,
        120,
        f"all {RECORDS} records committed",
        every_s=0.5,
    )
    for name in list(group.members):
        group.leave(name)
    assert group.restored_twice() == [], "a member restored the state of a partition it kept"
    sent = payments(stream_project, RECORDS)
    scores = [json.loads(m.value())["payment_id"] for m in read_topic(bootstrap, names["scores"])]
    repeated = len(scores) - len(set(scores))
    assert repeated == 0, f"{repeated} scores published twice"
    assert set(scores) == {p["payment_id"] for p in sent}
    assert_reconciled(
        reconcile_features(
            expected_outputs(stream_project, sent), read_topic(bootstrap, names["features"])
        ),
        exact=True,
    )


def _join(group: Group) -> None:
    group.join("second")
    wait_until(group.balanced, 60, "the partitions shared by both members")


def _leave(group: Group) -> None:
    _join(group)
    group.leave("second")


def _rolling_restart(group: Group) -> None:
    _join(group)
    for name in ("first", "second"):
        group.leave(name)
        group.join(name)
        wait_until(group.balanced, 60, f"the partitions shared again after {name}'s restart")


@pytest.mark.parametrize("group_protocol", PROTOCOLS)
def test_a_member_joining_repeats_nothing(
    stream_project: Path, kafka_broker, group_protocol: str
) -> None:
    _scenario(stream_project, kafka_broker, group_protocol, _join)


@pytest.mark.parametrize("group_protocol", PROTOCOLS)
def test_a_member_leaving_with_sigterm_repeats_nothing(
    stream_project: Path, kafka_broker, group_protocol: str
) -> None:
    _scenario(stream_project, kafka_broker, group_protocol, _leave)


@pytest.mark.parametrize("group_protocol", PROTOCOLS)
def test_a_rolling_restart_repeats_nothing(
    stream_project: Path, kafka_broker, group_protocol: str
) -> None:
    _scenario(stream_project, kafka_broker, group_protocol, _rolling_restart)
