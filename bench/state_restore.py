"""How fast a state store is rebuilt from its changelog: records/s of a restore, as an instance
meets it after a crash or on taking over a partition.

Writes ``--records`` changelog records (``--keys`` distinct keys, rows of ~200 bytes) over the
``--partitions`` of a changelog on the embedded broker (which keeps ~5 MiB a partition), then
restores a fresh store per partition from them with the service's own code, as one assignment
does, and again from the stores' checkpoints (nothing left to read).

Usage: python bench/state_restore.py [--records 1000000] [--keys 100000] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from confluent_kafka import Consumer, Producer

from kedro_stream.config import KafkaConfig, StreamConfig
from kedro_stream.devbroker.process import EmbeddedBroker
from kedro_stream.kafka.clients import restore_consumer_config
from kedro_stream.state.changelog import AS_OF
from kedro_stream.state.restore import restore
from kedro_stream.state.store import PartitionStore

TOPIC = "bench-activity-changelog"
ROW = json.dumps(
    {"account_id": "a", "events": [[1_700_000_000_000 + i, 12.5 + i] for i in range(6)]}
).encode()


def write_changelog(bootstrap: str, records: int, keys: int, partitions: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for i in range(records):
        key = i % keys
        headers = [(AS_OF, str(i + 1).encode())]
        while True:
            try:
                producer.produce(
                    TOPIC, ROW, f"k{key}".encode(), partition=key % partitions, headers=headers
                )
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(120):
        raise SystemExit("changelog records not acknowledged")


def timed_restore(
    bootstrap: str, stores: dict[int, PartitionStore], committed: int
) -> tuple[float, int]:
    stream = StreamConfig.model_validate(
        {"group_id": "bench", "input": {"topics": ["in"], "dataset": "events"}}
    )
    consumer = Consumer(restore_consumer_config(KafkaConfig(bootstrap_servers=bootstrap), stream))
    try:
        done = restore(stores, consumer, TOPIC, dict.fromkeys(stores, committed))
    finally:
        consumer.close()
    return done.seconds, done.records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=64)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with EmbeddedBroker.start() as broker, tempfile.TemporaryDirectory() as folder:
        broker.faults.create_topic(TOPIC, args.partitions)
        print(f"writing {args.records} changelog records ...", file=sys.stderr, flush=True)
        write_changelog(broker.bootstrap_servers, args.records, args.keys, args.partitions)
        stores = {p: PartitionStore(Path(folder) / str(p)) for p in range(args.partitions)}
        seconds, read = timed_restore(broker.bootstrap_servers, stores, args.records)
        again, reread = timed_restore(broker.bootstrap_servers, stores, args.records)
        keys = sum(store.count() for store in stores.values())
        for store in stores.values():
            store.close()
    figures = {
        "restore_records": read,
        "restore_s": round(seconds, 2),
        "restore_records_per_s": round(read / seconds),
        "keys": keys,
        "from_checkpoint_records": reread,
        "from_checkpoint_s": round(again, 2),
    }
    print(
        f"restored {read} changelog records ({keys} keys) in {seconds:.1f} s: "
        f"{read / seconds:,.0f} records/s; from the checkpoint: {reread} records in {again:.2f} s"
    )
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
