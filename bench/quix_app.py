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
from typing import Any, NamedTuple

# What the port's arithmetic assumes of the model's columns; the categories follow.
LEADING_FEATURES: tuple[str, ...] = ("log_amount", "cross_border", "card_not_present", "night")

Scorer = Callable[[Mapping[str, Any]], dict[str, Any]]


# ------------------------------------------------------------------------------- the port


def make_scorer(params: Mapping[str, Any]) -> Scorer:
    """A function scoring one raw payment: clean, features, standardise, logistic regression.

    Returns the "scored payment" {payment_id, account_id, amount, merchant_category, score,
    reason}, amount and merchant_category cleaned; :class:`Port` cuts the outputs from it.
    The vocabulary (categories, countries, thresholds, reason words, output fields) comes in
    ``params`` from the project itself (``quix_way.model_params``), so it cannot drift.

    Standardising and the dot product are folded into one weight per feature,
    w = coef / scale and bias = intercept - sum(coef * mean / scale): the same z as
    StandardScaler then LogisticRegression up to float rounding, and the one-hot categories
    reduce to one dictionary lookup (an unknown category, all zeros, adds nothing).
    """
    words = params["vocabulary"]
    categories = tuple(words["merchant_categories"])
    expected = (*LEADING_FEATURES, *(f"category_{c}" for c in categories))
    if tuple(params["features"]) != expected:
        raise ValueError(f"model features {params['features']} are not the port's {expected}")
    mean = [float(v) for v in params["mean"]]
    scale = [float(v) for v in params["scale"]]
    coef = [float(v) for v in params["coef"]]
    if not len(mean) == len(scale) == len(coef) == len(expected):
        raise ValueError(f"expected {len(expected)} model weights")
    weights = [c / s for c, s in zip(coef, scale, strict=True)]
    bias = float(params["intercept"]) - math.fsum(
        c * m / s for c, m, s in zip(coef, mean, scale, strict=True)
    )
    w_log_amount, w_cross_border, w_card_not_present, w_night = weights[:4]
    category_weight = dict(zip(categories, weights[4:], strict=True)).get
    local_currency = dict(words["country_currency"]).get
    risky = frozenset(words["risky_categories"])
    night_end_hour, high_amount = int(words["night_end_hour"]), float(words["high_amount"])
    ms_per_hour = int(words["ms_per_hour"])
    # Bit i of a payment's flags is reason i; the reason text of every bitmask, precomputed.
    bit = {flag: 1 << i for i, (flag, _) in enumerate(words["reasons"])}
    reason_of = [
        ", ".join(text for i, (_, text) in enumerate(words["reasons"]) if mask >> i & 1)
        or words["no_flag_reason"]
        for mask in range(1 << len(bit))
    ]
    cross_border, card_not_present, night = (bit[f] for f in LEADING_FEATURES[1:])
    high_amount_bit, risky_bit = bit["high_amount"], bit["risky_category"]
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
            flags |= cross_border
            z += w_cross_border
        if not payment["card_present"]:
            flags |= card_not_present
            z += w_card_not_present
        if int(payment["event_time"]) // ms_per_hour % 24 < night_end_hour:
            flags |= night
            z += w_night
        if amount >= high_amount:
            flags |= high_amount_bit
        if category in risky:
            flags |= risky_bit
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
            "reason": reason_of[flags],
        }

    return score


class Port(NamedTuple):
    """The whole job on one record: the scorer, and the outputs' fields as the project's nodes
    write them (``quix_way.model_params`` sends ``SCORE_COLUMNS`` and ``ALERT_COLUMNS``)."""

    score: Scorer
    score_fields: tuple[str, ...]
    alert_fields: tuple[str, ...]
    threshold: float

    def alert_record(self, scored: Mapping[str, Any]) -> dict[str, Any]:
        return {field: scored[field] for field in self.alert_fields}

    def process(self, payment: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """One payment's (score record, alert record or None)."""
        scored = self.score(payment)
        alert = self.alert_record(scored) if scored["score"] >= self.threshold else None
        return {field: scored[field] for field in self.score_fields}, alert


def make_port(params: Mapping[str, Any]) -> Port:
    words = params["vocabulary"]
    return Port(
        make_scorer(params),
        tuple(words["score_fields"]),
        tuple(words["alert_fields"]),
        float(params["threshold"]),
    )


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
    port = make_port(params)
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
    sdf = sdf.apply(port.score)
    # two branches from the scored payment: every score, and the alerts
    scores = sdf[list(port.score_fields)]
    scores.to_topic(scores_topic, key=lambda record: record["payment_id"])
    alerts = sdf.filter(lambda scored: scored["score"] >= port.threshold).apply(port.alert_record)
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
