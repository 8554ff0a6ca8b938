"""Bind a Kedro node to a direct call of its function, mapping inputs and outputs once."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kedro.pipeline.node import Node

NodeCall = Callable[[Mapping[str, Any]], dict[str, Any]]


def bind(node: Node) -> NodeCall:
    """Call ``node.func`` directly with its inputs mapped as ``Node.run`` would.

    ``Node.run`` formats the node's name for an INFO line on every call, even when INFO is
    off (~20 µs a node). The input/output forms live only in ``Node._inputs``/``_outputs``;
    any form not handled here falls back to ``Node.run``.
    """
    func, ins, outs = node.func, node._inputs, node._outputs

    def call(inputs: Mapping[str, Any]) -> Any:
        if ins is None:
            return func()
        if isinstance(ins, str):
            return func(inputs[ins])
        if isinstance(ins, list):
            return func(*[inputs[name] for name in ins])
        return func(**{arg: inputs[name] for arg, name in ins.items()})

    if not isinstance(ins, (str, list, dict, type(None))):
        return node.run
    if outs is None:
        return lambda inputs: (call(inputs), {})[1]
    if isinstance(outs, str):
        return lambda inputs: {outs: call(inputs)}
    if isinstance(outs, list):
        names = tuple(outs)

        def as_list(inputs: Mapping[str, Any]) -> dict[str, Any]:
            result = call(inputs)
            if not isinstance(result, (list, tuple)) or len(result) != len(names):
                raise ValueError(
                    f"Node {node.name!r} must return a list or tuple of {len(names)} values "
                    f"for outputs {list(names)}, got {type(result).__name__}."
                )
            return dict(zip(names, result, strict=True))

        return as_list
    if isinstance(outs, dict):
        mapping = dict(outs)

        def as_dict(inputs: Mapping[str, Any]) -> dict[str, Any]:
            result = call(inputs)
            if not isinstance(result, dict) or not mapping.keys() <= result.keys():
                raise ValueError(
                    f"Node {node.name!r} must return a dict with keys {sorted(mapping)}, "
                    f"got {type(result).__name__}."
                )
            return {name: result[key] for key, name in mapping.items()}

        return as_dict
    return node.run
