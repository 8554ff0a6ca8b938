"""The Quix Streams benchmark's per-record port (``bench/quix_app.py``) against the scoring nodes.

The Quix way of ``bench/throughput.py`` only measures the same job if its hand-written port
computes what the vectorised nodes compute: same velocity features, same scores, same alerts
with the same reasons. The nodes run on micro-batches with each account's state carried
between them as kedro-stream's store carries it; the port runs record by record with the state
of each record's key, as Quix's keeps it.
"""

from __future__ import annotations

import json
import math
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from kedro_stream.state.rows import decode_row, encode_row, rows_frame
from payment_fraud import features
from payment_fraud.features import build_features
from payment_fraud.pipelines.scoring import nodes
from payment_fraud.pipelines.scoring.nodes import clean_payments, flag_alerts, score_payments
from payment_fraud.velocity import ACTIVITY_COLUMNS, account_velocity

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import quix_app  # noqa: E402
import quix_way  # noqa: E402

EVENTS = REPO / "data/01_raw/payments.jsonl"
MODEL = REPO / "data/06_models/fraud_model.pkl"
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
MINUTE_MS = 60_000
JAN_2025 = 1_735_689_600_000  # 2025-01-01T00:00Z
BATCH_SIZE = 997  # the nodes' micro-batches: bursts and windows straddle their edges

# Records as a producer might send them: codes in any case with stray whitespace, a country
# and a category outside the vocabulary, night and day, present and absent cards.
MESSY: list[dict[str, Any]] = [
    {"merchant_category": "  Crypto ", "currency": " gbp", "country": "gb ", "hour": 2},
    {"merchant_category": "GAMBLING", "currency": "eur", "country": " de", "hour": 23},
    {"merchant_category": "pets", "currency": "USD", "country": "US", "hour": 4},
    {"merchant_category": "travel", "currency": "EUR", "country": "ZZ", "hour": 12},
    {"merchant_category": " Electronics", "currency": "Usd ", "country": "xx", "hour": 5},
    {"merchant_category": "grocery", "currency": "EUR", "country": "fr", "hour": 6},
    {"merchant_category": "ELECTRONICS ", "currency": "gbp", "country": "us", "hour": 0},
]


def messy_records() -> list[dict[str, Any]]:
    records = []
    for i, row in enumerate(MESSY):
        for amount, card_present in ((12.5, True), (499.99, False), (500.0, True), (4321.0, False)):
            records.append(
                {
                    "payment_id": f"messy-{i}-{amount}-{card_present}",
                    "account_id": f"messy-{i}",
                    "merchant_id": "m-0001",
                    "merchant_category": row["merchant_category"],
                    "amount": amount,
                    "currency": row["currency"],
                    "country": row["country"],
                    "card_present": card_present,
                    "event_time": JAN_2025 + 3 * DAY_MS + row["hour"] * HOUR_MS + 1234,
                }
            )
    return records


def payment(rng: np.random.Generator, payment_id: str, account: str, time: int) -> dict[str, Any]:
    """A clean payment drawn over the whole vocabulary."""
    countries = [*features.COUNTRY_CURRENCY, "ZZ"]
    return {
        "payment_id": payment_id,
        "account_id": account,
        "merchant_id": f"m-{rng.integers(100):04d}",
        "merchant_category": str(rng.choice(features.MERCHANT_CATEGORIES)),
        "amount": round(float(rng.lognormal(4, 1.5)), 2),
        "currency": str(rng.choice(features.CARD_CURRENCIES)),
        "country": str(rng.choice(countries)),
        "card_present": bool(rng.random() < 0.6),
        "event_time": time,
    }


def synthetic_records(count: int, seed: int) -> list[dict[str, Any]]:
    """Clean payments of 100 accounts over 30 days, in event-time order, for the model fitted
    below."""
    rng = np.random.default_rng(seed)
    times = np.sort(rng.integers(30 * DAY_MS, size=count)) + JAN_2025
    return [
        payment(rng, f"s-{i}", f"a-{rng.integers(100):05d}", int(time))
        for i, time in enumerate(times)
    ]


# Minutes after a burst's first payment: card tests within minutes (two at once), one a
# millisecond inside the hour after the first, one on its edge and one past it; the last comes
# exactly a day after the first, so the state left holds a window cut on that edge.
BURST_MINUTES: tuple[float, ...] = (0, 2, 3, 3, 7, 60 - 1 / MINUTE_MS, 60, 61, 24 * 60)


def burst_records(accounts: int, seed: int) -> list[dict[str, Any]]:
    """Bursts of several payments of one account within minutes, on the windows' edges."""
    rng = np.random.default_rng(seed)
    records = []
    for a in range(accounts):
        start = JAN_2025 + int(rng.integers(25 * DAY_MS))
        for i, minutes in enumerate(BURST_MINUTES):
            time = start + round(minutes * MINUTE_MS)
            records.append(payment(rng, f"burst-{a}-{i}", f"burst-{a}", time))
    return records


def in_event_time_order(*parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records as keyed producers deliver in-order events: each account's in event-time
    order, which is where the per-batch nodes and the per-record port agree."""
    return sorted((r for part in parts for r in part), key=lambda r: r["event_time"])


NO_ACTIVITY = pd.DataFrame(columns=list(ACTIVITY_COLUMNS))


def fit_model(records: list[dict[str, Any]], seed: int) -> Any:
    """A StandardScaler + LogisticRegression fitted like training's (on the bare matrix), on
    labels tied to the flags and to bursts."""
    clean = clean_payments(pd.DataFrame.from_records(records))
    velocity, _ = account_velocity(clean, NO_ACTIVITY)
    x = build_features(clean, velocity)
    flags = features.risk_flags(clean)
    noise = np.random.default_rng(seed).normal(size=len(x))
    burst = velocity["count_1h"].to_numpy() >= nodes.BURST_COUNT_1H
    logit = -3 + 2.5 * flags.sum(axis=1).to_numpy() + 2.5 * burst + noise
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(x.to_numpy(), logit > 0)


def example() -> tuple[list[dict[str, Any]], Any, float]:
    if not (EVENTS.exists() and MODEL.exists()):
        pytest.skip(f"{EVENTS.name} and {MODEL.name} appear after `kedro run` in the repo")
    events = pd.read_json(EVENTS, lines=True, dtype=False)
    records = json.loads(events.to_json(orient="records"))  # as the benchmark produces them
    threshold = yaml.safe_load((REPO / "conf/base/parameters_scoring.yml").read_text())
    return records, pickle.loads(MODEL.read_bytes()), threshold["scoring"]["alert_threshold"]


@pytest.fixture(scope="module", params=["example", "synthetic"])
def case(request: pytest.FixtureRequest) -> tuple[list[dict[str, Any]], Any, float]:
    """(raw records incl. bursts and the messy ones, fitted model, configured threshold)."""
    if request.param == "example":
        records, model, threshold = example()
    else:
        records = synthetic_records(3000, seed=7)
        model = fit_model([*records, *burst_records(20, seed=7)], seed=7)
        threshold = 0.8
    return (
        in_event_time_order(records, burst_records(30, seed=8), messy_records()),
        model,
        threshold,
    )


class Outputs(NamedTuple):
    """The published records of a sequence of payments, and the state it leaves."""

    features: list[dict[str, Any]]
    scores: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    states: dict[str, dict[str, Any]]  # account -> its state, as the node's row without its key


def records_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as the stream writes them: NaN (no previous payment) as None, JSON's null."""
    return [
        {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def by_nodes(records: list[dict[str, Any]], model: Any, threshold: float) -> Outputs:
    """The vectorised nodes on micro-batches of decoded records, each account's state row kept
    between them as encoded bytes, as kedro-stream's store keeps it: (features, scores,
    alerts)."""
    store: dict[str, bytes] = {}
    outputs = Outputs([], [], [], {})
    for start in range(0, len(records), BATCH_SIZE):
        clean = clean_payments(pd.DataFrame.from_records(records[start : start + BATCH_SIZE]))
        accounts = set(clean["account_id"])
        activity = rows_frame([store[a] for a in accounts if a in store], "account_id")
        velocity, updates = account_velocity(clean, activity)
        store.update({row["account_id"]: encode_row(row) for row in updates.to_dict("records")})
        scores = score_payments(build_features(clean, velocity), model, clean)
        alerts = flag_alerts(clean, scores, velocity, threshold)
        for output, frame in zip(outputs, (velocity, scores, alerts), strict=False):
            output.extend(records_of(frame))
    for account, row in store.items():
        outputs.states[account] = {k: v for k, v in decode_row(row).items() if k != "account_id"}
    return outputs


class KeyState:
    """Quix's ``State`` for one message key, over a dict: values as Quix stores them, through
    JSON."""

    def __init__(self, values: dict[str, bytes]) -> None:
        self._values = values

    def get(self, key: str, default: Any = None) -> Any:
        value = self._values.get(key)
        return default if value is None else json.loads(value)

    def set(self, key: str, value: Any) -> None:
        self._values[key] = json.dumps(value).encode()


def by_port(
    records: list[dict[str, Any]],
    model: Any,
    threshold: float,
    tweak: Callable[[dict[str, Any]], None] = lambda _params: None,
) -> Outputs:
    """The port, record by record with the state of the record's account (the message key),
    with the model as it travels: through JSON. (features, scores, alerts)"""
    params = json.loads(json.dumps(quix_way.model_params(model, threshold)))
    tweak(params)
    port = quix_app.make_port(params)
    states: dict[str, dict[str, bytes]] = {}
    outputs = Outputs([], [], [], {})
    for record in records:
        state = KeyState(states.setdefault(record["account_id"], {}))
        for output, row in zip(outputs, port.process(record, state), strict=False):
            if row is not None:
                output.append(row)
    for account, values in states.items():
        outputs.states[account] = KeyState(values).get(quix_app.ACTIVITY)
    return outputs


def same(want: dict[str, Any], got: dict[str, Any]) -> bool:
    """Same fields in the same order and equal values (velocity to the bit), scores to within
    1e-9."""
    return list(got) == list(want) and all(
        abs(got[k] - v) <= 1e-9 if k == "score" else got[k] == v for k, v in want.items()
    )


def assert_same(expected: list[dict[str, Any]], actual: list[dict[str, Any]], *, what: str) -> None:
    differ = [(w, g) for w, g in zip(expected, actual, strict=False) if not same(w, g)]
    assert not differ, f"{len(differ)} {what} records differ, first: {differ[0]}"
    assert len(actual) == len(expected), f"{len(actual)} {what} records, expected {len(expected)}"


@pytest.mark.parametrize("threshold_of", ["configured", "zero"])
def test_port_computes_what_the_nodes_compute(case, threshold_of: str) -> None:
    """At threshold 0 every payment alerts, so every reason combination present is checked,
    including "high model score" for a payment with no flag."""
    records, model, configured = case
    threshold = configured if threshold_of == "configured" else 0.0
    want_features, want_scores, want_alerts, want_states = by_nodes(records, model, threshold)
    got_features, got_scores, got_alerts, got_states = by_port(records, model, threshold)
    assert got_states == want_states, "the port keeps other state than the node"
    assert_same(want_features, got_features, what="feature")
    assert_same(want_scores, got_scores, what="score")
    assert_same(want_alerts, got_alerts, what="alert")
    assert want_alerts, "no alert to compare: the case does not test alerts"
    assert max(f["count_1h"] for f in want_features) >= len(BURST_MINUTES) - 4, "no burst"
    assert any("burst of payments" in a["reason"] for a in got_alerts)
    if threshold == 0.0:
        assert nodes._NO_FLAGGED_REASON in {a["reason"] for a in got_alerts}
        assert len({a["reason"] for a in got_alerts}) >= 8


def test_a_wrong_reason_order_is_caught(case) -> None:
    """The comparison above is strict enough to see the reason words in another order."""
    records, model, _ = case
    # the messy ones and some more: every reason combination needed
    records = [r for r in records if r["payment_id"].startswith("messy")] + records[:1000]
    want_alerts = by_nodes(records, model, 0.0).alerts

    def reverse_reasons(params: dict[str, Any]) -> None:
        params["vocabulary"]["reasons"].reverse()

    got_alerts = by_port(records, model, 0.0, tweak=reverse_reasons).alerts
    with pytest.raises(AssertionError):
        assert_same(want_alerts, got_alerts, what="alert")


def test_a_window_a_millisecond_too_long_is_caught(case) -> None:
    """The bursts sit on the windows' edges: a day window that keeps a payment made exactly a
    day earlier changes the velocity features."""
    records, model, threshold = case

    def longer_day(params: dict[str, Any]) -> None:
        params["vocabulary"]["ms_per_day"] += 1

    want_features = by_nodes(records, model, threshold).features
    got_features = by_port(records, model, threshold, tweak=longer_day).features
    with pytest.raises(AssertionError):
        assert_same(want_features, got_features, what="feature")


def test_the_port_takes_its_vocabulary_from_the_project() -> None:
    """Values the data may not exercise (every country, every reason word) come from the
    project's modules, not from a copy."""
    records = synthetic_records(200, seed=1)
    words = quix_way.model_params(fit_model(records, seed=1), 0.5)["vocabulary"]
    assert words["country_currency"] == features.COUNTRY_CURRENCY
    assert tuple(words["merchant_categories"]) == features.MERCHANT_CATEGORIES
    assert [tuple(pair) for pair in words["reasons"]] == list(nodes._REASONS)
    assert tuple(words["alert_fields"]) == nodes.ALERT_COLUMNS


def test_port_refuses_a_model_with_other_features() -> None:
    records = synthetic_records(200, seed=1)
    params = quix_way.model_params(fit_model(records, seed=1), 0.5)
    params["features"] = list(reversed(params["features"]))
    with pytest.raises(ValueError, match="features"):
        quix_app.make_scorer(params)
