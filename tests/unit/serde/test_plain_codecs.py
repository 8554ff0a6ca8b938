"""string and bytes: the whole value in one ``value`` field."""

from __future__ import annotations

import pytest

from kedro_stream.serde import DecodeError, EncodeError
from kedro_stream.serde.plain import BytesCodec, StringCodec


def test_string_codec_refuses_invalid_utf8() -> None:
    codec = StringCodec()
    assert codec.decode("héllo".encode()) == {"value": "héllo"}
    assert codec.encode({"value": 3}) == b"3"
    with pytest.raises(DecodeError, match="not UTF-8"):
        codec.decode(b"\xc3\x28")
    with pytest.raises(DecodeError, match="null value"):
        codec.decode(None)


def test_bytes_codec_passes_values_through_and_writes_only_bytes() -> None:
    codec = BytesCodec()
    assert codec.decode(None) == {"value": None}
    assert codec.encode(codec.decode(b"\x00\xff")) == b"\x00\xff"
    with pytest.raises(EncodeError, match=r"needs bytes in 'value', got str"):
        codec.encode({"value": "text"})


@pytest.mark.parametrize("codec", [StringCodec(), BytesCodec()], ids=["string", "bytes"])
def test_a_record_without_value_is_an_encode_error(codec: StringCodec | BytesCodec) -> None:
    """Not a KeyError: the service dead-letters an EncodeError's batch without retrying it."""
    with pytest.raises(EncodeError, match=r"'value' field, which it lacks; fields: \['n'\]"):
        codec.encode({"n": 1})
