"""Where ``kedro stream reset`` moves a group's offset on each partition: pure arithmetic.

Every new offset lies within the partition's retained records, ``[low, high]`` (``high``, the
next offset to be written, means "nothing left to read"), as ``kafka-consumer-groups
--reset-offsets`` keeps them. A partition with nothing committed reads from ``low`` (the
service's ``auto.offset.reset`` is ``earliest``), which is also where its lag counts from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum


class Mode(str, Enum):
    """The kinds of target a reset moves offsets to (one per ``--to-*`` flag)."""

    EARLIEST = "earliest"
    LATEST = "latest"
    OFFSET = "offset"
    DATETIME = "datetime"
    SHIFT = "shift"


@dataclass(frozen=True)
class Target:
    """Where to: ``value`` is the offset (``OFFSET``) or the shift (``SHIFT``); ``when`` the
    time (``DATETIME``, aware)."""

    mode: Mode
    value: int = 0
    when: datetime | None = None

    def describe(self) -> str:
        """The target in words, for the reset table's title."""
        return {
            Mode.EARLIEST: "earliest",
            Mode.LATEST: "latest",
            Mode.OFFSET: f"offset {self.value}",
            Mode.DATETIME: f"first record at or after {self.when}",
            Mode.SHIFT: f"committed {self.value:+d}",
        }[self.mode]


@dataclass(frozen=True)
class Move:
    """One partition's offset before and after; ``current`` is None when nothing is committed."""

    topic: str
    partition: int
    current: int | None
    new: int
    low: int
    high: int

    @property
    def lag_before(self) -> int:
        """Records left to process at the committed offset (all retained ones without one)."""
        return max(self.high - (self.low if self.current is None else self.current), 0)

    @property
    def lag_after(self) -> int:
        """Records left to process at the new offset."""
        return max(self.high - self.new, 0)


def from_iso(text: str) -> datetime:
    """``datetime.fromisoformat``, reading a trailing ``Z`` as UTC on every Python: 3.10's
    refuses it, yet ``Z`` is how most tools and logs write UTC."""
    if not text.endswith("Z"):
        return datetime.fromisoformat(text)
    when = datetime.fromisoformat(text[:-1])
    if when.tzinfo is not None:
        raise ValueError(f"{text!r} has two time zones")
    return when.replace(tzinfo=timezone.utc)


def parse_time(text: str) -> datetime:
    """An ISO-8601 time with its time zone (``Z`` for UTC). A time without one is refused rather
    than guessed: the machine's zone and UTC differ by hours of records."""
    try:
        when = from_iso(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO-8601 time, e.g. 2026-12-03T09:30:00Z") from None
    if when.tzinfo is None:
        raise ValueError(
            f"{text!r} has no time zone: add one, e.g. {text}Z for UTC or {text}+01:00"
        )
    return when


def clamp(offset: int, low: int, high: int) -> int:
    """``offset`` within the records the partition still holds."""
    return min(max(offset, low), high)


def offset_for_time(found: int, low: int, high: int) -> int:
    """The offset of the first record at or after a time, from the broker's answer ``found``
    (ListOffsets by timestamp); -1 means no record is that late: nothing left to read."""
    return high if found < 0 else clamp(found, low, high)


def new_offset(
    target: Target, current: int | None, low: int, high: int, found_by_time: int | None = None
) -> int:
    """Where ``target`` puts a partition whose committed offset is ``current`` (None: nothing
    committed) and whose retained records are ``low``..``high``; ``found_by_time`` is the
    broker's answer for ``DATETIME``."""
    if target.mode is Mode.EARLIEST:
        return low
    if target.mode is Mode.LATEST:
        return high
    if target.mode is Mode.OFFSET:
        return clamp(target.value, low, high)
    if target.mode is Mode.SHIFT:
        return clamp((low if current is None else current) + target.value, low, high)
    if found_by_time is None:
        raise ValueError("a reset by time needs the broker's offset for the time")
    return offset_for_time(found_by_time, low, high)
