"""Records shared by the serde tests: one valid payment and where the schemas live."""

from __future__ import annotations

from pathlib import Path

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
PAYMENT = {
    "payment_id": "p-1",
    "account_id": "a-1",
    "merchant_id": "m-1",
    "merchant_category": "crypto",
    "amount": 12.5,
    "currency": "EUR",
    "country": "DE",
    "card_present": False,
    "event_time": 1_700_000_000_000,
}
