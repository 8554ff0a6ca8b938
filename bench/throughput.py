"""Throughput of one job run six ways, side by side against the same broker and records.

The job: consume a micro-batch of payments (keyed by account) → decode (JSON or schemaless
Avro) → score with the ``scoring`` namespace's logic, which keeps each account's recent payments
as state → encode the velocity features, scores and alerts as JSON → produce → commit after
every output is acknowledged. Ways:
  raw         (a) a hand-written confluent-kafka loop calling the plain node functions, the
              state in a dict: the limit
  stream      (b) ``kedro stream consume`` (a subprocess, as a user starts it), its state as
              stream.yml declares it: a store per partition and a changelog topic
  stream-stateless  (b') the same on a project whose stream.yml has no ``state:``: the empty
              state dataset is loaded once, so velocity sees each batch alone; what (b) pays
              for keeping state is the difference
  quix        (c) a Quix Streams 3.28 application (``bench/quix_app.py``, a virtualenv of its
              own): a per-record port of the scoring logic with Quix's own per-key state,
              committing every batch-size records
  kedro-boot  (d) kedro-boot 0.3.0's ``session.run`` inside the hand-written loop
  session     (e) a fresh ``KedroSession`` per batch inside the hand-written loop
Throughput is counted between a way's first and last commit, so start-up (Kedro boot, group
join, state restore) is left out for every way alike. Then end-to-end latency of ``kedro stream
consume`` at a fixed rate: output record timestamp minus input record timestamp (both set by
producers on this host).

Usage: python bench/throughput.py [--records 200000] [--formats json,avro] [--ways ...]
                                 [--rounds 1] [--json]
With --json the last line is one JSON object: ``records_per_s`` per way and format,
``ratio_vs_raw``, ``ratio_vs_quix`` and ``stateful_vs_stateless`` (stream over raw, quix and
stream-stateless; the lower of the formats, with ``*_by_format`` beside), ``e2e_p50_ms`` and
``e2e_p99_ms``.
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
from kedro_stream.config import default_changelog_topic
from kedro_stream.devbroker.process import EmbeddedBroker
from payment_fraud.velocity import ACTIVITY_COLUMNS, MS_PER_DAY
from session_overhead import (
    PROJECT,
    ActivityStore,
    Outputs,
    Run,
    prepare,
    quiet_kedro_logging,
    variants,
)

SCHEMA = fastavro.parse_schema(json.loads((PROJECT / "schemas/payment.avsc").read_text()))
Transform = Callable[[pd.DataFrame], Outputs]
# Output topic suffix -> the output and its message key, as stream.yml publishes them.
OUTPUTS: dict[str, tuple[str, str]] = {
    "features": ("payment_features", "account_id"),
    "scores": ("scores", "payment_id"),
    "alerts": ("alerts", "account_id"),
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------- records


def encode_inputs(events: pd.DataFrame, count: int, fmt: str) -> list[tuple[bytes, bytes]]:
    """(key, value) of ``count`` payments, keyed by account as a stateful stream needs: the
    events over and over, each pass moved past the previous one in event time, so an account's
    payments keep arriving in order (none late) however many passes."""
    records = json.loads(events.to_json(orient="records"))
    span = int(events["event_time"].max() - events["event_time"].min()) + MS_PER_DAY
    encoded = []
    for i in range(count):
        passes, source = divmod(i, len(records))
        record = {
            **records[source],
            "payment_id": f"b-{i}",
            "event_time": records[source]["event_time"] + passes * span,
        }
        if fmt == "json":
            value = json.dumps(record).encode()
        else:
            out = io.BytesIO()
            fastavro.schemaless_writer(out, SCHEMA, record)
            value = out.getvalue()
        encoded.append((record["account_id"].encode(), value))
    return encoded


def create_topics(broker: EmbeddedBroker, topic: str, partitions: int) -> None:
    """The input and every way's outputs, all with ``partitions`` (the mock's auto-created
    topics get 4, and keeps ~5 MiB a partition)."""
    suffixes = [f"-{way}-{output}" for way in ("raw", "stream") for output in OUTPUTS]
    for suffix in ("", *suffixes, *quix_way.SUFFIXES):
        broker.faults.create_topic(topic + suffix, partitions)
    broker.faults.create_topic(f"{topic}-stream-dlq", 1)


def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    """Keyed: the producer's partitioner keeps each account on one partition."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for key, value in records:
        while True:
            try:
                producer.produce(topic, value, key=key)
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


def stateful(run: Run) -> Transform:
    """``run`` with each account's state kept in a dict between batches, from none."""
    store = ActivityStore()

    def transform(batch: pd.DataFrame) -> Outputs:
        outputs = run(batch, store.rows_of(batch))
        store.update(outputs.account_activity_updates)
        return outputs

    return transform


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
            outputs = transform(batch)._asdict()
            for name, (output, key) in OUTPUTS.items():
                frame = outputs[output]
                if frame.empty:  # to_json writes an empty line for no rows
                    continue
                lines = frame.to_json(orient="records", lines=True).splitlines()
                keys = frame[key].astype(str).tolist()
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


@dataclass(frozen=True)
class StreamTarget:
    """Where a copy of the project streams: the broker, and its input topic's partitions."""

    workdir: Path
    broker: EmbeddedBroker
    partitions: int


def stream_project(
    target: StreamTarget,
    topic: str,
    fmt: str,
    *,
    stateful: bool,
    batch_size: int,
    wait_ms: int,
    fetch_wait_ms: int = 20,
) -> Path:
    """A copy of the example project whose stream reads ``topic`` in ``fmt``, with its state
    as stream.yml keeps it or (``stateful`` false) with no state: section."""
    project = target.workdir / f"project-{uuid.uuid4().hex[:8]}"
    shutil.copytree(
        PROJECT,
        project,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "__pycache__", "bench", "tests", "deploy", ".bench-venvs"
        ),
    )
    path = project / "conf/base/stream.yml"
    config = yaml.safe_load(path.read_text())
    stream = config["streams"]["payment-scoring"]
    stream["group_id"] = group = f"bench-stream-{uuid.uuid4().hex[:8]}"
    stream["input"].update({"topics": [topic], "format": fmt})
    for suffix, (output, _) in OUTPUTS.items():
        stream["outputs"][output]["topic"] = f"{topic}-stream-{suffix}"
    stream["dead_letter_topic"] = f"{topic}-stream-dlq"
    stream["batch"] = {"max_size": batch_size, "max_wait_ms": wait_ms}
    config["kafka"]["consumer"]["fetch.wait.max.ms"] = fetch_wait_ms
    if stateful:
        # The service would create a missing changelog, but the development broker makes every
        # topic it creates with 4 partitions, and a changelog needs the input's count.
        (changelog,) = (default_changelog_topic(group, name) for name in stream["state"])
        target.broker.faults.create_topic(changelog, target.partitions)
    else:
        # The state dataset, no longer declared state, is an input the stream cannot feed:
        # declared an artifact, it is loaded once (no rows), and its updates are dropped.
        states = list(stream.pop("state").values())
        stream["ignore_outputs"] = [spec["updates"] for spec in states]
        catalog_path = project / "conf/base/catalog.yml"
        catalog = yaml.safe_load(catalog_path.read_text())
        for spec in states:
            entry = catalog[f"{stream['namespace']}.{spec['input']}"]
            entry["metadata"] = {"kedro-stream": {"role": "artifact"}}
        catalog_path.write_text(yaml.safe_dump(catalog))
    path.write_text(yaml.safe_dump(config))
    return project


def start_stream(project: Path, topic: str, bootstrap: str) -> tuple[subprocess.Popen[str], str]:
    return consume_process.start(["--topic", topic, "--bootstrap-servers", bootstrap], cwd=project)


def stream_way(
    target: StreamTarget, topic: str, fmt: str, *, stateful: bool, total: int, batch_size: int
) -> tuple[float, float, int]:
    project = stream_project(
        target, topic, fmt, stateful=stateful, batch_size=batch_size, wait_ms=100
    )
    service, metrics_url = start_stream(project, topic, target.broker.bootstrap_servers)
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


def latency(target: StreamTarget, events: pd.DataFrame, rate: int, seconds: float) -> list[float]:
    """Milliseconds from each input's timestamp to its score's, at ``rate`` records/s."""
    bootstrap, partitions = target.broker.bootstrap_servers, target.partitions
    topic = f"latency-{uuid.uuid4().hex[:8]}"
    create_topics(target.broker, topic, partitions)
    values = encode_inputs(events, int(rate * seconds), "json")
    produce(bootstrap, topic, values[:partitions])  # warm-up records
    # The embedded broker answers a Fetch with no data only after its whole fetch.wait.max.ms
    # (Apache Kafka answers as soon as a record arrives): 2 ms keeps that floor small (a bare
    # consumer then sees p99 ~8 ms on it).
    project = stream_project(
        target,
        topic,
        "json",
        stateful=True,
        batch_size=1000,
        wait_ms=5,
        fetch_wait_ms=FETCH_WAIT_MS,
    )
    service, metrics_url = start_stream(project, topic, bootstrap)
    try:
        while consume_process.consumed(metrics_url) < partitions:
            time.sleep(0.05)
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
        gc.disable()  # a collection in this process would send a burst, not a steady rate
        try:
            started = time.perf_counter()
            for i, (key, value) in enumerate(values[partitions:], 1):
                ahead = i / rate - (time.perf_counter() - started)
                if ahead > 0:
                    time.sleep(ahead)  # pacing at the fixed rate
                producer.produce(topic, value, key=key)
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


@dataclass(frozen=True)
class Setup:
    """What every way of one run shares."""

    target: StreamTarget
    total: int
    batch_size: int
    runs: dict[str, Run]  # of the hand-written loop's ways
    quix_python: Path | None
    quix_params: Path


def measure(way: str, fmt: str, topic: str, setup: Setup) -> tuple[float, float, int]:
    """(first commit time, last commit time, records in the first commit) of one way."""
    bootstrap = setup.target.broker.bootstrap_servers
    if way in ("stream", "stream-stateless"):
        return stream_way(
            setup.target,
            topic,
            fmt,
            stateful=way == "stream",
            total=setup.total,
            batch_size=setup.batch_size,
        )
    if way == "quix":
        assert setup.quix_python is not None
        return quix_way.run(
            setup.quix_python,
            bootstrap=bootstrap,
            topic=topic,
            fmt=fmt,
            total=setup.total,
            params_path=setup.quix_params,
            schema_path=PROJECT / "schemas/payment.avsc",
            create_topic=lambda name: setup.target.broker.faults.create_topic(
                name, setup.target.partitions
            ),
            commit_every=setup.batch_size,
        )
    return hand_written_loop(
        bootstrap,
        topic,
        fmt,
        total=setup.total,
        transform=stateful(setup.runs[way]),  # each run reads the topic from its start
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

    compared = (("raw", 0.8), ("quix", 3.0), ("stream-stateless", 0.7))

    print(
        f"\nrecords/s between first and last commit ({args.records} payments, batches of "
        f"{args.batch_size}, {args.partitions} partitions, embedded broker; median of "
        f"{args.rounds} round(s))"
    )
    header = "".join(f"{f:>10}" for f in formats)
    if "raw" in ways:
        header += "".join(f"{'vs raw ' + f:>14}" for f in formats)
    print(f"{'way':<18}{header}")
    for way in ways:
        line = "".join(f"{rates[way][f]:>10.0f}" for f in formats)
        if "raw" in ways:
            line += "".join(f"{rates[way][f] / rates['raw'][f]:>14.2f}" for f in formats)
        print(f"{way:<18}{line}")
    for over, target in compared:
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
        for over, _ in compared:
            if by_format := ratios(over):
                name = "stateful_vs_stateless" if over == "stream-stateless" else f"ratio_vs_{over}"
                summary[name] = round(min(by_format.values()), 3)
                summary[f"{name}_by_format"] = {f: round(r, 3) for f, r in by_format.items()}
        summary["nodes_ms_per_single_record"] = round(per_record_ms, 2)
        summary["e2e_p50_ms"] = round(quantiles[49], 1)
        summary["e2e_p99_ms"] = round(quantiles[98], 1)
        print(json.dumps(summary))


FETCH_WAIT_MS = 2  # of the latency run; see latency()
WAYS = ("raw", "stream", "stream-stateless", "quix", "kedro-boot", "session")


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
    quix_python = quix_way.ensure_env(PROJECT) if "quix" in ways else None
    rates: dict[str, dict[str, float]] = {way: {} for way in ways}
    with (
        EmbeddedBroker.start() as broker,
        tempfile.TemporaryDirectory() as tmp,
    ):
        bootstrap = broker.bootstrap_servers
        target = StreamTarget(Path(tmp), broker, args.partitions)
        setup = Setup(
            target=target,
            total=args.records,
            batch_size=args.batch_size,
            runs={
                "raw": runs["floor"],
                "kedro-boot": runs["kedro-boot"],
                "session": runs["session"],
            },
            quix_python=quix_python,
            quix_params=quix_way.write_params(Path(tmp) / "quix-params.json", model, threshold),
        )
        samples: dict[tuple[str, str], list[float]] = {}
        for fmt in formats:
            topic = f"bench-{fmt}-{uuid.uuid4().hex[:8]}"
            log(f"{fmt}: producing {args.records} payments to {topic} ...")
            create_topics(broker, topic, args.partitions)
            produce(bootstrap, topic, encode_inputs(events, args.records, fmt))
            for round_ in range(1, args.rounds + 1):  # ways interleaved: noise hits all alike
                for way in ways:
                    first, last, first_batch = measure(way, fmt, topic, setup)
                    rate = (args.records - first_batch) / (last - first)
                    samples.setdefault((way, fmt), []).append(rate)
                    log(f"{fmt} round {round_}/{args.rounds}: {way}: {rate:.0f} records/s")
        for (way, fmt), values in samples.items():
            rates[way][fmt] = statistics.median(values)
        lat = latency(target, events, args.latency_rate, args.latency_seconds)

    report(args, rates, lat, per_record_ms=node_ms_per_record(runs["floor"], events))
    return 0


def node_ms_per_record(run: Run, events: pd.DataFrame) -> float:
    """Median ms of the scoring nodes on a one-row frame: what a record-at-a-time processor
    reusing the namespace's own nodes would pay per record (why the Quix way is a port)."""
    rows = [events.iloc[[i]].reset_index(drop=True) for i in range(200)]
    no_state = pd.DataFrame(columns=list(ACTIVITY_COLUMNS))
    timings = []
    for row in rows:
        started = time.perf_counter()
        run(row, no_state)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings[20:])


if __name__ == "__main__":
    raise SystemExit(main())
