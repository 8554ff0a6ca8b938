"""The scoring job as a Quix Streams application: way (c) of ``bench/throughput.py``.

Run by the Python of the Quix virtualenv (``bench/quix_way.py`` builds it), never the project's:
quixstreams pins confluent-kafka below the project's. Hence nothing here imports kedro, pandas,
numpy or kedro_stream; the model comes in as plain numbers (``--params``, written by
``quix_way.write_params``).

Quix Streams processes one record at a time, and calling the pandas nodes on one-row frames
costs ~10 ms a record, so the job is a hand-written per-record port of the ``scoring`` namespace
(``payment_fraud.pipelines.scoring.nodes`` and ``payment_fraud.features``). The port lives in
plain functions, importable without quixstreams, so the unit tests hold it to the nodes.

Usage: quix_app.py --bootstrap HOST:PORT --topic T --format json|avro --schema PATH
                   --params PATH --total N [--group G] [--commit-every 1000]
Outputs go to ``T-quix-scores`` (keyed by payment_id) and ``T-quix-alerts``, which must exist.
The last stdout line is {"first": t1, "last": t2, "first_batch": N, "processed": n}.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

# ------------------------------------------------------------- vocabulary (payment_fraud.features)

MERCHANT_CATEGORIES: tuple[str, ...] = (
    "grocery",
    "restaurants",
    "fuel",
    "retail",
    "electronics",
    "travel",
    "gambling",
    "crypto",
)
RISKY_CATEGORIES: tuple[str, ...] = ("gambling", "crypto")
COUNTRY_CURRENCY: dict[str, str] = {
    "DE": "EUR",
    "FR": "EUR",
    "NL": "EUR",
    "ES": "EUR",
    "IT": "EUR",
    "IE": "EUR",
    "GB": "GBP",
    "US": "USD",
    "BR": "BRL",
    "NG": "NGN",
    "TR": "TRY",
    "AE": "AED",
    "IN": "INR",
    "CN": "CNY",
}
NIGHT_END_HOUR = 6  # hours [0, 6) UTC count as night
HIGH_AMOUNT = 500.0
MS_PER_HOUR = 3_600_000
FEATURE_COLUMNS: tuple[str, ...] = (
    "log_amount",
    "cross_border",
    "card_not_present",
    "night",
    *(f"category_{category}" for category in MERCHANT_CATEGORIES),
)

# ------------------------------------------------------------ alert reasons (scoring nodes)

# Risk flag -> words, in the order an alert's reason lists them; bit i of a record's
# ``flags`` is flag i here.
REASONS: tuple[tuple[str, str], ...] = (
    ("cross_border", "cross-border"),
    ("card_not_present", "card not present"),
    ("high_amount", "high amount"),
    ("risky_category", "risky merchant category"),
    ("night", "night-time"),
)
NO_FLAGGED_REASON = "high model score"
_BIT = {flag: 1 << position for position, (flag, _) in enumerate(REASONS)}
CROSS_BORDER = _BIT["cross_border"]
CARD_NOT_PRESENT = _BIT["card_not_present"]
HIGH_AMOUNT_FLAG = _BIT["high_amount"]
RISKY_CATEGORY = _BIT["risky_category"]
NIGHT = _BIT["night"]
# Reason text per flag bitmask, so an alert costs one tuple lookup.
REASON_TABLE: tuple[str, ...] = tuple(
    ", ".join(text for bit, (_, text) in enumerate(REASONS) if mask >> bit & 1) or NO_FLAGGED_REASON
    for mask in range(1 << len(REASONS))
)

SCORE_FIELDS: tuple[str, ...] = ("payment_id", "account_id", "score")

Scorer = Callable[[Mapping[str, Any]], dict[str, Any]]


# ------------------------------------------------------------------------------- the port


def make_scorer(params: Mapping[str, Any]) -> Scorer:
    """A function scoring one raw payment: clean, features, standardise, logistic regression.

    Returns the "scored payment" {payment_id, account_id, amount, merchant_category, score,
    flags}, where amount and merchant_category are cleaned and ``flags`` is the risk-flag
    bitmask in ``REASONS`` order; ``score_record`` and ``alert_record`` cut the outputs from it.

    Standardising and the dot product are folded into one weight per feature,
    w = coef / scale and bias = intercept - sum(coef * mean / scale): the same z as
    StandardScaler then LogisticRegression up to float rounding, and the one-hot categories
    reduce to one dictionary lookup (an unknown category, all zeros, adds nothing).
    """
    features = params.get("features")
    if features is not None and tuple(features) != FEATURE_COLUMNS:
        raise ValueError(f"model features {features} are not the port's {FEATURE_COLUMNS}")
    mean = [float(v) for v in params["mean"]]
    scale = [float(v) for v in params["scale"]]
    coef = [float(v) for v in params["coef"]]
    if not len(mean) == len(scale) == len(coef) == len(FEATURE_COLUMNS):
        raise ValueError(f"expected {len(FEATURE_COLUMNS)} model weights")
    weights = [c / s for c, s in zip(coef, scale, strict=True)]
    bias = float(params["intercept"]) - math.fsum(
        c * m / s for c, m, s in zip(coef, mean, scale, strict=True)
    )
    w_log_amount, w_cross_border, w_card_not_present, w_night = weights[:4]
    category_weight = dict(zip(MERCHANT_CATEGORIES, weights[4:], strict=True)).get
    local_currency = COUNTRY_CURRENCY.get
    risky = frozenset(RISKY_CATEGORIES)
    log1p, exp = math.log1p, math.exp

    def score(payment: Mapping[str, Any]) -> dict[str, Any]:
        amount = float(payment["amount"])
        currency = str(payment["currency"]).strip().upper()
        country = str(payment["country"]).strip().upper()
        category = str(payment["merchant_category"]).strip().lower()
        z = bias + w_log_amount * log1p(amount) + category_weight(category, 0.0)
        flags = 0
        # an unknown country has no local currency, so its payments count as cross-border
        if local_currency(country, "") != currency:
            flags |= CROSS_BORDER
            z += w_cross_border
        if not payment["card_present"]:
            flags |= CARD_NOT_PRESENT
            z += w_card_not_present
        if int(payment["event_time"]) // MS_PER_HOUR % 24 < NIGHT_END_HOUR:
            flags |= NIGHT
            z += w_night
        if amount >= HIGH_AMOUNT:
            flags |= HIGH_AMOUNT_FLAG
        if category in risky:
            flags |= RISKY_CATEGORY
        try:
            probability = 1.0 / (1.0 + exp(-z))
        except OverflowError:  # z below about -709, where numpy's exp gives inf
            probability = 0.0
        return {
            "payment_id": str(payment["payment_id"]),
            "account_id": str(payment["account_id"]),
            "amount": amount,
            "merchant_category": category,
            # numpy.round(p, 6) is rint(p * 1e6) / 1e6; Python's round(p, 6) rounds the exact
            # binary value instead and can differ in the last digit
            "score": round(probability * 1e6) / 1e6,
            "flags": flags,
        }

    return score


def score_record(scored: Mapping[str, Any]) -> dict[str, Any]:
    """The scores output: {payment_id, account_id, score}."""
    return {field: scored[field] for field in SCORE_FIELDS}


def alert_record(scored: Mapping[str, Any]) -> dict[str, Any]:
    """The alerts output: {payment_id, account_id, amount, merchant_category, score, reason}."""
    return {
        "payment_id": scored["payment_id"],
        "account_id": scored["account_id"],
        "amount": scored["amount"],
        "merchant_category": scored["merchant_category"],
        "score": scored["score"],
        "reason": REASON_TABLE[scored["flags"]],
    }


def process(
    payment: Mapping[str, Any], score: Scorer, threshold: float
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """One payment's (score record, alert record or None): the whole job on one record."""
    scored = score(payment)
    return score_record(scored), alert_record(scored) if scored["score"] >= threshold else None


# ----------------------------------------------------------------------------- the application


def _inspect_topics_from_metadata(config_type: type) -> Callable[..., dict[str, Any]]:
    """``TopicAdmin.inspect_topics`` from metadata alone.

    The stock one also sends DescribeConfigs, which librdkafka's mock cluster does not
    implement; a stateless application uses only the partition counts anyway.
    """

    def inspect_topics(self: Any, topic_names: list[str], timeout: float = 30) -> dict[str, Any]:
        cluster = self.list_topics(timeout=timeout)
        configs: dict[str, Any] = {}
        for name in topic_names:
            metadata = cluster.get(name)
            if metadata is None:
                configs[name] = None
                continue
            partitions = metadata.partitions
            replicas = len(partitions[0].replicas) if partitions and partitions[0].replicas else 1
            configs[name] = config_type(num_partitions=len(partitions), replication_factor=replicas)
        return configs

    return inspect_topics


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--format", choices=("json", "avro"), default="json")
    parser.add_argument("--schema", type=Path, help="Avro schema (.avsc) for --format avro")
    parser.add_argument("--params", type=Path, required=True, help="quix_way.write_params output")
    parser.add_argument("--total", type=int, required=True, help="stop after this many records")
    parser.add_argument("--group", default="bench-quix")
    parser.add_argument("--commit-every", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.format == "avro" and args.schema is None:
        parser.error("--format avro needs --schema")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from quixstreams import Application
    from quixstreams.models.serializers.avro import AvroDeserializer
    from quixstreams.models.topics import TopicConfig
    from quixstreams.models.topics.admin import TopicAdmin

    TopicAdmin.inspect_topics = _inspect_topics_from_metadata(TopicConfig)  # type: ignore[method-assign]

    params = json.loads(args.params.read_text())
    score = make_scorer(params)
    threshold = float(params["threshold"])
    processed = 0
    first_at = 0.0

    def on_message_processed(_topic: str, _partition: int, _offset: int) -> None:
        """Counts input records; stops the app at --total so ``run`` returns after its commit."""
        nonlocal processed, first_at
        processed += 1
        if processed == args.commit_every:
            first_at = time.time()  # Quix commits once commit_every records are processed
        if processed == args.total:
            app.stop()

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        commit_every=args.commit_every,
        processing_guarantee="at-least-once",
        loglevel="WARNING",
        on_message_processed=on_message_processed,
    )
    deserializer: Any = (
        "json"
        if args.format == "json"
        else AvroDeserializer(schema=json.loads(args.schema.read_text()))  # schemaless
    )
    payments = app.topic(args.topic, value_deserializer=deserializer)
    scores_topic = app.topic(
        f"{args.topic}-quix-scores", key_serializer="string", value_serializer="json"
    )
    alerts_topic = app.topic(f"{args.topic}-quix-alerts", value_serializer="json")

    sdf = app.dataframe(payments)
    sdf = sdf.apply(score)
    # two branches from the scored payment: every score, and the alerts
    scores = sdf[list(SCORE_FIELDS)]
    scores.to_topic(scores_topic, key=lambda record: record["payment_id"])
    alerts = sdf.filter(lambda scored: scored["score"] >= threshold).apply(alert_record)
    alerts.to_topic(alerts_topic)

    app.run()
    last_at = time.time()
    result = {
        "first": first_at,
        "last": last_at,
        "first_batch": args.commit_every,
        "processed": processed,
    }
    print(json.dumps(result), flush=True)
    return 0 if processed >= args.total else 1


if __name__ == "__main__":
    sys.exit(main())
