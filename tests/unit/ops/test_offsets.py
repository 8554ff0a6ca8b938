"""Where a reset moves each partition: every mode, clamped to the retained records."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from kedro_stream.ops.offsets import (
    Mode,
    Move,
    Target,
    from_iso,
    new_offset,
    offset_for_time,
    parse_time,
)

UTC = timezone.utc  # datetime.UTC is 3.11+
PLUS_ONE = timezone(timedelta(hours=1))
LOW, HIGH = 100, 200  # records 100..199 retained


@pytest.mark.parametrize(
    ("target", "current", "expected"),
    [
        (Target(Mode.EARLIEST), 150, LOW),
        (Target(Mode.EARLIEST), None, LOW),
        (Target(Mode.LATEST), 150, HIGH),
        (Target(Mode.OFFSET, 120), 150, 120),
        (Target(Mode.OFFSET, 5), 150, LOW),  # before the retained records
        (Target(Mode.OFFSET, 999), 150, HIGH),  # beyond the end
        (Target(Mode.SHIFT, -30), 150, 120),
        (Target(Mode.SHIFT, -80), 150, LOW),
        (Target(Mode.SHIFT, 30), 150, 180),
        (Target(Mode.SHIFT, 80), 150, HIGH),
        (Target(Mode.SHIFT, 10), None, 110),  # nothing committed: counts from the start
        (Target(Mode.SHIFT, 0), 150, 150),
    ],
)
def test_each_mode_lands_within_the_retained_records(
    target: Target, current: int | None, expected: int
) -> None:
    assert new_offset(target, current, LOW, HIGH) == expected


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        (150, 150),
        (-1, HIGH),  # no record at or after the time: nothing left to read
        (50, LOW),  # retention dropped the answer meanwhile
        (HIGH, HIGH),
    ],
)
def test_a_time_maps_to_the_first_record_at_or_after_it(found: int, expected: int) -> None:
    assert offset_for_time(found, LOW, HIGH) == expected
    when = datetime(2026, 12, 3, tzinfo=UTC)
    assert new_offset(Target(Mode.DATETIME, when=when), 170, LOW, HIGH, found) == expected


def test_a_reset_by_time_needs_the_brokers_answer() -> None:
    with pytest.raises(ValueError, match="needs the broker's offset"):
        new_offset(Target(Mode.DATETIME, when=datetime.now(UTC)), 170, LOW, HIGH)


def test_lag_counts_from_the_start_when_nothing_is_committed() -> None:
    never = Move("t", 0, None, 150, LOW, HIGH)
    assert (never.lag_before, never.lag_after) == (100, 50)
    back = Move("t", 0, 190, LOW, LOW, HIGH)
    assert (back.lag_before, back.lag_after) == (10, 100)


def test_times_need_a_zone() -> None:
    assert parse_time("2026-12-03T09:30:00Z") == datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
    assert parse_time("2026-12-03T10:30:00+01:00") == datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
    naive = re.escape("has no time zone: add one, e.g. 2026-12-03T09:30Z for UTC")
    with pytest.raises(ValueError, match=naive):
        parse_time("2026-12-03T09:30")
    with pytest.raises(ValueError, match="not an ISO-8601 time"):
        parse_time("yesterday")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-03T09:30:00Z", datetime(2026, 12, 3, 9, 30, tzinfo=UTC)),
        ("2026-12-03T09:30Z", datetime(2026, 12, 3, 9, 30, tzinfo=UTC)),
        ("2026-12-03 09:30:00Z", datetime(2026, 12, 3, 9, 30, tzinfo=UTC)),
        ("2026-12-03T09:30:00.250Z", datetime(2026, 12, 3, 9, 30, 0, 250_000, tzinfo=UTC)),
        ("2026-12-03Z", datetime(2026, 12, 3, tzinfo=UTC)),  # midnight
        ("2026-12-03T09:30:00+00:00", datetime(2026, 12, 3, 9, 30, tzinfo=UTC)),
        ("2026-12-03T10:30:00+01:00", datetime(2026, 12, 3, 10, 30, tzinfo=PLUS_ONE)),
        ("2026-12-03T09:30:00", datetime(2026, 12, 3, 9, 30)),  # naive: parse_time refuses it
    ],
)
def test_z_reads_as_utc_on_every_python(text: str, expected: datetime) -> None:
    """Python 3.10's ``fromisoformat`` refuses ``Z``; 3.11's reads it."""
    when = from_iso(text)
    assert (when, when.utcoffset()) == (expected, expected.utcoffset())


@pytest.mark.parametrize("text", ["Z", "T09:30Z", "2026-12-03T09:30:00+00:00Z"])
def test_z_is_a_suffix_of_a_time_not_a_time(text: str) -> None:
    with pytest.raises(ValueError, match="not an ISO-8601 time"):
        parse_time(text)
