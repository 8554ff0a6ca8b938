"""Exceptions that reach users: each message names the valid choices."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class KedroStreamError(Exception):
    """Base class of every error kedro-stream raises on purpose."""


class SessionUsageError(KedroStreamError, ValueError):
    """A call to a booted session asked for something the compiled namespaces cannot do."""


class UnknownNamespaceError(SessionUsageError, KeyError):
    """The namespace is not part of the booted pipeline."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class InjectionError(SessionUsageError):
    """Inputs given to a run do not match the namespace's injectable inputs."""


class ParameterError(SessionUsageError):
    """Per-run parameters name a parameter the namespace does not use."""


class ItertimeParamsError(SessionUsageError):
    """Per-run template values are unknown or missing."""


class SpecError(SessionUsageError):
    """An explicit compilation spec contradicts the pipeline."""


class ProjectError(KedroStreamError):
    """The project cannot start as asked: a pipeline does not import, an artifact is missing."""


def first_line(error: BaseException) -> str:
    """The first line of an error's message: chained library errors often run to pages, and a
    log line, a dead-letter header or a CLI error must stay one line."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""


def headline(error: BaseException, *, limit: int = 500) -> str:
    """``Class: first line``, at most ``limit`` characters: an error named in a log line or in
    another error's message, where its class says as much as its words."""
    return f"{type(error).__name__}: {first_line(error)}"[:limit]


def flattened(error: BaseException) -> str:
    """The whole message on one line, for a CLI ``Error:`` line (no class name: our messages
    say what is wrong and what to do, and a user reads them whole)."""
    return " ".join(str(error).split())


def choices(names: Iterable[str]) -> str:
    """Render valid names for an error message, or say there are none."""
    listed = sorted(names)
    return ", ".join(repr(n) for n in listed) if listed else "(none)"


def did_you_mean(name: str, names: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when one of ``names`` is close to ``name``, else nothing: a typo
    in a topic name is the commonest way to name one that nobody reads."""
    close = difflib.get_close_matches(name, list(names), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
