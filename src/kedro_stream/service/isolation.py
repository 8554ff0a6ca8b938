"""``on_failure: isolate``: a failed batch's records that fail on their own, set aside as dead
letters so that the rest of the batch can be published and committed.

A batch that still fails after its retries is bisected (:mod:`.bisection`): parts of it go
through steps 2 to 5 of the protocol (read state, run, encode outputs and state updates), and a
part that raises is split again. These trial runs only *judge* records; what they compute is
thrown away. The loop then runs the batch once more without the poison records, as one run,
and publishes that run alone (see ``service/loop.py``).

Publishing the parts that passed would be cheaper by a run, but wrong wherever records of a
batch meet: every part reads the state as it was before the batch, so two parts holding the
same key would each update the old row and one update would be lost; and whatever a node
computes across records (an account's velocity within the batch, a de-duplication, a batch
mean) would come out of arbitrary parts. The one run over the good records gives their state
and their cross-record results exactly as if the poison records had never arrived, and keeps
the commit one run, one publish, one commit (one transaction).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import KafkaException, Message, TopicPartition

from kedro_stream.config import OnFailure, StreamConfig
from kedro_stream.errors import headline
from kedro_stream.metrics import StreamMetrics
from kedro_stream.records import Decoded, Outgoing
from kedro_stream.service.batch import Batch
from kedro_stream.service.bisection import bisect_failures
from kedro_stream.service.commit import DeliveryError
from kedro_stream.service.dead_letters import DeadLetters, Stage, stage_of
from kedro_stream.service.decode import DecodedBatch
from kedro_stream.service.encode import Encoder
from kedro_stream.service.keepalive import KeepAlive, RunTimeout
from kedro_stream.service.runner import NamespaceRunner
from kedro_stream.state.keeper import State

logger = logging.getLogger(__name__)
#: One paused poll of the keep-alive, between the trial runs.
_ONE_POLL_S = 0.05
#: Failures that are no record's doing, so no search is made: a broker's, and a hung run (each
#: trial run of a part of the batch could hang too, and leave another thread behind).
_NO_RECORDS_DOING = (KafkaException, DeliveryError, RunTimeout)


@dataclass(frozen=True)
class Poison:
    """A batch's records that failed on their own, as dead letters; ``searched`` once the
    search ran (once a batch), even if it found none."""

    searched: bool = False
    letters: dict[int, Outgoing] = field(default_factory=dict)  # by id() of the message
    stages: Counter[Stage] = field(default_factory=Counter)

    def without(self, good: list[Decoded]) -> list[Decoded]:
        """``good`` less the poison records."""
        if not self.letters:
            return good
        return [decoded for decoded in good if id(decoded[0]) not in self.letters]

    def letter(self, message: Message) -> Outgoing | None:
        """The dead letter of ``message`` if it is poison."""
        return self.letters.get(id(message))

    @property
    def dead(self) -> list[Outgoing]:
        """The dead letters, to publish with the batch's outputs."""
        return list(self.letters.values())


class PoisonSearch:
    """Finds the poison records of a failed batch by trial runs of its parts."""

    def __init__(
        self,
        stream: StreamConfig,
        metrics: StreamMetrics,
        *,
        dead_letters: DeadLetters,
        state: State,
        runner: NamespaceRunner,
        encoder: Encoder,
        pause_after_s: float,
        unpolled_s: Callable[[], float],
    ) -> None:
        self._enabled = stream.on_failure is OnFailure.ISOLATE
        self._isolation_runs = metrics.isolation_runs.labels(stream.group_id)
        self._isolated = metrics.isolated.labels(stream.group_id)
        self._dead_letters = dead_letters
        self._state = state
        self._runner = runner
        self._encoder = encoder
        self._pause_after_s = pause_after_s
        self._unpolled_s = unpolled_s  # how long since the loop last polled its consumer

    def worth_searching(
        self, decoded: DecodedBatch | None, poison: Poison, error: Exception
    ) -> bool:
        """Under ``on_failure: isolate``, once a batch, when some record was run and the
        failure may be its doing."""
        return (
            self._enabled
            and decoded is not None
            and not poison.searched
            and bool(decoded.good)
            and not isinstance(error, _NO_RECORDS_DOING)
        )

    def search(
        self, batch: Batch, decoded: DecodedBatch, error: Exception, keepalive: KeepAlive
    ) -> Poison:
        """The records of ``decoded`` that fail on their own, as dead letters with their own
        error and stage."""
        started, offsets = time.monotonic(), batch.next_offsets()
        found = bisect_failures(
            decoded.good, lambda part: self._trial(part, offsets, keepalive), error
        )
        self._isolation_runs.inc(found.runs)
        self._isolated.inc(len(found.poison))
        letters = {
            id(message): self._dead_letters.of(message, own, stage_of(own))
            for (message, _), own in found.poison
        }
        stages = Counter(stage_of(own) for _, own in found.poison)
        first = f": first {headline(found.poison[0][1])}" if found.poison else ""
        logger.warning(
            "Isolating a failed batch of %d records took %d runs (%.2f s): %d fail on their own "
            "and go to the dead-letter topic, the other %d run once more together%s",
            len(decoded.good),
            found.runs,
            time.monotonic() - started,
            len(found.poison),
            len(found.good),
            first,
        )
        return Poison(searched=True, letters=letters, stages=stages)

    def _trial(
        self, part: list[Decoded], offsets: list[TopicPartition], keepalive: KeepAlive
    ) -> None:
        """Steps 2 to 5 of the protocol on ``part`` alone, as if every partition of the batch
        (``offsets``) were committed: raises where the batch would; what it computes is thrown
        away. The search is many runs in a row, each perhaps too short for
        the keep-alive to poll: once as long without a poll as a run that it would poll, one
        paused poll keeps this member in its group and the loop counted alive."""
        if self._unpolled_s() > self._pause_after_s:
            keepalive.sleep(_ONE_POLL_S)
        datasets = self._runner.run(part, self._state.read(part), keepalive)
        self._encoder.encode(datasets, part)
        self._state.changes(datasets, part, offsets)
