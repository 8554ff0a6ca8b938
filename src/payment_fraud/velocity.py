"""Per-account velocity in event time: how many payments an account made, and how much it spent,
in the hour and the day up to each payment, and how long since its previous payment.

One function serves both worlds. ``kedro run`` calls it once over the whole history with no
prior state; the stream calls it on every micro-batch with the batch's accounts' state rows,
which kedro-stream keeps per partition and restores after a crash. Either way each account's
payments are taken in event-time order and the same arithmetic runs in the same order, so the
features are equal to the last bit.
"""

from collections import deque
from collections.abc import Iterator

import numpy as np
import pandas as pd

from payment_fraud.features import MS_PER_HOUR

MS_PER_DAY = 24 * MS_PER_HOUR
VELOCITY_COLUMNS: tuple[str, ...] = (
    "count_1h",
    "amount_1h",
    "count_24h",
    "amount_24h",
    "seconds_since_previous",
)
# What the feature output carries per payment: its identity, then the velocity.
PAYMENT_FEATURE_COLUMNS: tuple[str, ...] = (
    "payment_id",
    "account_id",
    "event_time",
    *VELOCITY_COLUMNS,
)
# One state row per account: its payments of the last 24 h (event times and amounts, oldest
# first) and the event time of its latest payment, kept when the window empties.
ACTIVITY_COLUMNS: tuple[str, ...] = ("account_id", "times", "amounts", "last_time")

_Window = deque[tuple[int, float]]


def _windows(activity: pd.DataFrame) -> dict[str, tuple[_Window, int | None]]:
    """Each known account's window and latest event time, from its state row. Columns go to
    lists first: iterating a Series yields each value through pandas, several times slower."""
    if len(activity) == 0:
        return {}
    rows = zip(
        activity["account_id"].tolist(),
        activity["times"].tolist(),
        activity["amounts"].tolist(),
        activity["last_time"].tolist(),
        strict=True,
    )
    return {
        account: (deque(zip(times, amounts, strict=True)), int(last))
        for account, times, amounts, last in rows
    }


def _in_event_time_order(payments: pd.DataFrame) -> Iterator[tuple[int, str, int, float]]:
    """(row position, account, event time, amount), by event time; ties keep arrival order."""
    times = payments["event_time"].to_numpy(dtype=np.int64)
    order = np.argsort(times, kind="stable")
    return zip(
        order.tolist(),
        payments["account_id"].to_numpy()[order].tolist(),
        times[order].tolist(),
        payments["amount"].to_numpy(dtype=np.float64)[order].tolist(),
        strict=True,
    )


def account_velocity(
    payments: pd.DataFrame, account_activity: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Velocity features per payment, row-aligned with ``payments``, and the new state row of
    every account in ``payments``.

    A window counts the account's payments with an event time in ``(t - window, t]`` that
    arrived before this one or are this one. A payment older than its account's latest (a late
    event) is counted where it arrives: it sees only the payments still kept (24 h back from
    the latest), and ``seconds_since_previous`` is measured from the latest, so it is negative.
    """
    windows = _windows(account_activity)
    n = len(payments)
    count_1h = np.zeros(n, dtype=np.int64)
    count_24h = np.zeros(n, dtype=np.int64)
    amount_1h = np.zeros(n, dtype=np.float64)
    amount_24h = np.zeros(n, dtype=np.float64)
    since_previous = np.full(n, np.nan)
    for row, account, time, amount in _in_event_time_order(payments):
        window, last = windows.get(account) or (deque(), None)
        if last is not None:
            since_previous[row] = (time - last) / 1000
        window.append((time, amount))
        latest = time if last is None else max(last, time)
        while window[0][0] <= latest - MS_PER_DAY:
            window.popleft()
        hour_start, day_start = time - MS_PER_HOUR, time - MS_PER_DAY
        in_hour = in_day = 0
        spent_hour = spent_day = 0.0  # summed oldest first, in the stream as in a batch
        for seen_time, seen_amount in window:
            if day_start < seen_time <= time:
                in_day += 1
                spent_day += seen_amount
                if seen_time > hour_start:
                    in_hour += 1
                    spent_hour += seen_amount
        count_1h[row], amount_1h[row] = in_hour, spent_hour
        count_24h[row], amount_24h[row] = in_day, spent_day
        windows[account] = (window, latest)

    velocity = pd.DataFrame(
        {
            "payment_id": payments["payment_id"].to_numpy(),
            "account_id": payments["account_id"].to_numpy(),
            "event_time": payments["event_time"].to_numpy(dtype=np.int64),
            "count_1h": count_1h,
            "amount_1h": amount_1h,
            "count_24h": count_24h,
            "amount_24h": amount_24h,
            "seconds_since_previous": since_previous,
        },
        index=payments.index,
    )
    return velocity, _state_rows(windows, pd.unique(payments["account_id"].to_numpy()).tolist())


def _state_rows(
    windows: dict[str, tuple[_Window, int | None]], accounts: list[str]
) -> pd.DataFrame:
    """The state rows of ``accounts``, built column by column: a frame from one dict per row
    costs several times more."""
    if not accounts:
        return pd.DataFrame(columns=list(ACTIVITY_COLUMNS))
    kept = [windows[account] for account in accounts]
    return pd.DataFrame(
        {
            "account_id": accounts,
            "times": [[time for time, _ in window] for window, _ in kept],
            "amounts": [[amount for _, amount in window] for window, _ in kept],
            "last_time": [latest for _, latest in kept],
        },
        columns=list(ACTIVITY_COLUMNS),
    )
