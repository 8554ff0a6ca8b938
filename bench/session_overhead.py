"""Per-run overhead of running the ``scoring`` namespace, side by side in one process.

Variants, measured round-robin so machine noise hits them alike:
  floor       the node functions called in order (model and threshold preloaded)
  kedro-stream  ``boot_project(...).run("scoring", inputs=...)``
  kedro-boot  kedro-boot 0.3.0 ``session.run(namespace="scoring", inputs=...)``
  runner      ``SequentialRunner`` on a freshly built catalog per batch
  session     a fresh ``KedroSession`` per batch (batch injected by a hook)
Every Kedro variant runs with the same node hooks registered (``before/after_node_run``).
The namespace keeps per-account state: each variant gets a batch and its accounts' state rows
(as kedro-stream injects them) and returns the updates with the outputs.

Usage: python bench/session_overhead.py [--rounds N] [--sizes 100,1000] [--json]
With --json the last line is one JSON object (``overhead_ms_100``, ``overhead_ms_1000``, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
PROJECT = Path(__file__).resolve().parents[1]

import pandas as pd  # noqa: E402
from kedro.framework.hooks import hook_impl  # noqa: E402
from kedro.framework.hooks.manager import _create_hook_manager  # noqa: E402
from kedro.framework.project import pipelines  # noqa: E402
from kedro.framework.session import KedroSession  # noqa: E402
from kedro.framework.startup import bootstrap_project  # noqa: E402
from kedro.io import DataCatalog, MemoryDataset  # noqa: E402
from kedro.runner import SequentialRunner  # noqa: E402

from payment_fraud.velocity import ACTIVITY_COLUMNS  # noqa: E402


class Outputs(NamedTuple):
    """What one run of the namespace returns, in the same shape for every variant."""

    payment_features: pd.DataFrame
    scores: pd.DataFrame
    alerts: pd.DataFrame
    account_activity_updates: pd.DataFrame


#: (batch, the state rows of its accounts) -> outputs
Run = Callable[[pd.DataFrame, pd.DataFrame], Outputs]


class ActivityStore:
    """Each account's state row in a dict: what kedro-stream's store keeps per partition, for
    loops that call the namespace by hand. Rows go in and out as the namespace sees them (the
    frame of ``kedro_stream.state.rows.rows_frame``), without the store's JSON encoding."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[str, Any]] = {}

    def rows_of(self, batch: pd.DataFrame) -> pd.DataFrame:
        """The known rows of the batch's accounts (none for a new account)."""
        accounts = pd.unique(batch["account_id"].to_numpy())
        rows = [self._rows[a] for a in accounts if a in self._rows]
        return pd.DataFrame.from_records(rows, columns=list(ACTIVITY_COLUMNS))

    def update(self, updates: pd.DataFrame) -> None:
        for row in updates.to_dict("records"):
            self._rows[row["account_id"]] = row


def with_state(
    batches: Iterable[pd.DataFrame], run: Run
) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """Each batch with the state rows it finds when the batches run in order."""
    store = ActivityStore()
    staged = []
    for batch in batches:
        activity = store.rows_of(batch)
        store.update(run(batch, activity).account_activity_updates)
        staged.append((batch, activity))
    return staged


class NodeHooks:
    """Stands for a plugin such as kedro-mlflow: cheap node hooks present on every run."""

    def __init__(self) -> None:
        self.calls = 0

    @hook_impl
    def before_node_run(self) -> None:
        self.calls += 1

    @hook_impl
    def after_node_run(self) -> None:
        self.calls += 1


HOOKS = NodeHooks()


class KeptMemoryDataset(MemoryDataset):
    """The runner releases a dataset once its last reader ran; a caller needs ``scores`` after."""

    def _release(self) -> None:
        pass


class BenchCatalog:
    """kedro-boot's boot-time run refuses an input with no catalog entry; and it saves each
    run's outputs to their catalog entries, which would write data/ (the features, the state)
    on every batch: they stay in memory, as for every other variant. First of the hooks, so
    a session's own ``InjectBatch`` has the last word."""

    @hook_impl(tryfirst=True)
    def after_catalog_created(self, catalog: DataCatalog) -> None:
        if "scoring.payments" not in catalog:
            catalog["scoring.payments"] = MemoryDataset()
        for name in Outputs._fields:
            catalog[f"scoring.{name}"] = KeptMemoryDataset()


class InjectBatch:
    """Puts the batch and its state rows into a fresh ``KedroSession``'s catalog and keeps the
    outputs in memory (the catalog would write them to data/)."""

    def __init__(self, batch: pd.DataFrame, activity: pd.DataFrame) -> None:
        self.inputs = {"payments": batch, "scoring.account_activity": activity}
        self.outputs = {name: KeptMemoryDataset() for name in Outputs._fields}

    @hook_impl
    def after_catalog_created(self, catalog: DataCatalog) -> None:
        for name, data in self.inputs.items():
            catalog[name] = MemoryDataset(data)
        for name, dataset in self.outputs.items():
            catalog[f"scoring.{name}"] = dataset

    def loaded(self) -> Outputs:
        return Outputs(*(dataset.load() for dataset in self.outputs.values()))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _register_pipelines_for_kedro_boot() -> None:
    """kedro-boot injects only datasets named with the namespace prefix, and the example maps
    the shared ``payments`` into ``scoring`` un-prefixed; so kedro-boot gets the same nodes
    registered as ``scoring_prefixed``, whose input is ``scoring.payments``."""
    from kedro.pipeline import pipeline

    import payment_fraud.pipeline_registry as registry
    from payment_fraud.pipelines.scoring.pipeline import base_pipeline

    register = registry.register_pipelines

    def with_prefixed() -> dict[str, Any]:
        prefixed = pipeline(base_pipeline(), namespace="scoring", inputs={"model": "fraud_model"})
        return {**register(), "scoring_prefixed": prefixed}

    registry.register_pipelines = with_prefixed


def prepare() -> tuple[pd.DataFrame, Any, float]:
    """Events, model and threshold; runs data generation and training once when missing."""
    import payment_fraud.settings as project_settings

    # every KedroSession below registers the same hooks
    project_settings.HOOKS = (HOOKS, BenchCatalog())
    _register_pipelines_for_kedro_boot()
    bootstrap_project(PROJECT)
    model_path = PROJECT / "data/06_models/fraud_model.pkl"
    events_path = PROJECT / "data/01_raw/payments.jsonl"
    if not (model_path.exists() and events_path.exists()):
        log("preparing: kedro run --pipeline data_generation, training ...")
        with KedroSession.create(PROJECT) as session:
            session.run(pipeline_names=["data_generation", "training"])
    events = pd.read_json(events_path, lines=True, dtype=False)  # as the catalog loads it
    from kedro.config import OmegaConfigLoader

    params = OmegaConfigLoader(str(PROJECT / "conf"), base_env="base", default_run_env="local")
    threshold = params["parameters"]["scoring"]["alert_threshold"]
    return events, pickle.loads(model_path.read_bytes()), threshold


def by_name(outputs: dict[str, Any]) -> Outputs:
    """Kedro-stream and kedro-boot return outputs by dataset name (short or full)."""
    named = {name.rsplit(".", 1)[-1]: data for name, data in outputs.items()}
    return Outputs(*(named[name] for name in Outputs._fields))


def variants(model: Any, threshold: float) -> dict[str, Run]:
    from kedro_boot.app.booter import boot_project as kedro_boot_project
    from kedro_boot.framework.compiler.specs import CompilationSpec

    from kedro_stream import boot_project
    from kedro_stream.session.specs import NamespaceSpec
    from payment_fraud.features import build_features
    from payment_fraud.pipelines.scoring.nodes import clean_payments, flag_alerts, score_payments
    from payment_fraud.velocity import account_velocity

    def floor(batch: pd.DataFrame, activity: pd.DataFrame) -> Outputs:
        clean = clean_payments(batch)
        velocity, updates = account_velocity(clean, activity)
        scores = score_payments(build_features(clean, velocity), model, clean)
        return Outputs(velocity, scores, flag_alerts(clean, scores, velocity, threshold), updates)

    # The state pair as stream.yml's state: section declares it to the stream; the outputs
    # named, as they are in-memory datasets here (see BenchCatalog).
    ours_spec = NamespaceSpec(
        namespace="scoring",
        outputs=("payment_features", "scores", "alerts"),
        states={"account_activity": "account_activity_updates"},
    )
    ours = boot_project(PROJECT, pipeline="scoring", namespaces=["scoring"], specs=[ours_spec])
    spec = CompilationSpec(
        namespace="scoring",
        inputs=["payments", "account_activity"],
        outputs=list(Outputs._fields),
    )
    boot = kedro_boot_project(
        PROJECT, kedro_args={"pipeline": "scoring_prefixed"}, compilation_specs=[spec]
    )
    scoring = pipelines["scoring"]
    hook_manager = _create_hook_manager()
    hook_manager.register(HOOKS)

    def runner(batch: pd.DataFrame, activity: pd.DataFrame) -> Outputs:
        outputs = {f"scoring.{name}": KeptMemoryDataset() for name in Outputs._fields}
        catalog = DataCatalog(
            datasets={
                "payments": MemoryDataset(batch),
                "scoring.account_activity": MemoryDataset(activity),
                "fraud_model": MemoryDataset(model, copy_mode="assign"),
                "params:scoring.alert_threshold": MemoryDataset(threshold),
                **outputs,
            }
        )
        SequentialRunner().run(scoring, catalog, hook_manager)
        return Outputs(*(dataset.load() for dataset in outputs.values()))

    def fresh_session(batch: pd.DataFrame, activity: pd.DataFrame) -> Outputs:
        inject = InjectBatch(batch, activity)
        with KedroSession.create(PROJECT, save_on_close=False) as session:
            session._hook_manager.register(inject)
            session.run(pipeline_names=["scoring"])
        return inject.loaded()

    return {
        "floor": floor,
        "kedro-stream": lambda b, a: by_name(
            ours.run("scoring", inputs={"payments": b, "account_activity": a})
        ),
        "kedro-boot": lambda b, a: by_name(
            boot.run(namespace="scoring", inputs={"payments": b, "account_activity": a})
        ),
        "runner": runner,
        "session": fresh_session,
    }


def measure(
    runs: dict[str, Run], batches: list[tuple[pd.DataFrame, pd.DataFrame]], rounds: int
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(rounds):
        batch, activity = batches[i % len(batches)]
        for name, run in runs.items():
            start = time.perf_counter()
            run(batch, activity)
            times[name].append((time.perf_counter() - start) * 1000)
    return times


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


def quiet_kedro_logging() -> None:
    """Kedro's rich INFO lines would cost the Kedro variants ~10-50 ms per run and flood the
    terminal, and kedro-boot's per-run dataset replacement logs a WARNING per injected dataset;
    silencing them for all (after every boot configured logging) compares the structures, not
    the log settings."""
    import logging

    logging.getLogger("kedro").setLevel(logging.WARNING)
    logging.getLogger("kedro.io.data_catalog").setLevel(logging.ERROR)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    events, model, threshold = prepare()
    runs = variants(model, threshold)
    quiet_kedro_logging()
    check_equal(runs, with_state([events.head(2000), events.iloc[2000:2100]], runs["floor"])[-1])
    summary: dict[str, Any] = {"rounds": args.rounds}
    for size in (int(s) for s in args.sizes.split(",")):
        batches = with_state(
            (events.iloc[i * size : (i + 1) * size] for i in range(10)), runs["floor"]
        )
        for run in runs.values():  # warm-up: imports, caches, first-call costs
            run(*batches[0])
        log(f"measuring {size} events per batch, {args.rounds} rounds ...")
        times = measure(runs, batches, args.rounds)
        floor = statistics.median(times["floor"])
        print(f"\n{size} events per batch ({args.rounds} rounds, round-robin)")
        print(f"{'variant':<14}{'median ms':>11}{'p99 ms':>9}{'vs floor':>10}{'overhead ms':>13}")
        for name, samples in times.items():
            median = statistics.median(samples)
            print(
                f"{name:<14}{median:>11.2f}{p99(samples):>9.2f}"
                f"{median / floor:>9.2f}x{median - floor:>13.2f}"
            )
            summary[f"{name}_median_ms_{size}"] = round(median, 3)
            summary[f"{name}_p99_ms_{size}"] = round(p99(samples), 3)
        summary[f"overhead_ms_{size}"] = round(statistics.median(times["kedro-stream"]) - floor, 3)
        summary[f"ratio_vs_kedro_boot_{size}"] = round(
            statistics.median(times["kedro-boot"]) / statistics.median(times["kedro-stream"]), 2
        )
    print(f"\nnode hook calls: {HOOKS.calls}")
    if args.json:
        print(json.dumps(summary))


def check_equal(runs: dict[str, Run], staged: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """Every variant must compute the same outputs, or the timings compare different work."""
    expected = runs["floor"](*staged)
    for name, run in runs.items():
        for field, want, got in zip(Outputs._fields, expected, run(*staged), strict=True):
            pd.testing.assert_frame_equal(
                got.reset_index(drop=True), want.reset_index(drop=True), obj=f"{name} {field}"
            )


if __name__ == "__main__":
    main()
