"""Publish a file of records to a topic: the upstream simulator behind ``kedro stream produce``.

JSON Lines lines are sent as they are (a malformed line stays malformed: useful to exercise
the dead-letter path); Avro container files are re-encoded record by record in the target
format.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
from confluent_kafka import KafkaError, Message, Producer

from kedro_stream.errors import KedroStreamError
from kedro_stream.serde import EncodeError
from kedro_stream.serde.avro import AvroCodec, load_schema
from kedro_stream.serde.json import JsonCodec

AVRO_MAGIC = b"Obj\x01"  # Avro object container files start with these bytes


class BadRecord(KedroStreamError):
    """A record of the file cannot be encoded for the topic."""


@dataclass
class ProduceReport:
    """What ``kedro stream produce`` did, for its last line and its exit status."""

    sent: int = 0
    delivered: int = 0
    failed: int = 0
    first_error: str | None = None


def _key_of(record: Any, key_field: str | None) -> bytes | None:
    if key_field is None or not isinstance(record, dict) or record.get(key_field) is None:
        return None
    return str(record[key_field]).encode()


def read_messages(
    path: Path,
    *,
    fmt: str,
    schema_path: Path | None,
    key_field: str | None,
) -> Iterator[tuple[bytes | None, bytes]]:
    """(key, value) pairs of the file's records, encoded for the topic."""
    with path.open("rb") as handle:
        is_container = handle.read(4) == AVRO_MAGIC
    if is_container:
        with path.open("rb") as handle:
            reader = fastavro.reader(handle)
            schema = (
                load_schema(schema_path)
                if schema_path
                else fastavro.parse_schema(reader.writer_schema)
            )
            codec = AvroCodec(schema) if fmt == "avro" else JsonCodec(None)
            for number, record in enumerate(reader, start=1):
                yield _key_of(record, key_field), _encoded(codec, record, f"record {number}", path)
        return
    avro = AvroCodec(load_schema(schema_path)) if fmt == "avro" and schema_path else None
    if fmt == "avro" and avro is None:
        raise ValueError("--format avro from a JSON Lines file needs --schema")
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip(b"\r\n")
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                record = None  # sent as is: the consumer dead-letters it
            if avro is not None and isinstance(record, dict):
                yield _key_of(record, key_field), _encoded(avro, record, f"line {number}", path)
            else:
                yield _key_of(record, key_field), line


def _encoded(codec: AvroCodec | JsonCodec, record: Any, where: str, path: Path) -> bytes:
    try:
        return codec.encode(record)
    except EncodeError as exc:
        raise BadRecord(
            f"{where} of {path.name} does not match the schema ({exc}); the records before it "
            "were sent, none from it on"
        ) from None


def produce_file(
    producer: Producer,
    topic: str,
    messages: Iterator[tuple[bytes | None, bytes]],
    *,
    count: int | None,
    rate: float | None,
    on_progress: Callable[[int], None] = lambda _: None,
    flush_timeout_s: float = 60.0,
) -> ProduceReport:
    """Send at most ``count`` messages at about ``rate`` per second; wait for every ack."""
    report = ProduceReport()

    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is None:
            report.delivered += 1
        else:
            report.failed += 1
            report.first_error = report.first_error or str(error)

    started = time.monotonic()
    try:
        for key, value in messages:
            if count is not None and report.sent >= count:
                break
            if rate:
                ahead = started + report.sent / rate - time.monotonic()
                if ahead > 0:
                    producer.poll(ahead)
            while True:
                try:
                    producer.produce(topic, value=value, key=key, on_delivery=delivered)
                    break
                except BufferError:
                    producer.poll(0.05)
            report.sent += 1
            producer.poll(0)
            on_progress(1)
    finally:  # a bad record stops the file: what was sent before it is still delivered
        remaining = producer.flush(flush_timeout_s)
    if remaining:
        report.failed += remaining
        report.first_error = report.first_error or f"{remaining} not acknowledged in time"
    return report
