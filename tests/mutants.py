"""Plant known bugs in a scratch copy of the project and show which tests catch each one.

The reliability tests are only worth what they catch. Each mutant below is a bug the commit
protocol or the loop could plausibly grow; the script first runs every test it names on the
unchanged copy (all must pass, or a catch would prove nothing), then plants one mutant at a
time, runs the tests meant to catch it, and prints ``mutant → caught by``. It exits 1 when the
clean run fails or a mutant survives.

Not part of ``make test`` (it runs the slow tests several times): ``make mutants``. What
``make test`` does check, in ``tests/test_mutants.py``, is that every mutant still fits the code
(:func:`unplantable`) and every test it names still exists (:func:`missing_tests`): a renamed
test or moved code then fails CI instead of the next ``make mutants``.

Usage: python tests/mutants.py [--only NAME ...] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMIT = "src/kedro_stream/service/commit.py"
DECODE = "src/kedro_stream/service/decode.py"
ENCODE = "src/kedro_stream/service/encode.py"
REBALANCE = "src/kedro_stream/service/rebalance.py"
BISECTION = "src/kedro_stream/service/bisection.py"
ISOLATION = "src/kedro_stream/service/isolation.py"
IDLE = "src/kedro_stream/service/idle.py"
LOOP = "src/kedro_stream/service/loop.py"
KEEPER = "src/kedro_stream/state/keeper.py"
RESTORE = "src/kedro_stream/state/restore.py"
ROWS = "src/kedro_stream/state/rows.py"
RESET = "src/kedro_stream/ops/reset.py"
CLIENTS = "src/kedro_stream/kafka/clients.py"
#: One test run's budget; the slowest mutant runs the crash loop once.
RUN_BUDGET_S = 1800
#: How long collecting the named tests may take (it imports their modules, runs none).
COLLECT_BUDGET_S = 300
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts="]

SERVICE = "tests/integration/test_stream_service.py::"
FAULTS = "tests/reliability/test_broker_faults.py::test_the_service_rides_out_the_fault"
ALL_RECORDS = SERVICE + "test_every_good_record_is_scored_and_every_poison_record_dead_lettered"
FUZZ = "tests/reliability/test_fuzz_stream.py::test_ten_thousand_good_and_bad_records"
CRASH_LOOP = (
    "tests/reliability/test_crash_loop.py::test_at_least_once_sigkill_ten_times_loses_nothing"
)
USER_FLOW = "tests/e2e/test_stream_cli.py::test_broker_produce_consume_as_a_user"
ISOLATE_POISON = (
    "tests/integration/test_isolate.py::"
    "test_only_the_poison_records_are_dead_lettered_and_the_state_is_the_good_records"
)
LOOP_ISOLATE = "tests/unit/service/test_loop_isolate.py::"
LOOP_STATE = "tests/unit/service/test_loop_state.py::"
LOOP_PROTOCOL = "tests/unit/service/test_loop_protocol.py::"
RESET_TESTS = "tests/integration/test_reset.py::"
STATE_CRASH_LOOP = (
    "tests/reliability/test_state_crash_loop.py::"
    "test_state_survives_ten_sigkills_with_no_update_counted_twice"
)


CATCHES = frozenset({"failed", "error"})


def fault(case: str) -> str:
    return f"{FAULTS}[{case}]"


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    original: str  # must occur exactly once in ``path``
    planted: str
    tests: tuple[str, ...]


MUTANTS = (
    Mutant(
        "an output dropped after the first batch",
        ENCODE,
        "            for output in self.outputs\n",
        # the first call keeps every output, later ones only the first
        "            for output in (self.outputs[:1] if hasattr(self, '_seen') else\n"
        "                           setattr(self, '_seen', 1) or self.outputs)\n",
        (ALL_RECORDS, FUZZ, fault("broker 2 down, then up"), USER_FLOW, CRASH_LOOP),
    ),
    Mutant(
        "at-least-once commit before the flush",
        COMMIT,
        "        pending = self._producer.flush(self._flush_timeout_s)\n",
        "        if offsets:\n"
        "            self._consumer.commit(offsets=offsets, asynchronous=False)\n"
        "        pending = self._producer.flush(self._flush_timeout_s)\n",
        (
            fault("broker 2 down, then up"),
            fault("Produce: retriable errors"),
            fault("Produce: a record rejected"),
            CRASH_LOOP,
        ),
    ),
    Mutant(
        "a transient commit error never retried",
        COMMIT,
        "_COMMIT_RETRY_BUDGET_S = 10.0",
        "_COMMIT_RETRY_BUDGET_S = 0.0",
        (fault("OffsetCommit: coordinator moving"),),
    ),
    Mutant(
        "a dead letter for a good record",
        DECODE,
        "            good.append((message, record))\n",
        "            good.append((message, record))\n"
        "            if len(good) == 1:\n"
        "                dead.append(\n"
        '                    self._dead_letters.of(message, ValueError("x"), Stage.DECODE)\n'
        "                )\n",
        (ALL_RECORDS, FUZZ, fault("broker 2 down, then up")),
    ),
    Mutant(
        "a batch overtaken by a revocation published",
        REBALANCE,
        "            if taken:\n",
        "            if False:\n",
        (
            LOOP_PROTOCOL
            + "test_a_batch_overtaken_during_its_run_publishes_nothing_and_is_read_again",
            LOOP_PROTOCOL + "test_a_batch_overtaken_while_it_was_collected_is_not_run",
            LOOP_STATE + "test_a_batch_overtaken_during_its_run_writes_no_state",
            LOOP_STATE + "test_a_batch_overtaken_while_collected_is_not_a_failure",
        ),
    ),
    Mutant(
        "a commit refused by a rebalance runs the batch again",
        COMMIT,
        "        except CommitAbandoned as refused:\n",
        "        except ZeroDivisionError as refused:\n",
        (
            LOOP_PROTOCOL + "test_a_commit_refused_by_a_rebalance_is_deferred_not_run_again",
            LOOP_STATE + "test_a_batch_whose_commit_a_rebalance_deferred_counts_once",
            SERVICE + "test_a_commit_overtaken_by_a_rebalance_is_not_a_failure[classic]",
        ),
    ),
    Mutant(
        "deferred offsets not committed on revocation",
        COMMIT,
        "        offsets = self._take(partitions)\n        if not offsets:\n            return\n",
        "        offsets = self._take(partitions)\n        if True:\n            return\n",
        (
            LOOP_PROTOCOL + "test_deferred_offsets_are_committed_when_their_partition_is_revoked",
            SERVICE + "test_a_commit_overtaken_by_a_rebalance_is_not_a_failure[classic]",
        ),
    ),
    Mutant(
        "a batch's last record skipped",
        DECODE,
        "        for message in batch.messages:\n            try:\n",
        "        for message in batch.messages[:-1]:\n            try:\n",
        (ALL_RECORDS, FUZZ, USER_FLOW, CRASH_LOOP),
    ),
    Mutant(
        "isolation dead-letters a poison record's neighbour",
        BISECTION,
        "        if len(failing) == 1:\n            poison.append((failing[0], error))\n",
        "        if len(failing) <= 2:\n"
        "            poison.extend((item, error) for item in failing)\n",
        (
            "tests/unit/service/test_bisection.py::"
            "test_one_poison_record_among_1000_costs_at_most_2_log2_n_runs",
            f"{ISOLATE_POISON}[at-least-once-1-poison]",
            f"{ISOLATE_POISON}[exactly-once-5-poison]",
        ),
    ),
    Mutant(
        "the poison records run again with the rest",
        LOOP,
        "        good = poison.without(decoded.good)\n",
        "        good = decoded.good\n",
        (
            LOOP_ISOLATE
            + "test_one_poison_record_is_dead_lettered_alone_and_the_rest_published_once",
            f"{ISOLATE_POISON}[at-least-once-5-poison]",
        ),
    ),
    Mutant(
        "isolation tried on a hung run",
        ISOLATION,
        "            and not isinstance(error, _NO_RECORDS_DOING)\n",
        "",
        (LOOP_ISOLATE + "test_a_hung_run_is_not_isolated",),
    ),
    Mutant(
        "a long isolation that never polls",
        ISOLATION,
        "        if self._unpolled_s() > self._pause_after_s:\n",
        "        if self._unpolled_s() < 0:\n",
        (LOOP_ISOLATE + "test_a_long_isolation_polls_between_its_runs",),
    ),
    Mutant(
        "a consume that never reached Kafka exits 0",
        IDLE,
        '            raise never_reached(kafka, idle_s, "--idle-timeout-s, with nothing assigned") '
        "from exc\n",
        "            return\n",
        (
            "tests/unit/service/test_idle_stop.py::"
            "test_a_stream_that_never_reached_kafka_fails_at_its_idle_timeout",
        ),
    ),
    Mutant(
        "classic-only settings kept under the next-generation protocol",
        CLIENTS,
        "    if not is_next_generation(kafka):\n        return config\n",
        "    if True:\n        return config\n",
        (
            SERVICE + "test_a_commit_overtaken_by_a_rebalance_is_not_a_failure[consumer]",
            "tests/e2e/test_stream_cli.py::"
            "test_two_instances_share_partitions_and_survive_a_kill[consumer]",
        ),
    ),
    Mutant(
        "a dry run that resets",
        RESET,
        "        if execute:\n",
        "        if True:\n",
        (RESET_TESTS + "test_a_dry_run_changes_nothing",),
    ),
    Mutant(
        "a reset beside live members",
        RESET,
        "        if not {m.partition for m in moves} <= owned:\n",
        "        if not owned:\n",
        (RESET_TESTS + "test_a_live_group_is_refused",),
    ),
    Mutant(
        "state written to the store before the commit",
        LOOP,
        "        protocol.commit(offsets)  # 7. commit\n"
        "        p.state.apply(changes, offsets)  # 8. apply state\n",
        "        p.state.apply(changes, offsets)  # 8. apply state\n"
        "        protocol.commit(offsets)  # 7. commit\n",
        (LOOP_STATE + "test_a_batch_whose_outputs_failed_leaves_the_store_as_it_was",),
    ),
    Mutant(
        "a restore that applies rows of batches never committed",
        RESTORE,
        "        if as_of <= committed and (key not in best or as_of > best[key][1]):\n",
        "        if key not in best or as_of > best[key][1]:\n",
        (
            "tests/unit/state/test_restore.py::test_the_newest_committed_row_of_each_key_wins",
            STATE_CRASH_LOOP,
        ),
    ),
    Mutant(
        "a removed key keeps its row",
        ROWS,
        "Change(value, None if deleted else encode_row(row))",
        "Change(value, encode_row(row))",
        ("tests/unit/state/test_rows.py::test_updates_become_changes_and_deleted_rows_tombstones",),
    ),
    Mutant(
        "a local store from another life of its changelog kept",
        KEEPER,
        "        if checkpoint is not None and committed is None:\n",
        "        if False:\n",
        (
            # The integration test's store is also beyond its new changelog's end, so the next
            # rule rebuilds it: only the unit case isolates this rule.
            "tests/unit/state/test_keeper.py::"
            "test_a_local_store_from_another_life_is_deleted_and_rebuilt[nothing committed]",
        ),
    ),
)


def unplantable(mutants: Iterable[Mutant], tree: Path = REPO) -> list[str]:
    """Each mutant whose original text does not occur exactly once in its file, or whose
    planted text does not compile there."""
    problems = []
    for mutant in mutants:
        path = tree / mutant.path
        if not path.is_file():
            problems.append(f"{mutant.name}: {mutant.path} does not exist")
            continue
        text = path.read_text()
        found = text.count(mutant.original)
        if found != 1:
            problems.append(
                f"{mutant.name}: its original text occurs {found} times in {mutant.path}"
            )
            continue
        try:
            compile(text.replace(mutant.original, mutant.planted), str(path), "exec")
        except SyntaxError as exc:
            problems.append(f"{mutant.name}: the planted text does not compile ({exc})")
    return problems


def missing_tests(mutants: Iterable[Mutant], tree: Path = REPO) -> list[str]:
    """Each test id a mutant names that pytest does not collect exactly so (a renamed test, or
    one parametrized since, whose bare id matches no outcome)."""
    named = {test: mutant.name for mutant in mutants for test in mutant.tests}
    files = sorted({test.split("::", 1)[0] for test in named})
    listed = _pytest(
        tree, ["--collect-only", *[f for f in files if (tree / f).is_file()]], COLLECT_BUDGET_S
    )
    collected = {line.strip() for line in listed.splitlines() if "::" in line}
    return [f"{name}: {test}" for test, name in named.items() if test not in collected]


def copy_tree(target: Path) -> Path:
    """The project as committed plus uncommitted edits, without the venv or generated data."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (entry.decode() for entry in listed)):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def run_tests(tree: Path, tests: tuple[str, ...], label: str) -> dict[str, str]:
    """Outcome per test id: passed, failed, error or skipped."""
    report = tree / f"report-{time.monotonic_ns()}.xml"
    started = time.monotonic()
    print(f"  {label}: {len(tests)} tests ...", end="", flush=True)
    _pytest(tree, [f"--junitxml={report}", *tests], RUN_BUDGET_S)
    outcomes = parse_report(report) if report.exists() else {}
    print(f" {time.monotonic() - started:.0f} s", flush=True)
    return {test: outcomes.get(test, "not run") for test in tests}


def _pytest(tree: Path, args: list[str], timeout_s: float) -> str:
    """pytest on ``tree``, its own sources first; what it printed."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tree / "src"), str(tree)]),
        "KEDRO_DISABLE_TELEMETRY": "1",
    }
    return subprocess.run(
        [*PYTEST, *args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    ).stdout


def parse_report(report: Path) -> dict[str, str]:
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "").replace(".", "/") + ".py"
        test = f"{module}::{case.get('name')}"
        outcome = "passed"
        for child in case:
            if child.tag in {"failure", "error", "skipped"}:
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
        outcomes[test] = outcome
    return outcomes


def short(test: str) -> str:
    return test.split("::", 1)[1] if "::" in test else test


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", default=None, help="Mutant names to run.")
    parser.add_argument("--keep", action="store_true", help="Keep the scratch copy.")
    args = parser.parse_args()
    mutants = [m for m in MUTANTS if args.only is None or m.name in args.only]
    if not mutants:
        parser.error(f"no such mutant; mutants: {[m.name for m in MUTANTS]}")

    stale = unplantable(mutants) + missing_tests(mutants)
    if stale:
        print("mutants that no longer fit the code or the tests:", *stale, sep="\n  ")
        return 1

    scratch = Path(tempfile.mkdtemp(prefix="kedro-stream-mutants-"))
    tree = copy_tree(scratch / "project")
    print(f"scratch copy: {tree}", flush=True)
    try:
        used = tuple(dict.fromkeys(test for m in mutants for test in m.tests))
        clean = run_tests(tree, used, "clean tree")
        broken = {test: outcome for test, outcome in clean.items() if outcome != "passed"}
        print("\nclean tree: every test the mutants use")
        for test, outcome in clean.items():
            print(f"  {outcome:<8} {short(test)}")
        if broken:
            print(f"\n{len(broken)} tests do not pass on the clean tree: no catch can count")
            return 1

        rows = []
        for mutant in mutants:
            target = tree / mutant.path
            original = target.read_text()
            target.write_text(original.replace(mutant.original, mutant.planted))
            try:
                outcomes = run_tests(tree, mutant.tests, mutant.name)
            finally:
                target.write_text(original)
            # A test that did not run proves nothing: only a failure or an error is a catch.
            caught = [short(t) for t, outcome in outcomes.items() if outcome in CATCHES]
            rows.append((mutant, caught, len(outcomes)))
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)

    width = max(len(mutant.name) for mutant, _, _ in rows) + 2
    print(f"\n{'mutant':<{width}}caught by")
    for mutant, caught, tried in rows:
        verdict = f"{len(caught)} of {tried}: " + (", ".join(caught) if caught else "SURVIVED")
        print(f"{mutant.name:<{width}}{verdict}")
    survived = [mutant.name for mutant, caught, _ in rows if not caught]
    if survived:
        print(f"\nsurvived: {survived}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
