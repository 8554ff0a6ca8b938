"""Step 3 of a batch on its own: what the namespace run is given (the records as the injected
dataset, beside their state rows), that it runs through the keep-alive with the stream's run
timeout, and that its duration is observed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from kedro_stream.metrics import StreamMetrics
from kedro_stream.records import Decoded
from kedro_stream.service.runner import NamespaceRunner
from tests.fake_clients import records, stream_config

RUN_DURATION = "kedro_stream_pipeline_run_duration_seconds"
INPUT = {"topics": ["in"], "dataset": "payments"}


@dataclass
class Session:
    """Records each run's namespace and inputs; outputs ``{"out": <n of runs>}``."""

    runs: list[tuple[str | None, dict[str, Any]]] = field(default_factory=list)

    def run(self, namespace: str | None, inputs: dict[str, Any]) -> dict[str, Any]:
        self.runs.append((namespace, inputs))
        return {"out": len(self.runs)}


@dataclass
class KeepAlive:
    """Runs each call at once; records the timeout each was given."""

    timeouts: list[float | None] = field(default_factory=list)

    def call(self, fn: Any, timeout_s: float | None = None) -> Any:
        self.timeouts.append(timeout_s)
        return fn()


def good(*values: dict[str, Any]) -> list[Decoded]:
    return [
        (message, value) for message, value in zip(records("in", 0, values), values, strict=True)
    ]


def runner(
    session: Session,
    fields: tuple[str, ...] | None = None,
    metrics: StreamMetrics | None = None,
    **config: Any,
) -> NamespaceRunner:
    return NamespaceRunner(
        session,  # type: ignore[arg-type]
        stream_config(**{"input": INPUT, **config}),
        input_name="payments",
        fields=fields,
        metrics=metrics or StreamMetrics(group="g", namespace="ns", guarantee="at-least-once"),
    )


def run(
    ns_runner: NamespaceRunner, good: list[Decoded], rows: dict[str, Any], keepalive: KeepAlive
) -> dict[str, Any]:
    return ns_runner.run(good, rows, keepalive)  # type: ignore[arg-type]


def runs_observed(metrics: StreamMetrics) -> float | None:
    return metrics.registry.get_sample_value(f"{RUN_DURATION}_count", {"namespace": "ns"})


def test_without_records_there_is_no_run() -> None:
    session, keepalive = Session(), KeepAlive()
    metrics = StreamMetrics(group="g", namespace="ns", guarantee="at-least-once")

    outputs = run(runner(session, metrics=metrics), [], {"counts": pd.DataFrame()}, keepalive)

    assert outputs == {}
    assert session.runs == []
    assert keepalive.timeouts == []
    assert not runs_observed(metrics)


def test_the_records_are_injected_as_a_frame_beside_their_state_rows() -> None:
    session = Session()
    rows = pd.DataFrame({"k": ["a"], "total": [3]})

    batch = good({"k": "a", "n": 1}, {"k": "b", "n": 2})

    outputs = run(runner(session), batch, {"totals": rows}, KeepAlive())

    assert outputs == {"out": 1}
    [(namespace, inputs)] = session.runs
    assert namespace == "ns"
    assert set(inputs) == {"payments", "totals"}
    pd.testing.assert_frame_equal(inputs["payments"], pd.DataFrame({"k": ["a", "b"], "n": [1, 2]}))
    assert inputs["totals"] is rows


def test_a_schema_s_fields_give_the_frame_its_columns_in_order() -> None:
    session = Session()

    run(runner(session, fields=("n", "k", "note")), good({"k": "a", "n": 1}), {}, KeepAlive())

    assert list(session.runs[0][1]["payments"].columns) == ["n", "k", "note"]


def test_records_are_injected_as_a_list_of_dicts_when_the_input_asks_for_records() -> None:
    session = Session()

    records_input = {**INPUT, "data_type": "records"}

    run(runner(session, input=records_input), good({"n": 1}, {"n": 2}), {}, KeepAlive())

    assert session.runs[0][1]["payments"] == [{"n": 1}, {"n": 2}]


def test_the_run_goes_through_the_keep_alive_with_the_run_timeout() -> None:
    session, keepalive = Session(), KeepAlive()

    run(runner(session, run_timeout_s=2.5), good({"n": 1}), {}, keepalive)
    run(runner(session), good({"n": 1}), {}, keepalive)

    assert keepalive.timeouts == [2.5, None]
    assert len(session.runs) == 2


def test_each_run_s_duration_is_observed() -> None:
    metrics = StreamMetrics(group="g", namespace="ns", guarantee="at-least-once")
    ns_runner = runner(Session(), metrics=metrics)

    for _ in range(3):
        run(ns_runner, good({"n": 1}), {}, KeepAlive())

    assert runs_observed(metrics) == 3
