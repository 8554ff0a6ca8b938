"""``make demo``: stream the example payments through ``kedro stream consume`` and show results.

Starts the embedded broker, publishes the payments written by ``kedro run`` keyed by account
(plus a few malformed records), runs the consumer until every record is committed, then prints
the highest-scoring alerts, a burst of payments with the velocity features the stream computed
for it (equal to those ``kedro run`` saved), and the dead-lettered records with their reasons.
Every step is a ``kedro stream`` command a user can run by hand; this script only chains them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from rich.console import Console
from rich.table import Table

PROJECT = Path(__file__).resolve().parents[2]
KEDRO = str(Path(sys.executable).with_name("kedro"))
# Keyed like every payment (produce keys by the state key, account_id, and refuses records
# without one): what is wrong is the value, which the stream dead-letters.
MALFORMED = b'not json\n{"payment_id": "p-bad", "account_id": "acct-9", "amount": "lots"}\n'
console = Console()


def kedro_stream(*args: str) -> str:
    console.print(f"[bold]$ kedro stream {' '.join(args)}[/]")
    done = subprocess.run(
        [KEDRO, "stream", *args], cwd=PROJECT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"kedro stream {args[0]} failed:\n{done.stderr[-3000:]}")
    console.print(done.stdout.strip().splitlines()[-1])
    return done.stdout


def read_all(bootstrap: str, topic: str) -> list:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "demo-reader"})
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions])
    messages, empty_polls = [], 0
    while empty_polls < 5:
        batch = [m for m in consumer.consume(1000, 0.5) if m.error() is None]
        messages += batch
        empty_polls = 0 if batch else empty_polls + 1
    consumer.close()
    return messages


def main() -> None:
    events = PROJECT / "data/01_raw/payments.jsonl"
    if not events.exists():
        raise SystemExit(f"{events} not found: run `kedro run` first.")
    malformed = PROJECT / "data/01_raw/malformed.jsonl"
    malformed.write_bytes(MALFORMED)
    total = sum(1 for _ in events.open("rb")) + MALFORMED.count(b"\n")

    console.print("[bold]$ kedro stream broker[/]  (in the background)")
    broker = subprocess.Popen(
        [KEDRO, "stream", "broker", "--topic", "payments", "--partitions", "4"],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"},
    )
    try:
        bootstrap = broker.stdout.readline().strip().removeprefix("bootstrap.servers=")
        console.print(f"bootstrap.servers={bootstrap}")
        target = ("--topic", "payments", "--bootstrap-servers", bootstrap)
        # Keyed by account: its payments stay on one partition, with its state.
        kedro_stream("produce", *target, "--file", str(events), "--key", "account_id")
        kedro_stream("produce", *target, "--file", str(malformed))
        kedro_stream("consume", *target, "--max-messages", str(total))
        show(bootstrap)
    finally:
        broker.send_signal(signal.SIGTERM)
        broker.wait(timeout=10)


def show(bootstrap: str) -> None:
    scores = read_all(bootstrap, "payment-scores")
    features = [json.loads(m.value()) for m in read_all(bootstrap, "payment-features")]
    alerts = [json.loads(m.value()) for m in read_all(bootstrap, "payment-alerts")]
    dead = read_all(bootstrap, "payments.dlq")
    console.print(
        f"\n[bold]payment-scores[/]: {len(scores)} records   [bold]payment-features[/]: "
        f"{len(features)}   [bold]payment-alerts[/]: {len(alerts)}   "
        f"[bold]payments.dlq[/]: {len(dead)}"
    )
    show_burst(features)
    table = Table(title="highest-scoring alerts", title_justify="left")
    for column in ("payment_id", "amount", "category", "score", "reason"):
        table.add_column(column)
    for a in sorted(alerts, key=lambda a: -a["score"])[:5]:
        table.add_row(
            a["payment_id"],
            f"{a['amount']:.2f}",
            a["merchant_category"],
            f"{a['score']:.3f}",
            a["reason"],
        )
    console.print(table)
    table = Table(title="dead-lettered records", title_justify="left")
    for column in ("value", "error"):
        table.add_column(column)
    for m in dead:
        reason = dict(m.headers() or []).get("kedro-stream.error.message", b"").decode()
        table.add_row(m.value().decode("utf-8", "replace")[:40], reason[:90])
    console.print(table)


def show_burst(streamed: list[dict]) -> None:
    """The busiest hour of one account, as the stream saw it, against ``kedro run``'s rows."""
    batch = pd.read_parquet(PROJECT / "data/04_feature/payment_features.parquet")
    batch = batch.set_index("payment_id")
    busiest = max(streamed, key=lambda row: (row["count_1h"], row["payment_id"]))
    burst = sorted(
        (row for row in streamed if row["account_id"] == busiest["account_id"]),
        key=lambda row: row["event_time"],
    )
    burst = [row for row in burst if 0 <= busiest["event_time"] - row["event_time"] < 3_600_000]
    table = Table(
        title=f"velocity of account {busiest['account_id']}, as streamed", title_justify="left"
    )
    for column in ("payment_id", "count_1h", "amount_1h", "count_24h", "since previous (s)"):
        table.add_column(column)
    equal = 0
    for row in streamed:
        expected = batch.loc[row["payment_id"]]
        equal += all(
            _same(row[name], expected[name])
            for name in ("count_1h", "amount_1h", "count_24h", "amount_24h")
        ) and _same(row["seconds_since_previous"], expected["seconds_since_previous"])
    for row in burst:
        since = row["seconds_since_previous"]
        table.add_row(
            row["payment_id"],
            str(row["count_1h"]),
            f"{row['amount_1h']:.2f}",
            str(row["count_24h"]),
            "-" if since is None else f"{since:.0f}",
        )
    console.print(table)
    console.print(
        f"{equal} of {len(streamed)} streamed feature rows equal those `kedro run` saved to "
        "data/04_feature/payment_features.parquet"
    )


def _same(streamed: float | None, batch: float) -> bool:
    if streamed is None:
        return bool(pd.isna(batch))
    return abs(streamed - batch) <= 1e-9


if __name__ == "__main__":
    main()
