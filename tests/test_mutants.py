"""``make mutants`` cannot rot silently: every mutant still fits the code it plants a bug in,
and every test it names is still collected under that id. Fast: nothing is planted or run."""

from __future__ import annotations

from dataclasses import replace

from tests.mutants import LOOP, MUTANTS, Mutant, missing_tests, unplantable

EXISTING = "tests/unit/service/test_batch.py::test_records_at_hand_make_a_batch_without_waiting"


def test_every_mutant_applies_once_and_compiles() -> None:
    assert unplantable(MUTANTS) == []


def test_every_test_a_mutant_names_exists() -> None:
    assert missing_tests(MUTANTS) == []


def test_a_stale_test_id_is_reported() -> None:
    stale = Mutant(
        "stale",
        LOOP,
        "",
        "",
        (EXISTING, "tests/unit/service/test_batch.py::test_renamed_since"),
    )
    assert missing_tests([stale]) == ["stale: tests/unit/service/test_batch.py::test_renamed_since"]


def test_a_bare_id_of_a_parametrized_test_is_stale() -> None:
    """A bare id selects every case when run, but no outcome in the report carries it."""
    [named] = [m for m in MUTANTS if m.name == "deferred offsets not committed on revocation"]
    parametrized = named.tests[1]
    assert parametrized.endswith("[classic]")
    bare = replace(named, tests=(parametrized.removesuffix("[classic]"),))
    assert missing_tests([bare]) == [f"{named.name}: {bare.tests[0]}"]


def test_text_that_moved_or_does_not_compile_is_reported() -> None:
    [mutant] = [m for m in MUTANTS if m.name == "the poison records run again with the rest"]
    moved = replace(mutant, original=mutant.original + "# not in the code\n")
    broken = replace(mutant, planted="        good = (\n")
    found = unplantable([moved, broken])
    assert found[0] == f"{mutant.name}: its original text occurs 0 times in {LOOP}"
    assert found[1].startswith(f"{mutant.name}: the planted text does not compile")
    assert len(found) == 2
