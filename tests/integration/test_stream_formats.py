"""Avro through the running service: schemaless Avro and the Confluent wire format, in and out,
with a bad record dead-lettered and every output reconciled."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from confluent_kafka.schema_registry import SchemaRegistryClient

from kedro_stream.config import Format
from kedro_stream.serde import Codec, build_codec
from tests.kafka_helpers import produce_keyed, read_topic
from tests.reconcile import (
    assert_reconciled,
    expected_outputs,
    reconcile_alerts,
    reconcile_dead_letters,
    reconcile_scores,
)
from tests.stream_helpers import configure, payments, run_stream, topics

pytestmark = pytest.mark.integration
COUNT = 300


def stream_avro(
    kafka_broker, project: Path, names: dict[str, str], records: list[tuple[bytes | None, bytes]]
) -> None:
    """``records`` are (message key, value): payments keyed by account, as the state needs."""
    produce_keyed(kafka_broker.bootstrap_servers, names["input"], records)
    progress = run_stream(
        project,
        names,
        kafka_broker.bootstrap_servers,
        max_messages=len(records),
        idle_timeout_s=30,
    )
    assert progress.records == len(records)
    assert progress.dead_lettered == 1
    assert progress.batches >= 5  # bounded by batch.max_size


def check_outputs(
    kafka_broker,
    project: Path,
    names: dict[str, str],
    good: list[dict],
    score: Codec,
    *,
    bad: bytes,
) -> None:
    """Scores (read with ``score``) and alerts for exactly the good payments, ``bad`` alone
    dead-lettered as a decode error, each once."""
    bootstrap = kafka_broker.bootstrap_servers
    expected = expected_outputs(project, good)
    assert_reconciled(
        reconcile_scores(
            expected, read_topic(bootstrap, names["scores"], expect=COUNT), score.decode
        ),
        reconcile_alerts(expected, read_topic(bootstrap, names["alerts"])),
        reconcile_dead_letters(
            [bad],
            read_topic(bootstrap, names["dlq"], expect=1),
            stage="decode",
            error_class="DecodeError",
        ),
        exact=True,
    )


def test_avro_in_avro_out(kafka_broker, stream_project: Path) -> None:
    names = topics("avro")
    scores_out = {"topic": names["scores"], "format": "avro", "schema": "schemas/score.avsc"}
    configure(
        stream_project,
        names,
        **{
            "input.format": "avro",
            "outputs.scores": {**scores_out, "key": "payment_id"},
            "batch.max_size": 64,
        },
    )
    payment = build_codec(Format.AVRO, stream_project / "schemas/payment.avsc")
    good = payments(stream_project, COUNT)
    records = [(p["account_id"].encode(), payment.encode(p)) for p in good]
    truncated = payment.encode(good[0])[:-4]
    records.insert(100, (None, truncated))

    stream_avro(kafka_broker, stream_project, names, records)

    score = build_codec(Format.AVRO, stream_project / "schemas/score.avsc")
    check_outputs(kafka_broker, stream_project, names, good, score, bad=truncated)


def test_confluent_avro_in_and_out(
    kafka_broker, stream_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry is the client library's in-memory one (``mock://``), shared in-process by
    the test's producer and reader and the service, as one registry server would be."""
    registry = SchemaRegistryClient.new_client({"url": "mock://formats"})
    monkeypatch.setattr(SchemaRegistryClient, "new_client", staticmethod(lambda conf: registry))
    names = topics("confluent")
    stream_yml = stream_project / "conf" / "base" / "stream.yml"
    config = yaml.safe_load(stream_yml.read_text())
    config["kafka"]["schema_registry"] = {"url": "mock://formats"}
    stream_yml.write_text(yaml.safe_dump(config))
    scores_out = {"topic": names["scores"], "format": "avro-confluent"}
    configure(
        stream_project,
        names,
        **{
            "input.format": "avro-confluent",
            "outputs.scores": {**scores_out, "schema": "schemas/score.avsc", "key": "payment_id"},
            "batch.max_size": 64,
        },
    )
    schemas = stream_project / "schemas"
    payment = build_codec(
        Format.AVRO_CONFLUENT, schemas / "payment.avsc", topic=names["input"], registry=registry
    )
    good = payments(stream_project, COUNT)
    records = [(p["account_id"].encode(), payment.encode(p)) for p in good]
    unknown_id = b"\x00\x00\x00\x7f\xff" + records[0][1][5:]  # framed, with no such schema id
    records.insert(100, (None, unknown_id))

    stream_avro(kafka_broker, stream_project, names, records)

    score = build_codec(
        Format.AVRO_CONFLUENT, schemas / "score.avsc", topic=names["scores"], registry=registry
    )
    check_outputs(kafka_broker, stream_project, names, good, score, bad=unknown_id)
