"""The payment-fraud example project: its pipelines run in memory, and its names, dtypes
and Avro schemas are the contract kedro-stream relies on."""

import io
import json
from pathlib import Path
from typing import Any

import fastavro
import numpy as np
import pandas as pd
import pytest
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline
from kedro.runner import SequentialRunner

from payment_fraud import features
from payment_fraud.features import FEATURE_COLUMNS, PAYMENT_COLUMNS, build_features
from payment_fraud.pipeline_registry import register_pipelines
from payment_fraud.pipelines.scoring.nodes import ALERT_COLUMNS, SCORE_COLUMNS, clean_payments
from payment_fraud.pipelines.training import nodes as training_nodes
from payment_fraud.velocity import ACTIVITY_COLUMNS, PAYMENT_FEATURE_COLUMNS, account_velocity

PROJECT_ROOT = Path(__file__).resolve().parents[2]
N_PAYMENTS = 2000
THRESHOLD = 0.8
GENERATED = ("labelled_payments", "payments")
NO_ACTIVITY = pd.DataFrame(columns=list(ACTIVITY_COLUMNS))


class KeptDataset(MemoryDataset):
    """A MemoryDataset the runner cannot release: ``labelled_payments`` and
    ``scoring.scores`` are consumed downstream, so they are not free outputs and a plain
    MemoryDataset would be emptied once their last consumer ran."""

    def _release(self) -> None:
        pass


def run(pipeline: Pipeline, inputs: dict[str, Any], outputs: tuple[str, ...]) -> dict[str, Any]:
    """Run a pipeline on in-memory datasets only and return the named outputs."""
    catalog = DataCatalog(
        {
            **{name: MemoryDataset(data) for name, data in inputs.items()},
            **{name: KeptDataset() for name in outputs},
        }
    )
    SequentialRunner().run(pipeline, catalog)
    return {name: catalog.load(name) for name in outputs}


@pytest.fixture(scope="module")
def pipelines() -> dict[str, Pipeline]:
    return register_pipelines()


@pytest.fixture(scope="module")
def conf() -> OmegaConfigLoader:
    return OmegaConfigLoader(
        conf_source=str(PROJECT_ROOT / "conf"), base_env="base", default_run_env="local"
    )


@pytest.fixture(scope="module")
def generation_params(conf: OmegaConfigLoader) -> dict[str, Any]:
    return {**conf["parameters"]["data_generation"], "n_payments": N_PAYMENTS, "n_accounts": 200}


@pytest.fixture(scope="module")
def generated(pipelines: dict[str, Pipeline], generation_params: dict[str, Any]) -> dict:
    return run(
        pipelines["data_generation"], {"params:data_generation": generation_params}, GENERATED
    )


@pytest.fixture(scope="module")
def trained(pipelines: dict[str, Pipeline], conf: OmegaConfigLoader, generated: dict) -> dict:
    return run(
        pipelines["training"],
        {
            "labelled_payments": generated["labelled_payments"],
            "params:training": conf["parameters"]["training"],
        },
        ("fraud_model", "training_metrics"),
    )


@pytest.fixture(scope="module")
def score(pipelines: dict[str, Pipeline], trained: dict):
    def _score(batch: pd.DataFrame, threshold: float = THRESHOLD) -> tuple[pd.DataFrame, ...]:
        outputs = run(
            pipelines["scoring"],
            {
                "payments": batch,
                "scoring.account_activity": NO_ACTIVITY,
                "fraud_model": trained["fraud_model"],
                "params:scoring.alert_threshold": threshold,
            },
            ("scoring.scores", "scoring.alerts"),
        )
        return outputs["scoring.scores"], outputs["scoring.alerts"]

    return _score


def payment(**overrides: Any) -> dict[str, Any]:
    """One hand-made payment event; overrides set the risk factors under test."""
    event = {
        "payment_id": "p-900001",
        "account_id": "a-00001",
        "merchant_id": "m-0001",
        "merchant_category": "grocery",
        "amount": 25.0,
        "currency": "EUR",
        "country": "DE",
        "card_present": True,
        "event_time": 1_735_732_800_000,  # 2025-01-01 12:00 UTC
    }
    return {**event, **overrides}


# --- registry and configuration contract -------------------------------------------


def test_registered_pipelines_and_default(pipelines: dict[str, Pipeline]) -> None:
    assert set(pipelines) == {"data_generation", "training", "scoring", "__default__"}
    parts = pipelines["data_generation"] + pipelines["training"] + pipelines["scoring"]
    assert set(pipelines["__default__"].nodes) == set(parts.nodes)
    assert pipelines["__default__"].inputs() == {
        "params:data_generation",
        "params:training",
        "params:scoring.alert_threshold",
        "scoring.account_activity",
    }


def test_node_names_and_namespaces(pipelines: dict[str, Pipeline]) -> None:
    names = {name: {n.name for n in pipelines[name].nodes} for name in pipelines}
    assert names["data_generation"] == {"generate_payments", "strip_labels"}
    assert names["training"] == {
        "history_velocity",
        "split_payments",
        "train_model",
        "evaluate_model",
    }
    assert names["scoring"] == {
        "scoring.clean_payments",
        "scoring.account_velocity",
        "scoring.build_features",
        "scoring.score_payments",
        "scoring.flag_alerts",
    }
    assert {n.namespace for n in pipelines["data_generation"].nodes} == {None}
    assert {n.namespace for n in pipelines["training"].nodes} == {None}
    assert {n.namespace for n in pipelines["scoring"].nodes} == {"scoring"}


def test_scoring_namespace_free_inputs_and_outputs(pipelines: dict[str, Pipeline]) -> None:
    scoring = pipelines["scoring"]
    assert scoring.inputs() == {
        "payments",
        "scoring.account_activity",
        "fraud_model",
        "params:scoring.alert_threshold",
    }
    produced = {name for n in scoring.nodes for name in n.outputs}
    assert produced == {
        "scoring.clean_payments",
        "scoring.payment_features",
        "scoring.account_activity_updates",
        "scoring.features",
        "scoring.scores",
        "scoring.alerts",
    }
    # flag_alerts consumes the scores and the features, so Kedro counts them as intermediates.
    assert scoring.outputs() == {"scoring.alerts", "scoring.account_activity_updates"}


def test_catalog_persists_only_the_contract_datasets(conf: OmegaConfigLoader) -> None:
    catalog = conf["catalog"]
    assert set(catalog) == {
        "labelled_payments",
        "payments",
        "fraud_model",
        "training_metrics",
        "scoring.account_activity",
        "scoring.account_activity_updates",
        "scoring.payment_features",
        "scoring.scores",
        "scoring.alerts",
    }
    assert catalog["payments"]["filepath"] == "data/01_raw/payments.jsonl"
    assert conf["parameters"]["scoring"]["alert_threshold"] == THRESHOLD


def test_json_lines_round_trip_keeps_dtypes(
    conf: OmegaConfigLoader, generated: dict, tmp_path: Path
) -> None:
    config = dict(conf["catalog"]["payments"])
    config["filepath"] = str(tmp_path / "payments.jsonl")
    catalog = DataCatalog.from_config({"payments": config})
    sent = generated["payments"].head(50)

    catalog.save("payments", sent)
    received = catalog.load("payments")

    lines = Path(config["filepath"]).read_text().splitlines()
    assert len(lines) == 50
    assert json.loads(lines[0])["payment_id"] == sent["payment_id"].iloc[0]
    # What the scoring pipeline sees: pandas 2's reader parses `event_time` (epoch ms) into
    # datetimes, pandas 3's does not; after clean_payments both give the payments sent.
    cleaned = clean_payments(received)
    assert cleaned["event_time"].dtype == np.int64
    pd.testing.assert_frame_equal(cleaned, clean_payments(sent.reset_index(drop=True)))


@pytest.mark.parametrize("unit", ["ns", "us", "ms"])
def test_event_times_read_back_as_datetimes_are_epoch_milliseconds_again(unit: str) -> None:
    epoch_ms = np.array([1_735_689_600_123, 1_735_689_601_456], dtype="int64")
    payments = pd.DataFrame(
        {
            "payment_id": ["p-1", "p-2"],
            "account_id": "a",
            "merchant_id": "m",
            "merchant_category": "food",
            "amount": [1.0, 2.0],
            "currency": "EUR",
            "country": "FR",
            "card_present": True,
            "event_time": pd.to_datetime(epoch_ms, unit="ms").as_unit(unit),
        }
    )

    assert clean_payments(payments)["event_time"].tolist() == epoch_ms.tolist()


# --- data generation ---------------------------------------------------------------


def test_generation_is_deterministic_per_seed(
    pipelines: dict[str, Pipeline], generation_params: dict[str, Any], generated: dict
) -> None:
    again = run(
        pipelines["data_generation"], {"params:data_generation": generation_params}, GENERATED
    )
    other_seed = run(
        pipelines["data_generation"],
        {"params:data_generation": {**generation_params, "seed": generation_params["seed"] + 1}},
        GENERATED,
    )
    pd.testing.assert_frame_equal(again["labelled_payments"], generated["labelled_payments"])
    assert not other_seed["labelled_payments"].equals(generated["labelled_payments"])


def test_generated_events_match_the_payment_contract(generated: dict) -> None:
    labelled = generated["labelled_payments"]
    events = generated["payments"]

    assert list(events.columns) == list(PAYMENT_COLUMNS)
    assert list(labelled.columns) == [*PAYMENT_COLUMNS, "is_fraud"]
    pd.testing.assert_frame_equal(events, labelled.drop(columns="is_fraud"))
    assert len(events) == N_PAYMENTS
    assert events["payment_id"].is_unique
    assert events["payment_id"].iloc[0] == "p-000001"
    assert events["payment_id"].str.fullmatch(r"p-\d{6}").all()
    assert events["event_time"].is_monotonic_increasing
    assert events["event_time"].dtype == np.int64
    assert events["card_present"].dtype == bool
    assert (events["amount"] > 0).all()
    assert np.allclose(events["amount"], events["amount"].round(2))
    assert set(events["currency"]) == {"EUR", "USD", "GBP"}
    assert set(events["merchant_category"]) == set(features.MERCHANT_CATEGORIES)
    assert events["country"].str.fullmatch(r"[A-Z]{2}").all()
    assert 0.01 < labelled["is_fraud"].mean() < 0.04


def test_fraud_is_correlated_with_risk_factors(generated: dict) -> None:
    labelled = generated["labelled_payments"]
    flags = features.risk_flags(labelled)
    by_label = flags.groupby(labelled["is_fraud"]).mean()
    for flag in ("cross_border", "card_not_present", "night", "risky_category", "high_amount"):
        assert by_label.loc[True, flag] > by_label.loc[False, flag] + 0.1, flag


# --- training ----------------------------------------------------------------------


def test_training_learns_the_fraud_signal(trained: dict) -> None:
    metrics = trained["training_metrics"]
    assert metrics["roc_auc"] > 0.85
    # Burst fraud looks like everyday payments: only the velocity features give it away.
    assert metrics["roc_auc"] > metrics["roc_auc_without_velocity"] + 0.03
    assert metrics["average_precision"] > metrics["average_precision_without_velocity"] + 0.1
    assert metrics["holdout_rows"] == N_PAYMENTS // 4
    assert metrics["holdout_frauds"] >= 5
    json.dumps(metrics)  # the json.JSONDataset must be able to write it


def test_training_and_scoring_share_one_feature_function(
    pipelines: dict[str, Pipeline], trained: dict, generated: dict
) -> None:
    scoring_node = next(n for n in pipelines["scoring"].nodes if n.name == "scoring.build_features")
    assert scoring_node.func is build_features
    assert training_nodes.build_features is build_features

    velocity_node = next(
        n for n in pipelines["scoring"].nodes if n.name == "scoring.account_velocity"
    )
    assert velocity_node.func is account_velocity
    assert training_nodes.account_velocity is account_velocity

    model = trained["fraud_model"]
    batch = clean_payments(generated["payments"].head(3))
    online = build_features(batch, account_velocity(batch, NO_ACTIVITY)[0])
    assert list(online.columns) == list(FEATURE_COLUMNS)
    assert model.n_features_in_ == len(FEATURE_COLUMNS)


# --- scoring -----------------------------------------------------------------------


def test_scoring_one_score_per_distinct_event_in_order(score, generated: dict) -> None:
    events = generated["payments"].head(300)
    replayed = events.iloc[:20].assign(amount=99_999.0)  # a resend must not change the score
    messy = events.assign(
        currency=" " + events["currency"].str.lower(), country=events["country"].str.lower() + " "
    )
    batch = pd.concat([messy, replayed], ignore_index=True)

    scores, alerts = score(batch)
    clean_scores, clean_alerts = score(events)

    assert list(scores.columns) == list(SCORE_COLUMNS)
    assert scores["payment_id"].tolist() == events["payment_id"].tolist()
    pd.testing.assert_frame_equal(scores, clean_scores)
    pd.testing.assert_frame_equal(alerts, clean_alerts)
    assert scores["score"].between(0, 1).all()
    assert np.array_equal(scores["score"], scores["score"].round(6))


def test_alerts_are_exactly_the_scores_above_threshold(score, generated: dict) -> None:
    events = generated["payments"]
    scores, alerts = score(events)

    above = scores[scores["score"] >= THRESHOLD]
    assert len(alerts) > 0
    assert list(alerts.columns) == list(ALERT_COLUMNS)
    assert alerts["payment_id"].tolist() == above["payment_id"].tolist()
    assert alerts["score"].tolist() == above["score"].tolist()
    amounts = events.set_index("payment_id").loc[alerts["payment_id"], "amount"]
    assert alerts["amount"].tolist() == amounts.tolist()
    assert (alerts["reason"].str.len() > 0).all()


def test_alert_threshold_is_inclusive(score, generated: dict) -> None:
    events = generated["payments"].head(200)
    scores, _ = score(events)
    threshold = float(scores["score"].sort_values().iloc[100])  # an actual score

    _, alerts = score(events, threshold)

    at_or_above = scores.loc[scores["score"] >= threshold, "payment_id"]
    assert len(at_or_above) >= 100
    assert alerts["payment_id"].tolist() == at_or_above.tolist()


def test_obvious_fraud_alerts_with_its_reasons(score) -> None:
    fraud = payment(
        merchant_category="crypto",
        amount=2500.0,
        country="NG",
        card_present=False,
        event_time=1_735_696_800_000,  # 2025-01-01 02:00 UTC
    )
    scores, alerts = score(pd.DataFrame([fraud]))

    assert len(scores) == 1
    assert scores["score"].iloc[0] >= THRESHOLD
    assert alerts["payment_id"].tolist() == ["p-900001"]
    assert alerts["reason"].iloc[0] == (
        "cross-border, card not present, high amount, risky merchant category, night-time"
    )


def test_a_burst_of_everyday_payments_alerts_as_a_burst(score) -> None:
    start = 1_735_732_800_000
    burst = pd.DataFrame(
        [
            payment(payment_id=f"p-90000{i}", card_present=False, event_time=start + i * 60_000)
            for i in range(6)
        ]
    )
    scores, alerts = score(burst)

    assert scores["score"].iloc[0] < 0.05  # one payment alone is everyday
    assert scores["score"].iloc[-1] >= THRESHOLD
    assert alerts["reason"].iloc[-1] == "card not present, burst of payments"


def test_everyday_payment_scores_low_without_alert(score) -> None:
    scores, alerts = score(pd.DataFrame([payment()]))

    assert scores["payment_id"].tolist() == ["p-900001"]
    assert scores["account_id"].tolist() == ["a-00001"]
    assert scores["score"].iloc[0] < 0.05
    assert alerts.empty
    assert list(alerts.columns) == list(ALERT_COLUMNS)


@pytest.mark.parametrize("typed", [True, False], ids=["typed", "object-columns"])
def test_empty_batch_gives_empty_outputs(score, generated: dict, typed: bool) -> None:
    empty = generated["payments"].iloc[:0] if typed else pd.DataFrame(columns=list(PAYMENT_COLUMNS))
    scores, alerts = score(empty)

    assert scores.empty
    assert alerts.empty
    assert list(scores.columns) == list(SCORE_COLUMNS)
    assert list(alerts.columns) == list(ALERT_COLUMNS)


def test_batch_missing_a_column_is_rejected(generated: dict) -> None:
    with pytest.raises(ValueError, match="amount"):
        clean_payments(generated["payments"].drop(columns="amount"))


# --- Avro schemas ------------------------------------------------------------------


def load_schema(name: str) -> dict:
    return fastavro.parse_schema(json.loads((PROJECT_ROOT / "schemas" / name).read_text()))


def avro_round_trip(schema: dict, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    decoded = []
    for record in records:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, schema, record)
        buffer.seek(0)
        decoded.append(fastavro.schemaless_reader(buffer, schema))
    return decoded


def test_avro_schemas_match_columns_and_document_fields() -> None:
    expected = {
        "payment.avsc": ("payment_fraud.Payment", PAYMENT_COLUMNS),
        "score.avsc": ("payment_fraud.Score", SCORE_COLUMNS),
        "alert.avsc": ("payment_fraud.Alert", ALERT_COLUMNS),
        "payment_features.avsc": ("payment_fraud.PaymentFeatures", PAYMENT_FEATURE_COLUMNS),
    }
    for file_name, (full_name, columns) in expected.items():
        schema = load_schema(file_name)
        assert schema["name"] == full_name
        assert tuple(field["name"] for field in schema["fields"]) == columns
        assert all(field.get("doc") for field in schema["fields"]), file_name


def test_avro_round_trip_of_pipeline_records(score, generated: dict) -> None:
    events = generated["payments"]
    scores, alerts = score(events)
    assert len(alerts) > 0

    for file_name, frame in [
        ("payment.avsc", events.head(100)),
        ("score.avsc", scores.head(100)),
        ("alert.avsc", alerts),
    ]:
        records = frame.to_dict(orient="records")
        assert avro_round_trip(load_schema(file_name), records) == records, file_name

    decoded = avro_round_trip(load_schema("payment.avsc"), events.head(1).to_dict("records"))
    assert type(decoded[0]["event_time"]) is int
    assert type(decoded[0]["card_present"]) is bool
