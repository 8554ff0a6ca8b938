"""10 000 records of every kind through the running service: each good one is scored, each bad
one dead-lettered with its reason, the loop never stops, and memory stays bounded."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from kedro_stream.config import Format
from kedro_stream.serde import build_codec
from tests.kafka_helpers import headers, produce_keyed, read_topic
from tests.reconcile import (
    assert_reconciled,
    expected_outputs,
    reconcile_alerts,
    reconcile_dead_letters,
    reconcile_features,
    reconcile_scores,
)
from tests.stream_helpers import configure, create_input, payments, run_stream, topics

pytestmark = pytest.mark.integration
TOTAL = 10_000
LAP_MS = 10 * 24 * 3_600_000  # later than the pool's whole span


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
    create_input(kafka_broker, names, partitions=8)
    configure(stream_project, names, **{"batch.max_size": 500})
    rng = random.Random(20261123)
    pool = payments(stream_project, 5000)
    avro = build_codec(Format.AVRO, stream_project / "schemas/payment.avsc").encode(pool[0])
    records: list[tuple[bytes | None, bytes]] = []
    good, bad = [], []
    for i in range(TOTAL):
        if rng.random() < 0.5:
            # Each lap over the pool comes later in event time: accounts stay in order.
            pick = pool[i % len(pool)]
            lap = (i // len(pool)) * LAP_MS
            record = {**pick, "payment_id": f"fz-{i}", "event_time": pick["event_time"] + lap}
            good.append(record)
            records.append((record["account_id"].encode(), json.dumps(record).encode()))
        else:
            bad.append(junk(rng, pool[i % len(pool)], avro))
            records.append((None, bad[-1]))
    bootstrap = kafka_broker.bootstrap_servers
    produce_keyed(bootstrap, names["input"], records)

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
        reconcile_features(expected, read_topic(bootstrap, names["features"], expect=len(good))),
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
