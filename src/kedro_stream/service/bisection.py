"""Bisection: the items of a failed set that fail on their own, found by running halves of it.

A set that failed is split in two and each half is run again; a half that fails is split again,
down to single items. An item that fails alone is *poison*. One poison item among n costs at
most 2·⌈log2 n⌉ runs, k of them about 2k·log2(n/k) + 2k, a set whose every item fails 2n - 2.

The halves get no retry and no backoff: retries are for transient errors, and the batch's own
retries already showed that its failure repeats. A transient error that strikes a half only
costs runs (the half is split further); it marks a good item poison only by striking that
item's run alone.

Pure: it knows nothing of Kafka or of the namespace. :mod:`kedro_stream.service.isolation`
runs it on a batch's records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Bisected(Generic[T]):
    """The outcome: which items passed, which failed alone (with the error of their own run),
    and what finding them cost."""

    good: list[T]  # in the order given
    poison: list[tuple[T, Exception]]  # each with the error of its own run, in the order given
    runs: int  # runs spent finding them


def bisect_failures(
    items: list[T], run: Callable[[list[T]], object], failed: Exception
) -> Bisected[T]:
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
    return Bisected(good, poison, runs)
