"""The executor on a hand-built namespace: nodes run in order on a plain dict of values, each
Kedro node and dataset hook fires in the order Kedro's runners fire them (and only hooks some
plugin implements are called), templates are rendered per run, and outputs come back by short
name with full names finding them too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kedro.framework.hooks import _create_hook_manager, hook_impl
from kedro.io import DataCatalog
from kedro.pipeline import node
from kedro.pipeline.node import Node

from kedro_stream.session.calls import bind
from kedro_stream.session.compiler import CompiledNamespace
from kedro_stream.session.executor import HookDispatcher, RunOutputs, execute
from kedro_stream.session.templates import Template


def scale(x: float, factor: float) -> float:
    return x * factor


def plus_one(y: float) -> float:
    return y + 1


NODES = (
    node(scale, ["ns.x", "params:ns.factor"], "ns.y", name="scale", namespace="ns"),
    node(plus_one, "ns.y", "ns.z", name="plus_one", namespace="ns"),
)


def compiled(*nodes: Node, **fields: Any) -> CompiledNamespace:
    return CompiledNamespace(
        namespace="ns",
        steps=tuple((n, bind(n)) for n in nodes or NODES),
        inputs={"x": "ns.x"},
        outputs=fields.pop("outputs", {"ns.z": "z"}),
        parameters={"factor": "params:ns.factor"},
        static={"params:ns.factor": 2.0},
        template_inputs=fields.pop("template_inputs", ()),
        template_saves=fields.pop("template_saves", {}),
    )


class Recorder:
    """Implements every per-run hook; records each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    @hook_impl
    def before_dataset_loaded(self, dataset_name: str) -> None:
        self.calls.append(("before_dataset_loaded", dataset_name))

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str) -> None:
        self.calls.append(("after_dataset_loaded", dataset_name))

    @hook_impl
    def before_node_run(self, node: Node, run_id: str, is_async: bool) -> None:
        assert (run_id, is_async) == ("r1", False)
        self.calls.append(("before_node_run", node.name))

    @hook_impl
    def after_node_run(self, node: Node, outputs: dict[str, Any]) -> None:
        self.calls.append(("after_node_run", node.name))

    @hook_impl
    def on_node_error(self, node: Node, error: Exception) -> None:
        self.calls.append(("on_node_error", f"{node.name}: {error}"))

    @hook_impl
    def before_dataset_saved(self, dataset_name: str) -> None:
        self.calls.append(("before_dataset_saved", dataset_name))

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        self.calls.append(("after_dataset_saved", dataset_name))


def hooks(*plugins: object) -> HookDispatcher:
    manager = _create_hook_manager()
    for plugin in plugins:
        manager.register(plugin)
    return HookDispatcher(manager)


def run(
    namespace: CompiledNamespace,
    values: dict[str, Any],
    dispatcher: HookDispatcher,
    itertime_params: dict[str, Any] | None = None,
) -> RunOutputs:
    return execute(
        namespace,
        values,
        hooks=dispatcher,
        catalog=DataCatalog(),
        run_id="r1",
        itertime_params=itertime_params or {},
    )


def test_nodes_run_in_order_on_the_values_and_outputs_come_by_short_name() -> None:
    values = {"ns.x": 3.0, "params:ns.factor": 2.0}

    outputs = run(compiled(), values, hooks())

    assert outputs == {"z": 7.0}
    assert outputs.namespace == "ns"
    assert values == {"ns.x": 3.0, "params:ns.factor": 2.0, "ns.y": 6.0, "ns.z": 7.0}


def test_hooks_fire_per_node_in_kedro_s_order() -> None:
    recorder = Recorder()

    run(compiled(), {"ns.x": 3.0, "params:ns.factor": 2.0}, hooks(recorder))

    assert recorder.calls == [
        ("before_dataset_loaded", "ns.x"),
        ("after_dataset_loaded", "ns.x"),
        ("before_dataset_loaded", "params:ns.factor"),
        ("after_dataset_loaded", "params:ns.factor"),
        ("before_node_run", "ns.scale"),
        ("after_node_run", "ns.scale"),
        ("before_dataset_saved", "ns.y"),
        ("after_dataset_saved", "ns.y"),
        ("before_dataset_loaded", "ns.y"),
        ("after_dataset_loaded", "ns.y"),
        ("before_node_run", "ns.plus_one"),
        ("after_node_run", "ns.plus_one"),
        ("before_dataset_saved", "ns.z"),
        ("after_dataset_saved", "ns.z"),
    ]


def test_only_implemented_hooks_are_looked_up() -> None:
    class AfterNodeOnly:
        @hook_impl
        def after_node_run(self) -> None:
            pass

    none = hooks()
    some = hooks(AfterNodeOnly())

    assert none.before_node_run is none.after_node_run is none.before_dataset_saved is None
    assert some.after_node_run is not None
    assert some.before_node_run is some.on_node_error is some.after_dataset_loaded is None


def test_before_node_run_may_replace_a_node_s_inputs() -> None:
    class Doubler:
        @hook_impl
        def before_node_run(self, node: Node, inputs: dict[str, Any]) -> dict[str, Any] | None:
            return {"ns.x": inputs["ns.x"] * 10} if node.name == "ns.scale" else None

    values = {"ns.x": 3.0, "params:ns.factor": 2.0}

    assert run(compiled(), values, hooks(Doubler())) == {"z": 61.0}
    assert values["ns.x"] == 3.0  # the run's values keep what was injected


def test_before_node_run_returning_anything_but_a_dict_is_refused() -> None:
    class Wrong:
        @hook_impl
        def before_node_run(self) -> list[int]:
            return [1]

    with pytest.raises(TypeError, match=r"'before_node_run' must return either None or a dict"):
        run(compiled(), {"ns.x": 3.0, "params:ns.factor": 2.0}, hooks(Wrong()))


def test_a_failing_node_fires_on_node_error_and_raises_and_nothing_after_runs() -> None:
    def fails(x: float, factor: float) -> float:
        raise ArithmeticError("overflow")

    failing = node(fails, ["ns.x", "params:ns.factor"], "ns.y", name="scale", namespace="ns")
    recorder = Recorder()

    with pytest.raises(ArithmeticError, match="overflow"):
        run(compiled(failing, NODES[1]), {"ns.x": 3.0, "params:ns.factor": 2.0}, hooks(recorder))

    assert recorder.calls[-2:] == [
        ("before_node_run", "ns.scale"),
        ("on_node_error", "ns.scale: overflow"),
    ]


def test_templates_are_loaded_and_saved_with_the_run_s_values(tmp_path: Path) -> None:
    rates = Template.from_config(
        "ns.factor_table", {"type": "MemoryDataset", "data": {"day": "${oc.select:day,d0}"}}
    )
    report = Template.from_config(
        "ns.z",
        {"type": "json.JSONDataset", "filepath": f"{tmp_path}/${{oc.select:run_id,x}}.json"},
    )
    assert rates is not None and report is not None
    namespace = compiled(template_inputs=(rates,), template_saves={"ns.z": report})
    values: dict[str, Any] = {"ns.x": 1.0, "params:ns.factor": 2.0}

    outputs = run(namespace, values, hooks(), {"day": "d1", "run_id": "r1"})

    assert values["ns.factor_table"] == {"day": "d1"}
    assert (tmp_path / "r1.json").read_text() == "3.0"
    assert outputs == {"z": 3.0}  # saved and returned


def test_outputs_answer_to_full_names_too() -> None:
    outputs = RunOutputs("ns", {"scores": 1, "alerts": 2})

    assert outputs["ns.scores"] == outputs["scores"] == 1
    assert "ns.alerts" in outputs and "alerts" in outputs
    assert "other.alerts" not in outputs and 3 not in outputs
    assert outputs.get("ns.alerts") == 2
    assert outputs.get("ns.nope", "default") == "default"
    assert list(outputs) == ["scores", "alerts"]


def test_an_unknown_output_names_the_outputs() -> None:
    outputs = RunOutputs("ns", {"scores": 1, "alerts": 2})

    with pytest.raises(KeyError) as raised:
        outputs["ns.nope"]

    assert raised.value.args[0] == (
        "'ns.nope' is not an output of namespace 'ns'; outputs: 'alerts', 'scores'"
    )
