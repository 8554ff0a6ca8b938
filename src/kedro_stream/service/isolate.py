"""``on_failure: isolate``: find the records of a failed batch that fail on their own.

A batch that still fails after its retries is split in two and each half is run again; a half
that fails is split again, down to single records. A record that fails alone is *poison*: it is
dead-lettered with its own error. One poison record among n costs at most 2·⌈log2 n⌉ runs,
k of them about 2k·log2(n/k) + 2k, a batch whose every record fails 2n - 2.

The halves get no retry and no backoff: retries are for transient errors, and the batch's own
retries already showed that its failure repeats. A transient error that strikes a half only
costs runs (the half is split further); it dead-letters a good record only by striking that
record's run alone.

These runs only *judge* records; their outputs and state updates are thrown away. The loop then
runs the batch once more without the poison records, as one run, and publishes that run alone
(see ``service/loop.py``). Publishing the halves that passed would be cheaper by a run, but
wrong wherever records of a batch meet: every half reads the state as it was before the batch,
so two halves holding the same key would each update the old row and one update would be lost;
and whatever a node computes across records (an account's velocity within the batch, a
de-duplication, a batch mean) would come out of arbitrary halves. The one run over the good
records gives their state and their cross-record results exactly as if the poison records had
never arrived, and keeps the commit one run, one publish, one commit (one transaction).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from confluent_kafka import Message

from kedro_stream.serde import EncodeError
from kedro_stream.service.decode import Decoded
from kedro_stream.service.messages import Outgoing, Stage
from kedro_stream.state.errors import StateUpdateError

T = TypeVar("T")


@dataclass(frozen=True)
class Isolated(Generic[T]):
    good: list[T]  # in the order given
    poison: list[tuple[T, Exception]]  # each with the error of its own run, in the order given
    runs: int  # runs spent finding them


def isolate(items: list[T], run: Callable[[list[T]], object], failed: Exception) -> Isolated[T]:
    """Split ``items``, which failed together with ``failed``, until every item either ran
    without error in some subset or failed alone. ``run(subset)`` raises when the subset
    fails; what it returns is ignored."""
    good: list[T] = []
    poison: list[tuple[T, Exception]] = []
    runs = 0

    def split(failing: list[T], error: Exception) -> None:
        nonlocal runs
        if len(failing) == 1:
            poison.append((failing[0], error))
            return
        middle = len(failing) // 2
        for half in (failing[:middle], failing[middle:]):
            runs += 1
            try:
                run(half)
            except Exception as half_error:
                split(half, half_error)
            else:
                good.extend(half)

    if items:
        split(items, failed)
    return Isolated(good, poison, runs)


def stage_of(error: BaseException) -> Stage:
    """The stage a batch (or a record alone) failed at, for its dead letters."""
    if isinstance(error, EncodeError):
        return Stage.ENCODE
    if isinstance(error, StateUpdateError):
        return Stage.STATE
    return Stage.PIPELINE


@dataclass(frozen=True)
class Poison:
    """A batch's records that failed on their own, as dead letters; ``isolated`` once the
    search ran (once a batch), even if it found none."""

    isolated: bool = False
    letters: dict[int, Outgoing] = field(default_factory=dict)  # by id() of the message
    stages: Counter[Stage] = field(default_factory=Counter)

    def without(self, good: list[Decoded]) -> list[Decoded]:
        """``good`` less the poison records."""
        if not self.letters:
            return good
        return [decoded for decoded in good if id(decoded[0]) not in self.letters]

    def letter(self, message: Message) -> Outgoing | None:
        return self.letters.get(id(message))

    @property
    def dead(self) -> list[Outgoing]:
        return list(self.letters.values())
