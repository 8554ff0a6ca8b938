"""Codecs: every malformed value raises DecodeError with a reason; good values round-trip."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from kedro_stream.config import Format
from kedro_stream.serde import DecodeError, EncodeError, build_codec, records_of, to_dataset
from tests.records import PAYMENT, SCHEMAS


@pytest.fixture(params=[Format.JSON, Format.AVRO])
def codec(request: pytest.FixtureRequest):
    return build_codec(request.param, SCHEMAS / "payment.avsc")


def test_round_trip(codec) -> None:
    assert codec.decode(codec.encode(PAYMENT)) == PAYMENT
    assert codec.fields[0] == "payment_id"


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"\xff\xfe\x00garbage",
        b'{"payment_id": "p-1"',
        b"[1, 2, 3]",
        json.dumps({**PAYMENT, "amount": "12.5"}).encode(),
        json.dumps({**PAYMENT, "card_present": None}).encode(),
        json.dumps({k: v for k, v in PAYMENT.items() if k != "event_time"}).encode(),
    ],
    ids=["null", "empty", "binary", "truncated", "array", "wrong-type", "null-field", "missing"],
)
def test_json_refuses_bad_records(value: bytes | None) -> None:
    with pytest.raises(DecodeError):
        build_codec(Format.JSON, SCHEMAS / "payment.avsc").decode(value)


def test_avro_refuses_truncated_and_trailing_bytes() -> None:
    codec = build_codec(Format.AVRO, SCHEMAS / "payment.avsc")
    body = codec.encode(PAYMENT)
    with pytest.raises(DecodeError, match="Payment Avro"):
        codec.decode(body[:-3])
    with pytest.raises(DecodeError, match="trailing bytes"):
        codec.decode(body + b"\x00\x01")


def test_string_codec_refuses_invalid_utf8() -> None:
    codec = build_codec(Format.STRING, None)
    assert codec.decode("héllo".encode()) == {"value": "héllo"}
    with pytest.raises(DecodeError, match="not UTF-8"):
        codec.decode(b"\xc3\x28")


def test_json_encodes_missing_floats_as_null() -> None:
    codec = build_codec(Format.JSON, None)
    assert json.loads(codec.encode({"score": float("nan")})) == {"score": None}


def test_avro_encode_error_is_clear() -> None:
    codec = build_codec(Format.AVRO, SCHEMAS / "score.avsc")
    with pytest.raises(EncodeError, match="Score Avro"):
        codec.encode({"payment_id": "p"})


def test_empty_batch_keeps_the_schema_columns() -> None:
    fields = build_codec(Format.JSON, SCHEMAS / "payment.avsc").fields
    frame = to_dataset([], data_type="pandas", fields=fields)
    assert list(frame.columns) == list(PAYMENT)
    assert to_dataset([PAYMENT], data_type="records", fields=fields) == [PAYMENT]


def test_records_of_accepts_frames_lists_and_dicts() -> None:
    assert records_of(pd.DataFrame([{"a": 1}])) == [{"a": 1}]
    assert records_of([{"a": 1}]) == [{"a": 1}]
    assert records_of({"a": 1}) == [{"a": 1}]
    with pytest.raises(TypeError, match="must be a DataFrame, a list of dicts or a dict"):
        records_of(3)


def test_schema_mismatch_names_the_field_in_one_line() -> None:
    codec = build_codec(Format.JSON, SCHEMAS / "payment.avsc")
    with pytest.raises(DecodeError) as caught:
        codec.decode(json.dumps({**PAYMENT, "amount": "lots"}).encode())
    assert str(caught.value) == (
        "does not match schema payment_fraud.Payment: payment_fraud.Payment.amount is 'lots', "
        "expected double"
    )
