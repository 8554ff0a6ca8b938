"""The stream loop: one micro-batch at a time through the commit protocol.

Each batch (:meth:`StreamService._process`), top to bottom:

1. decode   message values → records; a bad value becomes a dead letter (stage ``decode``)
2. run      the namespace on the good records (and, for a stateful stream, the rows of their
            keys read from the partitions' stores), on the keep-alive's worker thread
3. encode   its output datasets → messages for their topics; state updates → changelog records
4. publish  outputs, dead letters and changelog records (inside the batch's transaction under
            exactly-once)
5. commit   the batch's offsets, once every message is acknowledged, for the partitions this
            member still owns
6. store    a stateful stream writes the committed partitions' updates to their stores

Failure paths, beside them:

- a rebalance refused the commit (:class:`CommitAbandoned`): what this member still owns is
  read again; no retry, nothing dead-lettered;
- an output cannot be encoded (:class:`EncodeError`), or state updates do not replace the
  batch's keys' rows (:class:`StateUpdateError`): it would fail the same way again, so the
  batch is given up at once (stage ``encode`` or ``state``), or isolated at once;
- a fatal client error (a newer instance fenced this one): the service stops, nothing committed;
- anything else: retried with backoff, then given up (stage ``pipeline``).

Giving up follows ``on_failure``: stop with nothing committed; dead-letter every record of
the batch and commit it (a record that failed decoding keeps its own error and stage); or
isolate: find the records that fail on their own by running halves of the batch
(``service/isolate.py``), then take the batch through steps 2-6 once more without them, their
dead letters published with its outputs and committed with it. A failure that is no record's
doing (a hung run, a broker error), or one that remains without the poison records, is
dead-lettered whole.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from kedro_stream.config import Guarantee, KafkaConfig, OnFailure, StreamConfig
from kedro_stream.errors import KedroStreamError, one_line
from kedro_stream.kafka.client_log import CLIENT_LOG
from kedro_stream.kafka.clients import (
    METADATA_TIMEOUT_S,
    DeliveryCallback,
    is_development_broker,
    make_admin,
    make_restore_consumer,
)
from kedro_stream.kafka.errors import is_fatal, kafka_error
from kedro_stream.metrics import StreamMetrics
from kedro_stream.serde import EncodeError
from kedro_stream.serde.frames import to_dataset
from kedro_stream.service.batch import Batch, collect
from kedro_stream.service.codecs import stream_codecs
from kedro_stream.service.commit import (
    AtLeastOnce,
    CommitAbandoned,
    CommitProtocol,
    DeliveryError,
    DeliveryFailures,
    ExactlyOnce,
)
from kedro_stream.service.decode import Decoded, DecodedBatch, Decoder
from kedro_stream.service.encode import Encoder
from kedro_stream.service.isolate import Poison, isolate, stage_of
from kedro_stream.service.keepalive import KeepAlive, RunTimeout
from kedro_stream.service.messages import DeadLetters, Outgoing, Stage
from kedro_stream.service.progress import CommitLedger, Progress
from kedro_stream.service.rebalance import Assignment
from kedro_stream.service.retry import Backoff
from kedro_stream.service.wiring import (
    check_states,
    input_dataset,
    published_outputs,
    unpublished_outputs,
    unpublished_warning,
)
from kedro_stream.session import StreamSession
from kedro_stream.state.errors import StateUpdateError
from kedro_stream.state.streamstate import StateChanges, StreamState
from kedro_stream.state.topics import TOPICS_TIMEOUT_S, ensure_changelogs

logger = logging.getLogger(__name__)
#: A run (or a retry backoff) longer than this polls with the partitions paused.
_PAUSE_AFTER_S = 2.0
#: One paused poll of the keep-alive, between the runs of an isolation.
_ONE_POLL_S = 0.05
#: Failures that are no record's doing, so isolation is not tried: a broker's, and a hung run
#: (each run judging a part of the batch could hang too, and leave another thread behind).
_NO_RECORDS_DOING = (KafkaException, DeliveryError, RunTimeout)
#: How long an idle stop without any assignment asks the cluster whether it answers at all.
_REACH_TIMEOUT_S = 2.0
# Start-up metadata errors that mean no broker answered.
_NO_ANSWER = (KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._ALL_BROKERS_DOWN)


class KafkaUnreachable(KedroStreamError):
    """No broker answered the service: a wrong address or security setting, or the cluster
    is down. The message ends with the last failure the clients logged."""

    def __init__(self, bootstrap: str, within_s: float, waiting_for: str) -> None:
        last = CLIENT_LOG.last_failure
        super().__init__(
            f"Never reached Kafka at {bootstrap} within {within_s:g} s ({waiting_for}): check "
            "--bootstrap-servers (kafka.bootstrap_servers in stream.yml), kafka.client's "
            "security settings and that the cluster is up"
            + (f"; last failure: {last}" if last else "")
        )


class StreamStopped(KedroStreamError):
    """The service stopped on a batch it could not process (``on_failure: stop``), or on a
    fatal client error."""


class StreamService:
    """Runs one stream until stopped, idle, or ``max_messages`` records are committed."""

    def __init__(
        self,
        session: StreamSession,
        stream: StreamConfig,
        kafka: KafkaConfig,
        *,
        project_path: Path,
        consumer_factory: Callable[[], Consumer],
        producer_factory: Callable[[DeliveryCallback | None], Producer],
        max_messages: int | None = None,
        idle_timeout_s: float | None = None,
        metrics: StreamMetrics | None = None,
    ) -> None:
        self._session = session
        self._stream = stream
        self._max_messages = max_messages
        self._idle_timeout_s = idle_timeout_s
        self._consumer_factory = consumer_factory
        self._producer_factory = producer_factory
        self._stop = threading.Event()
        self.metrics = metrics or StreamMetrics(
            group=stream.group_id, namespace=stream.namespace, guarantee=stream.guarantee.value
        )
        self.assignment = Assignment(self.metrics, stream.group_id)
        self._ledger = CommitLedger(self.metrics, stream.group_id, stream.dead_letter_topic)
        self.last_activity = time.monotonic()  # the loop is alive while this moves
        self.batch_started: float | None = None  # set while a batch is in progress
        self._backoff = Backoff(stream.retry.backoff_ms / 1000, stream.retry.backoff_max_ms / 1000)
        compiled = session.compiled(stream.namespace)
        self._input_name = input_dataset(compiled.inputs, stream, compiled.states)
        codecs = stream_codecs(stream, kafka, project_path)
        self._dead_letters = DeadLetters(stream.dead_letter_topic, stream.namespace)
        self._kafka = kafka
        self._state = (
            StreamState(
                stream,
                project_path=project_path,
                metrics=self.metrics,
                restore_consumer=lambda: make_restore_consumer(kafka, stream),
            )
            if stream.state
            else None
        )
        check_states(compiled, stream)
        with_metadata = stream.input.metadata_columns
        self._decoder = Decoder(
            codecs.input,
            self._dead_letters,
            with_metadata=with_metadata,
            key_field=self._state.key if self._state else None,
        )
        self._encoder = Encoder(
            published_outputs(compiled.outputs, stream, codecs.outputs),
            with_metadata=with_metadata,
        )
        unpublished = unpublished_outputs(compiled.outputs, stream)
        if unpublished:
            logger.warning(unpublished_warning(unpublished, stream))

    @property
    def progress(self) -> Progress:
        return self._ledger.progress

    @property
    def owned(self) -> set[tuple[str, int]]:
        """This member's partitions, for lag and probes."""
        return self.assignment.owned

    @property
    def _start_wait_s(self) -> float:
        """How long a start may wait for the cluster's first answer: the metadata a stateful
        stream reads before it subscribes, or ``--idle-timeout-s`` when that is shorter (a
        stream asked to stop when idle must not wait longer for a cluster that never answers)."""
        wait_s = METADATA_TIMEOUT_S + TOPICS_TIMEOUT_S
        return min(wait_s, self._idle_timeout_s) if self._idle_timeout_s else wait_s

    @property
    def restoring(self) -> bool:
        """A state store is being caught up with its changelog (not ready, but alive)."""
        return self._state is not None and self._state.restoring

    def state_row(self, name: str, key: str) -> bytes | None:
        """``key``'s current row (JSON) in state ``name``, for /state queries: ``None`` when the
        stream has no such state or this member does not own the key's partition."""
        return None if self._state is None else self._state.row(name, key)

    def stop(self) -> None:
        """Finish the current batch, commit, then return from :meth:`run` (signal-safe)."""
        self._stop.set()

    def run(self) -> Progress:
        started = time.monotonic()
        consumer = self._consumer_factory()
        # One metadata request at start, for the two things the broker's kind changes.
        development_broker = (
            self._state is not None or self._stream.guarantee is Guarantee.EXACTLY_ONCE
        ) and is_development_broker(consumer, min(METADATA_TIMEOUT_S, self._start_wait_s))
        protocol = self._commit_protocol(consumer, development_broker=development_broker)
        keepalive = KeepAlive(
            consumer,
            pause_after_s=self._pause_after_s,
            on_poll=self._alive,
        )
        if self._state is not None:
            try:
                ensure_changelogs(
                    make_admin(self._kafka),
                    self._state.input_topic,
                    self._state.changelogs,
                    development_broker=development_broker,
                    timeout_s=max(
                        _REACH_TIMEOUT_S, self._start_wait_s - (time.monotonic() - started)
                    ),
                )
            except KafkaException as exc:
                error = kafka_error(exc)
                if error is None or error.code() not in _NO_ANSWER:
                    raise
                consumer.poll(0)  # delivers its client's log lines, which say why
                raise KafkaUnreachable(
                    self._kafka.bootstrap_servers,
                    round(time.monotonic() - started),
                    "a stateful stream reads its changelog topics' metadata at start",
                ) from exc
        consumer.subscribe(self._stream.input.topics, **self._rebalance_callbacks())
        try:
            self._consume(consumer, protocol, keepalive)
        finally:
            protocol.close()
            consumer.close()  # leaves the group (revoking: stores checkpointed), at once
            if self._state is not None:
                self._state.close()
        return self.progress

    def _rebalance_callbacks(self) -> dict[str, Callable[[Consumer, list[TopicPartition]], None]]:
        """The assignment's callbacks; a stateful stream's stores are restored on assignment,
        before any of their partitions' records is handed out, and released on revocation."""
        assignment, state = self.assignment, self._state
        if state is None:
            return {
                "on_assign": assignment.on_assign,
                "on_revoke": assignment.on_revoke,
                "on_lost": assignment.on_revoke,
            }

        def on_assign(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            assignment.on_assign(consumer, partitions)
            state.on_assign(consumer, partitions)

        def on_revoke(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            state.on_revoke(partitions)
            assignment.on_revoke(consumer, partitions)

        def on_lost(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            state.on_lost(partitions)
            assignment.on_revoke(consumer, partitions)

        return {"on_assign": on_assign, "on_revoke": on_revoke, "on_lost": on_lost}

    def _commit_protocol(self, consumer: Consumer, *, development_broker: bool) -> CommitProtocol:
        timeout_s = self._stream.commit_timeout_s
        if self._stream.guarantee is Guarantee.EXACTLY_ONCE:
            if development_broker:
                logger.warning(
                    "Exactly-once on the development broker: it stores no offset committed in "
                    "a transaction, so every start reads the topics again from the beginning. "
                    "Use at-least-once with it, or a Kafka cluster"
                )
            # No delivery callback: commit_transaction fails on any failed output.
            return ExactlyOnce(consumer, self._producer_factory(None), timeout_s=timeout_s)
        deliveries = DeliveryFailures()
        producer = self._producer_factory(deliveries)
        return AtLeastOnce(consumer, producer, deliveries, flush_timeout_s=timeout_s)

    def _consume(self, consumer: Consumer, protocol: CommitProtocol, keepalive: KeepAlive) -> None:
        """Batches until stopped, done, or idle: ``idle_timeout_s`` without a record since the
        later of the first assignment (a restore of state included) and the last record, or
        since the start while nothing is assigned."""
        idle_since = time.monotonic()
        assigned = False
        owned: set[tuple[str, int]] = set()
        while not self._stop.is_set():
            batch = collect(
                consumer,
                max_size=self._batch_limit(),
                max_wait_s=self._stream.batch.max_wait_ms / 1000,
            )
            self.last_activity = time.monotonic()
            if self.owned != owned:  # the group answered: partitions came or went
                owned = set(self.owned)
                if owned:
                    CLIENT_LOG.reached()
                    if not assigned:
                        assigned, idle_since = True, self.last_activity
            if not batch.messages:
                if self._idle_timeout_s and self.last_activity - idle_since > self._idle_timeout_s:
                    self._stop_idle(consumer, assigned=assigned)
                    return
                continue
            CLIENT_LOG.reached()
            idle_since = self.last_activity
            self.assignment.batch_started()
            self.batch_started = time.monotonic()
            self.metrics.batch_size.labels(self._stream.group_id).observe(len(batch))
            self._process(batch, consumer, protocol, keepalive)
            self.batch_started = None
            if self._max_messages is not None and self.progress.records >= self._max_messages:
                return

    def _stop_idle(self, consumer: Consumer, *, assigned: bool) -> None:
        """Say why an idle stream stops, or raise :class:`KafkaUnreachable` if it never heard
        from the cluster: nothing to read is a normal end, an unreachable cluster is not."""
        idle_s = self._idle_timeout_s or 0.0
        if assigned:
            logger.info("No record for %.1f s: stopping", idle_s)
            return
        try:  # nothing assigned: does the cluster answer at all?
            consumer.list_topics(timeout=_REACH_TIMEOUT_S)
        except KafkaException as exc:
            raise KafkaUnreachable(
                self._kafka.bootstrap_servers, idle_s, "--idle-timeout-s, with nothing assigned"
            ) from exc
        CLIENT_LOG.reached()
        logger.warning(
            "No partition of %s was assigned in %.1f s (does the group have more members "
            "than partitions?): stopping",
            ", ".join(self._stream.input.topics),
            idle_s,
        )

    @property
    def _pause_after_s(self) -> float:
        """How long the loop may go without a poll: well inside ``max.poll.interval.ms``, and
        long enough that short runs never pause."""
        return min(_PAUSE_AFTER_S, self._stream.max_poll_interval_s / 4)

    def _alive(self) -> None:
        self.last_activity = time.monotonic()

    def _batch_limit(self) -> int:
        if self._max_messages is None:
            return self._stream.batch.max_size
        return max(1, min(self._stream.batch.max_size, self._max_messages - self.progress.records))

    def _process(
        self, batch: Batch, consumer: Consumer, protocol: CommitProtocol, keepalive: KeepAlive
    ) -> None:
        """One batch through the protocol (see the module docstring), retried per ``retry``;
        under ``on_failure: isolate``, once more without the records that fail on their own."""
        attempts, group = self._stream.retry.attempts, self._stream.group_id
        delays = self._backoff.delays()
        decoded: DecodedBatch | None = None  # None while no attempt got past decoding
        poison = Poison()  # set aside by isolation, which runs at most once
        for attempt in itertools.count(1):
            try:
                decoded = self._decoder.decode(batch)  # 1. in the loop: a registry outage retries
                good = poison.without(decoded.good)
                protocol.begin()
                datasets = self._run(good, keepalive)  # 2.
                outputs = self._encoder.encode(datasets, good)  # 3.
                offsets = self.assignment.committable(batch)  # no poll between here and 5.
                owned = {(tp.topic, tp.partition) for tp in offsets}
                changes = self._state_changes(batch, good, datasets, owned)  # 3.
                started = time.perf_counter()
                protocol.publish([*outputs, *decoded.dead, *poison.dead, *changes.records])  # 4.
                protocol.complete(offsets)  # 5.
                if self._state is not None:
                    self._state.apply(changes, offsets)  # 6.
                self.metrics.commit_duration.labels(group).observe(time.perf_counter() - started)
                dead = Counter({Stage.DECODE: len(decoded.dead)}) + poison.stages
                self._ledger.committed(batch, outputs, dead)
                return
            except CommitAbandoned as error:
                self.metrics.commit_failures.labels(group).inc()
                self._abort(protocol)
                self._rewind(batch, consumer, error)
                return
            except Exception as error:
                self.metrics.batch_failures.labels(group).inc()
                if is_fatal(error):
                    raise _fatal(error) from error
                self._abort(protocol)
                # An encode or state failure would fail the same way again; after isolation,
                # so would the rest of the batch.
                final = isinstance(error, (EncodeError, StateUpdateError)) or poison.isolated
                if not final and attempt < attempts:
                    backoff_s = next(delays)
                    logger.warning(
                        "Batch of %d records failed (attempt %d/%d), retrying in %.2f s: %s",
                        len(batch),
                        attempt,
                        attempts,
                        backoff_s,
                        one_line(error),
                    )
                    keepalive.sleep(backoff_s)
                    continue
                if decoded is not None and self._isolates(decoded, poison, error):
                    poison = self._isolate(batch, decoded, error, keepalive)
                    continue  # 2.-6. once more, without the poison records
                self._give_up(batch, decoded, error, protocol, poison)
                return

    def _run(self, good: list[Decoded], keepalive: KeepAlive) -> dict[str, Any]:
        """The namespace's outputs for the good records (none without records)."""
        if not good:
            return {}
        dataset = to_dataset(
            [record for _, record in good],
            data_type=self._stream.input.data_type,
            fields=self._decoder.fields,
        )
        inputs = {self._input_name: dataset}
        if self._state is not None:
            inputs.update(self._state.read(good))
        started = time.perf_counter()
        outputs = keepalive.call(
            lambda: self._session.run(self._stream.namespace, inputs=inputs),
            timeout_s=self._stream.run_timeout_s,
        )
        self.metrics.run_duration.labels(self.metrics.namespace).observe(
            time.perf_counter() - started
        )
        return outputs

    def _state_changes(
        self,
        batch: Batch,
        good: list[Decoded],
        datasets: dict[str, Any],
        owned: set[tuple[str, int]],
    ) -> StateChanges:
        """The changelog records of a stateful batch, for the partitions it will commit."""
        if self._state is None or not datasets:
            return StateChanges()
        return self._state.changes(datasets, good, batch.next_offsets(), owned)

    def _rewind(self, batch: Batch, consumer: Consumer, error: CommitAbandoned) -> None:
        """Have the batch processed again by its partitions' owners: partitions this member
        still owns are rewound to the batch start (its offsets were never committed, and if no
        later record arrived nothing else would ever commit them); revoked ones restart from
        their committed offset with their new owner."""
        logger.warning(
            "A rebalance overtook a batch of %d records before its commit (%s); they will be "
            "processed again",
            len(batch),
            one_line(error),
        )
        owned = {(tp.topic, tp.partition) for tp in consumer.assignment()}
        for tp in batch.first_offsets():
            if (tp.topic, tp.partition) in owned:
                consumer.seek(tp)

    def _isolates(self, decoded: DecodedBatch, poison: Poison, error: Exception) -> bool:
        """Whether to look for the records that fail on their own: under ``on_failure:
        isolate``, once a batch, when some record was run and the failure may be its doing."""
        return (
            self._stream.on_failure is OnFailure.ISOLATE
            and not poison.isolated
            and bool(decoded.good)
            and not isinstance(error, _NO_RECORDS_DOING)
        )

    def _isolate(
        self, batch: Batch, decoded: DecodedBatch, error: Exception, keepalive: KeepAlive
    ) -> Poison:
        """The records of ``decoded`` that fail on their own (``service/isolate.py``), as dead
        letters with their own error and stage; the loop then runs the rest as one batch."""
        group, started = self._stream.group_id, time.monotonic()
        found = isolate(decoded.good, lambda good: self._judge(batch, good, keepalive), error)
        self.metrics.isolation_runs.labels(group).inc(found.runs)
        self.metrics.isolated.labels(group).inc(len(found.poison))
        letters = {
            id(message): self._dead_letters.of(message, own, stage_of(own))
            for (message, _), own in found.poison
        }
        stages = Counter(stage_of(own) for _, own in found.poison)
        first = f": first {one_line(found.poison[0][1])}" if found.poison else ""
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
        return Poison(isolated=True, letters=letters, stages=stages)

    def _judge(self, batch: Batch, good: list[Decoded], keepalive: KeepAlive) -> None:
        """Steps 2 and 3 on ``good`` alone, for isolation: raises where the batch would; what
        it computes is thrown away. Isolation is many runs in a row, each perhaps too short for
        the keep-alive to poll: once as long without a poll as a run that it would poll, one
        paused poll keeps this member in its group and the loop counted alive."""
        unpolled_s = time.monotonic() - self.last_activity
        if unpolled_s > self._pause_after_s:
            keepalive.sleep(_ONE_POLL_S)
        datasets = self._run(good, keepalive)
        self._encoder.encode(datasets, good)
        self._state_changes(batch, good, datasets, set(batch.next_offsets()))

    def _give_up(
        self,
        batch: Batch,
        decoded: DecodedBatch | None,
        error: Exception,
        protocol: CommitProtocol,
        poison: Poison,
    ) -> None:
        """``on_failure``: stop with nothing committed, or dead-letter and commit the batch
        (``isolate`` does too, for a failure that isolation cannot narrow)."""
        stage = stage_of(error)
        if self._stream.on_failure is OnFailure.STOP:
            tried = (
                f"failed {self._stream.retry.attempts} times, last with"
                if stage is Stage.PIPELINE
                else f"failed at stage {stage.value} with"
            )
            raise StreamStopped(
                f"Batch of {len(batch)} records {tried} {one_line(error)}; nothing committed for it"
            ) from error
        dead, stages = self._dead_letters_of(batch, decoded, error, stage, poison)
        logger.error(
            "Dead-lettering a batch of %d records (%s): %s",
            len(batch),
            ", ".join(f"{n} at stage {s.value}" for s, n in stages.items()),
            one_line(error),
        )
        try:
            protocol.begin()
            protocol.publish(dead)
            protocol.complete(self.assignment.committable(batch))
        except Exception as exc:
            if is_fatal(exc):
                raise _fatal(exc) from exc
            self._abort(protocol)
            raise StreamStopped(f"Could not dead-letter a failed batch: {one_line(exc)}") from exc
        self._ledger.committed(batch, [], stages)

    def _dead_letters_of(
        self,
        batch: Batch,
        decoded: DecodedBatch | None,
        error: Exception,
        stage: Stage,
        poison: Poison,
    ) -> tuple[list[Outgoing], Counter[Stage]]:
        """Every record of a batch given up, in offset order: a record that failed decoding,
        or was isolated as poison, keeps its own error and stage; the others carry the
        batch's."""
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

    @staticmethod
    def _abort(protocol: CommitProtocol) -> None:
        """Abort the batch's transaction; a client that turned fatal meanwhile stops the
        service."""
        try:
            protocol.abort()
        except KafkaException as exc:
            if is_fatal(exc):
                raise _fatal(exc) from exc
            raise


def _fatal(error: BaseException) -> StreamStopped:
    return StreamStopped(
        f"Fatal Kafka error, nothing committed for the batch (a newer instance with the same "
        f"transactional id may have taken over): {one_line(error)}"
    )
