"""What the loop has committed: a running total for the CLI, the metrics of each commit, and
its dead letters in the log."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kedro_stream.metrics import StreamMetrics
from kedro_stream.records import Outgoing
from kedro_stream.service.batch import Batch
from kedro_stream.service.dead_letters import DeadLetterLog, reason_of


@dataclass
class Progress:
    """What has been committed since the start: ``consume``'s last line."""

    batches: int = 0
    records: int = 0
    dead_lettered: int = 0
    produced: int = 0
    started: float = field(default_factory=time.monotonic)


class CommitLedger:
    """Counts every committed batch once, in :class:`Progress` and in the metrics, and says its
    dead letters in the log (:class:`DeadLetterLog`, rate-limited on ``clock``)."""

    def __init__(
        self,
        metrics: StreamMetrics,
        group: str,
        dead_letter_topic: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.progress = Progress()
        self._metrics = metrics
        self._group = group
        self._dead_letter_topic = dead_letter_topic
        self._log = DeadLetterLog(dead_letter_topic, clock=clock)

    def committed(self, batch: Batch, outputs: list[Outgoing], letters: Sequence[Outgoing]) -> None:
        """``outputs`` excludes the dead letters, ``letters``: each counts at the stage its
        headers name."""
        p, m, group = self.progress, self._metrics, self._group
        reasons = [reason_of(letter) for letter in letters]
        dead = Counter(reason["error.stage"] for reason in reasons)
        p.batches += 1
        p.records += len(batch)
        p.dead_lettered += len(letters)
        p.produced += len(outputs)
        for topic, count in Counter(message.topic() for message in batch.messages).items():
            m.consumed.labels(group, topic).inc(count)
        for topic, count in Counter(message.topic for message in outputs).items():
            m.produced.labels(group, topic).inc(count)
        for stage, count in dead.items():
            m.dead_lettered.labels(group, self._dead_letter_topic, stage).inc(count)
        # One observation a batch, of its oldest record: the latency its slowest record saw.
        oldest_ms = min(message.timestamp()[1] for message in batch.messages)
        if oldest_ms > 0:
            m.end_to_end.labels(group, batch.messages[0].topic()).observe(
                max(time.time() - oldest_ms / 1000, 0.0)
            )
        m.committed_now()
        self._log.committed(reasons, len(batch))

    def stopped(self) -> None:
        """The stream stops: the log says the dead letters its last line held back."""
        self._log.flush()
