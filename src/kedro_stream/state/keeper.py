"""A stream's per-key state across batches and assignments: which stores are open, what a batch
reads and writes.

Per batch (the protocol of ``service/loop.py``): :meth:`StateKeeper.read` gives the namespace the
rows of the batch's keys (one multi-get per store); :meth:`StateKeeper.changes` checks the
updates and turns them into changelog records, published with the batch's outputs;
:meth:`StateKeeper.apply` writes them to the stores once the batch is committed, never before: a
store holds committed state only, and a crash before it is written is caught up from the
changelog. On assignment the new partitions' stores are opened and caught up (restored); on
revocation they are released.

A stateless stream gets :class:`NoState`, which has the same methods and does nothing, so the
loop takes every stream through the same steps.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from confluent_kafka import Consumer, TopicPartition

from kedro_stream.config import StateConfig, StreamConfig
from kedro_stream.metrics import StreamMetrics
from kedro_stream.records import Decoded, Outgoing
from kedro_stream.state.changelog import changelog_record
from kedro_stream.state.errors import StateError
from kedro_stream.state.layout import StoreLayout
from kedro_stream.state.restore import restore
from kedro_stream.state.rows import changes_of, rows_frame
from kedro_stream.state.store import Entry, PartitionStore

logger = logging.getLogger(__name__)
#: How long the committed offsets of newly assigned partitions may take to arrive.
COMMITTED_TIMEOUT_S = 30.0
#: How long the end of a changelog partition may take to read, when a store is released.
WATERMARK_TIMEOUT_S = 10.0


@dataclass
class StateChanges:
    """What one batch changes: changelog records to publish, store entries to write after the
    commit (by state and partition), and the change in key counts."""

    records: list[Outgoing] = field(default_factory=list)
    entries: dict[tuple[str, int], list[Entry]] = field(default_factory=lambda: defaultdict(list))
    key_delta: dict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))


class StateKeeper:
    """The states of one stateful stream, one store per state and assigned input partition."""

    def __init__(
        self,
        stream: StreamConfig,
        *,
        project_path: Path,
        metrics: StreamMetrics,
        restore_consumer: Callable[[], Consumer],
    ) -> None:
        self._states: Mapping[str, StateConfig] = stream.state
        # One for all: stream.yml checks it. The decoder checks it is each record's message key.
        assert stream.state_key is not None, "a stateless stream keeps NoState"
        self.key: str = stream.state_key
        self._topic = stream.input.topics[0]
        self._layout = StoreLayout.of(stream, project_path)
        _check_writable(self._layout.root)
        self._metrics = metrics
        self._group = stream.group_id
        self._restore_consumer_factory = restore_consumer
        self._restore_consumer: Consumer | None = None
        self._stores: dict[tuple[str, int], PartitionStore] = {}
        # Held by /state queries (another thread) while they read, and here while a store is
        # taken out of _stores: no query reads a store being closed.
        self._stores_lock = threading.Lock()
        self._counts: dict[tuple[str, int], int] = {}
        self._held: dict[str, set[str]] = {}  # per state, the batch's keys that have a row
        self.restoring = False  # read by /readyz

    @property
    def changelogs(self) -> list[str]:
        """The changelog topics to ensure at start, one per state."""
        return [spec.changelog_topic for spec in self._states.values()]

    @property
    def input_topic(self) -> str:
        """The topic whose partitions the stores follow (and the changelogs' partition count)."""
        return self._topic

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Open and catch up the stores of the new partitions, before any of their records is
        handed out (rebalance callbacks run inside ``consume``)."""
        mine = [
            TopicPartition(tp.topic, tp.partition) for tp in partitions if tp.topic == self._topic
        ]
        if not mine:
            return
        self.restoring = True
        try:
            committed = {
                tp.partition: (tp.offset if tp.offset >= 0 else None)
                for tp in consumer.committed(mine, timeout=COMMITTED_TIMEOUT_S)
            }
            for name, spec in self._states.items():
                self._open(name, spec, [tp.partition for tp in mine], committed)
        finally:
            self.restoring = False

    def on_revoke(self, partitions: list[TopicPartition]) -> None:
        """Release the stores of partitions handed back, noting that they are caught up with
        their changelogs: no one else writes there until the group assigns them again."""
        self._release(partitions, checkpoint=True)

    def on_lost(self, partitions: list[TopicPartition]) -> None:
        """Release the stores of partitions the group took away: a new owner may already be
        writing their changelogs, so nothing is noted."""
        self._release(partitions, checkpoint=False)

    def close(self) -> None:
        """At shutdown, after the consumer handed its partitions back."""
        self.on_lost([TopicPartition(self._topic, p) for _, p in list(self._stores)])
        if self._restore_consumer is not None:
            self._restore_consumer.close()
            self._restore_consumer = None

    def _release(self, partitions: list[TopicPartition], *, checkpoint: bool) -> None:
        for tp in partitions:
            if tp.topic != self._topic:
                continue
            for name, spec in self._states.items():
                with self._stores_lock:
                    store = self._stores.pop((name, tp.partition), None)
                if store is None:
                    continue
                if checkpoint:
                    self._checkpoint(store, spec, tp.partition)
                store.close()
                self._metrics.state_keys.remove(self._group, name, self._topic, str(tp.partition))

    def read(self, good: list[Decoded]) -> dict[str, pd.DataFrame]:
        """Each state input dataset: the rows of the batch's keys, one multi-get per store
        (nothing without records: there is no run)."""
        if not good:
            return {}
        by_partition = _keys_by_partition(good, self.key)
        inputs: dict[str, pd.DataFrame] = {}
        for name, spec in self._states.items():
            rows: list[bytes] = []
            held: set[str] = set()
            for partition, keys in by_partition.items():
                found = self._store(name, partition).get(keys)
                for key, (_, value) in found.items():
                    if value is not None:
                        rows.append(value)
                        held.add(key)
            self._held[name] = held
            inputs[spec.input] = rows_frame(rows, self.key)
        return inputs

    def changes(
        self, outputs: Mapping[str, Any], good: list[Decoded], offsets: list[TopicPartition]
    ) -> StateChanges:
        """The run's updates as changelog records and store entries, for the partitions the
        batch commits (``offsets``): a partition this member no longer owns gets neither, its
        new owner processes the records again. Nothing without a run."""
        if not outputs:
            return StateChanges()
        next_offsets = {(tp.topic, tp.partition): tp.offset for tp in offsets}
        partition_of = {str(record[self.key]): message.partition() for message, record in good}
        changes = StateChanges()
        for name, spec in self._states.items():
            held = self._held.get(name, set())
            for change in changes_of(
                outputs[spec.updates],
                dataset=spec.updates,
                key=self.key,
                batch_keys=set(partition_of),
            ):
                partition = partition_of[change.key]
                as_of = next_offsets.get((self._topic, partition))
                if as_of is None:  # not committed by this batch
                    continue
                changes.records.append(
                    changelog_record(spec.changelog_topic, partition, change, as_of)
                )
                changes.entries[(name, partition)].append((change.key, as_of, change.value))
                existed = change.key in held
                changes.key_delta[(name, partition)] += (change.value is not None) - existed
        return changes

    def apply(self, changes: StateChanges, committed: list[TopicPartition]) -> None:
        """Write a committed batch's changes to the stores of the partitions it committed."""
        done = {tp.partition for tp in committed if tp.topic == self._topic}
        for (name, partition), entries in changes.entries.items():
            if partition not in done:
                continue
            self._store(name, partition).apply(entries)
            count = self._counts[(name, partition)] + changes.key_delta[(name, partition)]
            self._counts[(name, partition)] = count
            self._metrics.state_keys.labels(self._group, name, self._topic, str(partition)).set(
                count
            )

    def row(self, name: str, key: str) -> bytes | None:
        """The current row of ``key`` in state ``name``, if this member owns its partition.
        Thread-safe: /state queries call it from the metrics server."""
        with self._stores_lock:
            for (state, _), store in self._stores.items():
                if state == name:
                    found = store.get([key]).get(key)
                    if found is not None and found[1] is not None:
                        return found[1]
        return None

    def _store(self, name: str, partition: int) -> PartitionStore:
        store = self._stores.get((name, partition))
        if store is None:  # a batch never holds records of a partition that is not assigned
            raise StateError(f"state {name!r}: no store open for partition {partition}")
        return store

    def _open(
        self,
        name: str,
        spec: StateConfig,
        partitions: list[int],
        committed: Mapping[int, int | None],
    ) -> None:
        for partition in partitions:  # assigned again without a revoke: reopen
            with self._stores_lock:
                stale = self._stores.pop((name, partition), None)
            if stale is not None:
                stale.close()
        stores = {p: self._local_store(name, spec, p, committed.get(p)) for p in partitions}
        done = restore(stores, self._consumer(), spec.changelog_topic, committed)
        labels = (self._group, name)
        for partition, store in stores.items():
            with self._stores_lock:
                self._stores[(name, partition)] = store
            count = store.count()
            self._counts[(name, partition)] = count
            self._metrics.state_keys.labels(*labels, self._topic, str(partition)).set(count)
        self._metrics.restore_duration.labels(*labels).observe(done.seconds)
        self._metrics.restored.labels(*labels).inc(done.records)
        logger.info(
            "Restored state %s of %s%s in %.2f s: %d changelog records read, %d rows applied, "
            "%d skipped; %d keys",
            name,
            self._topic,
            partitions,
            done.seconds,
            done.records,
            done.applied,
            done.skipped,
            sum(self._counts[(name, p)] for p in partitions),
        )

    def _local_store(
        self, name: str, spec: StateConfig, partition: int, committed: int | None
    ) -> PartitionStore:
        """The partition's store on disk, unless it is from another life of its changelog or
        of the group's offsets: it has a checkpoint while the group has committed nothing
        there (another broker or cluster, say a development broker started again), or one
        beyond the changelog's end (the topic was made again), or it holds rows accounting for
        offsets beyond the committed one, or any while nothing is committed (the offsets were
        moved back: ``kedro stream reset`` on another machine; or a commit a rebalance deferred
        was dropped when the partitions were lost, and their records are processed again).
        Such a store would add old rows to the state; it is deleted and rebuilt from the
        changelog."""
        path = self._layout.store(name, partition)
        store = PartitionStore(path)
        checkpoint = store.changelog_offset
        if checkpoint is not None and committed is None:
            stale = "nothing committed"
        elif checkpoint is not None and checkpoint > self._changelog_end(spec, partition):
            stale = "its checkpoint is beyond the changelog's end"
        elif committed is None and store.newest_as_of() >= 0:
            stale = "it has rows while nothing is committed: their batch's commit never landed"
        elif committed is not None and store.newest_as_of() > committed:
            stale = (
                f"it has rows beyond the committed offset {committed}: offsets moved back, or "
                "their batch's commit never landed"
            )
        else:
            return store
        store.close()
        shutil.rmtree(path)
        logger.warning(
            "Deleted the local store %s: it is not from this changelog and group (%s); "
            "rebuilding it from %s",
            path,
            stale,
            spec.changelog_topic,
        )
        return PartitionStore(path)

    def _checkpoint(self, store: PartitionStore, spec: StateConfig, partition: int) -> None:
        """Every change of a released store is in its changelog and applied: a later restore
        may start at the changelog's end. Best effort: without it, a restore reads more."""
        try:
            high = self._changelog_end(spec, partition)
        except Exception as exc:  # a broker away at shutdown: the next restore reads more
            logger.debug("No checkpoint for %s: %s", store.path, exc)
            return
        if high >= 0:
            store.apply([], changelog_offset=high)

    def _changelog_end(self, spec: StateConfig, partition: int) -> int:
        """The changelog partition's high watermark: where a caught-up store's checkpoint is."""
        _, high = self._consumer().get_watermark_offsets(
            TopicPartition(spec.changelog_topic, partition), timeout=WATERMARK_TIMEOUT_S
        )
        return high

    def _consumer(self) -> Consumer:
        if self._restore_consumer is None:
            self._restore_consumer = self._restore_consumer_factory()
        return self._restore_consumer


def _keys_by_partition(good: list[Decoded], key: str) -> dict[int, list[str]]:
    keys: dict[int, set[str]] = defaultdict(set)
    for message, record in good:
        keys[message.partition()].add(str(record[key]))
    return {p: sorted(k) for p, k in keys.items()}


def _check_writable(root: Path) -> None:
    """A state directory that cannot be written fails at boot, not at the first batch."""
    probe = root / ".write-check"
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StateError(f"state_dir {root} cannot be written: {exc.strerror or exc}") from None


class NoState:
    """The state of a stateless stream: no rows to read, nothing to change, nothing to restore.
    It answers as :class:`StateKeeper` does, so the loop never asks whether there is state."""

    key: str | None = None
    changelogs: list[str] = []  # noqa: RUF012 - never changed: there is none
    restoring = False

    def read(self, good: list[Decoded]) -> dict[str, pd.DataFrame]:
        """No state inputs."""
        return {}

    def changes(
        self, outputs: Mapping[str, Any], good: list[Decoded], offsets: list[TopicPartition]
    ) -> StateChanges:
        """No changelog records, no store entries."""
        return StateChanges()

    def apply(self, changes: StateChanges, committed: list[TopicPartition]) -> None:
        """Nothing to write."""

    def row(self, name: str, key: str) -> bytes | None:
        """No state ``name``: /state answers 404."""
        return None

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """No store to open."""

    def on_revoke(self, partitions: list[TopicPartition]) -> None:
        """No store to release."""

    def on_lost(self, partitions: list[TopicPartition]) -> None:
        """No store to release."""

    def close(self) -> None:
        """Nothing open."""


#: What the loop keeps state with: a stateful stream's keeper, or the stateless stand-in.
State = StateKeeper | NoState
