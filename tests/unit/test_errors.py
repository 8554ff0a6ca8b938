"""The floor's error helpers: a message cut to its first line for logs and headers, named by
its class for another error's message, flattened whole for a CLI ``Error:`` line, and valid
choices listed the same way in every error that names them, with the one a typo meant."""

from __future__ import annotations

import pytest

from kedro_stream.errors import (
    KedroStreamError,
    UnknownNamespaceError,
    choices,
    did_you_mean,
    first_line,
    flattened,
    headline,
)

MULTI_LINE = ValueError("\n  column 'amount' is missing\n  in batch 3\n")


def test_the_first_line_skips_surrounding_blank_lines() -> None:
    assert first_line(MULTI_LINE) == "column 'amount' is missing"


def test_the_first_line_of_an_empty_message_is_empty() -> None:
    assert first_line(RuntimeError()) == ""
    assert first_line(RuntimeError("   \n ")) == ""


def test_the_headline_names_the_class_and_the_first_line() -> None:
    assert headline(MULTI_LINE) == "ValueError: column 'amount' is missing"
    assert headline(KedroStreamError()) == "KedroStreamError: "


def test_the_headline_is_cut_at_its_limit() -> None:
    long = RuntimeError("x" * 1000)

    assert headline(long) == "RuntimeError: " + "x" * 486
    assert len(headline(long)) == 500
    assert headline(long, limit=12) == "RuntimeError"


def test_flattened_keeps_the_whole_message_on_one_line_without_the_class() -> None:
    assert flattened(MULTI_LINE) == "column 'amount' is missing in batch 3"
    assert flattened(KedroStreamError("a\tb\r\n\nc")) == "a b c"


def test_an_unknown_namespace_is_not_quoted_like_a_key_error() -> None:
    error = UnknownNamespaceError("Namespace 'x' is not in the booted pipeline")

    assert isinstance(error, KeyError)
    assert str(error) == "Namespace 'x' is not in the booted pipeline"
    assert flattened(error) == "Namespace 'x' is not in the booted pipeline"


def test_choices_are_sorted_and_quoted() -> None:
    assert choices({"scoring", "alerts", "features"}) == "'alerts', 'features', 'scoring'"
    assert choices(iter(["b", "a"])) == "'a', 'b'"


@pytest.mark.parametrize("empty", [[], set(), iter(())])
def test_no_choices_say_none(empty: object) -> None:
    assert choices(empty) == "(none)"  # type: ignore[arg-type]


def test_a_close_name_is_suggested_and_a_far_one_is_not() -> None:
    assert did_you_mean("on_falure", ["on_failure", "retry"]) == " (did you mean 'on_failure'?)"
    assert did_you_mean("user", ["user_id", "amount"]) == " (did you mean 'user_id'?)"
    assert did_you_mean("zzz", ["on_failure", "retry"]) == ""
    assert did_you_mean("x", []) == ""


def test_a_close_name_is_suggested() -> None:
    assert did_you_mean("click", ["payments", "clicks"]) == " (did you mean 'clicks'?)"


@pytest.mark.parametrize("names", [[], ["payments", "scores"]])
def test_nothing_is_suggested_without_a_close_name(names: list[str]) -> None:
    assert did_you_mean("click", names) == ""
