"""What the example stream must publish for a set of inputs, and the check that it did.

The oracle runs the ``scoring`` namespace once over every good input through the Python API,
in batch, as ``kedro run`` does: a payment's score depends on that payment and its account's
earlier payments (the velocity features, kept as per-key state in the stream), so the stream's
micro-batches must give the same features and scores, and an alert for exactly the payments
scoring at or above the threshold. This holds when each account's payments are produced in
event-time order, keyed by account, as ``produce_payments`` does. Every output topic is
reconciled against it, both ways, and dead letters against the poison records, both ways, with
their stage and error class.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from confluent_kafka import Message

from kedro_stream import NamespaceSpec, boot_project
from payment_fraud.velocity import ACTIVITY_COLUMNS, VELOCITY_COLUMNS

#: Scores are rounded to 6 decimals by the model node: a stream and a batch run agree exactly,
#: this only absorbs float printing.
SCORE_TOLERANCE = 1e-9
#: Velocity features are sums in the same order in both worlds; this absorbs float printing.
FEATURE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Expected:
    """The outputs a set of good payments must produce, keyed by payment id."""

    scores: dict[str, float]
    #: Payment ids whose score is at or above the threshold: each must have exactly one alert.
    alerts: frozenset[str]
    #: Each payment's velocity features (``payment_fraud.velocity.VELOCITY_COLUMNS``).
    features: dict[str, dict[str, float | None]]

    def owed(
        self, good: set[str], poison: set[bytes]
    ) -> dict[str, tuple[set[Any], Callable[[Message], Any]]]:
        """What committing ``good`` payments (ids) and ``poison`` records (values) owes, per
        output topic name: the records that must be there, and how to name one."""
        return {
            "features": (good, payment_id),
            "scores": (good, payment_id),
            "alerts": (set(self.alerts.intersection(good)), payment_id),
            "dlq": (poison, Message.value),
        }


def expected_outputs(project: Path, good: Iterable[Mapping[str, Any]]) -> Expected:
    """Run the project's ``scoring`` namespace once over every good payment."""
    frame = pd.DataFrame(list(good))
    state = NamespaceSpec(
        namespace="scoring", states={"account_activity": "account_activity_updates"}
    )
    with boot_project(project, namespaces=["scoring"], specs=[state]) as session:
        # The whole history as one batch, from no state: what `kedro run` computes.
        no_activity = pd.DataFrame(columns=list(ACTIVITY_COLUMNS))
        out = session.run("scoring", inputs={"payments": frame, "account_activity": no_activity})
    scores = dict(
        zip(out["scores"]["payment_id"], out["scores"]["score"].astype(float), strict=True)
    )
    assert len(scores) == len(frame), "the oracle dropped payments: are the ids unique?"
    features = {
        row["payment_id"]: {
            name: None if pd.isna(row[name]) else float(row[name]) for name in VELOCITY_COLUMNS
        }
        for row in out["payment_features"].to_dict(orient="records")
    }
    return Expected(scores, frozenset(out["alerts"]["payment_id"]), features)


def payment_id(message: Message) -> str:
    return json.loads(message.value())["payment_id"]


@dataclass
class Reconciliation:
    """One output topic against what it must hold."""

    name: str
    expected: int
    missing: set[Any] = field(default_factory=set)
    unexpected: set[Any] = field(default_factory=set)
    wrong: list[str] = field(default_factory=list)
    duplicates: int = 0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.wrong)

    def row(self) -> str:
        return (
            f"{self.name:<8}{self.expected:>9}{self.expected - len(self.missing):>13}"
            f"{len(self.missing):>9}{len(self.unexpected):>12}{len(self.wrong):>7}"
            f"{self.duplicates:>12}"
        )


HEADER = (
    f"{'output':<8}{'inputs':>9}{'with output':>13}{'missing':>9}{'unexpected':>12}"
    f"{'wrong':>7}{'duplicates':>12}"
)


def _reconcile_payments(
    name: str,
    wanted: Iterable[str],
    messages: Iterable[Message],
    check: Callable[[Message, str, dict[str, Any]], str | None],
    decode: Callable[[bytes], dict[str, Any]] = json.loads,
) -> Reconciliation:
    """``messages`` hold one record per ``wanted`` payment id; ``check(message, id, record)``
    names what is wrong with one, if anything."""
    wanted = set(wanted)
    seen: Counter[str] = Counter()
    result = Reconciliation(name, len(wanted))
    for message in messages:
        record = decode(message.value())
        pid = record["payment_id"]
        seen[pid] += 1
        if (wrong := check(message, pid, record)) is not None:
            result.wrong.append(f"{pid}: {wrong}")
    result.missing = wanted - seen.keys()
    result.unexpected = seen.keys() - wanted
    result.duplicates = sum(seen.values()) - len(seen)
    return result


def _score_is(expected: Expected, pid: str, score: float) -> str | None:
    want = expected.scores.get(pid)
    if want is not None and abs(score - want) > SCORE_TOLERANCE:
        return f"score {score} != {want}"
    return None


def reconcile_scores(
    expected: Expected,
    scores: Iterable[Message],
    decode: Callable[[bytes], dict[str, Any]] = json.loads,
) -> Reconciliation:
    """``decode`` reads a score's value: JSON unless the stream writes another format."""
    return _reconcile_payments(
        "scores",
        expected.scores,
        scores,
        lambda message, pid, record: (
            _score_is(expected, pid, record["score"])
            or (None if message.key() == pid.encode() else f"key {message.key()!r}")
        ),
        decode,
    )


def _features_are(expected: Expected, pid: str, record: dict[str, Any]) -> str | None:
    want = expected.features.get(pid)
    if want is None:
        return None
    for name, value in want.items():
        got = record.get(name)
        if (got is None) != (value is None) or (
            value is not None and abs(got - value) > FEATURE_TOLERANCE
        ):
            return f"{name} {got} != {value}"
    return None


def reconcile_features(expected: Expected, features: Iterable[Message]) -> Reconciliation:
    """Every payment's published velocity equals the batch computation: no state update was
    lost or counted twice, whatever the stream went through."""
    return _reconcile_payments(
        "features",
        expected.scores,
        features,
        lambda message, pid, record: _features_are(expected, pid, record),
    )


def reconcile_alerts(expected: Expected, alerts: Iterable[Message]) -> Reconciliation:
    return _reconcile_payments(
        "alerts",
        expected.alerts,
        alerts,
        lambda message, pid, record: (
            _score_is(expected, pid, record["score"])
            or (None if record.get("reason") else "alert without a reason")
        ),
    )


def reconcile_dead_letters(
    poison: Iterable[bytes], dead: Iterable[Message], *, stage: str, error_class: str
) -> Reconciliation:
    """Dead letters hold exactly the poison values, each with its stage and error class."""
    want = Counter(poison)
    seen: Counter[bytes] = Counter()
    result = Reconciliation("dead", sum(want.values()))
    for message in dead:
        seen[message.value()] += 1
        headers = dict(message.headers() or [])
        got = (headers.get("kedro-stream.error.stage"), headers.get("kedro-stream.error.class"))
        if got != (stage.encode(), error_class.encode()):
            result.wrong.append(f"{message.value()[:40]!r}: stage/class {got}")
        if not headers.get("kedro-stream.error.message"):
            result.wrong.append(f"{message.value()[:40]!r}: no error message")
    result.missing = want.keys() - seen.keys()
    result.unexpected = seen.keys() - want.keys()
    # Values may repeat among the inputs: a poison value sent n times has n dead letters.
    result.duplicates = sum(max(0, seen[v] - want[v]) for v in seen.keys() & want.keys())
    result.missing |= {v for v in want.keys() & seen.keys() if seen[v] < want[v]}
    return result


def table(*rows: Reconciliation) -> str:
    return "\n".join([HEADER, *(row.row() for row in rows)])


def assert_reconciled(*rows: Reconciliation, exact: bool = False) -> None:
    """Fail with the table unless every row is complete and correct; ``exact`` also forbids
    duplicates (a run with no failure processes each record once)."""
    text = table(*rows)
    for row in rows:
        assert row.ok, (
            f"{row.name}: missing {sorted(row.missing, key=str)[:5]}, unexpected "
            f"{sorted(row.unexpected, key=str)[:5]}, wrong {row.wrong[:5]}\n{text}"
        )
        if exact:
            assert row.duplicates == 0, f"{row.name}: {row.duplicates} duplicates\n{text}"
