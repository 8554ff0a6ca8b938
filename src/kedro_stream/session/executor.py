"""Run a compiled namespace's nodes in topological order, firing Kedro's node and dataset hooks.

Kedro's runners build and mutate a catalog, copy every dataset through ``MemoryDataset`` and log
each node at INFO: together 5-40 ms per run (see docs/performance.md). Here values pass between
nodes in a plain dict (``copy_mode="assign"`` semantics), node lines are logged at DEBUG only, and
a hook is called only when some plugin implements it: a run costs little more than the node
functions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from kedro.io import CatalogProtocol
from kedro.pipeline.node import Node
from pluggy import PluginManager

from kedro_stream.errors import choices
from kedro_stream.session.compiler import CompiledNamespace
from kedro_stream.session.specs import short_name

logger = logging.getLogger(__name__)


class RunOutputs(dict[str, Any]):
    """A run's outputs by short name (``scores``); the full name (``scoring.scores``) finds the
    same value, so code written against a whole pipeline's names keeps working."""

    def __init__(self, namespace: str | None, outputs: dict[str, Any]) -> None:
        super().__init__(outputs)
        self.namespace = namespace

    def __missing__(self, key: str) -> Any:
        short = short_name(key, self.namespace)
        if short != key and dict.__contains__(self, short):
            return self[short]
        raise KeyError(
            f"{key!r} is not an output of namespace {self.namespace!r}; outputs: {choices(self)}"
        )

    def __contains__(self, key: object) -> bool:
        if dict.__contains__(self, key):
            return True
        return isinstance(key, str) and dict.__contains__(self, short_name(key, self.namespace))

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        """As ``dict.get``, accepting full names as keys too."""
        return self[key] if key in self else default


class HookDispatcher:
    """Per-run hooks that have at least one implementation, looked up once.

    A pluggy call costs 6-8 µs even with no implementation; a namespace of five nodes makes ~40
    such calls per run. Hooks registered after boot are not seen: register them in settings.py.
    """

    def __init__(self, hook_manager: PluginManager) -> None:
        def implemented(name: str) -> Callable[..., Any] | None:
            caller = getattr(hook_manager.hook, name)
            return caller if caller.get_hookimpls() else None

        self.before_node_run = implemented("before_node_run")
        self.after_node_run = implemented("after_node_run")
        self.on_node_error = implemented("on_node_error")
        self.before_dataset_loaded = implemented("before_dataset_loaded")
        self.after_dataset_loaded = implemented("after_dataset_loaded")
        self.before_dataset_saved = implemented("before_dataset_saved")
        self.after_dataset_saved = implemented("after_dataset_saved")


def _node_inputs(
    node: Node,
    values: Mapping[str, Any],
    hooks: HookDispatcher,
    catalog: CatalogProtocol,
    run_id: str,
) -> dict[str, Any]:
    before_load, after_load = hooks.before_dataset_loaded, hooks.after_dataset_loaded
    inputs: dict[str, Any] = {}
    for name in node.inputs:
        if before_load is not None:
            before_load(dataset_name=name, node=node)
        inputs[name] = values[name]
        if after_load is not None:
            after_load(dataset_name=name, data=inputs[name], node=node)
    if hooks.before_node_run is not None:
        responses = hooks.before_node_run(
            node=node, catalog=catalog, inputs=dict(inputs), is_async=False, run_id=run_id
        )
        for response in responses:
            if response is not None and not isinstance(response, dict):
                raise TypeError(
                    "'before_node_run' must return either None or a dictionary mapping dataset "
                    f"names to updated values, got '{type(response).__name__}' instead."
                )
            inputs.update(response or {})
    return inputs


def execute(
    compiled: CompiledNamespace,
    values: dict[str, Any],
    *,
    hooks: HookDispatcher,
    catalog: CatalogProtocol,
    run_id: str,
    itertime_params: Mapping[str, Any],
) -> RunOutputs:
    """Run the nodes on ``values`` (updated in place) and return the outputs by short name."""
    for template in compiled.template_inputs:
        values[template.dataset_name] = template.render(itertime_params).load()
    save_to = {n: t.render(itertime_params) for n, t in compiled.template_saves.items()}

    before_save, after_save = hooks.before_dataset_saved, hooks.after_dataset_saved
    debug = logger.isEnabledFor(logging.DEBUG)
    for node, call in compiled.steps:
        if debug:
            logger.debug("Running node %s (run %s)", node.name, run_id)
        inputs = _node_inputs(node, values, hooks, catalog, run_id)
        try:
            outputs = call(inputs)
        except Exception as error:
            if hooks.on_node_error is not None:
                hooks.on_node_error(
                    error=error,
                    node=node,
                    catalog=catalog,
                    inputs=inputs,
                    is_async=False,
                    run_id=run_id,
                )
            raise
        if hooks.after_node_run is not None:
            hooks.after_node_run(
                node=node,
                catalog=catalog,
                inputs=inputs,
                outputs=outputs,
                is_async=False,
                run_id=run_id,
            )
        for name, data in outputs.items():
            if before_save is not None:
                before_save(dataset_name=name, data=data, node=node)
            dataset = save_to.get(name)
            if dataset is not None:
                dataset.save(data)
            values[name] = data
            if after_save is not None:
                after_save(dataset_name=name, data=data, node=node)
    return RunOutputs(
        compiled.namespace, {short: values[full] for full, short in compiled.outputs.items()}
    )
