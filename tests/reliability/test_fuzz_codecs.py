"""Fuzzing the decoders: whatever bytes arrive, a decoder returns a record that fits the schema
or raises DecodeError with a one-line reason — never another exception, which would stop the
loop instead of dead-lettering one record."""

from __future__ import annotations

import json
from typing import Any

from fastavro.validation import validate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kedro_stream.config import Format
from kedro_stream.serde import DecodeError, build_codec
from tests.records import PAYMENT, SCHEMAS

JSON = build_codec(Format.JSON, SCHEMAS / "payment.avsc")
AVRO = build_codec(Format.AVRO, SCHEMAS / "payment.avsc")
STRING = build_codec(Format.STRING, None)
FUZZ = settings(
    max_examples=2500, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)
# Near misses: a valid payment with one field replaced, dropped, or an extra one added.
mutated_payments = st.builds(
    lambda field, value, drop: (
        {k: v for k, v in PAYMENT.items() if k != field} if drop else {**PAYMENT, field: value}
    ),
    st.sampled_from([*PAYMENT, "extra"]),
    json_values,
    st.booleans(),
)


def assert_one_line(error: DecodeError) -> str:
    reason = str(error)
    assert reason and "\n" not in reason and len(reason) < 2000
    return reason


def assert_record_or_decode_error(codec: Any, value: bytes) -> None:
    try:
        record = codec.decode(value)
    except DecodeError as error:
        assert_one_line(error)
        return
    assert isinstance(record, dict)
    if codec is not STRING:
        assert validate(record, codec.schema, raise_errors=False)


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(value: bytes) -> None:
    for codec in (JSON, AVRO, STRING):
        assert_record_or_decode_error(codec, value)


@FUZZ
@given(mutated_payments)
def test_near_miss_json_records(record: dict[str, Any]) -> None:
    assert_record_or_decode_error(JSON, json.dumps(record, allow_nan=False).encode())


@FUZZ
@given(st.integers(min_value=0, max_value=200), st.binary(max_size=8))
def test_truncated_and_padded_avro(cut: int, tail: bytes) -> None:
    body = AVRO.encode(PAYMENT)
    assert_record_or_decode_error(AVRO, body[: min(cut, len(body))] + tail)


@FUZZ
@given(st.text(max_size=200).map(str.encode), st.binary(max_size=4))
def test_invalid_utf8_and_json_fragments(text: bytes, junk: bytes) -> None:
    assert_record_or_decode_error(JSON, junk + text)
    assert_record_or_decode_error(STRING, text + junk)


def decode_error(codec: Any, value: bytes) -> str:
    """The one-line reason ``codec`` refuses ``value`` with; fails if it decodes."""
    try:
        record = codec.decode(value)
    except DecodeError as error:
        return assert_one_line(error)
    raise AssertionError(f"decoded instead of refused: {str(record)[:200]}")


def test_huge_values_decode_or_are_refused_with_a_reason() -> None:
    # JSON has no Infinity: json.dumps writes the literal, which is refused as not JSON.
    infinite = json.dumps({**PAYMENT, "amount": 1e308 * 10}).encode()
    assert decode_error(JSON, infinite).startswith("not JSON")
    beyond_long = json.dumps({**PAYMENT, "event_time": 2**80}).encode()
    assert "does not match schema" in decode_error(JSON, beyond_long)
    five_mb = {**PAYMENT, "payment_id": "p" * 5_000_000}  # valid: decoded whole
    assert JSON.decode(json.dumps(five_mb).encode())["payment_id"] == five_mb["payment_id"]


def test_deeply_nested_json_is_a_decode_error() -> None:
    """Regression: 100 000 nested brackets raised RecursionError, which stopped the loop."""
    for value in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000):
        assert "depth limit" in decode_error(JSON, value)
