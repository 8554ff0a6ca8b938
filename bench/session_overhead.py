"""Per-run overhead of running the ``scoring`` namespace, side by side in one process.

Variants, measured round-robin so machine noise hits them alike:
  floor       the node functions called in order (model and threshold preloaded)
  kedro-stream  ``boot_project(...).run("scoring", inputs=...)``
  kedro-boot  kedro-boot 0.3.0 ``session.run(namespace="scoring", inputs=...)``
  runner      ``SequentialRunner`` on a freshly built catalog per batch
  session     a fresh ``KedroSession`` per batch (batch injected by a hook)
Every Kedro variant runs with the same node hooks registered (``before/after_node_run``).

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


class DeclarePrefixedInput:
    """kedro-boot's boot-time run refuses an input with no catalog entry."""

    @hook_impl
    def after_catalog_created(self, catalog: DataCatalog) -> None:
        if "scoring.payments" not in catalog:
            catalog["scoring.payments"] = MemoryDataset()


class KeptMemoryDataset(MemoryDataset):
    """The runner releases a dataset once its last reader ran; a caller needs ``scores`` after."""

    def _release(self) -> None:
        pass


class InjectBatch:
    """Puts the batch into a fresh ``KedroSession``'s catalog and keeps outputs in memory."""

    def __init__(self, batch: pd.DataFrame) -> None:
        self.batch = batch
        self.scores = KeptMemoryDataset()
        self.alerts = KeptMemoryDataset()

    @hook_impl
    def after_catalog_created(self, catalog: DataCatalog) -> None:
        catalog["payments"] = MemoryDataset(self.batch)
        catalog["scoring.scores"] = self.scores
        catalog["scoring.alerts"] = self.alerts


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
    project_settings.HOOKS = (HOOKS, DeclarePrefixedInput())
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


def variants(model: Any, threshold: float) -> dict[str, Callable[[pd.DataFrame], Any]]:
    from kedro_boot.app.booter import boot_project as kedro_boot_project
    from kedro_boot.framework.compiler.specs import CompilationSpec

    from kedro_stream import boot_project
    from payment_fraud.features import build_features
    from payment_fraud.pipelines.scoring.nodes import clean_payments, flag_alerts, score_payments

    def floor(batch: pd.DataFrame) -> Any:
        clean = clean_payments(batch)
        scores = score_payments(build_features(clean), model, clean)
        return scores, flag_alerts(clean, scores, threshold)

    ours = boot_project(PROJECT, pipeline="scoring", namespaces=["scoring"])
    spec = CompilationSpec(namespace="scoring", inputs=["payments"], outputs=["scores", "alerts"])
    boot = kedro_boot_project(
        PROJECT, kedro_args={"pipeline": "scoring_prefixed"}, compilation_specs=[spec]
    )
    scoring = pipelines["scoring"]
    hook_manager = _create_hook_manager()
    hook_manager.register(HOOKS)

    def runner(batch: pd.DataFrame) -> Any:
        catalog = DataCatalog(
            datasets={
                "payments": MemoryDataset(batch),
                "fraud_model": MemoryDataset(model, copy_mode="assign"),
                "params:scoring.alert_threshold": MemoryDataset(threshold),
                "scoring.scores": KeptMemoryDataset(),
                "scoring.alerts": KeptMemoryDataset(),
            }
        )
        SequentialRunner().run(scoring, catalog, hook_manager)
        return catalog.load("scoring.scores"), catalog.load("scoring.alerts")

    def fresh_session(batch: pd.DataFrame) -> Any:
        inject = InjectBatch(batch)
        with KedroSession.create(PROJECT, save_on_close=False) as session:
            session._hook_manager.register(inject)
            session.run(pipeline_names=["scoring"])
        return inject.scores.load(), inject.alerts.load()

    return {
        "floor": floor,
        "kedro-stream": lambda b: ours.run("scoring", inputs={"payments": b}),
        "kedro-boot": lambda b: boot.run(namespace="scoring", inputs={"payments": b}),
        "runner": runner,
        "session": fresh_session,
    }


def measure(
    runs: dict[str, Callable[[pd.DataFrame], Any]], batches: list[pd.DataFrame], rounds: int
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(rounds):
        batch = batches[i % len(batches)]
        for name, run in runs.items():
            start = time.perf_counter()
            run(batch)
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
    check_equal(runs, events.head(100))
    summary: dict[str, Any] = {"rounds": args.rounds}
    for size in (int(s) for s in args.sizes.split(",")):
        batches = [events.iloc[i * size : (i + 1) * size] for i in range(10)]
        for run in runs.values():  # warm-up: imports, caches, first-call costs
            run(batches[0])
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


def check_equal(runs: dict[str, Callable[[pd.DataFrame], Any]], batch: pd.DataFrame) -> None:
    """Every variant must compute the same scores, or the timings compare different work."""
    expected = runs["floor"](batch)[0].reset_index(drop=True)
    for name, run in runs.items():
        result = run(batch)
        if isinstance(result, dict):  # kedro-boot keys outputs by full name
            scores = result.get("scores", result.get("scoring.scores"))
        else:
            scores = result[0]
        pd.testing.assert_frame_equal(scores.reset_index(drop=True), expected, obj=name)


if __name__ == "__main__":
    main()
