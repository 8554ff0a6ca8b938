"""Finding the records of a failed batch that fail on their own, by bisection."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kedro_stream.service.bisection import bisect_failures


class Poisoned(ValueError):
    """Raised by a run holding a poison item; names the first one."""


def runner(poison: set[int], seen: list[Sequence[int]] | None = None):
    """A run that fails on any subset holding a poison item, naming that item."""

    def run(subset: Sequence[int]) -> None:
        if seen is not None:
            seen.append(list(subset))
        bad = [item for item in subset if item in poison]
        if bad:
            raise Poisoned(f"item {bad[0]}")

    return run


def batch_error(poison: set[int]) -> Poisoned:
    return Poisoned(f"item {min(poison)}") if poison else Poisoned("together")


def bound(n: int, k: int) -> int:
    """Runs a bisection may spend: 2 per failing subset of size > 1, at most k failing
    subsets per level of the tree, ceil(log2 n) levels."""
    return 2 * k * math.ceil(math.log2(n)) if n > 1 else 0


def test_one_poison_record_among_1000_costs_at_most_2_log2_n_runs() -> None:
    items, poison = list(range(1000)), {617}
    found = bisect_failures(items, runner(poison), batch_error(poison))

    assert [item for item, _ in found.poison] == [617]
    assert str(found.poison[0][1]) == "item 617"
    assert found.good == [i for i in items if i != 617]  # order kept
    assert found.runs <= 2 * math.ceil(math.log2(1000))  # 20
    assert found.runs == 20


def test_five_poison_records_are_each_dead_lettered_with_their_own_error() -> None:
    items, poison = list(range(1000)), {3, 250, 251, 700, 999}
    found = bisect_failures(items, runner(poison), batch_error(poison))

    assert [(item, str(error)) for item, error in found.poison] == [
        (p, f"item {p}") for p in sorted(poison)
    ]
    assert found.good == [i for i in items if i not in poison]
    assert found.runs <= bound(1000, 5)
    assert found.runs == 70  # the bound is 100


def test_a_batch_whose_every_record_fails_costs_2n_minus_2_runs() -> None:
    items = list(range(16))
    found = bisect_failures(items, runner(set(items)), batch_error(set(items)))

    assert [item for item, _ in found.poison] == items
    assert found.good == []
    assert found.runs == 2 * 16 - 2


def test_a_batch_failing_only_together_has_no_poison_record() -> None:
    """Both halves pass: no record fails on its own (the loop then runs the batch once more
    and, if it fails again, gives it up whole)."""
    found = bisect_failures(list(range(10)), runner(set()), batch_error(set()))

    assert found.poison == []
    assert found.good == list(range(10))
    assert found.runs == 2


def test_a_single_record_that_failed_is_poison_without_another_run() -> None:
    seen: list[Sequence[int]] = []
    error = Poisoned("item 7")
    found = bisect_failures([7], runner({7}, seen), error)

    assert found.poison == [(7, error)]
    assert (found.runs, seen) == (0, [])


def test_nothing_to_isolate() -> None:
    found = bisect_failures([], runner(set()), Poisoned("none"))
    assert (found.good, found.poison, found.runs) == ([], [], 0)


def test_the_failed_batch_itself_is_never_run_again() -> None:
    seen: list[Sequence[int]] = []
    bisect_failures(list(range(64)), runner({5}, seen), batch_error({5}))
    assert len(seen) == 2 * 6
    assert all(len(subset) < 64 for subset in seen)


def test_an_interrupt_is_not_taken_for_a_poison_record() -> None:
    def run(subset: Sequence[int]) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        bisect_failures([1, 2], run, Poisoned("item 1"))


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=1, max_value=300).flatmap(
        lambda n: st.tuples(st.just(n), st.sets(st.integers(0, n - 1), min_size=1))
    )
)
def test_exactly_the_poison_records_are_found_within_the_bound(
    case: tuple[int, set[int]],
) -> None:
    n, poison = case
    items = list(range(n))
    found = bisect_failures(items, runner(poison), batch_error(poison))

    assert [item for item, _ in found.poison] == sorted(poison)
    assert found.good == [i for i in items if i not in poison]
    assert found.runs <= bound(n, len(poison))
    assert found.runs <= 2 * n - 2
