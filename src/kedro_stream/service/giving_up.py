"""Giving a batch up: what ``on_failure`` does with a batch that still fails, and how the
service stops.

``stop`` ends the service with nothing committed for the batch: a restart reads it again.
``dead-letter`` (and ``isolate``, for a failure that isolation cannot narrow) sends every record
of the batch to the dead-letter topic and commits it: the protocol's steps 6 and 7 (publish,
commit) for a batch that has only dead letters. A record that failed decoding, or was isolated
as poison, keeps its own error and stage; the others carry the batch's.
"""

from __future__ import annotations

import logging
from collections import Counter

from confluent_kafka import KafkaException

from kedro_stream.config import OnFailure, StreamConfig
from kedro_stream.errors import KedroStreamError, headline
from kedro_stream.kafka.errors import is_fatal
from kedro_stream.records import Outgoing
from kedro_stream.service.batch import Batch
from kedro_stream.service.commit import CommitProtocol
from kedro_stream.service.dead_letters import DeadLetters, Stage, stage_of
from kedro_stream.service.decode import DecodedBatch
from kedro_stream.service.isolation import Poison
from kedro_stream.service.progress import CommitLedger
from kedro_stream.service.rebalance import Assignment

logger = logging.getLogger(__name__)


class StreamStopped(KedroStreamError):
    """The service stopped on a batch it could not process (``on_failure: stop``), or on a
    fatal client error."""


def stopped_by_fatal(error: BaseException) -> StreamStopped:
    """The stop of a client that cannot go on: another instance has likely taken over."""
    return StreamStopped(
        f"Fatal Kafka error, nothing committed for the batch (a newer instance with the same "
        f"transactional id may have taken over): {headline(error)}"
    )


def abort(protocol: CommitProtocol) -> None:
    """Abort the batch's transaction; a client that turned fatal meanwhile stops the
    service."""
    try:
        protocol.abort()
    except KafkaException as exc:
        if is_fatal(exc):
            raise stopped_by_fatal(exc) from exc
        raise


class GiveUp:
    """``on_failure`` for a batch that still fails after its retries (and isolation)."""

    def __init__(
        self,
        stream: StreamConfig,
        dead_letters: DeadLetters,
        assignment: Assignment,
        ledger: CommitLedger,
    ) -> None:
        self._on_failure = stream.on_failure
        self._attempts = stream.retry.attempts
        self._dead_letters = dead_letters
        self._assignment = assignment
        self._ledger = ledger

    def give_up(
        self,
        batch: Batch,
        decoded: DecodedBatch | None,
        error: Exception,
        poison: Poison,
        protocol: CommitProtocol,
    ) -> None:
        """Stop with nothing committed (raises :class:`StreamStopped`), or dead-letter the
        batch and commit it."""
        stage = stage_of(error)
        if self._on_failure is OnFailure.STOP:
            tried = (
                f"failed {self._attempts} times, last with"
                if stage is Stage.PIPELINE
                else f"failed at stage {stage.value} with"
            )
            raise StreamStopped(
                f"Batch of {len(batch)} records {tried} {headline(error)}; nothing committed for it"
            ) from error
        dead, stages = self._letters(batch, decoded, error, stage, poison)
        logger.error(
            "Dead-lettering a batch of %d records (%s): %s",
            len(batch),
            ", ".join(f"{n} at stage {s.value}" for s, n in stages.items()),
            headline(error),
        )
        offsets = self._assignment.still_owned(batch)  # raises Overtaken: read again instead
        try:
            protocol.publish(dead)  # 6.
            protocol.commit(offsets)  # 7.
        except Exception as exc:
            if is_fatal(exc):
                raise stopped_by_fatal(exc) from exc
            abort(protocol)
            raise StreamStopped(f"Could not dead-letter a failed batch: {headline(exc)}") from exc
        self._ledger.committed(batch, [], dead)

    def _letters(
        self,
        batch: Batch,
        decoded: DecodedBatch | None,
        error: Exception,
        stage: Stage,
        poison: Poison,
    ) -> tuple[list[Outgoing], Counter[Stage]]:
        """Every record of the batch as a dead letter, in offset order, and their count per
        stage."""
        if decoded is None:  # decoding itself failed (a registry outage): no record was judged
            return [self._dead_letters.of(m, error, stage) for m in batch.messages], Counter(
                {stage: len(batch)}
            )
        judged = {id(message) for message, _ in decoded.good}
        undecodable = iter(decoded.dead)
        dead = []
        for m in batch.messages:
            own = poison.letter(m)
            if own is None:
                own = (
                    self._dead_letters.of(m, error, stage) if id(m) in judged else next(undecodable)
                )
            dead.append(own)
        counts = Counter(
            {Stage.DECODE: len(decoded.dead), stage: len(decoded.good) - len(poison.letters)}
        )
        return dead, counts + poison.stages  # + drops the zero counts
