"""The format table: every configurable format builds its codec, and only avro-confluent pays
for the registry client."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kedro_stream.config import Format
from kedro_stream.errors import KedroStreamError
from kedro_stream.serde import DecodeError, EncodeError, RegistryUnavailable, build_codec
from kedro_stream.serde.avro import AvroCodec
from kedro_stream.serde.formats import CODECS
from kedro_stream.serde.json import JsonCodec
from kedro_stream.serde.plain import BytesCodec, StringCodec
from tests.records import SCHEMAS


def test_every_configurable_format_has_a_codec() -> None:
    assert set(CODECS) == {f.value for f in Format}


@pytest.mark.parametrize(
    ("fmt", "schema", "codec_type"),
    [
        (Format.JSON, "payment.avsc", JsonCodec),
        (Format.JSON, None, JsonCodec),
        (Format.AVRO, "payment.avsc", AvroCodec),
        (Format.STRING, None, StringCodec),
        (Format.BYTES, None, BytesCodec),
        ("json", None, JsonCodec),  # the name as stream.yml spells it
        ("avro", "payment.avsc", AvroCodec),
    ],
)
def test_build_codec_by_format_or_name(fmt: Format | str, schema: str | None, codec_type) -> None:
    codec = build_codec(fmt, SCHEMAS / schema if schema else None)
    assert type(codec) is codec_type
    if schema:
        assert codec.fields[0] == "payment_id"


def test_formats_that_cannot_be_built_say_what_is_missing() -> None:
    with pytest.raises(ValueError, match=r"format avro needs a schema"):
        build_codec(Format.AVRO, None)
    with pytest.raises(ValueError, match=r"avro-confluent needs the topic and a schema registry"):
        build_codec(Format.AVRO_CONFLUENT, SCHEMAS / "payment.avsc", topic="payments")
    with pytest.raises(ValueError, match=r"unknown format 'xml'; formats: 'avro', "):
        build_codec("xml", None)


def test_codec_errors_are_kedro_stream_errors() -> None:
    for error in (DecodeError, EncodeError, RegistryUnavailable):
        assert issubclass(error, KedroStreamError)
    assert not issubclass(DecodeError, EncodeError | RegistryUnavailable)
    assert not issubclass(EncodeError, RegistryUnavailable)


def test_serde_imports_neither_kedro_nor_the_registry_client_until_asked() -> None:
    script = """
import sys
from pathlib import Path
from kedro_stream.serde import build_codec
for fmt in ("json", "avro", "string", "bytes"):
    build_codec(fmt, Path(sys.argv[1]) if fmt == "avro" else None)
print(sorted(
    name for name in sys.modules
    if name.split(".")[0] == "kedro" or name.startswith(("kedro_stream.config",
    "kedro_stream.service", "kedro_stream.serde.confluent", "confluent_kafka.schema_registry"))
))
"""
    done = subprocess.run(
        [sys.executable, "-c", script, str(SCHEMAS / "payment.avsc")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[]"
