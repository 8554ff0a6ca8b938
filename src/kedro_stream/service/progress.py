"""What the loop has committed: a running total for the CLI, and the metrics of each commit."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from kedro_stream.metrics import StreamMetrics
from kedro_stream.records import Outgoing
from kedro_stream.service.batch import Batch
from kedro_stream.service.dead_letters import Stage


@dataclass
class Progress:
    """What has been committed since the start: ``consume``'s last line."""

    batches: int = 0
    records: int = 0
    dead_lettered: int = 0
    produced: int = 0
    started: float = field(default_factory=time.monotonic)


class CommitLedger:
    """Counts every committed batch once, in :class:`Progress` and in the metrics."""

    def __init__(self, metrics: StreamMetrics, group: str, dead_letter_topic: str) -> None:
        self.progress = Progress()
        self._metrics = metrics
        self._group = group
        self._dead_letter_topic = dead_letter_topic

    def committed(self, batch: Batch, outputs: list[Outgoing], dead: Counter[Stage]) -> None:
        """``outputs`` excludes dead letters, which ``dead`` counts per stage."""
        p, m, group = self.progress, self._metrics, self._group
        dead_total = sum(dead.values())
        p.batches += 1
        p.records += len(batch)
        p.dead_lettered += dead_total
        p.produced += len(outputs)
        for topic, count in Counter(message.topic() for message in batch.messages).items():
            m.consumed.labels(group, topic).inc(count)
        for topic, count in Counter(message.topic for message in outputs).items():
            m.produced.labels(group, topic).inc(count)
        for stage, count in dead.items():
            if count:
                m.dead_lettered.labels(group, self._dead_letter_topic, stage.value).inc(count)
        # One observation a batch, of its oldest record: the latency its slowest record saw.
        oldest_ms = min(message.timestamp()[1] for message in batch.messages)
        if oldest_ms > 0:
            m.end_to_end.labels(group, batch.messages[0].topic()).observe(
                max(time.time() - oldest_ms / 1000, 0.0)
            )
        m.committed_now()
