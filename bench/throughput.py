"""Throughput of one job run five ways, side by side against the same broker and records.

The job: consume a micro-batch of payments → decode (JSON or schemaless Avro) → score with the
``scoring`` namespace's logic → encode the scores and alerts as JSON → produce → commit after
every output is acknowledged. Ways:
  raw         (a) a hand-written confluent-kafka loop calling the plain node functions: the limit
  stream      (b) ``kedro stream consume`` (a subprocess, as a user starts it)
  quix        (c) a Quix Streams 3.28 application (``bench/quix_app.py``, a virtualenv of its
              own): a per-record port of the scoring logic, committing every batch-size records
  kedro-boot  (d) kedro-boot 0.3.0's ``session.run`` inside the hand-written loop
  session     (e) a fresh ``KedroSession`` per batch inside the hand-written loop
Throughput is counted between a way's first and last commit, so start-up (Kedro boot, group
join) is left out for every way alike. Then end-to-end latency of ``kedro stream consume`` at
a fixed rate: output record timestamp minus input record timestamp (both set by producers on
this host).

Usage: python bench/throughput.py [--records 200000] [--formats json,avro] [--ways ...]
                                 [--rounds 1] [--json]
With --json the last line is one JSON object: ``records_per_s`` per way and format,
``ratio_vs_raw`` and ``ratio_vs_quix`` (stream over each; the lower of the formats, with
``*_by_format`` beside), ``e2e_p50_ms`` and ``e2e_p99_ms``.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import fastavro
import pandas as pd
import yaml
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

import consume_process
import quix_way
from kedro_stream.devbroker.process import EmbeddedBroker
from session_overhead import PROJECT, prepare, quiet_kedro_logging, variants

SCHEMA = fastavro.parse_schema(json.loads((PROJECT / "schemas/payment.avsc").read_text()))
Transform = Callable[[pd.DataFrame], tuple[pd.DataFrame, pd.DataFrame]]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------- records


def encode_inputs(events: pd.DataFrame, count: int, fmt: str) -> list[bytes]:
    records = json.loads(events.to_json(orient="records"))
    values = []
    for i in range(count):
        record = {**records[i % len(records)], "payment_id": f"b-{i}"}
        if fmt == "json":
            values.append(json.dumps(record).encode())
        else:
            out = io.BytesIO()
            fastavro.schemaless_writer(out, SCHEMA, record)
            values.append(out.getvalue())
    return values


def create_topics(broker: EmbeddedBroker, topic: str, partitions: int) -> None:
    """The input and every way's outputs, all with ``partitions`` (the mock's auto-created
    topics get 4, and keeps ~5 MiB a partition)."""
    suffixes = ("", "-raw-scores", "-raw-alerts", "-stream-scores", "-stream-alerts")
    for suffix in (*suffixes, *quix_way.SUFFIXES):
        broker.faults.create_topic(topic + suffix, partitions)
    broker.faults.create_topic(f"{topic}-stream-dlq", 1)


def produce(bootstrap: str, topic: str, values: list[bytes], partitions: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for i, value in enumerate(values):
        while True:
            try:
                producer.produce(topic, value, partition=i % partitions)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(60):
        raise SystemExit(f"inputs to {topic} not acknowledged")


# ---------------------------------------------------------------- the hand-written loop


def decoder(fmt: str) -> Callable[[bytes], dict[str, Any]]:
    if fmt == "json":
        return json.loads
    return lambda value: fastavro.schemaless_reader(io.BytesIO(value), SCHEMA)


def hand_written_loop(
    bootstrap: str, topic: str, fmt: str, *, total: int, transform: Transform, batch_size: int
) -> tuple[float, float, int]:
    """(first commit time, last commit time, records in the first batch)."""
    # As the service does after boot: this process's heap (sessions, encoded inputs) stays out
    # of the collections the loop's garbage triggers, or each walks it all.
    gc.collect()
    gc.freeze()
    decode = decoder(fmt)
    run = uuid.uuid4().hex[:8]
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-raw-{run}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 20,
        }
    )
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    failed: list[KafkaError] = []

    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            failed.append(error)

    consumer.subscribe([topic])
    done, first_at, first_batch = 0, 0.0, 0
    try:
        while done < total:
            messages = [m for m in consumer.consume(batch_size, 0.1) if m.error() is None]
            if not messages:
                continue
            batch = pd.DataFrame.from_records([decode(m.value()) for m in messages])
            scores, alerts = transform(batch)
            for name, frame, key in (("scores", scores, "payment_id"), ("alerts", alerts, None)):
                lines = frame.to_json(orient="records", lines=True).splitlines()
                keys = frame[key].astype(str).tolist() if key else [None] * len(lines)
                for line, k in zip(lines, keys, strict=True):
                    producer.produce(
                        f"{topic}-raw-{name}", line.encode(), key=k, on_delivery=delivered
                    )
                producer.poll(0)
            if producer.flush(30) or failed:
                raise SystemExit(f"outputs not acknowledged: {failed[:1]}")
            ends: dict[int, int] = {}
            for m in messages:
                ends[m.partition()] = max(ends.get(m.partition(), 0), m.offset() + 1)
            consumer.commit(
                offsets=[TopicPartition(topic, p, o) for p, o in ends.items()], asynchronous=False
            )
            done += len(messages)
            if not first_at:
                first_at, first_batch = time.perf_counter(), len(messages)
        return first_at, time.perf_counter(), first_batch
    finally:
        consumer.close()


# ----------------------------------------------------------------- kedro stream consume


def stream_project(
    workdir: Path, topic: str, fmt: str, *, batch_size: int, wait_ms: int, fetch_wait_ms: int = 20
) -> Path:
    """A copy of the example project whose stream reads ``topic`` in ``fmt``."""
    project = workdir / f"project-{uuid.uuid4().hex[:8]}"
    shutil.copytree(
        PROJECT,
        project,
        ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "bench", "tests", "deploy"),
    )
    path = project / "conf/base/stream.yml"
    config = yaml.safe_load(path.read_text())
    stream = config["streams"]["payment-scoring"]
    stream["group_id"] = f"bench-stream-{uuid.uuid4().hex[:8]}"
    stream["input"].update({"topics": [topic], "format": fmt})
    stream["outputs"]["scores"]["topic"] = f"{topic}-stream-scores"
    stream["outputs"]["alerts"]["topic"] = f"{topic}-stream-alerts"
    stream["dead_letter_topic"] = f"{topic}-stream-dlq"
    stream["batch"] = {"max_size": batch_size, "max_wait_ms": wait_ms}
    config["kafka"]["consumer"]["fetch.wait.max.ms"] = fetch_wait_ms
    path.write_text(yaml.safe_dump(config))
    return project


def start_stream(project: Path, topic: str, bootstrap: str) -> tuple[subprocess.Popen[str], str]:
    return consume_process.start(["--topic", topic, "--bootstrap-servers", bootstrap], cwd=project)


def stream_way(
    workdir: Path, bootstrap: str, topic: str, fmt: str, *, total: int, batch_size: int
) -> tuple[float, float, int]:
    project = stream_project(workdir, topic, fmt, batch_size=batch_size, wait_ms=100)
    service, metrics_url = start_stream(project, topic, bootstrap)
    try:
        deadline = time.monotonic() + 600
        first_at, first_batch = 0.0, 0
        while not first_at and time.monotonic() < deadline:
            first_batch, first_at = consume_process.progress(metrics_url)
            time.sleep(0.005)  # until the first commit, whose time the service reports
        while time.monotonic() < deadline:
            # Scrapes cost the service CPU: a few a second, as Prometheus' are rarer still.
            count, last_at = consume_process.progress(metrics_url)
            if count >= total:
                return first_at, last_at, first_batch
            time.sleep(0.2)
        raise SystemExit("kedro stream consume did not finish within 600 s")
    finally:
        consume_process.stop(service)


# ------------------------------------------------------------------------------ latency


def latency(
    workdir: Path, broker: EmbeddedBroker, partitions: int, rate: int, seconds: float
) -> list[float]:
    """Milliseconds from each input's timestamp to its score's, at ``rate`` records/s."""
    bootstrap = broker.bootstrap_servers
    topic = f"latency-{uuid.uuid4().hex[:8]}"
    create_topics(broker, topic, partitions)
    events, _, _ = prepare()
    values = encode_inputs(events, int(rate * seconds), "json")
    produce(bootstrap, topic, values[:partitions], partitions)  # warm-up records
    # The embedded broker answers a Fetch with no data only after its whole fetch.wait.max.ms
    # (Apache Kafka answers as soon as a record arrives): 2 ms keeps that floor small (a bare
    # consumer then sees p99 ~8 ms on it).
    project = stream_project(
        workdir, topic, "json", batch_size=1000, wait_ms=5, fetch_wait_ms=FETCH_WAIT_MS
    )
    service, metrics_url = start_stream(project, topic, bootstrap)
    try:
        while consume_process.consumed(metrics_url) < partitions:
            time.sleep(0.05)
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
        gc.disable()  # a collection in this process would send a burst, not a steady rate
        try:
            started = time.perf_counter()
            for i, value in enumerate(values[partitions:], 1):
                ahead = i / rate - (time.perf_counter() - started)
                if ahead > 0:
                    time.sleep(ahead)  # pacing at the fixed rate
                producer.produce(topic, value, partition=i % partitions)
                producer.poll(0)
        finally:
            gc.enable()
        producer.flush(30)
        while consume_process.consumed(metrics_url) < len(values):
            time.sleep(0.05)
    finally:
        consume_process.stop(service)
    reader = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"lat-{topic}",
            "auto.offset.reset": "earliest",
        }
    )
    reader.subscribe([topic, f"{topic}-stream-scores"])
    sent: dict[str, int] = {}
    scored: dict[str, int] = {}
    deadline = time.monotonic() + 60
    expected = len(values)  # both topics in full: they are read interleaved, not in order
    while (len(scored) < expected or len(sent) < expected) and time.monotonic() < deadline:
        for m in reader.consume(5000, 0.5):
            if m.error() is None:
                payment_id = json.loads(m.value())["payment_id"]
                target = scored if m.topic().endswith("-scores") else sent
                target[payment_id] = m.timestamp()[1]
    reader.close()
    if len(scored) < expected or len(sent) < expected:
        raise SystemExit(f"latency: read {len(sent)} inputs and {len(scored)} scores of {expected}")
    skip = {f"b-{i}" for i in range(partitions)}  # the warm-up records
    return [float(scored[k] - sent[k]) for k in scored if k in sent and k not in skip]


# ---------------------------------------------------------------------------------- main


def by_name(outputs: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """kedro-boot returns its outputs by dataset name."""
    named = {name.rsplit(".", 1)[-1]: frame for name, frame in outputs.items()}
    return named["scores"], named["alerts"]


@dataclass(frozen=True)
class Setup:
    """What every way of one run shares."""

    workdir: Path
    bootstrap: str
    total: int
    batch_size: int
    transforms: dict[str, Transform]
    quix_python: Path | None
    quix_params: Path


def measure(way: str, fmt: str, topic: str, setup: Setup) -> tuple[float, float, int]:
    """(first commit time, last commit time, records in the first commit) of one way."""
    if way == "stream":
        return stream_way(
            setup.workdir,
            setup.bootstrap,
            topic,
            fmt,
            total=setup.total,
            batch_size=setup.batch_size,
        )
    if way == "quix":
        assert setup.quix_python is not None
        return quix_way.run(
            setup.quix_python,
            bootstrap=setup.bootstrap,
            topic=topic,
            fmt=fmt,
            total=setup.total,
            params_path=setup.quix_params,
            schema_path=PROJECT / "schemas/payment.avsc",
            commit_every=setup.batch_size,
        )
    return hand_written_loop(
        setup.bootstrap,
        topic,
        fmt,
        total=setup.total,
        transform=setup.transforms[way],
        batch_size=setup.batch_size,
    )


def report(
    args: argparse.Namespace,
    rates: dict[str, dict[str, float]],
    lat: list[float],
    *,
    per_record_ms: float,
) -> None:
    """The table, the targets, and with ``--json`` the summary line last."""
    ways, formats = list(rates), args.formats.split(",")

    def ratios(over: str) -> dict[str, float]:
        if "stream" not in ways or over not in ways:
            return {}
        return {f: rates["stream"][f] / rates[over][f] for f in formats}

    print(
        f"\nrecords/s between first and last commit ({args.records} payments, batches of "
        f"{args.batch_size}, {args.partitions} partitions, embedded broker; median of "
        f"{args.rounds} round(s))"
    )
    header = "".join(f"{f:>10}" for f in formats)
    if "raw" in ways:
        header += "".join(f"{'vs raw ' + f:>14}" for f in formats)
    print(f"{'way':<12}{header}")
    for way in ways:
        line = "".join(f"{rates[way][f]:>10.0f}" for f in formats)
        if "raw" in ways:
            line += "".join(f"{rates[way][f] / rates['raw'][f]:>14.2f}" for f in formats)
        print(f"{way:<12}{line}")
    for over, target in (("raw", 0.8), ("quix", 3.0)):
        for f, ratio in ratios(over).items():
            print(f"stream / {over} ({f}): {ratio:.2f} (target >= {target:g})")
    print(
        f"the scoring nodes on one record: {per_record_ms:.1f} ms (a record-at-a-time processor "
        f"reusing them tops out near {1000 / per_record_ms:.0f} records/s)"
    )
    quantiles = statistics.quantiles(lat, n=100, method="inclusive")
    print(
        f"\nend-to-end latency of kedro stream consume at {args.latency_rate} records/s "
        f"({len(lat)} records): p50 {quantiles[49]:.0f} ms, p99 {quantiles[98]:.0f} ms "
        f"(target <= 50), max {max(lat):.0f} ms"
    )
    if args.json:
        summary: dict[str, Any] = {
            "records_per_s": {w: {f: round(r) for f, r in rates[w].items()} for w in ways}
        }
        for over in ("raw", "quix"):
            if by_format := ratios(over):
                summary[f"ratio_vs_{over}"] = round(min(by_format.values()), 3)
                summary[f"ratio_vs_{over}_by_format"] = {
                    f: round(r, 3) for f, r in by_format.items()
                }
        summary["nodes_ms_per_single_record"] = round(per_record_ms, 2)
        summary["e2e_p50_ms"] = round(quantiles[49], 1)
        summary["e2e_p99_ms"] = round(quantiles[98], 1)
        print(json.dumps(summary))


FETCH_WAIT_MS = 2  # of the latency run; see latency()
WAYS = ("raw", "stream", "quix", "kedro-boot", "session")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--formats", default="json,avro")
    parser.add_argument("--ways", default=",".join(WAYS))
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=1, help="Medians over this many rounds.")
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--latency-rate", type=int, default=1000)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--json", action="store_true", help="End with one JSON line.")
    args = parser.parse_args()
    ways, formats = args.ways.split(","), args.formats.split(",")
    if unknown := set(ways) - set(WAYS):
        parser.error(f"unknown ways {sorted(unknown)}; choose from {', '.join(WAYS)}")

    events, model, threshold = prepare()
    runs = variants(model, threshold)
    quiet_kedro_logging()
    transforms: dict[str, Transform] = {
        "raw": runs["floor"],
        "kedro-boot": lambda batch: by_name(runs["kedro-boot"](batch)),
        "session": runs["session"],
    }
    quix_python = quix_way.ensure_env(PROJECT) if "quix" in ways else None
    rates: dict[str, dict[str, float]] = {way: {} for way in ways}
    with (
        EmbeddedBroker.start() as broker,
        tempfile.TemporaryDirectory() as tmp,
    ):
        bootstrap = broker.bootstrap_servers
        setup = Setup(
            workdir=Path(tmp),
            bootstrap=bootstrap,
            total=args.records,
            batch_size=args.batch_size,
            transforms=transforms,
            quix_python=quix_python,
            quix_params=quix_way.write_params(Path(tmp) / "quix-params.json", model, threshold),
        )
        samples: dict[tuple[str, str], list[float]] = {}
        for fmt in formats:
            topic = f"bench-{fmt}-{uuid.uuid4().hex[:8]}"
            log(f"{fmt}: producing {args.records} payments to {topic} ...")
            create_topics(broker, topic, args.partitions)
            produce(bootstrap, topic, encode_inputs(events, args.records, fmt), args.partitions)
            for round_ in range(1, args.rounds + 1):  # ways interleaved: noise hits all alike
                for way in ways:
                    first, last, first_batch = measure(way, fmt, topic, setup)
                    rate = (args.records - first_batch) / (last - first)
                    samples.setdefault((way, fmt), []).append(rate)
                    log(f"{fmt} round {round_}/{args.rounds}: {way}: {rate:.0f} records/s")
        for (way, fmt), values in samples.items():
            rates[way][fmt] = statistics.median(values)
        lat = latency(Path(tmp), broker, args.partitions, args.latency_rate, args.latency_seconds)

    report(args, rates, lat, per_record_ms=node_ms_per_record(runs["floor"], events))
    return 0


def node_ms_per_record(transform: Transform, events: pd.DataFrame) -> float:
    """Median ms of the scoring nodes on a one-row frame: what a record-at-a-time processor
    reusing the namespace's own nodes would pay per record (why the Quix way is a port)."""
    rows = [events.iloc[[i]].reset_index(drop=True) for i in range(200)]
    timings = []
    for row in rows:
        started = time.perf_counter()
        transform(row)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings[20:])


if __name__ == "__main__":
    raise SystemExit(main())
