"""Direct node calls map inputs and outputs exactly as ``Node.run`` does."""

from __future__ import annotations

import pytest
from kedro.pipeline import node

from kedro_stream.session.calls import bind

VALUES = {"a": 2, "b": 3}


def pair(x: int, y: int) -> tuple[int, int]:
    return x + y, x * y


@pytest.mark.parametrize(
    "kedro_node",
    [
        node(lambda: 7, None, "out", name="no_inputs"),
        node(lambda x: x * 10, "a", "out", name="one_input"),
        node(lambda x, y: x - y, ["a", "b"], "out", name="list_inputs"),
        node(lambda x, y: x - y, {"y": "a", "x": "b"}, "out", name="dict_inputs"),
        node(pair, ["a", "b"], ["s", "p"], name="list_outputs"),
        node(lambda x: {"k": x, "j": -x}, "a", {"k": "kk", "j": "jj"}, name="dict_outputs"),
        node(lambda x: None, "a", None, name="no_outputs"),
    ],
    ids=lambda n: n.name,
)
def test_bind_matches_node_run(kedro_node) -> None:
    inputs = {name: VALUES[name] for name in kedro_node.inputs}
    assert bind(kedro_node)(inputs) == kedro_node.run(inputs)


def test_wrong_number_of_outputs_names_the_node() -> None:
    bad = node(lambda x: (x,), "a", ["s", "p"], name="short")
    with pytest.raises(ValueError, match=r"Node 'short' must return a list or tuple of 2 values"):
        bind(bad)({"a": 1})


def test_missing_dict_output_key_names_the_node() -> None:
    bad = node(lambda x: {"k": x}, "a", {"k": "kk", "j": "jj"}, name="partial")
    expected = r"Node 'partial' must return a dict with keys \['j', 'k'\]"
    with pytest.raises(ValueError, match=expected):
        bind(bad)({"a": 1})
