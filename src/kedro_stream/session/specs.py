"""Explicit compilation specs and the dataset roles they assign.

A spec is optional: ``compiler.infer_role`` gets the common case right. A spec lists names
relative to the namespace (``payments`` for ``scoring.payments``), as kedro-boot does, so
kedro-boot users can move their specs over; full names are accepted too.
"""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict


class Role(str, Enum):
    """What the compiled session does with a dataset of a namespace."""

    INPUT = "input"  # injected by the caller on every run
    OUTPUT = "output"  # returned by every run
    PARAMETER = "parameter"  # resolved once; overridable per run
    ARTIFACT = "artifact"  # loaded once at boot, shared by every run
    TEMPLATE = "template"  # catalog entry rendered per run from itertime params
    INTERMEDIATE = "intermediate"  # produced and consumed inside the namespace
    STATE = "state"  # per-key state: rows injected on every run, their updates returned


class NamespaceSpec(BaseModel):
    """Explicit roles for one namespace; ``None`` for a field means "infer it"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str | None = None
    inputs: tuple[str, ...] | None = None
    outputs: tuple[str, ...] | None = None
    artifacts: tuple[str, ...] | None = None
    # state input -> its updates output: the state rows of the batch's keys are injected on
    # every run and the rows that replace them (``_deleted`` True removes a key) are returned.
    states: dict[str, str] | None = None


def full_name(name: str, namespace: str | None) -> str:
    """``payments`` → ``scoring.payments``; names already prefixed or params pass through."""
    if namespace is None or name.startswith((f"{namespace}.", "params:")) or name == "parameters":
        return name
    return f"{namespace}.{name}"


def short_name(name: str, namespace: str | None) -> str:
    """``scoring.payments`` → ``payments``; the inverse of :func:`full_name`."""
    if namespace is not None and name.startswith(f"{namespace}."):
        return name[len(namespace) + 1 :]
    return name


def short_param_name(name: str, namespace: str | None) -> str:
    """``params:scoring.alert_threshold`` → ``alert_threshold``."""
    bare = name.removeprefix("params:")
    return short_name(bare, namespace)
