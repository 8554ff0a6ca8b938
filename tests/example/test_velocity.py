"""Account velocity: one batch of the whole history and a stream of micro-batches, whose state
travels between batches the way kedro-stream's store keeps it, give the same features."""

import numpy as np
import pandas as pd
import pytest

from kedro_stream.state.rows import encode_row, rows_frame
from payment_fraud.features import MS_PER_HOUR
from payment_fraud.pipelines.data_generation.nodes import generate_payments
from payment_fraud.velocity import ACTIVITY_COLUMNS, VELOCITY_COLUMNS, account_velocity

NO_ACTIVITY = pd.DataFrame(columns=list(ACTIVITY_COLUMNS))
START = 1_735_732_800_000  # 2025-01-01 12:00 UTC


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    params = {
        "seed": 7,
        "n_payments": 3000,
        "fraud_rate": 0.05,
        "burst_share": 0.5,
        "n_accounts": 60,  # busy accounts: many windows hold several payments
        "merchants_per_category": 5,
        "start_date": "2025-01-01",
        "days": 5,
    }
    return generate_payments(params).drop(columns="is_fraud")


def stream(payments: pd.DataFrame, batch_size: int) -> tuple[pd.DataFrame, dict[str, bytes]]:
    """Micro-batches in order; between them each account's row is kept as encoded bytes and
    handed back as the store would (only the batch's accounts)."""
    store: dict[str, bytes] = {}
    features = []
    for start in range(0, len(payments), batch_size):
        batch = payments.iloc[start : start + batch_size].reset_index(drop=True)
        keys = set(batch["account_id"])
        state = rows_frame([store[k] for k in keys if k in store], "account_id")
        velocity, updates = account_velocity(batch, state)
        assert set(updates["account_id"]) == keys
        store.update({row["account_id"]: encode_row(row) for row in updates.to_dict("records")})
        features.append(velocity)
    return pd.concat(features, ignore_index=True), store


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_micro_batches_equal_one_batch_bit_for_bit(history: pd.DataFrame, batch_size: int) -> None:
    whole, updates = account_velocity(history, NO_ACTIVITY)
    streamed, store = stream(history, batch_size)

    pd.testing.assert_frame_equal(streamed, whole, check_exact=True)
    assert store == {row["account_id"]: encode_row(row) for row in updates.to_dict("records")}
    assert whole["count_1h"].max() >= 3  # the bursts are there to be counted


def test_windows_are_open_at_the_start_and_closed_at_the_payment() -> None:
    times = [START, START + MS_PER_HOUR - 1, START + MS_PER_HOUR, START + 25 * MS_PER_HOUR]
    payments = pd.DataFrame(
        {
            "payment_id": [f"p-{i}" for i in range(4)],
            "account_id": "a-1",
            "amount": [1.0, 2.0, 4.0, 8.0],
            "event_time": times,
        }
    )
    velocity, updates = account_velocity(payments, NO_ACTIVITY)

    assert velocity["count_1h"].tolist() == [1, 2, 2, 1]  # exactly 1 h back is outside
    assert velocity["amount_1h"].tolist() == [1.0, 3.0, 6.0, 8.0]
    assert velocity["count_24h"].tolist() == [1, 2, 3, 1]  # and exactly 24 h back
    assert velocity["amount_24h"].tolist() == [1.0, 3.0, 7.0, 8.0]
    assert np.isnan(velocity["seconds_since_previous"].iloc[0])
    assert velocity["seconds_since_previous"].tolist()[1:] == [3599.999, 0.001, 86400.0]
    # The state keeps the last 24 h only, and the latest time for the next gap.
    assert updates.to_dict("records") == [
        {"account_id": "a-1", "times": times[3:], "amounts": [8.0], "last_time": times[3]}
    ]


def test_a_batch_is_taken_in_event_time_order_and_stays_row_aligned() -> None:
    payments = pd.DataFrame(
        {
            "payment_id": ["late", "early"],
            "account_id": "a-1",
            "amount": [2.0, 1.0],
            "event_time": [START + 60_000, START],
        }
    )
    velocity, _ = account_velocity(payments, NO_ACTIVITY)

    assert velocity["payment_id"].tolist() == ["late", "early"]
    assert velocity["count_1h"].tolist() == [2, 1]
    assert velocity["seconds_since_previous"].iloc[0] == 60.0


def test_a_late_payment_counts_what_arrived_before_it() -> None:
    """Documented behaviour: a payment older than its account's latest is counted where it
    arrives, with the gap measured from the latest (negative)."""
    first = pd.DataFrame(
        {"payment_id": ["p-1"], "account_id": "a-1", "amount": [5.0], "event_time": [START]}
    )
    _, state = account_velocity(first, NO_ACTIVITY)
    late = first.assign(payment_id="p-0", amount=3.0, event_time=START - 60_000)

    velocity, updates = account_velocity(late, state)

    assert velocity["count_1h"].tolist() == [1]  # p-1 is after it in event time
    assert velocity["seconds_since_previous"].tolist() == [-60.0]
    assert updates["last_time"].tolist() == [START]


def test_an_empty_batch_changes_nothing() -> None:
    empty = pd.DataFrame(columns=["payment_id", "account_id", "amount", "event_time"])
    velocity, updates = account_velocity(empty, NO_ACTIVITY)

    assert velocity.empty and updates.empty
    assert list(velocity.columns)[3:] == list(VELOCITY_COLUMNS)
    assert list(updates.columns) == list(ACTIVITY_COLUMNS)
