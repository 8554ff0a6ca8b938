"""The compiled session on a small project covering every dataset role."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from kedro_stream import NamespaceSpec, boot_project
from kedro_stream.errors import (
    InjectionError,
    ItertimeParamsError,
    ParameterError,
    SpecError,
    UnknownNamespaceError,
)
from kedro_stream.session import Role


def batch(*amounts: float) -> pd.DataFrame:
    return pd.DataFrame({"id": range(len(amounts)), "kind": "b", "amount": list(amounts)})


def roles(session, namespace):
    return {entry.name: entry.role for entry in session.report(namespace)}


def test_inference_sorts_every_role(mini_project: Path) -> None:
    with boot_project(mini_project) as session:
        assert roles(session, "ns") == {
            "ns.batch": Role.INPUT,  # table dataset inside the namespace
            "ns.model": Role.ARTIFACT,  # object dataset inside the namespace
            "lookup": Role.ARTIFACT,  # a table, but the catalog metadata says artifact
            "params:ns.factor": Role.PARAMETER,
            "params:ns.threshold": Role.PARAMETER,
            "ns.enriched": Role.OUTPUT,  # the catalog stores it: a result, though predict reads it
            "ns.predictions": Role.INTERMEDIATE,
            "ns.summary": Role.OUTPUT,
            "ns.checked": Role.OUTPUT,
        }
        assert roles(session, "tpl") == {
            "tpl.orders": Role.INPUT,  # not in the catalog: injected
            "tpl.rates": Role.TEMPLATE,
            "tpl.converted": Role.INTERMEDIATE,
            "tpl.report": Role.OUTPUT,
        }
        assert session.namespaces == [None, "ns", "tpl"]


def test_run_injects_and_returns_outputs_by_short_name(mini_project: Path) -> None:
    with boot_project(mini_project, namespaces=["ns"]) as session:
        out = session.run("ns", inputs={"batch": batch(0.5, 4.0)})
    # value = amount * weight(b=3) * factor(2); prediction = value * 2 + 1; threshold 10
    assert out["summary"] == {"rows": 2, "high": 1}
    assert out["checked"]["prediction"].tolist() == [7.0, 49.0]
    assert set(out) == {"summary", "checked", "enriched"}


def test_full_names_are_accepted(mini_project: Path) -> None:
    with boot_project(mini_project, namespaces=["ns"]) as session:
        out = session.run("ns", inputs={"ns.batch": batch(1.0)}, parameters={"params:ns.factor": 1})
    assert out["checked"]["prediction"].tolist() == [7.0]
    assert out["ns.checked"] is out["checked"]  # as keys of the result too
    assert "ns.checked" in out and out.get("ns.summary") == out["summary"]
    assert set(out) == {"summary", "checked", "enriched"}  # iteration gives short names
    with pytest.raises(KeyError, match=r"'ns.nope' is not an output of namespace 'ns'"):
        out["ns.nope"]


def test_artifacts_load_once_for_many_runs(mini_project: Path) -> None:
    from mini_project.datasets import CountingPickleDataset

    CountingPickleDataset.loads = 0
    with boot_project(mini_project, namespaces=["ns"]) as session:
        assert CountingPickleDataset.loads == 1
        for i in range(5):
            session.run("ns", inputs={"batch": batch(float(i))})
    assert CountingPickleDataset.loads == 1


def test_unbooted_namespaces_load_no_artifacts(mini_project: Path) -> None:
    from mini_project.datasets import CountingPickleDataset

    CountingPickleDataset.loads = 0
    with boot_project(mini_project, namespaces=["tpl"]):
        assert CountingPickleDataset.loads == 0


def test_stored_datasets_are_returned_not_written(mini_project: Path) -> None:
    with boot_project(mini_project, namespaces=["ns"]) as session:
        out = session.run("ns", inputs={"batch": batch(5.0)})
    assert out["enriched"]["amount"].tolist() == [5.0]
    assert not (mini_project / "data" / "enriched.csv").exists()


def test_parameters_override_per_run_only(mini_project: Path) -> None:
    with boot_project(mini_project, namespaces=["ns"]) as session:
        high = session.run("ns", inputs={"batch": batch(1.0)}, parameters={"factor": 10.0})
        normal = session.run("ns", inputs={"batch": batch(1.0)})
    assert high["checked"]["prediction"].tolist() == [61.0]
    assert normal["checked"]["prediction"].tolist() == [13.0]


def test_runtime_params_reach_compiled_parameters(mini_project: Path) -> None:
    with boot_project(mini_project, namespaces=["ns"], runtime_params={"ns": {"factor": 0.5}}) as s:
        out = s.run("ns", inputs={"batch": batch(2.0)})
    assert out["checked"]["prediction"].tolist() == [7.0]


def test_templates_render_per_run(mini_project: Path) -> None:
    orders = pd.DataFrame({"amount": [10.0, 10.0], "currency": ["EUR", "USD"]})
    with boot_project(mini_project, namespaces=["tpl"]) as session:
        default_day = session.run(
            "tpl", inputs={"orders": orders}, itertime_params={"region": "eu"}, run_id="r1"
        )
        other_day = session.run(
            "tpl",
            inputs={"orders": orders},
            itertime_params={"region": "us", "day": "2026-02-01"},
            run_id="r2",
        )
    assert default_day["report"] == {"total": 15.0}
    assert other_day["report"] == {"total": 30.0}
    reports = mini_project / "data" / "reports"
    assert json.loads((reports / "eu" / "r1.json").read_text()) == {"total": 15.0}
    assert (reports / "us" / "r2.json").exists()


def test_node_and_dataset_hooks_fire_per_run_pipeline_hooks_once(mini_project: Path) -> None:
    from mini_project import hooks

    with boot_project(mini_project, namespaces=["ns"]) as session:
        assert hooks.CALLS.count(("before_pipeline_run", "")) == 1
        hooks.CALLS.clear()
        session.run("ns", inputs={"batch": batch(1.0)})
        session.run("ns", inputs={"batch": batch(1.0)})
        per_run = list(hooks.CALLS)
    assert [c for c in per_run if c[0] == "before_node_run"] == [
        ("before_node_run", n) for n in ["ns.enrich", "ns.predict", "ns.check", "ns.summarize"] * 2
    ]
    assert per_run.count(("after_node_run", "ns.predict")) == 2
    assert per_run.count(("after_dataset_loaded", "ns.model")) == 2
    assert per_run.count(("after_dataset_saved", "ns.summary")) == 2
    assert "before_pipeline_run" not in {c[0] for c in per_run}
    assert hooks.CALLS[-1] == ("after_pipeline_run", "")


def test_node_error_fires_hook_and_raises_the_original(mini_project: Path) -> None:
    from mini_project import hooks

    with boot_project(mini_project, namespaces=["ns"]) as session:
        with pytest.raises(ValueError, match="negative amount"):
            session.run("ns", inputs={"batch": batch(-1.0)})
        assert ("on_node_error", "ns.check") in hooks.CALLS
        ok = session.run("ns", inputs={"batch": batch(1.0)})  # the session survives a failure
    assert ok["summary"]["rows"] == 1


def test_pipeline_error_hook_when_block_raises(mini_project: Path) -> None:
    from mini_project import hooks

    with pytest.raises(RuntimeError), boot_project(mini_project, namespaces=["ns"]):
        raise RuntimeError("service stopped")
    assert hooks.CALLS[-1] == ("on_pipeline_error", "RuntimeError")


def test_explicit_spec_overrides_inference(mini_project: Path) -> None:
    spec = NamespaceSpec(namespace="ns", inputs=("batch", "model"), outputs=("summary",))
    with boot_project(mini_project, namespaces=["ns"], specs=[spec]) as session:
        assert roles(session, "ns")["ns.model"] is Role.INPUT
        out = session.run(
            "ns", inputs={"batch": batch(1.0), "model": {"slope": 0.0, "intercept": 100.0}}
        )
    assert out == {"summary": {"rows": 1, "high": 1}}


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (dict(namespace="nope"), UnknownNamespaceError, r"namespaces: 'None', 'ns', 'tpl'"),
        (dict(inputs={}), InjectionError, r"missing 'batch'.*Injectable inputs: 'batch'"),
        (
            dict(inputs={"batch": 1, "extra": 2}),
            InjectionError,
            r"'extra' is not a dataset of the namespace",
        ),
        (
            dict(inputs={"batch": 1, "model": 2}),
            InjectionError,
            r"'model' is an artifact of the namespace, not an injectable input",
        ),
        (
            dict(inputs={"batch": 1}, parameters={"nope": 1}),
            ParameterError,
            r"parameters: 'factor', 'threshold'",
        ),
        (
            dict(inputs={"batch": 1}, itertime_params={"day": "x"}),
            ItertimeParamsError,
            r"Unknown itertime params 'day'.*use 'run_id'",
        ),
    ],
)
def test_errors_name_the_valid_choices(mini_project: Path, call, error, message) -> None:
    with boot_project(mini_project) as session:
        kwargs = {"namespace": "ns", **call}
        with pytest.raises(error, match=message):
            session.run(**kwargs)


def test_missing_required_itertime_param(mini_project: Path) -> None:
    orders = pd.DataFrame({"amount": [1.0], "currency": ["EUR"]})
    with boot_project(mini_project, namespaces=["tpl"]) as session:
        with pytest.raises(ItertimeParamsError, match=r"Missing itertime params 'region'"):
            session.run("tpl", inputs={"orders": orders})


def test_boot_errors(mini_project: Path) -> None:
    with pytest.raises(UnknownNamespaceError, match=r"namespaces: 'None', 'ns', 'tpl'"):
        boot_project(mini_project, namespaces=["scorin"])
    with pytest.raises(
        UnknownNamespaceError,
        match=r"pipelines: '__default__', 'scoring', 'slow', 'tally', 'tally_bad', 'wrong'",
    ):
        boot_project(mini_project, pipeline="missing")
    with pytest.raises(
        SpecError, match=r"lists inputs 'ns.nope'.*candidates: 'batch', 'lookup', 'model'"
    ):
        boot_project(mini_project, specs=[NamespaceSpec(namespace="ns", inputs=("nope",))])


def test_runs_log_nothing_by_default(mini_project: Path, caplog: pytest.LogCaptureFixture) -> None:
    with boot_project(mini_project, namespaces=["ns"]) as session:
        caplog.clear()
        with caplog.at_level(logging.INFO):
            session.run("ns", inputs={"batch": batch(1.0)})
    assert caplog.records == []


def test_node_lines_at_debug(mini_project: Path, caplog: pytest.LogCaptureFixture) -> None:
    with boot_project(mini_project, namespaces=["ns"]) as session:
        with caplog.at_level(logging.DEBUG, logger="kedro_stream.session.executor"):
            session.run("ns", inputs={"batch": batch(1.0)}, run_id="r7")
    assert "Running node ns.predict (run r7)" in caplog.messages


def test_telemetry_hooks_are_not_registered(mini_project: Path) -> None:
    # kedro-telemetry (a dependency of kedro) can block on a network call in its catalog hook.
    with boot_project(mini_project, namespaces=["ns"]) as session:
        manager = session._hook_manager
        telemetry = [
            p
            for p, dist in manager.list_plugin_distinfo()
            if dist.project_name == "kedro-telemetry"
        ]
    assert telemetry, "kedro depends on kedro-telemetry: its entry point should have loaded"
    assert not any(manager.is_registered(plugin) for plugin in telemetry)
