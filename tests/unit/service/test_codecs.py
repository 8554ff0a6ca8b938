"""stream.yml → the codecs of one stream: schema paths, the shared registry, config errors."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from kedro_stream.config import (
    ConfigError,
    KafkaConfig,
    Project,
    SchemaRegistryConfig,
    StreamConfig,
)
from kedro_stream.serde import EncodeError, confluent
from kedro_stream.serde.avro import AvroCodec
from kedro_stream.serde.confluent import ConfluentAvroCodec
from kedro_stream.serde.json import JsonCodec
from kedro_stream.serde.plain import StringCodec
from kedro_stream.service.codecs import (
    check_schemas,
    input_schema_fields,
    schema_registry_for,
    stream_codecs,
)
from tests.records import PAYMENT, SCHEMAS

# No TLS in memory: skipping the CA bundle load makes each client 50 times cheaper.
MOCK_REGISTRY = SchemaRegistryConfig(url="mock://codecs", properties={"ssl.ca.location": False})


def stream(input_spec: dict[str, Any], outputs: dict[str, Any] | None = None) -> StreamConfig:
    spec = {"topics": ["payments"], "dataset": "payments", **input_spec}
    return StreamConfig.model_validate({"group_id": "g", "input": spec, "outputs": outputs or {}})


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(SCHEMAS, tmp_path / "schemas")
    return tmp_path


def test_relative_schema_paths_are_read_from_the_project(project: Path) -> None:
    absolute = project / "schemas" / "score.avsc"
    config = stream(
        {"format": "json", "schema": "schemas/payment.avsc"},
        {
            "scores": {"topic": "scores", "format": "avro", "schema": str(absolute)},
            "texts": {"topic": "texts", "format": "string"},
            "alerts": {"topic": "alerts", "format": "avro", "schema": "schemas/score.avsc"},
        },
    )
    codecs = stream_codecs(config, KafkaConfig(), Project(project))
    assert isinstance(codecs.input, JsonCodec)
    assert codecs.input.fields == tuple(PAYMENT)
    assert list(codecs.outputs) == ["scores", "texts", "alerts"]  # stream.yml's order
    assert isinstance(codecs.outputs["scores"], AvroCodec)
    assert isinstance(codecs.outputs["texts"], StringCodec)
    assert codecs.outputs["alerts"].fields == codecs.outputs["scores"].fields
    with pytest.raises(ConfigError, match=r"schemas/payment.avsc does not exist; looked in"):
        stream_codecs(config, KafkaConfig(), Project(project / "elsewhere"))


def test_a_stream_without_avro_confluent_builds_no_registry(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(confluent, "registry_client", pytest.fail)
    config = stream({"format": "avro", "schema": "schemas/payment.avsc"})
    assert schema_registry_for(config, KafkaConfig(schema_registry=MOCK_REGISTRY)) is None
    assert stream_codecs(config, KafkaConfig(), Project(project)).outputs == {}


def test_one_registry_client_is_shared_by_every_avro_confluent_codec(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = []

    def counting(properties: dict[str, Any]) -> Any:
        built.append(properties["url"])
        return real(properties)

    real = confluent.registry_client
    monkeypatch.setattr(confluent, "registry_client", counting)
    config = stream(
        {"format": "avro-confluent"},
        {
            "scores": {
                "topic": "scores",
                "format": "avro-confluent",
                "schema": "schemas/score.avsc",
            },
            "copies": {
                "topic": "copies",
                "format": "avro-confluent",
                "schema": "schemas/payment.avsc",
                "auto_register": False,
            },
        },
    )
    codecs = stream_codecs(config, KafkaConfig(schema_registry=MOCK_REGISTRY), Project(project))

    assert built == ["mock://codecs"]
    assert all(isinstance(c, ConfluentAvroCodec) for c in [codecs.input, *codecs.outputs.values()])
    # Each mock client has its own store: the input reads what an output registered only when
    # both use the same client.
    score = {"payment_id": "p-1", "account_id": "a-1", "score": 0.5}
    assert codecs.input.decode(codecs.outputs["scores"].encode(score)) == score
    with pytest.raises(EncodeError, match=r"Not Found"):  # auto_register: false was passed on
        codecs.outputs["copies"].encode(PAYMENT)


def test_avro_confluent_without_a_registry_is_a_config_error(project: Path) -> None:
    config = stream({"format": "avro-confluent"})
    with pytest.raises(ConfigError, match=r"needs kafka.schema_registry in stream.yml"):
        stream_codecs(config, KafkaConfig(), Project(project))


def test_a_property_the_client_does_not_know_is_a_config_error(project: Path) -> None:
    registry = SchemaRegistryConfig(url="https://sr", properties={"max.retrys": 1})
    with pytest.raises(
        ConfigError,
        match=r"^kafka.schema_registry is invalid: ValueError: Unrecognized properties: max.retrys",
    ):
        schema_registry_for(
            stream({"format": "avro-confluent"}), KafkaConfig(schema_registry=registry)
        )


def test_schemas_are_checked_before_boot_naming_their_key(project: Path) -> None:
    config = stream(
        {"format": "avro", "schema": "schemas/payment.avsc"},
        {"scores": {"topic": "scores", "format": "avro", "schema": "schemas/missing.avsc"}},
    )
    with pytest.raises(ConfigError, match=r"^outputs.scores.schema: .*missing.avsc does not exist"):
        check_schemas(config, Project(project))
    (project / "schemas" / "missing.avsc").write_text('{"type": "record"}')
    with pytest.raises(ConfigError, match=r"^outputs.scores.schema: cannot load Avro schema"):
        check_schemas(config, Project(project))
    check_schemas(stream({"format": "avro", "schema": "schemas/payment.avsc"}), Project(project))


def test_the_input_s_fields_are_those_of_its_schema_as_the_decoder_sees_them(
    project: Path,
) -> None:
    """What a state key is checked against: the decoder's own fields, or nothing to check."""
    for fmt in ("json", "avro"):
        config = stream({"format": fmt, "schema": "schemas/payment.avsc"})
        fields = input_schema_fields(config, Project(project))
        assert fields == stream_codecs(config, KafkaConfig(), Project(project)).input.fields
        assert fields is not None and fields[:2] == ("payment_id", "account_id")
    assert input_schema_fields(stream({"format": "json"}), Project(project)) is None
    assert input_schema_fields(stream({"schema": "schemas/nowhere.avsc"}), Project(project)) is None
    (project / "schemas" / "broken.avsc").write_text("{not json")
    assert input_schema_fields(stream({"schema": "schemas/broken.avsc"}), Project(project)) is None
