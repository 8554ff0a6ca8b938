"""Score ``data/01_raw/payments.jsonl`` in micro-batches through kedro-stream's Python API.

What the stream service does per batch, minus Kafka: boot once, then ``session.run`` per batch,
handing each batch its accounts' state rows and keeping the rows it returns (the stream keeps
them in a store per partition; here a dict does).
Run ``kedro run`` first. Usage, from the repository (the example is not installed):
``PYTHONPATH=src python -m payment_fraud.micro_batches [--batch-size N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from kedro_stream import NamespaceSpec, boot_project

PROJECT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--events", type=Path, default=PROJECT / "data/01_raw/payments.jsonl")
    args = parser.parse_args()
    console = Console()
    if not args.events.exists():
        raise SystemExit(f"{args.events} not found: run `kedro run` first.")
    events = pd.read_json(args.events, lines=True, dtype=False)

    started = time.perf_counter()
    state = NamespaceSpec(
        namespace="scoring", states={"account_activity": "account_activity_updates"}
    )
    activity: dict[str, dict] = {}  # account_id -> its state row
    with boot_project(PROJECT, namespaces=["scoring"], specs=[state]) as session:
        boot_s = time.perf_counter() - started
        durations, scored, alerts = [], 0, []
        for start in range(0, len(events), args.batch_size):
            batch = events.iloc[start : start + args.batch_size]
            rows = [activity[a] for a in batch["account_id"].unique() if a in activity]
            t0 = time.perf_counter()
            out = session.run(
                "scoring", inputs={"payments": batch, "account_activity": pd.DataFrame(rows)}
            )
            durations.append((time.perf_counter() - t0) * 1000)
            for row in out["account_activity_updates"].to_dict(orient="records"):
                activity[row["account_id"]] = row
            scored += len(out["scores"])
            alerts.append(out["alerts"])

    all_alerts = pd.concat(alerts, ignore_index=True)
    console.print(
        f"booted in {boot_s:.2f} s; {len(durations)} batches of {args.batch_size}: "
        f"{scored} payments scored, {len(all_alerts)} alerts; per batch median "
        f"{statistics.median(durations):.1f} ms, max {max(durations):.1f} ms"
    )
    table = Table(title="highest-scoring alerts", title_justify="left")
    for column in ("payment_id", "amount", "merchant_category", "score", "reason"):
        table.add_column(column)
    for row in all_alerts.nlargest(8, "score").itertuples(index=False):
        table.add_row(
            row.payment_id,
            f"{row.amount:.2f}",
            row.merchant_category,
            f"{row.score:.3f}",
            row.reason,
        )
    console.print(table)


if __name__ == "__main__":
    main()
