"""Dead letters: copies of incoming messages that could not be processed, and where each failed.

A dead-letter record keeps the original key, value and headers byte for byte and adds
``kedro-stream.*`` headers that say why and where it came from, so it can be replayed.

Each committed batch with dead letters is also said in the log (:class:`DeadLetterLog`), at most
one line every :data:`LOG_INTERVAL_S`: the metric counts them, but an operator reading the log
must see that records are being set aside, and why, without a flood of bad records flooding it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from confluent_kafka import Message

from kedro_stream.errors import first_line
from kedro_stream.records import HEADER_PREFIX, Outgoing
from kedro_stream.serde import EncodeError
from kedro_stream.state.errors import StateUpdateError

logger = logging.getLogger(__name__)
_MAX_REASON_CHARS = 1000
#: At most one dead-letter log line this often; the batches in between are summed into the next.
LOG_INTERVAL_S = 10.0


class Stage(str, Enum):
    """Where a record failed: its ``error.stage`` header and the dead-letter metric's label."""

    DECODE = "decode"  # its value is not a record of the input's format
    PIPELINE = "pipeline"  # the namespace run failed on its batch
    ENCODE = "encode"  # an output of its batch cannot be written in its topic's format
    STATE = "state"  # its batch's state updates do not replace its keys' rows


def stage_of(error: BaseException) -> Stage:
    """The stage a batch (or a record alone) failed at, for its dead letters."""
    if isinstance(error, EncodeError):
        return Stage.ENCODE
    if isinstance(error, StateUpdateError):
        return Stage.STATE
    return Stage.PIPELINE


@dataclass(frozen=True)
class DeadLetters:
    """Where a stream's failed records go, and the namespace they failed in."""

    topic: str
    namespace: str | None

    def of(self, message: Message, error: BaseException, stage: Stage) -> Outgoing:
        """A copy of ``message`` for the dead-letter topic, with the reason in headers."""
        _, timestamp = message.timestamp()
        added = {
            "error.class": type(error).__name__,
            "error.message": first_line(error)[:_MAX_REASON_CHARS],
            "error.stage": stage.value,
            "source.topic": message.topic() or "",
            "source.partition": str(message.partition()),
            "source.offset": str(message.offset()),
            "source.timestamp": str(timestamp),
            "namespace": self.namespace or "",
        }
        headers = list(message.headers() or [])
        headers += [(HEADER_PREFIX + k, v.encode()) for k, v in added.items()]
        return Outgoing(topic=self.topic, value=message.value(), key=message.key(), headers=headers)


def reason_of(letter: Outgoing) -> dict[str, str]:
    """The ``kedro-stream.*`` headers :meth:`DeadLetters.of` added to ``letter``, without their
    prefix. A replayed dead letter carries its earlier ones too: the last of a name, ours, wins."""
    return {
        name.removeprefix(HEADER_PREFIX): value.decode("utf-8", "replace")
        for name, value in letter.headers or []
        if name.startswith(HEADER_PREFIX) and value is not None
    }


class DeadLetterLog:
    """One WARNING line for each committed batch with dead letters: how many, at which stages,
    and the first one's error. Within ``interval_s`` of the last line, a batch is only counted,
    and the next line (or :meth:`flush`, when the stream stops) says how many went unsaid."""

    def __init__(
        self,
        topic: str,
        *,
        interval_s: float = LOG_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._topic = topic
        self._interval_s = interval_s
        self._clock = clock
        self._last: float | None = None  # when the last line was logged
        self._unsaid_records = 0
        self._unsaid_batches = 0

    def committed(self, reasons: Sequence[dict[str, str]], records: int) -> None:
        """A batch of ``records`` was committed with dead letters of these reasons (each its
        :func:`reason_of`), in the batch's order."""
        if not reasons:
            return
        now = self._clock()
        if self._last is not None and now - self._last < self._interval_s:
            self._unsaid_records += len(reasons)
            self._unsaid_batches += 1
            return
        self._last = now
        stages = Counter(reason["error.stage"] for reason in reasons)
        first = reasons[0]
        unsaid = self._take_unsaid()
        logger.warning(
            "Dead-lettered %d of %d records to %s (%s); the first, %s partition %s offset %s: "
            "%s: %s%s",
            len(reasons),
            records,
            self._topic,
            ", ".join(f"{n} at stage {stage}" for stage, n in stages.items()),
            first["source.topic"],
            first["source.partition"],
            first["source.offset"],
            first["error.class"],
            first["error.message"],
            f"; and {unsaid}" if unsaid else "",
        )

    def flush(self) -> None:
        """Say the batches no line has said yet: the stream stops, and no next line will."""
        unsaid = self._take_unsaid()
        if unsaid:
            logger.warning("Dead-lettered to %s: %s", self._topic, unsaid)

    def _take_unsaid(self) -> str:
        """What the lines held back counted, once: ``"412 more dead-lettered in 37 batches
        since the last line"``, or nothing."""
        records, batches = self._unsaid_records, self._unsaid_batches
        self._unsaid_records = self._unsaid_batches = 0
        if not batches:
            return ""
        return (
            f"{records} more dead-lettered in {batches} {'batch' if batches == 1 else 'batches'} "
            "since the last line"
        )
