"""Publish a file of records to a topic: the upstream simulator behind ``kedro stream produce``.

JSON Lines lines are sent as they are (a malformed line stays malformed: useful to exercise
the dead-letter path); Avro container files are re-encoded record by record in the target
format. A record that has no value for the key field is refused: its message would go out with
no key, which a stateful stream dead-letters.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
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


def _key_of(record: Any, key_field: str | None, where: str, path: Path) -> bytes | None:
    """The message key; ``None`` without a key field, or for a line that is no JSON object
    (sent as it is, for the dead-letter path)."""
    if key_field is None or not isinstance(record, dict):
        return None
    if record.get(key_field) is None:
        raise BadRecord(
            f"{where} of {path.name} has no value for field {key_field!r}, which keys the "
            "messages (--key chooses another field)"
        )
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
                where = f"record {number}"
                yield _key_of(record, key_field, where, path), _encoded(codec, record, where, path)
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
            key = _key_of(record, key_field, f"line {number}", path)
            if avro is not None and isinstance(record, dict):
                yield key, _encoded(avro, record, f"line {number}", path)
            else:
                yield key, line


def _encoded(codec: AvroCodec | JsonCodec, record: Any, where: str, path: Path) -> bytes:
    try:
        return codec.encode(record)
    except EncodeError as exc:
        raise BadRecord(f"{where} of {path.name} does not match the schema ({exc})") from None


def check_records(
    path: Path, *, fmt: str, schema_path: Path | None, key_field: str | None, count: int | None
) -> None:
    """Read, key and encode the records that would be sent (at most ``count``), sending none:
    a bad record raises :class:`BadRecord`, saying that nothing was sent.

    Run before producing: a bad record found halfway would leave the records before it sent,
    and producing the fixed file again would send them twice (a stateful stream would count
    them twice). The file is read twice; for a test-data simulator, a fair price."""
    try:
        for _ in islice(
            read_messages(path, fmt=fmt, schema_path=schema_path, key_field=key_field), count
        ):
            pass
    except BadRecord as exc:
        raise BadRecord(f"{exc}; nothing was sent") from None


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
