"""``on_failure: isolate`` on the example stream, against a broker over TCP: among 1 000
payments, the few that make a node raise go to the dead-letter topic alone; every other payment
is scored once and committed, and the features and the state are those of the good payments
only, as `kedro run` computes them."""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kedro_stream import NamespaceSpec, boot_project
from kedro_stream.state.rows import decode_row
from kedro_stream.state.store import PartitionStore
from payment_fraud.velocity import ACTIVITY_COLUMNS
from tests.kafka_helpers import committed, produce_payments, read_topic
from tests.reconcile import (
    assert_reconciled,
    expected_outputs,
    reconcile_alerts,
    reconcile_dead_letters,
    reconcile_features,
    reconcile_scores,
)
from tests.stream_helpers import configure, create_input, payments, run_stream, topics

pytestmark = pytest.mark.integration
GOOD, PARTITIONS = 1000, 2
#: How long the scores are read for: a score beyond the expected ones must show up by then.
EXTRA_WAIT_S = 3.0
#: The log line of one isolated batch: records, runs, poison records.
ISOLATED = re.compile(r"Isolating a failed batch of (\d+) records took (\d+) runs \S+ s\): (\d+) ")


def poisoned(good: list[dict[str, Any]], count: int) -> tuple[list[dict[str, Any]], list[bytes]]:
    """``good`` with ``count`` poison payments spread among them, and their values. A poison
    payment passes the schema but its amount (-1e308) makes the model's input NaN, which
    scikit-learn refuses; it copies a good payment's account and time, so it meets that
    account's other payments in runs and in state."""
    stride = len(good) // count
    stream, poison = [], []
    for i, payment in enumerate(good):
        stream.append(payment)
        if i % stride == stride // 2 and len(poison) < count:
            bad = {**payment, "payment_id": f"p-poison-{len(poison)}", "amount": -1e308}
            stream.append(bad)
            poison.append(json.dumps(bad).encode())
    return stream, poison


def expected_state(project: Path, good: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every account's state row after the good payments, as one `kedro run` over them."""
    spec = NamespaceSpec(
        namespace="scoring", states={"account_activity": "account_activity_updates"}
    )
    with boot_project(project, namespaces=["scoring"], specs=[spec]) as session:
        out = session.run(
            "scoring",
            inputs={
                "payments": pd.DataFrame(good),
                "account_activity": pd.DataFrame(columns=list(ACTIVITY_COLUMNS)),
            },
        )
    rows = json.loads(out["account_activity_updates"].to_json(orient="records"))
    return {row["account_id"]: row for row in rows}


def stored_state(project: Path, names: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Every account's row in the state stores the stream left."""
    folder = project / "data" / "state" / names["group"] / "activity"
    stores = [PartitionStore(path) for path in sorted(folder.iterdir()) if path.is_dir()]
    try:
        rows = [decode_row(value) for store in stores for _, value in store.items()]
    finally:
        for store in stores:
            store.close()
    return {row["account_id"]: row for row in rows}


def same_row(got: dict[str, Any], want: dict[str, Any]) -> bool:
    return (
        got["times"] == want["times"]
        and got["last_time"] == want["last_time"]
        and len(got["amounts"]) == len(want["amounts"])
        and all(abs(g - w) <= 1e-9 for g, w in zip(got["amounts"], want["amounts"], strict=True))
    )


@pytest.mark.parametrize(
    "case",
    [(g, n) for g in ("at-least-once", "exactly-once") for n in (1, 5)],
    ids=lambda case: f"{case[0]}-{case[1]}-poison",
)
def test_only_the_poison_records_are_dead_lettered_and_the_state_is_the_good_records(
    kafka_broker,
    stream_project: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    case: tuple[str, int],
) -> None:
    guarantee, poison_count = case
    names = topics(f"isolate{poison_count}")
    bootstrap = kafka_broker.bootstrap_servers
    create_input(kafka_broker, names, PARTITIONS)
    configure(
        stream_project,
        names,
        guarantee=guarantee,
        transactional_id=f"{names['group']}-0",
        on_failure="isolate",
        **{"retry.attempts": 2, "retry.backoff_ms": 10, "batch.max_size": 1000},
    )
    good = payments(stream_project, GOOD)
    stream, poison = poisoned(good, poison_count)
    produce_payments(bootstrap, names["input"], stream)
    caplog.set_level(logging.WARNING, logger="kedro_stream.service.isolation")

    progress = run_stream(
        stream_project, names, bootstrap, max_messages=len(stream), idle_timeout_s=30
    )

    assert progress.records == len(stream)
    assert progress.dead_lettered == poison_count
    assert progress.produced >= 2 * GOOD  # features and scores of every good payment, and alerts
    expected = expected_outputs(stream_project, good)
    # Both ways and exactly once: no output of a run that was thrown away, none of a poison.
    # Scores are read until a deadline rather than a count, so that any extra one is seen.
    scores = read_topic(bootstrap, names["scores"], expect=GOOD + 1, timeout_s=EXTRA_WAIT_S)
    assert_reconciled(
        reconcile_features(expected, read_topic(bootstrap, names["features"], expect=GOOD)),
        reconcile_scores(expected, scores),
        reconcile_alerts(
            expected, read_topic(bootstrap, names["alerts"], expect=len(expected.alerts))
        ),
        reconcile_dead_letters(
            poison,
            read_topic(bootstrap, names["dlq"], expect=poison_count),
            stage="pipeline",
            error_class="ValueError",
        ),
        exact=True,
    )
    assert len(scores) == GOOD
    # The state holds the good payments only: no update of a run thrown away, none of a poison.
    want, held = expected_state(stream_project, good), stored_state(stream_project, names)
    assert held.keys() == want.keys()
    wrong = [account for account, row in want.items() if not same_row(held[account], row)]
    assert not wrong, f"{len(wrong)} accounts' state differs, e.g. {held[wrong[0]]}"
    if guarantee == "at-least-once":  # the embedded broker keeps no transactional offset
        assert sum(committed(bootstrap, names["group"], names["input"]).values()) == len(stream)

    isolated = [tuple(map(int, m)) for m in ISOLATED.findall(caplog.text)]
    assert sum(found for _, _, found in isolated) == poison_count
    for records, runs, found in isolated:  # at most 2·log2(n) runs per poison record
        assert runs <= 2 * found * max(1, (records - 1).bit_length())
    with capsys.disabled():
        sys.stdout.write(
            f"\n{guarantee}, {poison_count} poison: (records, runs, poison) {isolated}\n"
        )


@pytest.mark.unsupported_broker(
    "embedded", "the librdkafka mock does not store offsets sent with send_offsets_to_transaction"
)
def test_an_isolated_batch_commits_its_offsets_in_its_transaction(
    kafka_broker, stream_project: Path
) -> None:
    names = topics("isolate-eos")
    bootstrap = kafka_broker.bootstrap_servers
    create_input(kafka_broker, names, PARTITIONS)
    configure(
        stream_project,
        names,
        guarantee="exactly-once",
        transactional_id=f"{names['group']}-0",
        on_failure="isolate",
        **{"retry.attempts": 1, "batch.max_size": 1000},
    )
    stream, poison = poisoned(payments(stream_project, 200), 2)
    produce_payments(bootstrap, names["input"], stream)

    progress = run_stream(
        stream_project, names, bootstrap, max_messages=len(stream), idle_timeout_s=30
    )

    assert progress.dead_lettered == len(poison)
    assert sum(committed(bootstrap, names["group"], names["input"]).values()) == len(stream)
    assert (
        len(read_topic(bootstrap, names["scores"], expect=200, isolation="read_committed")) == 200
    )
