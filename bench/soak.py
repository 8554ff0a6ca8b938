"""Soak: stream many records through ``kedro stream consume`` and watch throughput and memory.

A producer streams payments into the input topic, keyed by account as the stream's state needs,
held back so the backlog never exceeds ``--max-backlog`` (the embedded broker keeps only ~5 MiB
a partition). The service runs as a user would start it, with ``--metrics-port``; every
``--window-s`` this script reads its
``kedro_stream_records_consumed_total`` from /metrics and its resident memory from /proc.

It prints one row per window, then the steady state: windows after the first ``--warmup``
fraction of records. There must be at least ``--min-steady-windows`` of them (a spread over one
or two windows proves nothing), and resident memory there must stay within ±``--rss-band`` % of
its median and grow by less than ``--rss-band`` % from the first steady window to the last
(exit code 1 otherwise); throughput is reported, never asserted (machines are noisy).

Usage: python bench/soak.py [--records 1000000] [--window-s 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
REPO = Path(__file__).resolve().parents[1]
KEDRO = str(Path(sys.executable).with_name("kedro"))
TOPICS = ("payments", "payment-features", "payment-scores", "payment-alerts", "payments.dlq")

from confluent_kafka import Producer  # noqa: E402

import consume_process  # noqa: E402
from kedro_stream.devbroker.process import EmbeddedBroker  # noqa: E402
from kedro_stream.service.app import load_config  # noqa: E402


@dataclass
class Window:
    elapsed_s: float
    records: int
    per_s: float
    rss_mib: float


def ensure_model(project: Path) -> None:
    if not (project / "data/06_models/fraud_model.pkl").exists():
        print("no trained model yet: running `kedro run` first", flush=True)
        subprocess.run([KEDRO, "run"], cwd=project, check=True)


def payment_records(project: Path) -> list[dict[str, Any]]:
    lines = (project / "data/01_raw/payments.jsonl").read_bytes().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def changelog_topics(project: Path, group: str) -> list[str]:
    """The changelogs of the stream reading ``payments`` when run as ``group``, as the service
    names them: made up front with the input's partition count, which the embedded broker
    cannot give a topic it creates itself."""
    _, stream, _ = load_config(
        project,
        env=None,
        topic="payments",
        namespace=None,
        overrides={"group_id": group},
        bootstrap_servers=None,
    )
    return [spec.changelog_topic for spec in stream.state.values()]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class Feeder(threading.Thread):
    """Produces ``total`` records, never more than ``max_backlog`` ahead of the service.

    The payments go over and over, each pass moved past the previous one in event time: an
    account's payments stay in order, so its state keeps one day's window however long the
    soak. Keyed by account, records spread over the partitions by key (unkeyed, the sticky
    partitioner would fill one partition at a time, past the embedded broker's retention).
    """

    def __init__(
        self, bootstrap: str, records: list[dict[str, Any]], total: int, max_backlog: int
    ) -> None:
        super().__init__(daemon=True, name="soak-producer")
        self.records = records
        times = [record["event_time"] for record in records]
        self.span_ms = max(times) - min(times) + 24 * 3_600_000
        self.bootstrap, self.total, self.max_backlog = bootstrap, total, max_backlog
        self.done_by_service = 0  # updated by the sampling loop
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            records = self.records
            producer = Producer(
                {"bootstrap.servers": self.bootstrap, "linger.ms": 20, "batch.size": 1_000_000}
            )
            while self.sent < self.total:
                if self.sent - self.done_by_service >= self.max_backlog:
                    time.sleep(0.05)  # back-pressure: the service is behind
                    continue
                for _ in range(min(5_000, self.total - self.sent)):
                    passes, source = divmod(self.sent, len(records))
                    record = records[source]
                    value = {**record, "event_time": record["event_time"] + passes * self.span_ms}
                    while True:
                        try:
                            producer.produce(
                                "payments",
                                json.dumps(value).encode(),
                                key=record["account_id"].encode(),
                            )
                            break
                        except BufferError:
                            producer.poll(0.05)
                    self.sent += 1
                producer.poll(0)
            if producer.flush(60):
                raise RuntimeError("records not acknowledged within 60 s")
        except BaseException as error:  # reported by the main thread
            self.error = error


def start_service(
    broker: EmbeddedBroker, args: argparse.Namespace, log: Path
) -> tuple[subprocess.Popen[str], str]:
    group = f"soak-{uuid.uuid4().hex[:8]}"
    for changelog in changelog_topics(args.project, group):
        broker.faults.create_topic(changelog, args.partitions)
    options = ["--topic", "payments", "--bootstrap-servers", broker.bootstrap_servers]
    options += ["--group-id", group]
    options += ["--max-batch-size", str(args.batch_size)]
    return consume_process.start(options, cwd=args.project, stderr=log.open("w"))


def soak(broker: EmbeddedBroker, args: argparse.Namespace) -> list[Window]:
    bootstrap = broker.bootstrap_servers
    service, metrics_url = start_service(broker, args, args.log)
    records = payment_records(args.project)
    feeder = Feeder(bootstrap, records, args.records, args.max_backlog)
    windows: list[Window] = []
    try:
        feeder.start()
        started = last_at = time.monotonic()
        last_count = 0
        progressed_at, progressed_count = started, 0
        print(f"{'window':>6}{'elapsed s':>11}{'records':>11}{'rec/s':>9}{'RSS MiB':>9}")
        while last_count < args.records:
            time.sleep(min(0.5, args.window_s / 2))  # sampling cadence
            if feeder.error is not None:
                raise SystemExit(f"the producer failed: {feeder.error}")
            if service.poll() is not None:
                raise SystemExit(f"the service exited with {service.returncode}")
            count = consume_process.consumed(metrics_url)
            feeder.done_by_service = count
            now = time.monotonic()
            if count > progressed_count:
                progressed_at, progressed_count = now, count
            elif now - progressed_at > args.stall_s:
                tail = "\n".join(args.log.read_text().splitlines()[-30:])
                raise SystemExit(
                    f"no progress for {args.stall_s:g} s at {count} records "
                    f"({feeder.sent} sent); the service's log ends with:\n{tail}"
                )
            if now - last_at >= args.window_s or count >= args.records:
                window = Window(
                    now - started,
                    count,
                    (count - last_count) / (now - last_at),
                    rss_mib(service.pid),
                )
                windows.append(window)
                print(
                    f"{len(windows):>6}{window.elapsed_s:>11.1f}{window.records:>11}"
                    f"{window.per_s:>9.0f}{window.rss_mib:>9.1f}",
                    flush=True,
                )
                last_at, last_count = now, count
    finally:
        consume_process.stop(service)
    return windows


def summarise(windows: list[Window], args: argparse.Namespace) -> dict[str, float | bool]:
    steady = [w for w in windows if w.records > args.warmup * args.records]
    if not steady:
        raise SystemExit("no window after the warm-up: lower --window-s or raise --records")
    rss = [w.rss_mib for w in steady]
    rates = [w.per_s for w in steady[:-1]] or [w.per_s for w in steady]  # last one is partial
    median_rss = statistics.median(rss)
    spread = max(abs(r - median_rss) / median_rss for r in rss) * 100
    growth = (rss[-1] - rss[0]) / rss[0] * 100  # a slow leak stays inside a median's band
    half = max(1, len(rates) // 2)
    enough = len(steady) >= args.min_steady_windows
    return {
        "records": windows[-1].records,
        "elapsed_s": round(windows[-1].elapsed_s, 1),
        "steady_windows": len(steady),
        "throughput_median": round(statistics.median(rates)),
        "throughput_min": round(min(rates)),
        "throughput_max": round(max(rates)),
        # Second half of the steady state over its first half: drift, 1.0 = none.
        "throughput_drift": round(
            statistics.mean(rates[-half:]) / statistics.mean(rates[:half]), 3
        ),
        "rss_median_mib": round(median_rss, 1),
        "rss_min_mib": round(min(rss), 1),
        "rss_max_mib": round(max(rss), 1),
        "rss_spread_pct": round(spread, 1),
        "rss_growth_pct": round(growth, 1),
        "rss_within_band": enough and spread <= args.rss_band and growth <= args.rss_band,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, default=REPO, help="The Kedro project.")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--window-s", type=float, default=10.0)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--partitions", type=int, default=24)
    parser.add_argument("--max-backlog", type=int, default=50_000)
    parser.add_argument("--warmup", type=float, default=0.2, help="Fraction of records.")
    parser.add_argument("--rss-band", type=float, default=10.0, help="Percent around the median.")
    parser.add_argument(
        "--min-steady-windows",
        type=int,
        default=5,
        help="Fewer steady windows fail the run: lower --window-s or raise --records.",
    )
    parser.add_argument("--stall-s", type=float, default=60.0, help="Fail after no progress.")
    parser.add_argument(
        "--log", type=Path, default=Path("soak-service.log"), help="The service's stderr."
    )
    parser.add_argument("--json", action="store_true", help="End with one JSON line.")
    args = parser.parse_args()

    ensure_model(args.project)
    print(
        f"soak: {args.records} payments, batches of {args.batch_size}, embedded broker with "
        f"{args.partitions} partitions a topic, backlog held under {args.max_backlog}",
        flush=True,
    )
    with EmbeddedBroker.start(partitions=args.partitions, topics=TOPICS) as broker:
        windows = soak(broker, args)
    summary = summarise(windows, args)
    print(
        f"\nsteady state ({summary['steady_windows']} windows after the first "
        f"{args.warmup:.0%} of records): {summary['throughput_median']} rec/s median "
        f"(min {summary['throughput_min']}, max {summary['throughput_max']}, second half / "
        f"first half {summary['throughput_drift']}); RSS {summary['rss_median_mib']} MiB median "
        f"({summary['rss_min_mib']}-{summary['rss_max_mib']}, "
        f"±{summary['rss_spread_pct']}%, first to last {summary['rss_growth_pct']:+}%, "
        f"band ±{args.rss_band:g}%: {'within' if summary['rss_within_band'] else 'OUTSIDE'})"
    )
    if summary["steady_windows"] < args.min_steady_windows:
        print(
            f"too few steady windows to judge memory ({summary['steady_windows']} < "
            f"{args.min_steady_windows}): lower --window-s or raise --records",
            flush=True,
        )
    if args.json:
        print(json.dumps(summary))
    return 0 if summary["rss_within_band"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
