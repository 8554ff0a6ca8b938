"""The files `kedro stream produce` reads: JSON Lines as they are, Avro containers re-encoded."""

from __future__ import annotations

import json
from pathlib import Path

import fastavro
import pytest

from kedro_stream.config import Format
from kedro_stream.kafka.file_producer import read_messages
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


def test_json_lines_to_avro_need_a_schema(jsonl: Path) -> None:
    with pytest.raises(ValueError, match="needs --schema"):
        list(read_messages(jsonl, fmt="avro", schema_path=None, key_field=None))
    codec = build_codec(Format.AVRO, SCHEMA)
    messages = list(read_messages(jsonl, fmt="avro", schema_path=SCHEMA, key_field=None))
    assert codec.decode(messages[0][1]) == PAYMENTS[0]
    assert messages[2][1] == b"not json"
