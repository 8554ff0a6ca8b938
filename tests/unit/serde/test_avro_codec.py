"""Schemaless Avro against a local schema: corrupt bodies are DecodeErrors, bad records
EncodeErrors, both naming the schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from kedro_stream.serde import DecodeError, EncodeError
from kedro_stream.serde.avro import AvroCodec, load_schema
from tests.records import PAYMENT, SCHEMAS


def test_round_trip() -> None:
    codec = AvroCodec(load_schema(SCHEMAS / "payment.avsc"))
    assert codec.decode(codec.encode(PAYMENT)) == PAYMENT
    assert codec.fields[0] == "payment_id"


def test_avro_refuses_truncated_and_trailing_bytes() -> None:
    codec = AvroCodec(load_schema(SCHEMAS / "payment.avsc"))
    body = codec.encode(PAYMENT)
    with pytest.raises(DecodeError, match="Payment Avro"):
        codec.decode(body[:-3])
    with pytest.raises(DecodeError, match="trailing bytes"):
        codec.decode(body + b"\x00\x01")
    with pytest.raises(DecodeError, match="null value"):
        codec.decode(None)


def test_avro_encode_error_is_clear() -> None:
    codec = AvroCodec(load_schema(SCHEMAS / "score.avsc"))
    with pytest.raises(EncodeError, match="Score Avro"):
        codec.encode({"payment_id": "p"})


def test_a_schema_that_cannot_be_loaded_names_its_path(tmp_path: Path) -> None:
    broken = tmp_path / "broken.avsc"
    broken.write_text('{"type": "record"')
    with pytest.raises(ValueError, match=r"cannot load Avro schema .*broken.avsc"):
        load_schema(broken)
