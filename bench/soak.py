"""Soak: stream many records through ``kedro stream consume`` and watch throughput and memory.

A producer streams payments into the input topic, keyed by account as the stateful ``scoring``
stream requires, held back so the backlog never exceeds ``--max-backlog`` (the embedded broker
keeps only ~5 MiB a partition). The example's payments (20 000, of 2 000 accounts) are replayed
with their accounts renamed, so that the run covers at least ``--accounts`` distinct keys and the
state stores keep growing through it (see :class:`SoakPayments`). The service runs as a
user would start it, with ``--metrics-port``; every ``--window-s`` this script reads its
``kedro_stream_records_consumed_total`` from /metrics and its resident memory from /proc.

It prints one row per window, with the keys in the state stores, then the steady state: windows
after the first ``--warmup`` fraction of records. There must be at least ``--min-steady-windows``
of them (a spread over one or two windows proves nothing), and resident memory there must stay
within ±``--rss-band`` % of its median and grow by less than ``--rss-band`` % from the first
steady window to the last, while the stores end up holding every key produced and nothing is
dead-lettered (exit code 1 otherwise); throughput is reported, never asserted (machines are noisy).

Usage: python bench/soak.py [--records 1000000] [--accounts 100000] [--window-s 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
REPO = Path(__file__).resolve().parents[1]
KEDRO = str(Path(sys.executable).with_name("kedro"))
TOPICS = ("payments", "payment-features", "payment-scores", "payment-alerts", "payments.dlq")
MS_PER_DAY = 86_400_000
STATE_DIR = Path("data/state")  # stream.yml's state_dir (the default): a folder per group id
_STATE_KEYS = re.compile(r"^kedro_stream_state_keys\{[^}]*\} (\S+)$", re.MULTILINE)
_DEAD_LETTERED = re.compile(
    r"^kedro_stream_records_dead_lettered_total\{[^}]*\} (\S+)$", re.MULTILINE
)

from confluent_kafka import Producer  # noqa: E402

import consume_process  # noqa: E402
from kedro_stream.config import default_changelog_topic  # noqa: E402
from kedro_stream.devbroker.process import EmbeddedBroker  # noqa: E402


@dataclass
class Window:
    elapsed_s: float
    records: int
    per_s: float
    rss_mib: float
    state_keys: int


def ensure_model(project: Path) -> None:
    if not (project / "data/06_models/fraud_model.pkl").exists():
        print("no trained model yet: running `kedro run` first", flush=True)
        subprocess.run([KEDRO, "run"], cwd=project, check=True)


class SoakPayments:
    """The example's payments, replayed until there are ``records``, of at least ``accounts``.

    The run is cut into consecutive segments, each with its own copy of the example's accounts
    (``a-0000001`` ...), so the distinct keys grow steadily to at least ``accounts`` and the
    state stores hold them all at the end: the steady state sees memory with ever more keys.
    Within a segment an account keeps its payments' pattern (bursts of fraud included); every
    replay moves event times on by whole days past the previous one, so each account's event
    time still increases (its velocity stays meaningful) and the hour of day is unchanged.
    Payment ids are numbered anew, each unique.
    """

    def __init__(self, project: Path, records: int, accounts: int) -> None:
        lines = (project / "data/01_raw/payments.jsonl").read_bytes().splitlines()
        self.rows = [json.loads(line) for line in lines if line.strip()]
        names, index = np.unique([row["account_id"] for row in self.rows], return_inverse=True)
        self.account_index: list[int] = index.tolist()
        self.per_segment = len(names)
        times = [row["event_time"] for row in self.rows]
        self.replay_ms = (math.ceil((max(times) - min(times)) / MS_PER_DAY) + 1) * MS_PER_DAY
        if accounts > records:
            raise SystemExit(f"--accounts {accounts} needs at least as many --records")
        segments = math.ceil(accounts / self.per_segment)
        while (distinct := self._distinct(records, segments)) < accounts:
            segments += 1  # a short segment may miss the accounts it has few payments of
        self.segment_length = math.ceil(records / segments)
        self.distinct_accounts = distinct

    def _distinct(self, records: int, segments: int) -> int:
        seq = np.arange(records)
        ids = seq // math.ceil(records / segments) * self.per_segment
        ids += np.asarray(self.account_index)[seq % len(self.rows)]
        return len(np.unique(ids))

    def record(self, seq: int) -> tuple[bytes, bytes]:
        """Key and value of the ``seq``-th record (from 0)."""
        replay, position = divmod(seq, len(self.rows))
        segment = seq // self.segment_length
        account = f"a-{segment * self.per_segment + self.account_index[position] + 1:07d}"
        row = self.rows[position] | {
            "payment_id": f"p-{seq + 1:07d}",
            "account_id": account,
            "event_time": self.rows[position]["event_time"] + replay * self.replay_ms,
        }
        return account.encode(), json.dumps(row, separators=(",", ":")).encode()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class Feeder(threading.Thread):
    """Produces ``total`` records, never more than ``max_backlog`` ahead of the service.

    Each record's partition is its key's (the account's), as a stateful stream needs: the keys
    are many, so the partitions fill evenly.
    """

    def __init__(
        self, bootstrap: str, payments: SoakPayments, total: int, max_backlog: int
    ) -> None:
        super().__init__(daemon=True, name="soak-producer")
        self.payments = payments
        self.bootstrap, self.total, self.max_backlog = bootstrap, total, max_backlog
        self.done_by_service = 0  # updated by the sampling loop
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            record = self.payments.record
            producer = Producer(
                {"bootstrap.servers": self.bootstrap, "linger.ms": 20, "batch.size": 1_000_000}
            )
            while self.sent < self.total:
                if self.sent - self.done_by_service >= self.max_backlog:
                    time.sleep(0.05)  # back-pressure: the service is behind
                    continue
                for _ in range(min(5_000, self.total - self.sent)):
                    key, value = record(self.sent)
                    while True:
                        try:
                            producer.produce("payments", value, key)
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
    bootstrap: str, group: str, args: argparse.Namespace, log: Path
) -> tuple[subprocess.Popen[str], str]:
    options = ["--topic", "payments", "--bootstrap-servers", bootstrap]
    options += ["--group-id", group]
    options += ["--max-batch-size", str(args.batch_size)]
    return consume_process.start(options, cwd=args.project, stderr=log.open("w"))


def metric_total(metrics_url: str, pattern: re.Pattern[str]) -> int:
    """One metric summed over its series (0 before any)."""
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        return int(sum(float(v) for v in pattern.findall(response.read().decode())))


def soak(
    bootstrap: str, group: str, payments: SoakPayments, args: argparse.Namespace
) -> tuple[list[Window], int]:
    """The windows, and the records dead-lettered (a key that is not the account: none)."""
    service, metrics_url = start_service(bootstrap, group, args, args.log)
    feeder = Feeder(bootstrap, payments, args.records, args.max_backlog)
    windows: list[Window] = []
    try:
        feeder.start()
        started = last_at = time.monotonic()
        last_count = 0
        progressed_at, progressed_count = started, 0
        print(
            f"{'window':>6}{'elapsed s':>11}{'records':>11}{'rec/s':>9}{'RSS MiB':>9}"
            f"{'state keys':>12}"
        )
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
                    metric_total(metrics_url, _STATE_KEYS),
                )
                windows.append(window)
                print(
                    f"{len(windows):>6}{window.elapsed_s:>11.1f}{window.records:>11}"
                    f"{window.per_s:>9.0f}{window.rss_mib:>9.1f}{window.state_keys:>12}",
                    flush=True,
                )
                last_at, last_count = now, count
        dead_lettered = metric_total(metrics_url, _DEAD_LETTERED)
    finally:
        consume_process.stop(service)
        shutil.rmtree(args.project / STATE_DIR / group, ignore_errors=True)  # this run's only
    return windows, dead_lettered


def summarise(windows: list[Window], args: argparse.Namespace) -> dict[str, float | bool]:
    """Throughput and memory of the steady state, and the keys held through it."""
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
        "state_keys_first_steady": steady[0].state_keys,
        "state_keys": windows[-1].state_keys,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, default=REPO, help="The Kedro project.")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--window-s", type=float, default=10.0)
    parser.add_argument(
        "--accounts", type=int, default=100_000, help="At least this many distinct keys."
    )
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
    payments = SoakPayments(args.project, args.records, args.accounts)
    print(
        f"soak: {args.records} payments of {payments.distinct_accounts} distinct accounts "
        f"(message keys), batches of {args.batch_size}, embedded broker with "
        f"{args.partitions} partitions a topic, backlog held under {args.max_backlog}",
        flush=True,
    )
    group = f"soak-{uuid.uuid4().hex[:8]}"
    # The state's changelog follows the group (stream.yml's default name), and must have as
    # many partitions as `payments`: the embedded broker would make it with 4.
    changelog = default_changelog_topic(group, "activity")
    with EmbeddedBroker.start(partitions=args.partitions, topics=(*TOPICS, changelog)) as broker:
        windows, dead_lettered = soak(broker.bootstrap_servers, group, payments, args)
    summary = summarise(windows, args) | {
        "distinct_keys": payments.distinct_accounts,
        "dead_lettered": dead_lettered,
    }
    # Memory proves nothing unless every record reached the state: all keys held, none refused.
    state_complete = summary["state_keys"] == payments.distinct_accounts and not dead_lettered
    print(
        f"\nsteady state ({summary['steady_windows']} windows after the first "
        f"{args.warmup:.0%} of records): {summary['throughput_median']} rec/s median "
        f"(min {summary['throughput_min']}, max {summary['throughput_max']}, second half / "
        f"first half {summary['throughput_drift']}); RSS {summary['rss_median_mib']} MiB median "
        f"({summary['rss_min_mib']}-{summary['rss_max_mib']}, "
        f"±{summary['rss_spread_pct']}%, first to last {summary['rss_growth_pct']:+}%, "
        f"band ±{args.rss_band:g}%: {'within' if summary['rss_within_band'] else 'OUTSIDE'})"
    )
    print(
        f"state: {summary['state_keys']} keys in the stores at the end "
        f"({summary['state_keys_first_steady']} at the first steady window), "
        f"{payments.distinct_accounts} distinct keys produced, {dead_lettered} dead-lettered"
        + ("" if state_complete else ": INCOMPLETE"),
        flush=True,
    )
    if summary["steady_windows"] < args.min_steady_windows:
        print(
            f"too few steady windows to judge memory ({summary['steady_windows']} < "
            f"{args.min_steady_windows}): lower --window-s or raise --records",
            flush=True,
        )
    if args.json:
        print(json.dumps(summary))
    return 0 if summary["rss_within_band"] and state_complete else 1


if __name__ == "__main__":
    raise SystemExit(main())
