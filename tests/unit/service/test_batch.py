"""How a micro-batch closes. The consumer here is scripted: what is checked is which waits
collect asks the client for, not how Kafka fills them (integration tests cover that)."""

from __future__ import annotations

from typing import Any

from kedro_stream.service.batch import collect


class Record:
    def error(self) -> None:
        return None


class ScriptedConsumer:
    """Answers each consume call with the next list of the script (then nothing)."""

    def __init__(self, *answers: int) -> None:
        self.answers = list(answers)
        self.timeouts: list[float] = []

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        self.timeouts.append(timeout)
        count = min(self.answers.pop(0), num_messages) if self.answers else 0
        return [Record() for _ in range(count)]


def test_records_at_hand_make_a_batch_without_waiting() -> None:
    """Waiting max_wait on top of a batch's processing doubled end-to-end latency at 1k/s."""
    consumer = ScriptedConsumer(3, 5)
    batch = collect(consumer, max_size=100, max_wait_s=5.0)  # type: ignore[arg-type]
    assert len(batch) == 3
    assert consumer.timeouts == [0]


def test_an_idle_consumer_waits_up_to_max_wait_for_the_batch_to_fill() -> None:
    consumer = ScriptedConsumer(0, 2, 0, 4)
    batch = collect(consumer, max_size=6, max_wait_s=5.0)  # type: ignore[arg-type]
    assert len(batch) == 6
    assert consumer.timeouts[0] == 0
    assert all(0 < t <= 0.1 for t in consumer.timeouts[1:])  # slices, so a stop is seen soon


def test_an_idle_consumer_gives_up_after_max_wait() -> None:
    consumer = ScriptedConsumer()
    assert len(collect(consumer, max_size=6, max_wait_s=0.05)) == 0  # type: ignore[arg-type]
    assert consumer.timeouts[0] == 0
    assert len(consumer.timeouts) >= 2
