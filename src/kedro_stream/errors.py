"""Exceptions that reach users: each message names the valid choices."""

from __future__ import annotations

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


def choices(names: Iterable[str]) -> str:
    """Render valid names for an error message, or say there are none."""
    listed = sorted(names)
    return ", ".join(repr(n) for n in listed) if listed else "(none)"
