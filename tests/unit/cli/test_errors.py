"""``error_line``: an error a command raises on purpose (a ``KedroStreamError``, Kafka's own
``KafkaException``, or a library error the command names) reaches the user as one ``Error:``
line and exit status 1; any other exception is a bug and keeps its traceback."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner, Result
from confluent_kafka import KafkaError, KafkaException

from kedro_stream.cli.errors import error_line
from kedro_stream.errors import KedroStreamError


def failing_command(error: Exception, *also: type[Exception]) -> click.Command:
    @click.command()
    @error_line(*also)
    def fails() -> None:
        """Fails on purpose."""
        raise error

    return fails


def invoke(command: click.Command, **kwargs: object) -> Result:
    return CliRunner().invoke(command, [], **kwargs)  # type: ignore[arg-type]


def test_a_kedro_stream_error_is_one_error_line_and_exit_status_1() -> None:
    error = KedroStreamError("topic 'payments' is not read by any stream;\n  streams:   'a', 'b'")

    result = invoke(failing_command(error))

    assert result.exit_code == 1
    assert result.stderr == "Error: topic 'payments' is not read by any stream; streams: 'a', 'b'\n"
    assert result.stdout == ""


def test_a_subclass_of_kedro_stream_error_is_caught_too() -> None:
    class Unreachable(KedroStreamError):
        pass

    result = invoke(failing_command(Unreachable("no broker\nanswered")))

    assert (result.exit_code, result.stderr) == (1, "Error: no broker answered\n")


def test_a_kafka_exception_is_one_error_line() -> None:
    error = KafkaException(KafkaError(KafkaError._TRANSPORT, "broker\n  down"))

    result = invoke(failing_command(error))

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: KafkaError{code=_TRANSPORT")
    assert 'str="broker down"' in result.stderr
    assert result.stderr.count("\n") == 1


def test_the_errors_named_in_also_are_error_lines() -> None:
    value_error = invoke(failing_command(ValueError("line 3: not JSON"), ValueError, OSError))
    missing = invoke(failing_command(FileNotFoundError("no such\nfile"), ValueError, OSError))

    assert (value_error.exit_code, value_error.stderr) == (1, "Error: line 3: not JSON\n")
    assert (missing.exit_code, missing.stderr) == (1, "Error: no such file\n")


@pytest.mark.parametrize(
    ("error", "also"),
    [(ValueError("a bug"), ()), (KeyError("a bug"), (ValueError,)), (RuntimeError("a bug"), ())],
)
def test_any_other_exception_passes_through(
    error: Exception, also: tuple[type[Exception], ...]
) -> None:
    result = invoke(failing_command(error, *also))

    assert result.exit_code == 1
    assert result.exception is error
    assert "Error:" not in result.output


def test_the_error_line_keeps_the_original_error_as_its_cause() -> None:
    error = KedroStreamError("bad")

    result = invoke(failing_command(error), standalone_mode=False)

    assert isinstance(result.exception, click.ClickException)
    assert result.exception.__cause__ is error


def test_what_the_command_returns_is_returned() -> None:
    @click.command()
    @error_line()
    def answers() -> int:
        return 42

    assert invoke(answers, standalone_mode=False).return_value == 42


def test_the_decorated_function_keeps_its_name_and_docstring() -> None:
    def produce_things(count: int) -> int:
        """Produce COUNT things."""
        return count

    decorated = error_line(ValueError)(produce_things)

    assert decorated.__name__ == "produce_things"
    assert decorated.__doc__ == "Produce COUNT things."
    assert decorated.__wrapped__ is produce_things  # type: ignore[attr-defined]
    # click names a command and writes its help from the function it decorates:
    command = failing_command(KedroStreamError("x"))
    assert (command.name, command.help) == ("fails", "Fails on purpose.")
