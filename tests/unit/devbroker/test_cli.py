"""The ``broker`` command, without a broker: click refuses impossible ports and counts before
anything starts, the flags reach ``serve`` as given (hidden ones included), and an error the
broker raises on purpose is one ``Error:`` line.

``serve`` is replaced in every test: the real one would host a cluster until SIGTERM.
"""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner, Result

from kedro_stream.devbroker.cli import broker
from kedro_stream.devbroker.cluster import AUTO_CREATE_PARTITIONS
from kedro_stream.devbroker.control import EmbeddedBrokerError

SERVE = "kedro_stream.devbroker.cli.serve"


@pytest.fixture(autouse=True)
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What ``serve`` was called with; it returns at once."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(SERVE, lambda **kwargs: calls.append(kwargs))
    return calls


def run(*args: str) -> Result:
    return CliRunner().invoke(broker, list(args), prog_name="kedro-stream broker")


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--port", "0"], "--port"),
        (["--port", "65536"], "--port"),
        (["--brokers", "0"], "--brokers"),
        (["--partitions", "0"], "--partitions"),
        (["--control-port", "-1"], "--control-port"),
        (["--control-port", "65536"], "--control-port"),
        (["--initial-rebalance-delay-ms", "-1"], "--initial-rebalance-delay-ms"),
    ],
)
def test_impossible_values_are_refused_before_anything_starts(
    args: list[str], option: str, served: list[dict[str, Any]]
) -> None:
    result = run(*args)

    assert result.exit_code == 2
    assert f"Invalid value for '{option}'" in result.stderr
    assert served == []


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_works_short_and_long_and_hides_the_test_flags(
    flag: str, served: list[dict[str, Any]]
) -> None:
    result = run(flag)

    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: kedro-stream broker [OPTIONS]")
    assert "--exit-with-parent" not in result.stdout
    assert "--initial-rebalance-delay-ms" not in result.stdout
    assert served == []


def test_the_defaults_reach_serve(served: list[dict[str, Any]]) -> None:
    result = run()

    assert result.exit_code == 0, result.output
    assert served == [
        {
            "brokers": 1,
            "partitions": AUTO_CREATE_PARTITIONS,
            "topics": (),
            "port": None,
            "control_port": 0,
            "initial_rebalance_delay_ms": 0,
            "exit_with_parent": False,
        }
    ]


def test_every_flag_reaches_serve(served: list[dict[str, Any]]) -> None:
    result = run(
        *("--port", "19092", "--brokers", "3", "--topic", "a", "--topic", "b"),
        *("--partitions", "2", "--control-port", "19999"),
        *("--exit-with-parent", "--initial-rebalance-delay-ms", "100"),
    )

    assert result.exit_code == 0, result.output
    assert served == [
        {
            "brokers": 3,
            "partitions": 2,
            "topics": ("a", "b"),
            "port": 19092,
            "control_port": 19999,
            "initial_rebalance_delay_ms": 100,
            "exit_with_parent": True,
        }
    ]


@pytest.mark.parametrize(
    "error",
    [EmbeddedBrokerError("port 19092 is in use: choose another --port"), OSError("no memory")],
)
def test_a_broker_error_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    def fails(**_kwargs: Any) -> None:
        raise error

    monkeypatch.setattr(SERVE, fails)

    result = run("--port", "19092")

    assert (result.exit_code, result.stderr) == (1, f"Error: {error}\n")


def test_any_other_error_passes_through(monkeypatch: pytest.MonkeyPatch) -> None:
    bug = RuntimeError("a bug")

    def fails(**_kwargs: Any) -> None:
        raise bug

    monkeypatch.setattr(SERVE, fails)

    result = run()

    assert result.exception is bug
    assert "Error:" not in result.output
