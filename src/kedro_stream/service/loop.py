"""The stream loop: collect a batch, decode, run the namespace, publish, commit.

Nothing is committed for a record until its outputs (or its dead-letter copy) are acknowledged.
A failing batch is retried with backoff, then dead-lettered or the service stops, per config.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from kedro_stream.config import Guarantee, KafkaConfig, OnFailure, StreamConfig
from kedro_stream.errors import KedroStreamError
from kedro_stream.kafka.clients import DeliveryCallback
from kedro_stream.metrics import StreamMetrics
from kedro_stream.serde import (
    METADATA_COLUMNS,
    Codec,
    DecodeError,
    build_codec,
    records_of,
    schema_registry_for,
)
from kedro_stream.serde.frames import to_dataset
from kedro_stream.service.batch import Batch, collect
from kedro_stream.service.commit import (
    AtLeastOnce,
    CommitAbandoned,
    CommitProtocol,
    DeliveryFailures,
    ExactlyOnce,
)
from kedro_stream.service.keepalive import KeepAlive
from kedro_stream.service.messages import Outgoing, dead_letter
from kedro_stream.session import StreamSession

logger = logging.getLogger(__name__)
_CLIENT_TIMEOUT_S = 30.0
_PAUSE_AFTER_S = 2.0
_METADATA = frozenset(METADATA_COLUMNS)


class StreamStopped(KedroStreamError):
    """The service stopped on a batch it could not process (``on_failure: stop``)."""


@dataclass
class Progress:
    """What the loop has committed so far; read by the CLI and metrics."""

    batches: int = 0
    records: int = 0
    dead_lettered: int = 0
    produced: int = 0
    started: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class _Output:
    name: str
    topic: str
    codec: Codec
    key: str | None


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
        self.progress = Progress()
        self.metrics = metrics or StreamMetrics(
            group=stream.group_id, namespace=stream.namespace, guarantee=stream.guarantee.value
        )
        self.owned: set[tuple[str, int]] = set()  # this member's partitions, for lag and probes
        self.last_activity = time.monotonic()  # the loop is alive while this moves
        self.batch_started: float | None = None  # set while a batch is in progress
        compiled = session.compiled(stream.namespace)
        self._input_name = _input_name(compiled.inputs, stream)
        registry = schema_registry_for(stream, kafka)
        self._decoder = build_codec(
            stream.input.format,
            _path(project_path, stream.input.schema_path),
            topic=stream.input.topics[0],  # names the subject only: the schema id is in the value
            registry=registry,
        )
        self._outputs = [
            _Output(
                name,
                spec.topic,
                build_codec(
                    spec.format,
                    _path(project_path, spec.schema_path),
                    topic=spec.topic,
                    registry=registry,
                    auto_register=spec.auto_register,
                ),
                spec.key,
            )
            for name, spec in stream.outputs.items()
        ]
        unknown = {o.name for o in self._outputs} - set(compiled.outputs.values())
        if unknown:
            raise KedroStreamError(
                f"stream.yml publishes {sorted(unknown)}, which namespace {stream.namespace!r} "
                f"does not output; outputs: {sorted(compiled.outputs.values())}"
            )
        self._revoked: set[tuple[str, int]] = set()

    def stop(self) -> None:
        """Finish the current batch, commit, then return from :meth:`run` (signal-safe)."""
        self._stop.set()

    # -- rebalance callbacks: run inside poll/consume on this thread --------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.owned.update((tp.topic, tp.partition) for tp in partitions)
        self._rebalanced()
        logger.info("Assigned %s", _describe(partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # The in-flight batch must not commit these: their outputs may not be acknowledged.
        lost = {(tp.topic, tp.partition) for tp in partitions}
        self._revoked.update(lost)
        self.owned.difference_update(lost)
        self._rebalanced()
        logger.info("Revoked %s", _describe(partitions))

    def _rebalanced(self) -> None:
        group = self._stream.group_id
        self.metrics.rebalances.labels(group).inc()
        self.metrics.assigned.labels(group).set(len(self.owned))

    def run(self) -> Progress:
        consumer = self._consumer_factory()
        protocol: CommitProtocol
        if self._stream.guarantee is Guarantee.EXACTLY_ONCE:
            # No delivery callback: commit_transaction fails on any failed output.
            producer = self._producer_factory(None)
            protocol = ExactlyOnce(consumer, producer, timeout_s=_CLIENT_TIMEOUT_S)
        else:
            deliveries = DeliveryFailures()
            producer = self._producer_factory(deliveries)
            protocol = AtLeastOnce(
                consumer, producer, deliveries, flush_timeout_s=_CLIENT_TIMEOUT_S
            )
        keepalive = KeepAlive(
            consumer,
            # Well inside max.poll.interval.ms, and long enough that short runs never pause.
            pause_after_s=min(_PAUSE_AFTER_S, self._stream.max_poll_interval_s / 4),
            on_poll=self._alive,
        )
        consumer.subscribe(
            self._stream.input.topics,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        last_record = time.monotonic()
        try:
            while not self._stop.is_set():
                batch = collect(
                    consumer,
                    max_size=self._batch_limit(),
                    max_wait_s=self._stream.batch.max_wait_ms / 1000,
                )
                self.last_activity = time.monotonic()
                if not batch.messages:
                    if (
                        self._idle_timeout_s
                        and time.monotonic() - last_record > self._idle_timeout_s
                    ):
                        logger.info("No record for %.1f s: stopping", self._idle_timeout_s)
                        break
                    continue
                last_record = time.monotonic()
                self._revoked.clear()
                self.batch_started = time.monotonic()
                self.metrics.batch_size.labels(self._stream.group_id).observe(len(batch))
                self._process(batch, consumer, protocol, keepalive)
                self.batch_started = None
                if self._max_messages is not None and self.progress.records >= self._max_messages:
                    break
        finally:
            protocol.close()
            consumer.close()  # leaves the group: partitions move on at once
        return self.progress

    def _alive(self) -> None:
        self.last_activity = time.monotonic()

    def _batch_limit(self) -> int:
        if self._max_messages is None:
            return self._stream.batch.max_size
        return max(1, min(self._stream.batch.max_size, self._max_messages - self.progress.records))

    def _process(
        self, batch: Batch, consumer: Consumer, protocol: CommitProtocol, keepalive: KeepAlive
    ) -> None:
        retry, group = self._stream.retry, self._stream.group_id
        for attempt in range(1, retry.attempts + 1):
            try:
                good, bad = self._decode(batch)  # in the loop: a registry outage is retried
                protocol.begin()
                outgoing = self._run(good, keepalive) if good else []
                started = time.perf_counter()
                protocol.publish([*outgoing, *bad])
                protocol.complete(self._offsets(batch))
                self.metrics.commit_duration.labels(group).observe(time.perf_counter() - started)
                self._committed(batch, outgoing, dead=len(bad), stage="decode")
                return
            except CommitAbandoned as error:
                self.metrics.commit_failures.labels(group).inc()
                _abort(protocol)
                self._abandon(batch, consumer, error)
                return
            except Exception as error:
                self.metrics.batch_failures.labels(group).inc()
                if _is_fatal(error):
                    raise _fatal(error) from error
                _abort(protocol)
                if attempt == retry.attempts:
                    self._give_up(batch, error, consumer, protocol)
                    return
                backoff = min(retry.backoff_ms * 2 ** (attempt - 1), retry.backoff_max_ms) / 1000
                logger.warning(
                    "Batch of %d records failed (attempt %d/%d), retrying in %.2f s: %s",
                    len(batch),
                    attempt,
                    retry.attempts,
                    backoff,
                    _one_line(error),
                )
                keepalive.sleep(backoff)

    def _abandon(self, batch: Batch, consumer: Consumer, error: CommitAbandoned) -> None:
        """Have the batch processed again by its partitions' owners: partitions this member
        still owns are rewound to the batch start (its offsets were never committed, and if no
        later record arrived nothing else would ever commit them); revoked ones restart from
        their committed offset with their new owner."""
        logger.warning(
            "A rebalance overtook a batch of %d records before its commit (%s); they will be "
            "processed again",
            len(batch),
            _one_line(error),
        )
        owned = {(tp.topic, tp.partition) for tp in consumer.assignment()}
        for tp in batch.first_offsets():
            if (tp.topic, tp.partition) in owned:
                consumer.seek(tp)

    def _decode(self, batch: Batch) -> tuple[list[tuple[Any, dict[str, Any]]], list[Outgoing]]:
        good: list[tuple[Any, dict[str, Any]]] = []
        bad: list[Outgoing] = []
        with_metadata = self._stream.input.metadata_columns
        for message in batch.messages:
            try:
                record = self._decoder.decode(message.value())
            except DecodeError as error:
                bad.append(self._dead_letter(message, error, stage="decode"))
                continue
            if with_metadata:
                key = message.key()
                record.update(
                    zip(
                        METADATA_COLUMNS,
                        (
                            key.decode("utf-8", "replace") if key is not None else None,
                            message.topic(),
                            message.partition(),
                            message.offset(),
                            message.timestamp()[1],
                        ),
                        strict=True,
                    )
                )
            good.append((message, record))
        return good, bad

    def _dead_letter(self, message: Any, error: BaseException, *, stage: str) -> Outgoing:
        return dead_letter(
            message,
            self._stream.dead_letter_topic,
            error=error,
            stage=stage,
            namespace=self._stream.namespace,
        )

    def _run(self, good: list[tuple[Any, dict[str, Any]]], keepalive: KeepAlive) -> list[Outgoing]:
        dataset = to_dataset(
            [record for _, record in good],
            data_type=self._stream.input.data_type,
            fields=self._decoder.fields,
        )
        started = time.perf_counter()
        outputs = keepalive.call(
            lambda: self._session.run(self._stream.namespace, inputs={self._input_name: dataset}),
            timeout_s=self._stream.run_timeout_s,
        )
        self.metrics.run_duration.labels(self.metrics.namespace).observe(
            time.perf_counter() - started
        )
        source_headers = (  # only records that carry the metadata columns can name a source
            {(m.topic(), m.partition(), m.offset()): m.headers() for m, _ in good if m.headers()}
            if self._stream.input.metadata_columns
            else {}
        )
        return [
            msg
            for out in self._outputs
            for msg in self._encode(out, outputs[out.name], source_headers)
        ]

    @staticmethod
    def _encode(
        output: _Output, data: Any, source_headers: dict[tuple[str, int, int], Any]
    ) -> list[Outgoing]:
        topic, encode, key_field = output.topic, output.codec.encode, output.key
        # A frame's columns tell at once whether any of its records carries metadata.
        may_carry = not isinstance(data, pd.DataFrame) or not _METADATA.isdisjoint(data.columns)
        messages = []
        for record in records_of(data):
            body, headers = record, None
            if may_carry and not _METADATA.isdisjoint(record):  # copy only those records
                source = (record.get("_topic"), record.get("_partition"), record.get("_offset"))
                body = {k: v for k, v in record.items() if k not in _METADATA}
                headers = list(source_headers.get(source, []))
            messages.append(Outgoing(topic, encode(body), _key(body, key_field), headers))
        return messages

    def _offsets(self, batch: Batch) -> list[TopicPartition]:
        return [
            TopicPartition(topic, partition, offset)
            for (topic, partition), offset in batch.next_offsets().items()
            if (topic, partition) not in self._revoked
        ]

    def _committed(self, batch: Batch, outgoing: list[Outgoing], *, dead: int, stage: str) -> None:
        p, m, group = self.progress, self.metrics, self._stream.group_id
        p.batches += 1
        p.records += len(batch)
        p.dead_lettered += dead
        p.produced += len(outgoing)
        for topic, count in Counter(message.topic() for message in batch.messages).items():
            m.consumed.labels(group, topic).inc(count)
        for topic, count in Counter(message.topic for message in outgoing).items():
            m.produced.labels(group, topic).inc(count)
        if dead:
            m.dead_lettered.labels(group, self._stream.dead_letter_topic, stage).inc(dead)
        # One observation a batch, of its oldest record: the latency its slowest record saw.
        oldest_ms = min(message.timestamp()[1] for message in batch.messages)
        if oldest_ms > 0:
            m.end_to_end.labels(group, batch.messages[0].topic()).observe(
                max(time.time() - oldest_ms / 1000, 0.0)
            )
        m.committed_now()
        logger.debug("Committed batch of %d records (%d dead-lettered)", len(batch), dead)

    def _give_up(
        self, batch: Batch, error: Exception, consumer: Consumer, protocol: CommitProtocol
    ) -> None:
        if self._stream.on_failure is OnFailure.STOP:
            raise StreamStopped(
                f"Batch of {len(batch)} records failed {self._stream.retry.attempts} times, "
                f"last with {_one_line(error)}; nothing committed for it"
            ) from error
        logger.error("Dead-lettering a batch of %d records: %s", len(batch), _one_line(error))
        dead = [self._dead_letter(m, error, stage="pipeline") for m in batch.messages]
        try:
            protocol.begin()
            protocol.publish(dead)
            protocol.complete(self._offsets(batch))
        except Exception as exc:
            if _is_fatal(exc):
                raise _fatal(exc) from exc
            _abort(protocol)
            raise StreamStopped(f"Could not dead-letter a failed batch: {_one_line(exc)}") from exc
        self._committed(batch, [], dead=len(dead), stage="pipeline")


def _key(record: Mapping[str, Any], field: str | None) -> bytes | None:
    value = record.get(field) if field else None
    return None if value is None else str(value).encode()


def _input_name(inputs: Mapping[str, str], stream: StreamConfig) -> str:
    wanted = stream.input.dataset
    names = set(inputs)
    if wanted in names or wanted in set(inputs.values()):
        return wanted
    raise KedroStreamError(
        f"stream.yml feeds dataset {wanted!r}, which is not an input of namespace "
        f"{stream.namespace!r}; inputs: {sorted(names)}"
    )


def _path(project_path: Path, path: Path | None) -> Path | None:
    return None if path is None else (path if path.is_absolute() else project_path / path)


def _describe(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"


def _is_fatal(error: BaseException) -> bool:
    """A fenced or otherwise fatal client: retrying cannot help, another instance took over."""
    if not isinstance(error, KafkaException) or not error.args:
        return False
    first = error.args[0]
    return isinstance(first, KafkaError) and first.fatal()


def _fatal(error: BaseException) -> StreamStopped:
    return StreamStopped(
        f"Fatal Kafka error, nothing committed for the batch (a newer instance with the same "
        f"transactional id may have taken over): {_one_line(error)}"
    )


def _abort(protocol: CommitProtocol) -> None:
    """Abort the batch's transaction; a client that turned fatal meanwhile stops the service."""
    try:
        protocol.abort()
    except KafkaException as exc:
        if _is_fatal(exc):
            raise _fatal(exc) from exc
        raise


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"
