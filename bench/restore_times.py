"""How long the example's state takes to restore when its pod restarts, in the two Kubernetes
layouts of deploy/kubernetes: the base's emptyDir, and the StatefulSet overlay's volume.

The real ``kedro stream consume`` of the example's ``payment-scoring`` stream, in a copy of the
project (its ``data/state`` is the pod's state dir), on the embedded broker: it processes the
backlog (``--records``, default the 20 000 payments of data/01_raw/payments.jsonl; more are the
same payments again, later in event time) on an input of ``--partitions``, and is stopped with
SIGTERM as Kubernetes stops a pod. Then, ``--rounds`` times each:
  emptyDir     started again with the state dir wiped: every partition is restored from the
               changelog
  volume       started again with the state dir kept: the stores were checkpointed when the
               SIGTERM'd process handed its partitions back, so only the changelog written
               since is read
  volume, kill ``--tail`` more payments are processed, the process is SIGKILLed (OOM-killed,
               node lost: no hand-back, no checkpoint), and started again with the state dir
               kept: the changelog since the store's last checkpoint is read
Each restart's figures come from its log line ``Restored state activity of ... in X s: N
changelog records read``; the table gives medians over the rounds, and ``to ready``: process
start to that line (boot, group join, restore). The development broker never compacts a
changelog, so the emptyDir restore here reads every change ever written; on Kafka the
changelog is compacted and reads about one record per key plus the head not yet compacted.

Usage: python bench/restore_times.py [--records 20000] [--rounds 3] [--tail 2000] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from kedro_stream.devbroker.process import EmbeddedBroker

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale_out import (
    GroupOffsets,
    Member,
    Names,
    create_topics,
    example_payments,
    log,
    project_copy,
    restores,
    start_member,
    stop_all,
    wait_for,
)
from throughput import encode_inputs, produce

LAYOUTS = ("emptyDir", "volume", "volume, kill")


@dataclass(frozen=True)
class Restart:
    """One restart's first restore, from its log line."""

    seconds: float
    records: int
    to_ready_s: float  # process start to the restore line seen


class Pod:
    """The example's consumer in one project copy, started and stopped like a pod."""

    def __init__(self, project: Path, names: Names, bootstrap: str, offsets: GroupOffsets):
        self.project = project
        self.names = names
        self.bootstrap = bootstrap
        self.offsets = offsets
        self.lives = 0

    def start(self) -> Member:
        """A new life of the pod: ``kedro stream consume`` in its project."""
        self.lives += 1
        return start_member(self.project, self.names, self.bootstrap, f"life-{self.lives}")

    def process(self, committed: int, *, stop: str) -> None:
        """A life that runs until ``committed`` records are committed, then is stopped with
        ``stop`` (``term`` or ``kill``)."""
        member = self.start()
        try:
            wait_for(lambda: self.offsets.committed() >= committed, "the commits", [member])
        finally:
            stop_all([member], stop)

    def restart(self, *, wipe: bool) -> Restart:
        """A life that only restores (nothing is left to process), stopped with SIGTERM."""
        if wipe:
            shutil.rmtree(self.project / "data/state", ignore_errors=True)
        member = self.start()
        try:
            wait_for(member.restored, "the restore", [member])
        finally:
            stop_all([member])
        if member.process.returncode != 0:
            raise SystemExit(f"exited {member.process.returncode}:\n{member.log_text()[-3000:]}")
        first = restores(member.log_text())[0]
        ready = round(member.first_restore_at - member.started, 2)
        return Restart(first.seconds, first.records, ready)


def changelog_extent(bootstrap: str, topic: str, partitions: int) -> tuple[int, int]:
    """(records in the changelog, records the broker dropped from its start)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "restore-times-reader"})
    try:
        marks = [
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            for p in range(partitions)
        ]
    finally:
        consumer.close()
    return sum(high for _, high in marks), sum(low for low, _ in marks)


def main() -> int:
    """The backlog, the rounds of restarts, then the medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, help="The backlog (all of payments.jsonl).")
    parser.add_argument("--rounds", type=int, default=3, help="Medians over this many rounds.")
    parser.add_argument("--tail", type=int, default=2000, help="Payments before each kill.")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--json", action="store_true", help="End with one JSON line.")
    args = parser.parse_args()
    started = time.monotonic()
    events = example_payments()
    records = args.records or len(events)
    inputs = encode_inputs(events, records + args.rounds * args.tail, "json")
    samples: dict[str, list[Restart]] = {layout: [] for layout in LAYOUTS}
    with EmbeddedBroker.start() as broker, tempfile.TemporaryDirectory() as tmp:
        bootstrap = broker.bootstrap_servers
        names = Names.fresh("restore")
        create_topics(broker, names, args.partitions)
        produce(bootstrap, names.input, inputs[:records])
        offsets = GroupOffsets(bootstrap, names, args.partitions)
        try:
            pod = Pod(project_copy(Path(tmp), names, "pod"), names, bootstrap, offsets)
            log(f"processing {records} payments, then SIGTERM ...")
            pod.process(records, stop="term")
            changelog, dropped = changelog_extent(bootstrap, names.changelog, args.partitions)
            for round_ in range(1, args.rounds + 1):  # both on the same changelog
                samples["emptyDir"].append(pod.restart(wipe=True))
                samples["volume"].append(pod.restart(wipe=False))
                latest = {k: samples[k][-1] for k in ("emptyDir", "volume")}
                log(f"round {round_}/{args.rounds}: {latest}")
            done = records
            for round_ in range(1, args.rounds + 1):
                produce(bootstrap, names.input, inputs[done : done + args.tail])
                done += args.tail
                pod.process(done, stop="kill")
                samples["volume, kill"].append(pod.restart(wipe=False))
                log(f"round {round_}/{args.rounds}: {samples['volume, kill'][-1]}")
        finally:
            offsets.close()
    medians = {
        layout: {
            "restore_s": round(statistics.median(r.seconds for r in runs), 2),
            "changelog_records_read": round(statistics.median(r.records for r in runs)),
            "to_ready_s": round(statistics.median(r.to_ready_s for r in runs), 2),
        }
        for layout, runs in samples.items()
    }
    print(
        f"\nthe example's state after {records} payments over {args.partitions} partitions "
        f"({changelog} changelog records, {dropped} dropped by the broker); restart after "
        f"SIGTERM (emptyDir, volume) or after {args.tail} more payments and SIGKILL (volume, "
        f"kill); medians of {args.rounds} rounds"
    )
    print(f"{'layout':<14}{'restore s':>11}{'changelog read':>16}{'to ready s':>12}")
    for layout, figures in medians.items():
        print(
            f"{layout:<14}{figures['restore_s']:>11.2f}{figures['changelog_records_read']:>16}"
            f"{figures['to_ready_s']:>12.2f}"
        )
    print(f"(the bench took {time.monotonic() - started:.0f} s)")
    if args.json:
        summary = {"records": records, "changelog_records": changelog, "tail": args.tail}
        print(json.dumps({**summary, "rounds": args.rounds, "medians": medians}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
