"""The stream loop: one micro-batch at a time through the commit protocol.

Each batch (:meth:`StreamService._attempt`), top to bottom, one line a step:

   (still owned)   no partition of the batch was revoked while it was collected
1. decode          message values → records; a bad value becomes a dead letter (stage ``decode``)
2. read state      the rows of the good records' keys, from their partitions' stores
3. run             the namespace on the good records and those rows, on the keep-alive's
                   worker thread
   (still owned)   every partition of the batch is still this member's: no poll from here to 7
4. encode outputs  the run's output datasets → messages for their topics
5. encode state    its state updates → changelog records and store entries
6. publish         outputs, dead letters and changelog records (in the batch's transaction
                   under exactly-once)
7. commit          the batch's offsets, once every message is acknowledged (at-least-once: a
                   rebalance that refuses the commit defers it, see ``commit.py``)
8. apply state     the batch's updates, to its partitions' stores

A stateless stream has no rows to read and no updates (its state is ``NoState``): it takes the
same steps. Failure paths, beside them in :meth:`StreamService._process`:

- a rebalance took a partition of the batch before step 1 or 4 (:class:`Overtaken`), or refused
  its transaction (:class:`CommitAbandoned`): nothing of it is published, and what this member
  still owns is read again (``rebalance.rewind``); no retry, nothing dead-lettered;
- a fatal client error (a newer instance fenced this one): the service stops, nothing committed;
- an output that cannot be encoded (:class:`EncodeError`), or state updates that do not replace
  the batch's keys' rows (:class:`StateUpdateError`), would fail the same way again: no retry;
- anything else: retried with backoff;
- then, under ``on_failure: isolate``, the records that fail on their own are found and set
  aside as dead letters (``isolation.py``), and steps 1-8 run once more without them;
- what still fails is given up per ``on_failure`` (``giving_up.py``): stop with nothing
  committed, or dead-letter every record of the batch and commit it.

Start-up (the broker's kind, the commit protocol, the changelog topics) is ``startup.py``; when
an idle stream stops is ``idle.py``; the parts each step uses are built in ``parts.py``.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, Producer

from kedro_stream.config import KafkaConfig, Project, StreamConfig
from kedro_stream.errors import headline
from kedro_stream.kafka.clients import DeliveryCallback
from kedro_stream.kafka.errors import is_fatal
from kedro_stream.metrics import StreamMetrics
from kedro_stream.serde import EncodeError
from kedro_stream.service.batch import Batch, collect
from kedro_stream.service.commit import CommitAbandoned
from kedro_stream.service.decode import DecodedBatch
from kedro_stream.service.giving_up import GiveUp, abort, stopped_by_fatal
from kedro_stream.service.idle import IdleWatch
from kedro_stream.service.isolation import Poison, PoisonSearch
from kedro_stream.service.parts import build_parts
from kedro_stream.service.progress import CommitLedger, Progress
from kedro_stream.service.rebalance import Assignment, Overtaken, rebalance_callbacks, rewind
from kedro_stream.service.retry import Backoff
from kedro_stream.service.startup import Connected, start
from kedro_stream.session import StreamSession
from kedro_stream.state.errors import StateUpdateError

logger = logging.getLogger(__name__)
#: A run (or a retry backoff) longer than this polls with the partitions paused.
_PAUSE_AFTER_S = 2.0


@dataclass
class _Tries:
    """What the attempts at one batch have learnt: its last decoding (``None`` while none got
    that far) and the poison records isolation set aside (it searches at most once)."""

    decoded: DecodedBatch | None = None
    poison: Poison = field(default_factory=Poison)


class StreamService:
    """Runs one stream until stopped, idle, or ``max_messages`` records are committed."""

    def __init__(
        self,
        session: StreamSession,
        stream: StreamConfig,
        kafka: KafkaConfig,
        *,
        project: Project,
        consumer_factory: Callable[[], Consumer],
        producer_factory: Callable[[DeliveryCallback | None], Producer],
        max_messages: int | None = None,
        idle_timeout_s: float | None = None,
        metrics: StreamMetrics | None = None,
    ) -> None:
        self._stream = stream
        self._kafka = kafka
        self._consumer_factory = consumer_factory
        self._producer_factory = producer_factory
        self._max_messages = max_messages
        self._idle_timeout_s = idle_timeout_s
        self._stop = threading.Event()
        self.metrics = metrics or StreamMetrics(
            group=stream.group_id, namespace=stream.namespace, guarantee=stream.guarantee.value
        )
        self.assignment = Assignment(self.metrics, stream.group_id)
        self._ledger = CommitLedger(self.metrics, stream.group_id, stream.dead_letter_topic)
        self.last_activity = time.monotonic()  # the loop is alive while this moves
        self.batch_started: float | None = None  # set while a batch is in progress
        self._backoff = Backoff(stream.retry.backoff_ms / 1000, stream.retry.backoff_max_ms / 1000)
        self._parts = parts = build_parts(
            session, stream, kafka, project=project, metrics=self.metrics
        )
        self._poison_search = PoisonSearch(
            stream,
            self.metrics,
            dead_letters=parts.dead_letters,
            state=parts.state,
            runner=parts.runner,
            encoder=parts.encoder,
            pause_after_s=self._pause_after_s,
            unpolled_s=lambda: time.monotonic() - self.last_activity,
        )
        self._give_up = GiveUp(stream, parts.dead_letters, self.assignment, self._ledger)

    @property
    def progress(self) -> Progress:
        """What has been committed so far."""
        return self._ledger.progress

    @property
    def owned(self) -> set[tuple[str, int]]:
        """This member's partitions, for lag and probes."""
        return self.assignment.owned

    @property
    def restoring(self) -> bool:
        """A state store is being caught up with its changelog (not ready, but alive)."""
        return self._parts.state.restoring

    def state_row(self, name: str, key: str) -> bytes | None:
        """``key``'s current row (JSON) in state ``name``, for /state queries: ``None`` when the
        stream has no such state or this member does not own the key's partition."""
        return self._parts.state.row(name, key)

    def stop(self) -> None:
        """Finish the current batch, commit, then return from :meth:`run` (signal-safe)."""
        self._stop.set()

    def run(self) -> Progress:
        """Start, subscribe, then take batches through the protocol until stopped or done."""
        state = self._parts.state
        connected = start(
            self._stream,
            self._kafka,
            state,
            consumer_factory=self._consumer_factory,
            producer_factory=self._producer_factory,
            idle_timeout_s=self._idle_timeout_s,
            pause_after_s=self._pause_after_s,
            on_poll=self._alive,
        )
        consumer = connected.consumer
        callbacks = rebalance_callbacks(self.assignment, state, connected.protocol)
        consumer.subscribe(self._stream.input.topics, **callbacks)
        try:
            self._consume(connected)
        finally:
            self._ledger.stopped()
            connected.protocol.close()
            consumer.close()  # leaves the group (revoking: stores checkpointed), at once
            state.close()
        return self.progress

    def _consume(self, connected: Connected) -> None:
        """Batches until stopped, done, or idle (see ``idle.py``)."""
        idle = IdleWatch(self._idle_timeout_s, since=time.monotonic())
        while not self._stop.is_set():
            self.assignment.batch_started()
            batch = collect(
                connected.consumer,
                max_size=self._batch_limit(),
                max_wait_s=self._stream.batch.max_wait_ms / 1000,
            )
            self.last_activity = time.monotonic()
            if not batch.messages:  # a quiet moment: the group may allow a deferred commit now
                connected.protocol.commit_deferred()
            if idle.turned(self.last_activity, self.owned, records=bool(batch.messages)):
                idle.stop(connected.consumer, self._stream, self._kafka)
                return
            if not batch.messages:
                continue
            self.batch_started = time.monotonic()
            self.metrics.batch_size.labels(self._stream.group_id).observe(len(batch))
            self._process(batch, connected)
            self.batch_started = None
            if self._max_messages is not None and self.progress.records >= self._max_messages:
                return

    def _process(self, batch: Batch, connected: Connected) -> None:
        """One batch through :meth:`_attempts`; one a rebalance overtook is read again."""
        try:
            self._attempts(batch, connected)
        except (Overtaken, CommitAbandoned) as error:
            self.metrics.commit_failures.labels(self._stream.group_id).inc()
            abort(connected.protocol)
            rewind(batch, connected.consumer, error)

    def _attempts(self, batch: Batch, connected: Connected) -> None:
        """:meth:`_attempt` until it passes, with the failure paths of the module docstring."""
        attempts, group = self._stream.retry.attempts, self._stream.group_id
        delays = self._backoff.delays()
        tries = _Tries()
        for attempt in itertools.count(1):
            try:
                self._attempt(batch, tries, connected)
                return
            except (Overtaken, CommitAbandoned):
                raise
            except Exception as error:
                self.metrics.batch_failures.labels(group).inc()
                if is_fatal(error):
                    raise stopped_by_fatal(error) from error
                abort(connected.protocol)
                # An encode or state failure would fail the same way again; after isolation,
                # so would the rest of the batch.
                final = isinstance(error, (EncodeError, StateUpdateError)) or tries.poison.searched
                if not final and attempt < attempts:
                    backoff_s = next(delays)
                    logger.warning(
                        "Batch of %d records failed (attempt %d/%d), retrying in %.2f s: %s",
                        len(batch),
                        attempt,
                        attempts,
                        backoff_s,
                        headline(error),
                    )
                    connected.keepalive.sleep(backoff_s)
                    continue
                if self._poison_search.worth_searching(tries.decoded, tries.poison, error):
                    assert tries.decoded is not None  # worth searching: some record decoded
                    tries.poison = self._poison_search.search(
                        batch, tries.decoded, error, connected.keepalive
                    )
                    continue  # steps 1-8 once more, without the poison records
                self._give_up.give_up(batch, tries.decoded, error, tries.poison, connected.protocol)
                return

    def _attempt(self, batch: Batch, tries: _Tries, connected: Connected) -> None:
        """The protocol, steps 1-8 of the module docstring; raises where the batch fails."""
        p, protocol, poison = self._parts, connected.protocol, tries.poison
        self.assignment.check_owned(batch)  # revoked while collected, or in a retry's backoff
        tries.decoded = decoded = p.decoder.decode(batch)  # 1. decode
        good = poison.without(decoded.good)
        rows = p.state.read(good)  # 2. read state
        datasets = p.runner.run(good, rows, connected.keepalive)  # 3. run
        offsets = self.assignment.still_owned(batch)  # (still owned), for 5. and 7.
        outputs = p.encoder.encode(datasets, good)  # 4. encode outputs
        changes = p.state.changes(datasets, good, offsets)  # 5. encode state
        started = time.perf_counter()
        dead = [*decoded.dead, *poison.dead]
        protocol.publish([*outputs, *dead, *changes.records])  # 6. publish
        protocol.commit(offsets)  # 7. commit
        p.state.apply(changes, offsets)  # 8. apply state
        self.metrics.commit_duration.labels(self._stream.group_id).observe(
            time.perf_counter() - started
        )
        self._ledger.committed(batch, outputs, dead)

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
