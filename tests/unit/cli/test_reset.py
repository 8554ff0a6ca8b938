"""``reset`` moves offsets to exactly one target: one flag names it, none or several are a
usage error, and a time it cannot read is a bad ``--to-datetime``, all before Kafka is asked."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import click
import pytest
from click.testing import CliRunner

from kedro_stream.cli import commands
from kedro_stream.cli import reset as reset_module
from kedro_stream.cli.reset import _target
from kedro_stream.ops.offsets import Mode, Target

NOTHING = {
    "to_earliest": False,
    "to_latest": False,
    "to_offset": None,
    "to_datetime": None,
    "shift_by": None,
}


def target(**flags: object) -> Target:
    return _target(**{**NOTHING, **flags})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"to_earliest": True}, Target(Mode.EARLIEST)),
        ({"to_latest": True}, Target(Mode.LATEST)),
        ({"to_offset": 42}, Target(Mode.OFFSET, 42)),
        ({"to_offset": 0}, Target(Mode.OFFSET, 0)),  # offset 0 is given, not absent
        ({"shift_by": -3}, Target(Mode.SHIFT, -3)),
        ({"shift_by": 0}, Target(Mode.SHIFT, 0)),
        (
            {"to_datetime": "2026-12-03T09:00Z"},
            Target(Mode.DATETIME, when=datetime(2026, 12, 3, 9, tzinfo=timezone.utc)),
        ),
        (
            {"to_datetime": "2026-12-03T10:00+01:00"},
            Target(Mode.DATETIME, when=datetime(2026, 12, 3, 9, tzinfo=timezone.utc)),
        ),
    ],
)
def test_exactly_one_flag_gives_its_target(flags: dict[str, object], expected: Target) -> None:
    chosen = target(**flags)

    assert chosen == expected
    assert chosen.when is None or chosen.when.utcoffset() is not None


def test_the_datetime_keeps_its_zone() -> None:
    when = target(to_datetime="2026-12-03T10:00+01:00").when
    assert when is not None and when.utcoffset() == timedelta(hours=1)


@pytest.mark.parametrize(
    "flags",
    [
        {},
        {"to_earliest": True, "to_latest": True},
        {"to_offset": 0, "shift_by": 0},
        {"to_latest": True, "to_datetime": "2026-12-03T09:00Z"},
    ],
)
def test_no_flag_or_two_flags_are_a_usage_error(flags: dict[str, object]) -> None:
    with pytest.raises(click.UsageError, match=r"give exactly one of --to-earliest, --to-latest"):
        target(**flags)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("yesterday", r"'yesterday' is not an ISO-8601 time"),
        ("2026-12-03T09:00", r"'2026-12-03T09:00' has no time zone"),
    ],
)
def test_a_time_it_cannot_read_is_a_bad_to_datetime(text: str, message: str) -> None:
    with pytest.raises(click.BadParameter, match=message) as raised:
        target(to_datetime=text)

    assert raised.value.param_hint == "--to-datetime"


@pytest.fixture
def no_kafka(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands below must stop before the reset: it would ask a broker."""

    def asked(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the reset was reached")

    monkeypatch.setattr(reset_module, "reset", asked)


@pytest.mark.usefixtures("no_kafka")
def test_the_command_refuses_a_missing_target_with_exit_status_2() -> None:
    result = CliRunner().invoke(commands, ["stream", "reset", "-g", "g", "-t", "events"])

    assert result.exit_code == 2
    assert "give exactly one of --to-earliest" in result.stderr


@pytest.mark.usefixtures("no_kafka")
def test_the_command_names_the_option_of_a_bad_time() -> None:
    args = ["stream", "reset", "-g", "g", "-t", "events", "--to-datetime", "noon"]

    result = CliRunner().invoke(commands, args)

    assert result.exit_code == 2
    assert "Invalid value for --to-datetime: 'noon' is not an ISO-8601 time" in result.stderr
