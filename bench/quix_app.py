"""The scoring job as a Quix Streams application: way (c) of ``bench/throughput.py``.

Run by the Python of the Quix virtualenv (``bench/quix_way.py`` builds it), never the project's:
quixstreams pins confluent-kafka below the project's. Hence nothing here imports kedro, pandas,
numpy or kedro_stream; the model comes in as plain numbers (``--params``, written by
``quix_way.write_params``).

Quix Streams processes one record at a time, and calling the pandas nodes on one-row frames
costs ~5 ms a record, so the job is a hand-written per-record port of the ``scoring`` namespace
(``payment_fraud.pipelines.scoring.nodes``, ``payment_fraud.features`` and
``payment_fraud.velocity``). Each account's recent payments live in Quix's own per-key state
(``apply(..., stateful=True)``: a RocksDB store per partition and a changelog topic), as they
live in kedro-stream's. The port lives in plain functions, importable without quixstreams, the
state passed in as any object with ``get`` and ``set``, so the unit tests hold it to the nodes.

Usage: quix_app.py --bootstrap HOST:PORT --topic T --format json|avro --schema PATH
                   --params PATH --total N [--group G] [--commit-every 1000]
Input records must be keyed by account_id. Outputs go to ``T-quix-features`` (keyed by
account_id), ``T-quix-scores`` (by payment_id) and ``T-quix-alerts`` (by account_id), which must
exist, as must the state's changelog (``quix_way.changelog_topic``).
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
from typing import Any, NamedTuple, Protocol

# What the port's arithmetic assumes of the model's columns: these, the categories, then the
# velocity.
LEADING_FEATURES: tuple[str, ...] = ("log_amount", "cross_border", "card_not_present", "night")
VELOCITY_FEATURES: tuple[str, ...] = (
    "count_1h",
    "log_amount_1h",
    "count_24h",
    "log_amount_24h",
    "log_seconds_since_previous",
)
#: The one state entry per account: {"times": [...], "amounts": [...], "last_time": ms}, its
#: payments of the last 24 h oldest first and its latest event time, as the node's state row.
ACTIVITY = "activity"


class KeyState(Protocol):
    """What the port needs of Quix's ``State``: the values kept for the current message key."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...


Velocity = Callable[[int, float, KeyState], dict[str, Any]]
Scorer = Callable[[Mapping[str, Any], KeyState], dict[str, Any]]


# ------------------------------------------------------------------------------- the port


def make_velocity(params: Mapping[str, Any]) -> Velocity:
    """One payment's velocity from its account's state, which it updates:
    ``payment_fraud.velocity.account_velocity`` for a record at a time.

    The node takes a batch's payments in event-time order, the port in arrival order; they
    agree while each account's payments arrive in event-time order, as keyed producers of
    in-order events deliver them. Sums run oldest first, as the node's, so they agree to the
    bit.
    """
    words = params["vocabulary"]
    ms_per_hour, ms_per_day = int(words["ms_per_hour"]), int(words["ms_per_day"])

    def velocity(time: int, amount: float, state: KeyState) -> dict[str, Any]:
        activity = state.get(ACTIVITY)
        if activity is None:
            times: list[int] = [time]
            amounts: list[float] = [amount]
            last, since_previous = time, None
        else:
            times = [*activity["times"], time]
            amounts = [*activity["amounts"], amount]
            last = int(activity["last_time"])
            since_previous = (time - last) / 1000
        latest = max(last, time)
        kept = 0  # the window drops from its front only, as the node's deque does
        while times[kept] <= latest - ms_per_day:
            kept += 1
        times, amounts = times[kept:], amounts[kept:]
        hour_start, day_start = time - ms_per_hour, time - ms_per_day
        in_hour = in_day = 0
        spent_hour = spent_day = 0.0
        for seen_time, seen_amount in zip(times, amounts, strict=True):
            if day_start < seen_time <= time:
                in_day += 1
                spent_day += seen_amount
                if seen_time > hour_start:
                    in_hour += 1
                    spent_hour += seen_amount
        state.set(ACTIVITY, {"times": times, "amounts": amounts, "last_time": latest})
        # An account's first payment has None (JSON null) where the node has NaN, which the
        # stream writes as null.
        return {
            "count_1h": in_hour,
            "amount_1h": spent_hour,
            "count_24h": in_day,
            "amount_24h": spent_day,
            "seconds_since_previous": since_previous,
        }

    return velocity


def make_scorer(params: Mapping[str, Any]) -> Scorer:
    """A function scoring one raw payment with its account's state: clean, velocity, features,
    standardise, logistic regression.

    Returns the "scored payment" {payment_id, account_id, event_time, amount,
    merchant_category, the velocity, score, reason}, amount and merchant_category cleaned;
    :class:`Port` cuts the outputs from it. The vocabulary (categories, countries, thresholds,
    reason words, output fields) comes in ``params`` from the project itself
    (``quix_way.model_params``), so it cannot drift.

    Standardising and the dot product are folded into one weight per feature,
    w = coef / scale and bias = intercept - sum(coef * mean / scale): the same z as
    StandardScaler then LogisticRegression up to float rounding, and the one-hot categories
    reduce to one dictionary lookup (an unknown category, all zeros, adds nothing).
    """
    words = params["vocabulary"]
    categories = tuple(words["merchant_categories"])
    expected = (*LEADING_FEATURES, *(f"category_{c}" for c in categories), *VELOCITY_FEATURES)
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
    category_weight = dict(zip(categories, weights[4:-5], strict=True)).get
    w_count_1h, w_log_amount_1h, w_count_24h, w_log_amount_24h, w_log_since = weights[-5:]
    velocity_of = make_velocity(params)
    no_previous_s, burst_count = float(words["no_previous_s"]), int(words["burst_count_1h"])
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
    high_amount_bit, risky_bit, burst_bit = bit["high_amount"], bit["risky_category"], bit["burst"]
    log1p, exp = math.log1p, math.exp

    def score(payment: Mapping[str, Any], state: KeyState) -> dict[str, Any]:
        amount = float(payment["amount"])
        event_time = int(payment["event_time"])
        currency = str(payment["currency"]).strip().upper()
        country = str(payment["country"]).strip().upper()
        category = str(payment["merchant_category"]).strip().lower()
        velocity = velocity_of(event_time, amount, state)
        since = velocity["seconds_since_previous"]
        since = no_previous_s if since is None else min(max(since, 0.0), no_previous_s)
        z = (
            bias
            + w_log_amount * log1p(amount)
            + category_weight(category, 0.0)
            + w_count_1h * velocity["count_1h"]
            + w_log_amount_1h * log1p(velocity["amount_1h"])
            + w_count_24h * velocity["count_24h"]
            + w_log_amount_24h * log1p(velocity["amount_24h"])
            + w_log_since * log1p(since)
        )
        flags = 0
        # an unknown country has no local currency, so its payments count as cross-border
        if local_currency(country, "") != currency:
            flags |= cross_border
            z += w_cross_border
        if not payment["card_present"]:
            flags |= card_not_present
            z += w_card_not_present
        if event_time // ms_per_hour % 24 < night_end_hour:
            flags |= night
            z += w_night
        if amount >= high_amount:
            flags |= high_amount_bit
        if category in risky:
            flags |= risky_bit
        if velocity["count_1h"] >= burst_count:
            flags |= burst_bit
        try:
            probability = 1.0 / (1.0 + exp(-z))
        except OverflowError:  # z below about -709, where numpy's exp gives inf
            probability = 0.0
        return {
            "payment_id": str(payment["payment_id"]),
            "account_id": str(payment["account_id"]),
            "event_time": event_time,
            **velocity,
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
    write them (``quix_way.model_params`` sends ``PAYMENT_FEATURE_COLUMNS``, ``SCORE_COLUMNS``
    and ``ALERT_COLUMNS``)."""

    score: Scorer
    feature_fields: tuple[str, ...]
    score_fields: tuple[str, ...]
    alert_fields: tuple[str, ...]
    threshold: float

    def alert_record(self, scored: Mapping[str, Any]) -> dict[str, Any]:
        return {field: scored[field] for field in self.alert_fields}

    def process(
        self, payment: Mapping[str, Any], state: KeyState
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
        """One payment's (feature record, score record, alert record or None), given its
        account's state."""
        scored = self.score(payment, state)
        alert = self.alert_record(scored) if scored["score"] >= self.threshold else None
        features = {field: scored[field] for field in self.feature_fields}
        return features, {field: scored[field] for field in self.score_fields}, alert


def make_port(params: Mapping[str, Any]) -> Port:
    words = params["vocabulary"]
    return Port(
        make_scorer(params),
        tuple(words["feature_fields"]),
        tuple(words["score_fields"]),
        tuple(words["alert_fields"]),
        float(params["threshold"]),
    )


# ----------------------------------------------------------------------------- the application


def _inspect_topics_from_metadata(config_type: type) -> Callable[..., dict[str, Any]]:
    """``TopicAdmin.inspect_topics`` from metadata alone.

    The stock one also sends DescribeConfigs, which librdkafka's mock cluster does not
    implement. Quix uses the partition counts, and derives its changelog's configuration from
    the input's retention: Kafka's defaults stand in for it.
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
            configs[name] = config_type(
                num_partitions=len(partitions),
                replication_factor=replicas,
                extra_config=dict(_KAFKA_RETENTION_DEFAULTS),
            )
        return configs

    return inspect_topics


_KAFKA_RETENTION_DEFAULTS = {"retention.ms": "604800000", "retention.bytes": "-1"}


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

    def output(suffix: str) -> Any:
        return app.topic(
            f"{args.topic}-quix-{suffix}", key_serializer="string", value_serializer="json"
        )

    sdf = app.dataframe(payments)
    sdf = sdf.apply(port.score, stateful=True)  # the state of the message key: the account
    # three branches from the scored payment: every feature row, every score, and the alerts
    features = sdf[list(port.feature_fields)]
    features.to_topic(output("features"), key=lambda record: record["account_id"])
    scores = sdf[list(port.score_fields)]
    scores.to_topic(output("scores"), key=lambda record: record["payment_id"])
    alerts = sdf.filter(lambda scored: scored["score"] >= port.threshold).apply(port.alert_record)
    alerts.to_topic(output("alerts"), key=lambda record: record["account_id"])

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
