"""A command's errors in one ``Error:`` line.

Every error kedro-stream raises on purpose is a :class:`KedroStreamError` whose message says
what is wrong and what to do; a traceback would bury it. confluent-kafka's ``KafkaException``
is let through the same way: it is the broker's answer, and it names the problem.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click
from confluent_kafka import KafkaException

from kedro_stream.errors import KedroStreamError, flattened

F = TypeVar("F", bound=Callable[..., Any])


def error_line(*also: type[Exception]) -> Callable[[F], F]:
    """Turn a :class:`KedroStreamError` or ``KafkaException`` raised by the decorated command
    (and the library errors ``also`` names, which it expects of its inputs) into one
    ``Error:`` line and exit status 1. Put it below the click decorators."""
    caught = (KedroStreamError, KafkaException, *also)

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return command(*args, **kwargs)
            except caught as exc:
                raise click.ClickException(flattened(exc)) from exc

        return run  # type: ignore[return-value]

    return decorate
