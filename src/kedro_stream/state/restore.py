"""Catch stores up with their changelog partitions before the partitions' first batch runs.

Each from its store's changelog offset (a store that survived) or from the changelog's start (a
new one), to the end of its changelog partition; the partitions of one assignment are read
together. Per key, the row with the highest ``as_of`` not beyond the input partition's committed
offset wins (see :mod:`kedro_stream.state`); rows beyond it belong to a batch that never
committed, and are skipped.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from kedro_stream.state.changelog import parse
from kedro_stream.state.errors import StateError
from kedro_stream.state.store import Entry, PartitionStore

#: Records read per ``consume`` call, and the longest wait of one call.
_CHUNK = 100_000
_POLL_S = 0.2
#: A restore that reads nothing for this long, before reaching the end, fails.
RESTORE_STALL_S = 60.0


@dataclass(frozen=True)
class Restored:
    """What one restore read and applied, for its log line and metrics."""

    records: int  # changelog records read
    applied: int  # rows written to the stores
    skipped: int  # rows beyond the committed offset, or older than the store's
    seconds: float


def restore(
    stores: Mapping[int, PartitionStore],
    consumer: Consumer,
    changelog: str,
    committed: Mapping[int, int | None],
) -> Restored:
    """Read partition ``p`` of topic ``changelog`` into ``stores[p]``; ``committed[p]`` is the
    input partition's committed offset (``None``: nothing committed, so no row counts)."""
    started = time.monotonic()
    consumer.assign(
        [
            TopicPartition(
                changelog, p, OFFSET_BEGINNING if s.changelog_offset is None else s.changelog_offset
            )
            for p, s in stores.items()
        ]
    )
    pending = set(stores)
    records = applied = skipped = 0
    try:
        last_progress = time.monotonic()
        while pending:
            read: dict[int, list[Entry]] = defaultdict(list)
            next_offsets: dict[int, int] = {}
            for message in consumer.consume(_CHUNK, _POLL_S):
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        raise KafkaException(error)
                    pending.discard(message.partition())
                    continue
                read[message.partition()].append(parse(message))
                next_offsets[message.partition()] = message.offset() + 1
            for partition, entries in read.items():
                store = stores[partition]
                kept = _newest(store, entries, committed.get(partition))
                store.apply(kept, next_offsets[partition])
                records += len(entries)
                applied += len(kept)
                skipped += len(entries) - len(kept)
                last_progress = time.monotonic()
            if pending and time.monotonic() - last_progress > RESTORE_STALL_S:
                raise StateError(
                    f"restoring {changelog} partitions {sorted(pending)}: nothing read for "
                    f"{RESTORE_STALL_S:.0f} s before their end; is the broker reachable?"
                )
    finally:
        consumer.unassign()
    return Restored(records, applied, skipped, time.monotonic() - started)


def _newest(store: PartitionStore, entries: list[Entry], committed: int | None) -> list[Entry]:
    """Per key, the entry to keep: committed, and newer than what the store holds."""
    if committed is None:
        return []
    best: dict[str, Entry] = {}
    for entry in entries:
        key, as_of, _ = entry
        if as_of <= committed and (key not in best or as_of > best[key][1]):
            best[key] = entry
    held = store.get(list(best))
    return [e for k, e in best.items() if k not in held or e[1] > held[k][0]]
