"""The files `kedro stream produce` reads: JSON Lines as they are, Avro containers re-encoded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import fastavro
import pytest

from kedro_stream.config import Format
from kedro_stream.kafka.file_producer import (
    BadRecord,
    check_records,
    produce_file,
    read_messages,
)
from kedro_stream.serde import build_codec
from kedro_stream.serde.avro import load_schema

SCHEMA = Path(__file__).resolve().parents[3] / "schemas" / "payment.avsc"
PAYMENTS = [
    {
        "payment_id": f"p-{i}",
        "account_id": f"a-{i % 2}",
        "merchant_id": "m-1",
        "merchant_category": "fuel",
        "amount": 10.0 + i,
        "currency": "EUR",
        "country": "DE",
        "card_present": True,
        "event_time": 1_700_000_000_000 + i,
    }
    for i in range(3)
]


@pytest.fixture
def container(tmp_path: Path) -> Path:
    path = tmp_path / "payments.avro"
    with path.open("wb") as handle:
        fastavro.writer(handle, load_schema(SCHEMA), PAYMENTS)
    return path


@pytest.fixture
def jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "payments.jsonl"
    lines = [json.dumps(p) for p in PAYMENTS[:2]] + ["not json", "", json.dumps(PAYMENTS[2])]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_avro_container_to_avro_topic(container: Path) -> None:
    codec = build_codec(Format.AVRO, SCHEMA)
    messages = list(read_messages(container, fmt="avro", schema_path=None, key_field="payment_id"))
    assert [codec.decode(value) for _, value in messages] == PAYMENTS
    assert [key for key, _ in messages] == [b"p-0", b"p-1", b"p-2"]


def test_avro_container_to_json_topic(container: Path) -> None:
    messages = list(read_messages(container, fmt="json", schema_path=None, key_field=None))
    assert [json.loads(value) for _, value in messages] == PAYMENTS
    assert {key for key, _ in messages} == {None}


def test_json_lines_are_sent_as_they_are(jsonl: Path) -> None:
    messages = list(read_messages(jsonl, fmt="json", schema_path=None, key_field="account_id"))
    assert [value for _, value in messages][2] == b"not json"  # left for the dead-letter path
    assert len(messages) == 4  # the blank line is skipped
    assert [key for key, _ in messages] == [b"a-0", b"a-1", None, b"a-0"]


def test_a_record_without_the_key_field_is_refused_before_anything_is_sent(
    tmp_path: Path,
) -> None:
    """Before, it went out with no key, and a stateful stream dead-lettered it."""
    path = tmp_path / "in.jsonl"
    keyless = {k: v for k, v in PAYMENTS[1].items() if k != "account_id"}
    nulled = {**PAYMENTS[2], "account_id": None}
    path.write_text("\n".join(json.dumps(r) for r in (PAYMENTS[0], keyless)) + "\n")

    with pytest.raises(BadRecord) as raised:
        check_records(path, fmt="json", schema_path=None, key_field="account_id", count=None)

    assert str(raised.value) == (
        "line 2 of in.jsonl has no value for field 'account_id', which keys the messages "
        "(--key chooses another field); nothing was sent"
    )
    path.write_text("\n".join(json.dumps(r) for r in (PAYMENTS[0], nulled)) + "\n")
    with pytest.raises(BadRecord, match=r"^line 2 of in.jsonl has no value for field"):  # null
        check_records(path, fmt="json", schema_path=None, key_field="account_id", count=None)
    # Only the records that would be sent are checked; without a key field, none is refused.
    check_records(path, fmt="json", schema_path=None, key_field="account_id", count=1)
    check_records(path, fmt="json", schema_path=None, key_field=None, count=None)


def test_a_container_record_without_the_key_field_is_named_by_its_number(
    container: Path,
) -> None:
    with pytest.raises(BadRecord, match=r"^record 1 of payments.avro has no value for field 'x'"):
        check_records(container, fmt="avro", schema_path=None, key_field="x", count=None)


def test_lines_that_are_no_json_object_are_sent_keyless_for_the_dead_letter_path(
    tmp_path: Path,
) -> None:
    path = tmp_path / "poison.jsonl"
    path.write_text("not json\n[]\n")
    check_records(path, fmt="json", schema_path=None, key_field="account_id", count=None)
    messages = list(read_messages(path, fmt="json", schema_path=None, key_field="account_id"))
    assert messages == [(None, b"not json"), (None, b"[]")]


def test_a_record_the_schema_refuses_is_found_before_anything_is_sent(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps(PAYMENTS[0]) + "\n" + json.dumps({**PAYMENTS[1], "amount": "x"}))
    with pytest.raises(
        BadRecord, match=r"^line 2 of in.jsonl does not match .*; nothing was sent$"
    ):
        check_records(path, fmt="avro", schema_path=SCHEMA, key_field=None, count=None)


def test_json_lines_to_avro_need_a_schema(jsonl: Path) -> None:
    with pytest.raises(ValueError, match="needs --schema"):
        list(read_messages(jsonl, fmt="avro", schema_path=None, key_field=None))
    codec = build_codec(Format.AVRO, SCHEMA)
    messages = list(read_messages(jsonl, fmt="avro", schema_path=SCHEMA, key_field=None))
    assert codec.decode(messages[0][1]) == PAYMENTS[0]
    assert messages[2][1] == b"not json"


def test_a_json_line_the_schema_refuses_is_named_by_its_line_number(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    wrong = {**PAYMENTS[1], "amount": "high"}
    path.write_text("\n".join([json.dumps(PAYMENTS[0]), "", json.dumps(wrong)]) + "\n")
    messages = read_messages(path, fmt="avro", schema_path=SCHEMA, key_field=None)
    assert next(messages)  # line 1 is fine and is sent
    with pytest.raises(BadRecord, match=r"^line 3 of in.jsonl does not match the schema"):
        next(messages)


def test_records_before_a_bad_one_are_still_delivered() -> None:
    """The producer is flushed however the file ends: no message is left in its queue."""

    class Producer:
        def __init__(self) -> None:
            self.queued, self.flushed = 0, False

        def produce(self, *_: object, **__: object) -> None:
            self.queued += 1

        def poll(self, _timeout: float) -> None:
            pass

        def flush(self, _timeout: float) -> int:
            self.flushed = True
            return 0

    def messages() -> Iterator[tuple[bytes | None, bytes]]:
        yield None, b"1"
        raise BadRecord("line 2 of f.jsonl does not match the schema")

    producer = Producer()
    with pytest.raises(BadRecord):
        produce_file(producer, "t", messages(), count=None, rate=None)  # type: ignore[arg-type]
    assert (producer.queued, producer.flushed) == (1, True)
