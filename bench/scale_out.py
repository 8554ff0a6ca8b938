"""The example's stateful stream on 1, 2, 4 consumers of one group: how long the group takes to
form, what the joins cost in state restores, and whether the outputs stay complete and right.

For each consumer count N, on one embedded broker, a fresh input topic of ``--partitions`` and a
fresh group: ``--backlog`` of the example's payments (keyed by account, as
``bench/throughput.py`` produces them) are in the topic when N ``kedro stream consume``
processes of the example's ``payment-scoring`` stream start, ``--stagger-s`` apart (0: all at
once, as a Deployment's replicas). Each runs in its own copy of the project, so each has its own
``data/state``, as a pod has. The rest of ``--records`` is produced once every member holds
partitions, so it runs on stores the joins restored. Measured per run, from the group's
committed offsets (polled) and the processes' logs:
  1st commit  first start to the group's first commit
  backlog     first commit to the backlog committed
  joined      first start to every member's first assignment caught up
  restores    the ``Restored state activity of ... in X s: N changelog records read`` lines
              (``kedro_stream.state.keeper``) up to the end: how many, their seconds and records
  drain       the rest: its first commit to every record committed, and records/s over it
  checks      every payment scored, every feature row and score equal to the batch computation
              of ``tests/reconcile.py`` (``kedro run`` over all the payments), and the scores
              published more than once (at-least-once: a batch whose commit a rebalance
              overtook runs again)
The processes share the machine with the broker and each other: on a small machine N processes
drain no faster than one. What the runs show is correctness across joins and what a join costs.

Usage: python bench/scale_out.py [--consumers 1,2,4] [--records 20000] [--backlog 10000]
                                 [--partitions 4] [--stagger-s 0] [--logs DIR] [--json]
With --json the last line is one JSON object: the settings and one entry per run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
BENCH = Path(__file__).resolve().parent
PROJECT = BENCH.parent
sys.path[:0] = [str(BENCH), str(PROJECT), str(PROJECT / "src")]  # benches, tests, example

import pandas as pd  # noqa: E402
import yaml  # noqa: E402
from confluent_kafka import Consumer, TopicPartition  # noqa: E402
from tests.kafka_helpers import message_count, read_topic  # noqa: E402
from tests.reconcile import (  # noqa: E402
    Expected,
    Reconciliation,
    expected_outputs,
    reconcile_alerts,
    reconcile_features,
    reconcile_scores,
    table,
)

import consume_process  # noqa: E402
from kedro_stream.config import default_changelog_topic  # noqa: E402
from kedro_stream.devbroker.process import EmbeddedBroker  # noqa: E402
from throughput import encode_inputs, produce  # noqa: E402

STREAM = "payment-scoring"
STATE = "activity"
#: Output topic suffix -> the output, as stream.yml names it.
OUTPUTS = {"features": "payment_features", "scores": "scores", "alerts": "alerts"}
#: The line ``kedro_stream.state.keeper`` logs after each restore of an assignment.
RESTORED = re.compile(
    r"Restored state (?P<state>\S+) of (?P<topic>\S+?)\[(?P<partitions>[^\]]*)\] in "
    r"(?P<seconds>[\d.]+) s: (?P<records>\d+) changelog records read"
)
WAIT_S = 300.0  # the longest any one wait of a run may take


def log(message: str) -> None:
    """Progress on stderr: stdout holds the report."""
    print(message, file=sys.stderr, flush=True)


# -------------------------------------------------------------------------- the inputs


def example_payments() -> pd.DataFrame:
    """The example's payments (data/01_raw/payments.jsonl), generated first if missing, read
    as the catalog reads them."""
    events_path = PROJECT / "data/01_raw/payments.jsonl"
    if not (events_path.exists() and (PROJECT / "data/06_models/fraud_model.pkl").exists()):
        log("preparing: kedro run --pipeline data_generation, then training ...")
        kedro = consume_process.KEDRO
        for pipeline in ("data_generation", "training"):
            subprocess.run([kedro, "run", "--pipeline", pipeline], cwd=PROJECT, check=True)
    return pd.read_json(events_path, lines=True, dtype=False)


def backlog(events: pd.DataFrame, count: int) -> tuple[list[tuple[bytes, bytes]], Expected]:
    """``count`` payments as keyed JSON records, and what the stream must publish for them."""
    records = encode_inputs(events, count, "json")
    log(f"the batch computation over {count} payments (the oracle) ...")
    expected = expected_outputs(PROJECT, (json.loads(value) for _, value in records))
    return records, expected


# ------------------------------------------------------------------- topics and projects


@dataclass(frozen=True)
class Names:
    """The topics and group of one run, fresh so runs never see each other's records."""

    input: str
    group: str

    @classmethod
    def fresh(cls, prefix: str) -> Names:
        """Names no earlier run used."""
        run = uuid.uuid4().hex[:8]
        return cls(f"{prefix}-{run}", f"{prefix}-group-{run}")

    def output(self, suffix: str) -> str:
        """The topic of output ``suffix`` (``features``, ``scores``, ``alerts``)."""
        return f"{self.input}-{suffix}"

    @property
    def dlq(self) -> str:
        """The dead-letter topic."""
        return f"{self.input}.dlq"

    @property
    def changelog(self) -> str:
        """The state's changelog: stream.yml's default name for the group."""
        return default_changelog_topic(self.group, STATE)


def create_topics(broker: EmbeddedBroker, names: Names, partitions: int) -> None:
    """The input, outputs and changelog with ``partitions`` each: the development broker makes
    a missing topic with 4 whatever is asked, and a changelog needs the input's count."""
    for topic in (names.input, names.changelog, *map(names.output, OUTPUTS)):
        broker.faults.create_topic(topic, partitions)
    broker.faults.create_topic(names.dlq, 1)


def project_copy(workdir: Path, names: Names, label: str) -> Path:
    """A copy of the example project whose ``payment-scoring`` stream reads ``names``: the
    state dir (``data/state``, relative to the project) is then this copy's own, as a pod's."""
    project = workdir / f"project-{label}"
    shutil.copytree(
        PROJECT,
        project,
        ignore=shutil.ignore_patterns(
            ".venv*", ".git", "__pycache__", "bench", "tests", "deploy", "docs", "site"
        ),
    )
    shutil.rmtree(project / "data/state", ignore_errors=True)  # any stores of the original
    path = project / "conf/base/stream.yml"
    config = yaml.safe_load(path.read_text())
    stream = config["streams"][STREAM]
    stream["group_id"] = names.group
    stream["input"]["topics"] = [names.input]
    for suffix, output in OUTPUTS.items():
        stream["outputs"][output]["topic"] = names.output(suffix)
    stream["dead_letter_topic"] = names.dlq
    path.write_text(yaml.safe_dump(config))
    return project


# --------------------------------------------------------------------------- processes


@dataclass
class Member:
    """One ``kedro stream consume`` process, its stderr in a file."""

    project: Path
    process: subprocess.Popen[str]
    stderr_path: Path
    stderr: IO[str]
    started: float  # time.monotonic()
    first_restore_at: float = 0.0  # when this bench first saw a restore line in its log

    def restored(self) -> bool:
        """Whether it has caught up its first assignment's stores (noting when first seen)."""
        if not self.first_restore_at and restores(self.log_text()):
            self.first_restore_at = time.monotonic()
        return bool(self.first_restore_at)

    def log_text(self, limit: int | None = None) -> str:
        """Its stderr so far (the first ``limit`` bytes, when given)."""
        with self.stderr_path.open("rb") as handle:
            return handle.read(limit if limit is not None else -1).decode(errors="replace")


def start_member(project: Path, names: Names, bootstrap: str, label: str) -> Member:
    """``kedro stream consume --topic INPUT`` in ``project``, as a user starts it; returns at
    once (the group's offsets, not the process, say when it works)."""
    stderr_path = project.parent / f"{label}.stderr"
    stderr = stderr_path.open("w")
    command = [consume_process.KEDRO, "stream", "consume", "--topic", names.input]
    command += ["--bootstrap-servers", bootstrap, "--metrics-port", "0"]
    process = subprocess.Popen(
        command, cwd=project, stdout=subprocess.DEVNULL, stderr=stderr, text=True
    )
    return Member(project, process, stderr_path, stderr, time.monotonic())


def stop_all(members: list[Member], sig: str = "term") -> None:
    """Signal every member at once (so none takes over another's partitions on its way out),
    then wait for each; a member that does not stop within 30 s of SIGTERM is killed."""
    for member in members:
        if member.process.poll() is None:
            (member.process.terminate if sig == "term" else member.process.kill)()
    for member in members:
        try:
            member.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            member.process.kill()
            member.process.wait()
        member.stderr.close()


@contextmanager
def members_stopped(members: list[Member]) -> Iterator[list[Member]]:
    """``members``, stopped with SIGTERM however the block ends."""
    try:
        yield members
    finally:
        stop_all(members)


# ------------------------------------------------------------------------------ offsets


class GroupOffsets:
    """The group's committed offsets on the input, read as ``kedro stream lag`` reads them."""

    def __init__(self, bootstrap: str, names: Names, partitions: int) -> None:
        self._consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": names.group, "enable.auto.commit": False}
        )
        self._tps = [TopicPartition(names.input, p) for p in range(partitions)]
        self.timeline: list[tuple[float, int]] = []

    def committed(self) -> int:
        """Records committed, summed over the input's partitions; each reading is kept in
        ``timeline`` with its time."""
        done = self._consumer.committed(self._tps, timeout=10)
        count = sum(max(tp.offset, 0) for tp in done)
        self.timeline.append((time.monotonic(), count))
        return count

    def ends(self) -> int:
        """Records in the input (its high watermarks, summed)."""
        return sum(self._consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in self._tps)

    def close(self) -> None:
        """Close its consumer (it never joined the group)."""
        self._consumer.close()


def wait_for(
    condition: Callable[[], bool], what: str, members: list[Member], every_s: float = 0.05
) -> float:
    """Poll ``condition`` until true (returns when, ``time.monotonic()``), failing after
    ``WAIT_S`` or as soon as a member exits, with the tail of each member's stderr."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        if any(m.process.poll() is not None for m in members):
            break
        time.sleep(every_s)
    tails = "\n".join(f"--- {m.stderr_path.name}\n{m.log_text()[-3000:]}" for m in members)
    raise SystemExit(f"gave up waiting for {what}\n{tails}")


# ------------------------------------------------------------------------------ restores


@dataclass(frozen=True)
class Restore:
    """One ``Restored state ...`` line: one assignment's stores caught up."""

    partitions: int
    seconds: float
    records: int


def restores(text: str) -> list[Restore]:
    """The restore lines of a process's log."""
    found = []
    for match in RESTORED.finditer(text):
        parts = [p for p in match["partitions"].split(",") if p.strip()]
        found.append(Restore(len(parts), float(match["seconds"]), int(match["records"])))
    return found


# ---------------------------------------------------------------------------- one run


@dataclass
class RunResult:
    """What one run measured and checked (times in seconds)."""

    consumers: int
    first_commit_s: float  # first start to the group's first commit
    backlog_s: float  # the backlog: first commit to all of it committed
    joined_s: float  # first start to every member holding partitions (its first restore)
    restores: int  # assignments caught up, up to the end of the run
    restored_partitions: int
    restore_s: float  # their seconds, summed
    restore_records: int  # changelog records they read
    drain_s: float  # the rest, produced once all joined: first commit to all committed
    records_per_s: int  # of the rest, over drain_s
    lost: int  # payments without a score
    wrong_features: int
    wrong_scores: int
    missing_features: int
    alerts_off: int  # alerts missing, unexpected or wrong
    dead_letters: int
    repeated_scores: int  # scores published more than once
    repeated_features: int
    reconciliation: str

    @property
    def ok(self) -> bool:
        """Nothing lost, nothing wrong: what at-least-once promises (repeats allowed)."""
        return not (
            self.lost
            or self.wrong_features
            or self.wrong_scores
            or self.missing_features
            or self.alerts_off
            or self.dead_letters
        )


@dataclass(frozen=True)
class Plan:
    """What every run does alike."""

    inputs: list[tuple[bytes, bytes]]
    backlog: int  # how many of ``inputs`` are there before the first start
    expected: Expected
    partitions: int
    stagger_s: float
    logs: Path | None  # where to keep each member's stderr


def first_at(timeline: list[tuple[float, int]], reached: Callable[[int], bool]) -> float:
    """When the committed count first satisfied ``reached``."""
    return next(t for t, count in timeline if reached(count))


def run(broker: EmbeddedBroker, workdir: Path, consumers: int, plan: Plan) -> RunResult:
    """N members on a fresh group: the backlog is there before they start, the rest comes once
    every member holds partitions; then every output is reconciled."""
    bootstrap = broker.bootstrap_servers
    names = Names.fresh(f"scale{consumers}")
    create_topics(broker, names, plan.partitions)
    before, after = plan.inputs[: plan.backlog], plan.inputs[plan.backlog :]
    produce(bootstrap, names.input, before)
    offsets = GroupOffsets(bootstrap, names, plan.partitions)
    total = len(plan.inputs)
    if offsets.ends() != len(before):
        raise SystemExit(f"{names.input} does not hold the {len(before)} records produced")
    projects = [project_copy(workdir, names, f"{consumers}-{i}") for i in range(consumers)]
    members: list[Member] = []
    log(f"{consumers} consumer(s) on {names.input}, started {plan.stagger_s:g} s apart ...")
    try:
        with members_stopped(members):
            first_start = time.monotonic()

            def settled() -> bool:
                joined = [m.restored() for m in members]  # each poll: when each first restored
                return (
                    offsets.committed() >= len(before) and len(joined) == consumers and all(joined)
                )

            for i, project in enumerate(projects):
                while time.monotonic() < first_start + i * plan.stagger_s:
                    settled()  # the timeline goes on: members commit meanwhile
                    time.sleep(0.02)
                members.append(start_member(project, names, bootstrap, f"{consumers}-{i}"))
            wait_for(settled, "the backlog, and every member's first assignment", members, 0.02)
            joined = max(m.first_restore_at for m in members)
            produce(bootstrap, names.input, after)
            wait_for(lambda: offsets.committed() >= total, "every commit", members, every_s=0.02)
            logs = [m.log_text() for m in members]  # stopping's restores are not the joins'
        if plan.logs is not None:
            for member in members:  # stopped: their logs whole
                shutil.copy(member.stderr_path, plan.logs / member.stderr_path.name)
    finally:
        offsets.close()
    for member in members:
        if member.process.returncode != 0:
            raise SystemExit(
                f"{member.stderr_path.name} exited {member.process.returncode}:\n"
                f"{member.log_text()[-3000:]}"
            )
    timeline = offsets.timeline
    first = first_at(timeline, lambda c: c > 0)
    rest_first = first_at(timeline, lambda c: c > len(before))
    rest_count = next(c for _, c in timeline if c > len(before))
    last = first_at(timeline, lambda c: c >= total)
    done = [r for text in logs for r in restores(text)]
    checks = reconcile(bootstrap, names, plan.expected)
    scores, features, alerts = checks
    return RunResult(
        consumers=consumers,
        first_commit_s=round(first - first_start, 2),
        backlog_s=round(first_at(timeline, lambda c: c >= len(before)) - first, 2),
        joined_s=round(joined - first_start, 2),
        restores=len(done),
        restored_partitions=sum(r.partitions for r in done),
        restore_s=round(sum(r.seconds for r in done), 2),
        restore_records=sum(r.records for r in done),
        drain_s=round(last - rest_first, 2),
        records_per_s=round((total - rest_count) / (last - rest_first)) if last > rest_first else 0,
        lost=len(scores.missing),
        wrong_features=len(features.wrong),
        wrong_scores=len(scores.wrong),
        missing_features=len(features.missing),
        alerts_off=len(alerts.missing) + len(alerts.unexpected) + len(alerts.wrong),
        dead_letters=message_count(bootstrap, names.dlq),
        repeated_scores=scores.duplicates,
        repeated_features=features.duplicates,
        reconciliation=table(*checks),
    )


def reconcile(bootstrap: str, names: Names, expected: Expected) -> list[Reconciliation]:
    """Every output topic, read in full after the members stopped, against the oracle."""

    def read(suffix: str) -> list[Any]:
        return read_topic(bootstrap, names.output(suffix), timeout_s=WAIT_S)

    return [
        reconcile_scores(expected, read("scores")),
        reconcile_features(expected, read("features")),
        reconcile_alerts(expected, read("alerts")),
    ]


# ---------------------------------------------------------------------------------- main


def report(args: argparse.Namespace, results: list[RunResult], seconds: float) -> None:
    """The table, anything not reconciled, and with ``--json`` the summary line last."""
    print(
        f"\n{args.records} payments over {args.partitions} partitions: {args.backlog} there "
        f"before the first start, the rest once every member holds partitions; consumers "
        f"started {args.stagger_s:g} s apart; embedded broker, {os.cpu_count()} CPUs"
    )
    print(
        f"{'consumers':>9}{'1st commit':>11}{'backlog':>9}{'joined':>8}{'restores':>10}"
        f"{'restore s':>11}{'cl. read':>10}{'drain':>7}{'records/s':>11}{'lost':>6}"
        f"{'wrong':>7}{'repeated':>10}"
    )
    for r in results:
        print(
            f"{r.consumers:>9}{r.first_commit_s:>11.1f}{r.backlog_s:>9.2f}{r.joined_s:>8.1f}"
            f"{r.restores:>10}{r.restore_s:>11.2f}{r.restore_records:>10}{r.drain_s:>7.2f}"
            f"{r.records_per_s:>11,}{r.lost:>6}{r.wrong_features + r.wrong_scores:>7}"
            f"{r.repeated_scores:>10}"
        )
    print(
        "seconds: 1st commit and joined from the first start; backlog from the first commit to "
        "all of it committed; drain: the rest, first commit to all committed (records/s over "
        "it). restores: assignments caught up, their seconds summed, cl. read the changelog "
        "records they read. lost: payments without a score; wrong: feature rows or scores "
        "unequal to the batch computation; repeated: scores published more than once"
    )
    for r in results:
        if not r.ok:
            print(f"\n{r.consumers} consumer(s): NOT RECONCILED\n{r.reconciliation}")
    print(f"(the bench took {seconds:.0f} s)")
    if args.json:
        runs = [{k: v for k, v in asdict(r).items() if k != "reconciliation"} for r in results]
        settings = {k: getattr(args, k) for k in ("records", "backlog", "partitions", "stagger_s")}
        print(json.dumps({**settings, "cpus": os.cpu_count(), "runs": runs}))


def main() -> int:
    """Every run, then the report; exit 1 when a run's outputs are not reconciled."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--consumers", default="1,2,4", help="Consumer counts, one run each.")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument(
        "--backlog", type=int, help="Of --records, in the topic before the first start (half)."
    )
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--stagger-s", type=float, default=0.0, help="Between two starts (0: all at once)."
    )
    parser.add_argument("--logs", type=Path, help="Keep each process's stderr in this folder.")
    parser.add_argument("--json", action="store_true", help="End with one JSON line.")
    args = parser.parse_args()
    counts = [int(n) for n in args.consumers.split(",")]
    if args.backlog is None:
        args.backlog = args.records // 2
    if max(counts) > args.partitions or not 0 < args.backlog < args.records:
        parser.error("at most --partitions consumers, and 0 < --backlog < --records")
    started = time.monotonic()
    inputs, expected = backlog(example_payments(), args.records)
    if args.logs is not None:
        args.logs.mkdir(parents=True, exist_ok=True)
    plan = Plan(inputs, args.backlog, expected, args.partitions, args.stagger_s, args.logs)
    results = []
    with EmbeddedBroker.start() as broker, tempfile.TemporaryDirectory() as tmp:
        for consumers in counts:
            result = run(broker, Path(tmp), consumers, plan)
            log(f"{consumers} consumer(s): done\n{result.reconciliation}")
            results.append(result)
    report(args, results, time.monotonic() - started)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
