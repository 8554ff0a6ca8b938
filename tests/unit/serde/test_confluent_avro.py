"""avro-confluent: the Confluent wire format against the library's in-memory schema registry.

``SchemaRegistryClient.new_client`` gives a ``MockSchemaRegistryClient`` for a ``mock://`` URL;
each instance has its own store (two clients with the same URL share nothing), so every codec of
a test uses the one client, as the service does.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from kedro_stream.config import ConfigError, Format, parse_stream_file
from kedro_stream.serde import DecodeError, EncodeError, RegistryUnavailable, build_codec
from kedro_stream.serde.confluent import ConfluentAvroCodec, registry_client
from tests.records import PAYMENT, SCHEMAS

STREAM = {
    "namespace": "scoring",
    "group_id": "g",
    "input": {"topics": ["payments"], "dataset": "payments", "format": "avro-confluent"},
    "outputs": {
        "scores": {"topic": "scores", "format": "avro-confluent", "schema": "schemas/score.avsc"}
    },
}


@pytest.fixture
def registry() -> SchemaRegistryClient:
    # No TLS in memory: skipping the CA bundle load makes each client 50 times cheaper.
    return SchemaRegistryClient.new_client({"url": "mock://test", "ssl.ca.location": False})


def codec(registry: SchemaRegistryClient, schema: Path | None = SCHEMAS / "payment.avsc", **kw):
    return ConfluentAvroCodec(registry, "payments", schema, **kw)


def test_the_format_table_builds_it_with_the_topic_and_registry(registry) -> None:
    built = build_codec(
        Format.AVRO_CONFLUENT, SCHEMAS / "payment.avsc", topic="payments", registry=registry
    )
    assert isinstance(built, ConfluentAvroCodec)
    assert codec(registry, None).decode(built.encode(PAYMENT)) == PAYMENT


def test_round_trip_registers_under_the_topic_subject(registry) -> None:
    writer, reader = codec(registry), codec(registry, None)
    assert reader.decode(writer.encode(PAYMENT)) == PAYMENT
    assert registry.get_subjects() == ["payments-value"]
    assert writer.fields[0] == "payment_id"
    assert reader.fields is None  # without a reader schema, columns come from the records


def test_wire_bytes_are_magic_zero_and_the_schema_id(registry) -> None:
    value = codec(registry).encode(PAYMENT)
    schema_id = registry.get_latest_version("payments-value").schema_id
    assert value[0] == 0
    assert int.from_bytes(value[1:5], "big") == schema_id
    assert len(value) > 5


def test_decode_resolves_to_an_evolved_reader_schema(registry, tmp_path: Path) -> None:
    evolved = json.loads((SCHEMAS / "payment.avsc").read_text())
    evolved["fields"] = [f for f in evolved["fields"] if f["name"] != "country"]
    evolved["fields"].append({"name": "channel", "type": "string", "default": "online"})
    reader_path = tmp_path / "payment_v2.avsc"
    reader_path.write_text(json.dumps(evolved))

    reader = codec(registry, reader_path)
    record = reader.decode(codec(registry).encode(PAYMENT))

    expected = {k: v for k, v in PAYMENT.items() if k != "country"} | {"channel": "online"}
    assert record == expected
    assert reader.fields[-1] == "channel"


def _framed(registry) -> bytes:
    return codec(registry).encode(PAYMENT)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda v: None, r"null value"),
        (lambda v: b"\xff\xfe\x00garbage", r"Invalid magic byte"),
        (lambda v: json.dumps(PAYMENT).encode(), r"Invalid magic byte"),
        (lambda v: b"\x05" + v[1:], r"Invalid magic byte"),
        (lambda v: v[:5], r"data framing of length 6 bytes"),
        (lambda v: b"\x00\x00\x00\x03\xe7" + v[5:], r"schema id 999\).*Schema Not Found"),
        (lambda v: v[:-1], r"schema id 1\)"),
        (lambda v: v[:12], r"schema id 1\)"),
    ],
    ids=["null", "garbage", "json", "wrong-magic", "header-only", "unknown-id", "cut", "cut-more"],
)
def test_bad_values_raise_decode_error_with_a_one_line_reason(registry, damage, reason) -> None:
    value = damage(_framed(registry))
    with pytest.raises(DecodeError, match=reason) as caught:
        codec(registry, None).decode(value)
    assert "\n" not in str(caught.value)


def test_a_value_that_is_not_a_record_is_a_decode_error(registry) -> None:
    value = AvroSerializer(registry, '"string"')(
        "hello", SerializationContext("t", MessageField.VALUE)
    )
    with pytest.raises(DecodeError, match=r"expected an Avro record, got str"):
        codec(registry, None).decode(value)


def test_encode_refuses_a_record_that_does_not_fit_the_schema(registry) -> None:
    with pytest.raises(EncodeError, match=r"needs a schema to write with"):
        codec(registry, None).encode(PAYMENT)
    missing = {k: v for k, v in PAYMENT.items() if k != "amount"}
    with pytest.raises(EncodeError, match=r"no value and no default for amount"):
        codec(registry).encode(missing)
    with pytest.raises(EncodeError, match=r"payment_id"):
        codec(registry).encode({**PAYMENT, "payment_id": None})


def test_without_auto_register_the_schema_must_already_be_registered(registry) -> None:
    with pytest.raises(EncodeError, match=r"Not Found"):
        codec(registry, auto_register=False).encode(PAYMENT)
    codec(registry).encode(PAYMENT)  # registers it
    assert codec(registry, None).decode(codec(registry, auto_register=False).encode(PAYMENT))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_registry_fails_the_batch_not_the_record(registry) -> None:
    value = _framed(registry)
    down = registry_client(
        {"url": f"http://127.0.0.1:{_closed_port()}", "timeout": 10, "max.retries": 0}
    )
    # Neither a DecodeError nor an EncodeError: the record is fine, so it must not be
    # dead-lettered; the batch is retried and then handled per on_failure.
    with pytest.raises(RegistryUnavailable, match=r"reading \(schema id 1\).*ConnectError"):
        codec(down, None).decode(value)
    with pytest.raises(
        RegistryUnavailable, match=r"writing \(subject payments-value\).*ConnectErr"
    ):
        codec(down).encode(PAYMENT)


@pytest.mark.parametrize(
    ("status", "raised"),
    [
        (503, RegistryUnavailable),
        (500, RegistryUnavailable),
        (429, RegistryUnavailable),
        (408, RegistryUnavailable),
        (-1, RegistryUnavailable),  # no HTTP status at all
        (409, EncodeError),  # incompatible with the subject's schemas: the same every time
        (422, EncodeError),
        (401, EncodeError),
    ],
)
@pytest.mark.parametrize("auto_register", [True, False], ids=["register", "lookup"])
def test_a_registry_error_on_encode_is_retried_only_when_the_registry_is_down(
    registry, monkeypatch: pytest.MonkeyPatch, status: int, raised: type, auto_register: bool
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise SchemaRegistryError(status, status * 100 + 1, "refused by the registry")

    called = "register_schema_full_response" if auto_register else "lookup_schema"
    monkeypatch.setattr(registry, called, refuse)
    with pytest.raises(raised, match=r"refused by the registry") as caught:
        codec(registry, auto_register=auto_register).encode(PAYMENT)
    assert type(caught.value) is raised
    assert "\n" not in str(caught.value)


def test_avro_confluent_needs_the_registry_key() -> None:
    with pytest.raises(
        ConfigError,
        match=r"streams.s: format avro-confluent needs "
        r"kafka.schema_registry",
    ):
        parse_stream_file({"streams": {"s": STREAM}}, {})
    parsed = parse_stream_file(
        {"kafka": {"schema_registry": {"url": "mock://x"}}, "streams": {"s": STREAM}}, {}
    )
    assert parsed.streams["s"].outputs["scores"].auto_register is True


def test_an_output_needs_a_schema_and_a_plain_stream_no_registry() -> None:
    unschema = {**STREAM, "outputs": {"scores": {"topic": "s", "format": "avro-confluent"}}}
    with pytest.raises(ConfigError, match=r"scores: format avro-confluent needs a schema"):
        parse_stream_file(
            {"kafka": {"schema_registry": {"url": "mock://x"}}, "streams": {"s": unschema}}, {}
        )
    plain = {**STREAM, "input": {"topics": ["p"], "dataset": "p"}, "outputs": {}}
    assert parse_stream_file({"streams": {"s": plain}}, {}).streams["s"].formats() == {Format.JSON}


def test_registry_login_comes_from_credentials_and_is_never_rendered() -> None:
    raw = {"kafka": {"schema_registry": {"url": "https://sr:8081", "credentials": "sr"}}}
    parsed = parse_stream_file(raw, {"sr": {"basic.auth.user.info": "svc:hunter2"}})
    registry = parsed.kafka.schema_registry
    assert registry.client_properties()["basic.auth.user.info"] == "svc:hunter2"
    for shown in (repr(parsed), str(parsed), parsed.model_dump_json(), repr(registry)):
        assert "hunter2" not in shown
    assert registry_client(registry.client_properties()).config()["url"] == "https://sr:8081"


@pytest.mark.parametrize(
    ("registry", "credentials", "message"),
    [
        (
            {"url": "https://sr", "properties": {"basic.auth.user.info": "svc:hunter2"}},
            {},
            r"\['basic.auth.user.info'\] belong in conf/local/credentials.yml, referenced by "
            r"kafka.schema_registry.credentials",
        ),
        ({"url": "https://svc:hunter2@sr"}, {}, r"a login in the URL belongs in"),
        ({"url": "https://sr", "credentials": "sr"}, {}, r"schema_registry.credentials is 'sr'"),
        ({"url": "https://sr", "user": "svc"}, {}, r"schema_registry.user: Extra inputs"),
    ],
    ids=["inline-secret", "login-in-url", "unknown-credentials", "unknown-key"],
)
def test_bad_registry_config_is_refused_without_showing_secrets(
    registry: dict, credentials: dict, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_stream_file({"kafka": {"schema_registry": registry}}, credentials)
    assert "hunter2" not in str(caught.value)


def test_a_property_the_client_does_not_know_is_named() -> None:
    with pytest.raises(ValueError, match=r"^ValueError: Unrecognized properties: max.retrys"):
        registry_client({"url": "https://sr", "max.retrys": 1})
