"""JSON: every malformed value raises DecodeError with a reason; good values round-trip."""

from __future__ import annotations

import json

import pytest

from kedro_stream.serde import DecodeError
from kedro_stream.serde.avro import load_schema
from kedro_stream.serde.json import JsonCodec
from tests.records import PAYMENT, SCHEMAS


@pytest.fixture
def codec() -> JsonCodec:
    return JsonCodec(load_schema(SCHEMAS / "payment.avsc"))


def test_round_trip(codec: JsonCodec) -> None:
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
def test_json_refuses_bad_records(codec: JsonCodec, value: bytes | None) -> None:
    with pytest.raises(DecodeError):
        codec.decode(value)


def test_schema_mismatch_names_the_field_in_one_line(codec: JsonCodec) -> None:
    with pytest.raises(DecodeError) as caught:
        codec.decode(json.dumps({**PAYMENT, "amount": "lots"}).encode())
    assert str(caught.value) == (
        "does not match schema payment_fraud.Payment: payment_fraud.Payment.amount is 'lots', "
        "expected double"
    )


def test_not_an_object_and_not_json_are_named() -> None:
    codec = JsonCodec(None)
    with pytest.raises(DecodeError, match=r"^expected a JSON object, got list$"):
        codec.decode(b"[1, 2, 3]")
    with pytest.raises(DecodeError, match=r"^not JSON: JSONDecodeError: "):
        codec.decode(b'{"a": ')
    assert codec.fields is None
    assert codec.decode(b'{"anything": [1]}') == {"anything": [1]}


def test_json_encodes_missing_floats_as_null() -> None:
    assert json.loads(JsonCodec(None).encode({"score": float("nan")})) == {"score": None}
