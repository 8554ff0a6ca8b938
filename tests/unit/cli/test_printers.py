"""What the commands print: ``compile``'s roles table in the order a run meets the roles,
``lag``'s table ending with its total (a partition never committed shows none), ``consume``'s
``name=URL`` lines a script can read, ``compile``'s verdict per stream and ``reset``'s plan,
saying whether anything changed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_INVALID
from rich.console import Console
from rich.table import Table

from kedro_stream.cli.printers import (
    ROLE_STYLE,
    lag_table,
    print_check,
    print_endpoints,
    print_reset,
    roles_table,
)
from kedro_stream.config import StreamConfig
from kedro_stream.metrics.lag import PartitionLag
from kedro_stream.ops.offsets import Mode, Move, Target
from kedro_stream.ops.reset import ResetPlan, StatePlan
from kedro_stream.service.preflight import StreamCheck
from kedro_stream.session import CompiledNamespace, DatasetEntry, Role


def rendered(table: Table) -> str:
    console = Console(record=True, width=200)
    console.print(table)
    return console.export_text()


def rows(text: str) -> list[list[str]]:
    """The cells of each row of a rendered table, the header's first."""
    return [
        [cell.strip() for cell in re.split("[│┃]", line.strip("│┃ "))]
        for line in text.splitlines()
        if line.startswith(("│", "┃"))
    ]


def compiled(*report: DatasetEntry) -> CompiledNamespace:
    return CompiledNamespace(
        namespace="scoring",
        steps=(),
        inputs={},
        outputs={},
        parameters={},
        static={},
        template_inputs=(),
        template_saves={},
        report=report,
    )


def test_every_role_has_a_style() -> None:
    assert set(ROLE_STYLE) == set(Role)


def test_the_roles_table_lists_datasets_in_role_order_then_by_name() -> None:
    entries = [
        DatasetEntry("scoring.scores", Role.OUTPUT, "pandas.ParquetDataset", "stored"),
        DatasetEntry("zebra", Role.INPUT, "pandas.CSVDataset", "a table"),
        DatasetEntry("scoring.velocity", Role.STATE, "StateDataset", "stream.yml state"),
        DatasetEntry("scoring.joined", Role.INTERMEDIATE, "MemoryDataset", "made and used here"),
        DatasetEntry("scoring.rates", Role.TEMPLATE, "json.JSONDataset", "itertime params"),
        DatasetEntry("model", Role.ARTIFACT, "pickle.PickleDataset", "not a table"),
        DatasetEntry("params:scoring.threshold", Role.PARAMETER, "float", "a parameter"),
        DatasetEntry("payments", Role.INPUT, "(not in catalog)", "injected"),
    ]

    text = rendered(roles_table(compiled(*entries)))

    assert text.splitlines()[0].strip() == "namespace: scoring"
    assert rows(text)[0] == ["dataset", "role", "type", "why"]
    assert rows(text)[1:] == [
        ["payments", "input", "(not in catalog)", "injected"],
        ["zebra", "input", "pandas.CSVDataset", "a table"],
        ["scoring.scores", "output", "pandas.ParquetDataset", "stored"],
        ["params:scoring.threshold", "parameter", "float", "a parameter"],
        ["model", "artifact", "pickle.PickleDataset", "not a table"],
        ["scoring.rates", "template", "json.JSONDataset", "itertime params"],
        ["scoring.joined", "intermediate", "MemoryDataset", "made and used here"],
        ["scoring.velocity", "state", "StateDataset", "stream.yml state"],
    ]


def test_the_lag_table_ends_with_the_total() -> None:
    lags = [PartitionLag("events", 0, 10, 15, 5), PartitionLag("events", 1, 3, 10, 7)]

    text = rendered(lag_table("tally", lags))

    assert text.splitlines()[0].strip() == "consumer group: tally"
    assert rows(text) == [
        ["topic", "partition", "committed", "high watermark", "lag"],
        ["events", "0", "10", "15", "5"],
        ["events", "1", "3", "10", "7"],
        ["total", "", "", "", "12"],
    ]


def test_a_partition_without_a_commit_shows_none() -> None:
    text = rendered(lag_table("tally", [PartitionLag("events", 0, OFFSET_INVALID, 15, 15)]))

    assert rows(text)[1] == ["events", "0", "-", "15", "15"]


def test_endpoints_on_every_interface_are_printed_at_the_loopback_address(
    capsys: pytest.CaptureFixture[str],
) -> None:
    print_endpoints("0.0.0.0", 9100)

    assert capsys.readouterr().out.splitlines() == [
        "metrics=http://127.0.0.1:9100/metrics",
        "healthz=http://127.0.0.1:9100/healthz",
        "readyz=http://127.0.0.1:9100/readyz",
    ]


def test_endpoints_on_one_interface_are_printed_at_its_address(
    capsys: pytest.CaptureFixture[str],
) -> None:
    print_endpoints("10.1.2.3", 8000)

    assert capsys.readouterr().out.splitlines()[0] == "metrics=http://10.1.2.3:8000/metrics"


def stream_config() -> StreamConfig:
    return StreamConfig.model_validate(
        {
            "namespace": "scoring",
            "group_id": "g",
            "input": {"topics": ["payments"], "dataset": "payments"},
            "outputs": {"scores": {"topic": "scores"}},
        }
    )


def test_a_stream_check_says_where_the_stream_reads_and_writes_and_ok() -> None:
    console = Console(record=True, width=200)

    print_check(console, StreamCheck("scoring", stream_config()))

    assert console.export_text().splitlines() == [
        "stream scoring: payments → namespace 'scoring' (pipeline __default__) → scores → "
        "scores; dead letters → payments.dlq",
        "  ok",
    ]


def test_a_stream_check_lists_warnings_then_problems_and_no_ok() -> None:
    console = Console(record=True, width=200)
    check = StreamCheck("scoring", stream_config(), problems=["bad"], warnings=["odd"])

    print_check(console, check)

    assert console.export_text().splitlines()[1:] == ["  warning: odd", "  problem: bad"]


def test_a_message_quoting_yaml_is_printed_as_it_is_not_as_markup() -> None:
    console = Console(record=True, width=200)
    problem = "Add to catalog.yml: a: {type: StateDataset, columns: [account_id, ...]} [bold]"
    check = StreamCheck("scoring", stream_config(), problems=[problem], warnings=["[red]x"])

    print_check(console, check)

    assert console.export_text().splitlines()[1:] == [
        "  warning: [red]x",
        f"  problem: {problem}",
    ]


def plan(state: StatePlan | None = None) -> ResetPlan:
    moves = [
        Move("events", 0, current=8, new=0, low=0, high=10),
        Move("events", 1, current=None, new=0, low=2, high=5),
    ]
    return ResetPlan("tally", "events", Target(Mode.EARLIEST), moves, state)


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """``print_reset`` prints through a console of its own: wide, and in plain text."""
    monkeypatch.setenv("COLUMNS", "200")
    for forcing in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(forcing, raising=False)


@pytest.mark.usefixtures("wide")
def test_a_dry_run_reset_shows_its_moves_and_says_nothing_changed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    print_reset(plan(), execute=False, project=None)

    out = capsys.readouterr().out
    assert rows(out) == [
        ["partition", "current", "new", "lag now", "lag after", "change"],
        ["0", "8", "0", "2", "10", "+8"],
        ["1", "-", "0", "3", "5", "+2"],
        ["total", "", "", "5", "15", "+10"],
    ]
    assert out.splitlines()[-1] == "dry run: nothing changed; add --execute to apply"


@pytest.mark.usefixtures("wide")
def test_an_executed_reset_says_it_committed(capsys: pytest.CaptureFixture[str]) -> None:
    print_reset(plan(), execute=True, project=None)

    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "committed the new offsets of group tally"
    assert "dry run" not in out


@pytest.mark.usefixtures("wide")
def test_a_reset_says_what_happens_to_the_state(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    state = StatePlan(
        stream="tally",
        states=["totals"],
        changelogs=["g-totals-changelog"],
        stores=[tmp_path / "data/state/g/0"],
        state_dir=tmp_path / "data/state/g",
        blocked="the development broker cannot delete topics",
    )

    print_reset(plan(state), execute=False, project=tmp_path)

    out = " ".join(capsys.readouterr().out.split())
    assert (
        "state of stream tally (totals) starts empty: would delete changelog topics "
        "(g-totals-changelog; consume makes them again) and 1 local stores under data/state/g"
    ) in out
    assert "--execute will refuse: the development broker cannot delete topics" in out
