"""10 000 records of every kind through the running service: each good one is scored, each bad
one dead-lettered with its reason, the loop never stops, and memory stays bounded."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from kedro_stream.config import Format
from kedro_stream.serde import build_codec
from kedro_stream.testing.brokers import create_topic
from tests.kafka_helpers import headers, produce, read_topic
from tests.reconcile import (
    assert_reconciled,
    expected_outputs,
    reconcile_alerts,
    reconcile_dead_letters,
    reconcile_scores,
)
from tests.stream_helpers import configure, payments, run_stream, topics

pytestmark = pytest.mark.integration
TOTAL = 10_000


def rss_mib() -> float:
    """This process's resident memory now (not its peak: an earlier test's peak would hide
    any growth here)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def junk(rng: random.Random, good: dict, avro: bytes) -> bytes:
    """One bad record. Sizes keep the whole topic far below the embedded broker's retention
    (about 5 MiB a partition, older records dropped beyond it)."""
    field = rng.choice(list(good))
    makers = [
        lambda: rng.randbytes(rng.randrange(1, 200)),  # random bytes
        lambda: json.dumps(good).encode()[: rng.randrange(1, 60)],  # truncated JSON
        lambda: avro,  # Avro where JSON is expected
        lambda: json.dumps({**good, field: rng.choice([[], {}, [1], {"a": 1}])}).encode(),
        lambda: json.dumps({**good, field: None}).encode(),  # nulls
        lambda: json.dumps({**good, "event_time": 2**70}).encode(),  # beyond an Avro long
        lambda: b"\xff\xfe" + json.dumps(good).encode(),  # invalid UTF-8
        lambda: b"[" * 2_000,  # nesting that used to overflow the decoder
    ]
    if rng.random() < 0.02:  # large and broken
        return json.dumps({**good, "payment_id": "x" * 50_000}).encode()[:-1]
    return rng.choice(makers)()


def test_ten_thousand_good_and_bad_records(kafka_broker, stream_project: Path) -> None:
    names = topics("fuzz")
    create_topic(kafka_broker, names["input"], partitions=8)
    configure(stream_project, names, **{"batch.max_size": 500})
    rng = random.Random(20261123)
    pool = payments(stream_project, 5000)
    avro = build_codec(Format.AVRO, stream_project / "schemas/payment.avsc").encode(pool[0])
    values, good, bad = [], [], []
    for i in range(TOTAL):
        if rng.random() < 0.5:
            record = {**pool[i % len(pool)], "payment_id": f"fz-{i}"}
            good.append(record)
            values.append(json.dumps(record).encode())
        else:
            values.append(junk(rng, pool[i % len(pool)], avro))
            bad.append(values[-1])
    bootstrap = kafka_broker.bootstrap_servers
    produce(bootstrap, names["input"], values)

    before = rss_mib()
    progress = run_stream(stream_project, names, bootstrap, max_messages=TOTAL, idle_timeout_s=60)
    grown_mib = rss_mib() - before

    assert progress.records == TOTAL
    assert progress.dead_lettered == len(bad)
    expected = expected_outputs(stream_project, good)
    dead = read_topic(bootstrap, names["dlq"], expect=len(bad))
    # Each good record scored once, each bad one dead-lettered once as a decode error, and
    # nothing else in either topic.
    assert_reconciled(
        reconcile_scores(expected, read_topic(bootstrap, names["scores"], expect=len(good))),
        reconcile_alerts(expected, read_topic(bootstrap, names["alerts"])),
        reconcile_dead_letters(bad, dead, stage="decode", error_class="DecodeError"),
        exact=True,
    )
    # A dead letter names its source record: the value at that partition and offset.
    sources = {
        (m.partition(), m.offset()): m.value() for m in read_topic(bootstrap, names["input"])
    }
    for message in dead:
        h = headers(message)
        source = (int(h["kedro-stream.source.partition"]), int(h["kedro-stream.source.offset"]))
        assert sources[source] == message.value(), f"dead letter names the wrong source {source}"
    assert grown_mib < 400, f"resident memory grew by {grown_mib:.0f} MiB for {TOTAL} records"
