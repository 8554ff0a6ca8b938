"""Catalog templates: entries holding ``${itertime_params:NAME[,DEFAULT]}``, rendered per run.

Kedro resolves the catalog once at boot. The ``itertime_params`` resolver therefore leaves a
placeholder, ``${oc.select:NAME,DEFAULT}`` (the same placeholder kedro-boot writes, so catalogs
move between the two unchanged), which :class:`Template` renders per run with OmegaConf.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kedro.io import AbstractDataset
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from kedro_stream.errors import ItertimeParamsError, choices

RESOLVER_NAME = "itertime_params"
RUN_ID = "run_id"  # always available: the id of the current run
_REQUIRED = "__kedro_stream_required__"
_PLACEHOLDER = re.compile(r"\$\{oc\.select:([^,}]+)(?:,([^}]*))?\}")
_DATASET_KEY = "__kedro_stream_dataset__"


def _placeholder(name: str, default: Any = _REQUIRED) -> str:
    return f"${{oc.select:{name},{default}}}"


def register_resolver() -> None:
    """Make the config loader keep itertime placeholders instead of failing on them."""
    OmegaConf.register_resolver(RESOLVER_NAME, _placeholder, replace=True)


def _string_leaves(config: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], str]]:
    if isinstance(config, Mapping):
        return [leaf for k, v in config.items() for leaf in _string_leaves(v, (*path, k))]
    if isinstance(config, list):
        return [leaf for i, v in enumerate(config) for leaf in _string_leaves(v, (*path, i))]
    if isinstance(config, str) and _PLACEHOLDER.search(config):
        return [(path, config)]
    return []


@dataclass(frozen=True)
class Template:
    """A dataset config with placeholders, compiled once and rendered on every run."""

    dataset_name: str
    config: dict[str, Any]
    leaves: tuple[tuple[tuple[Any, ...], str], ...]
    required: frozenset[str]
    optional: frozenset[str]

    @classmethod
    def from_config(cls, dataset_name: str, config: dict[str, Any] | None) -> Template | None:
        """Return a template when the config holds placeholders, else ``None``."""
        leaves = _string_leaves(config or {})
        if not leaves:
            return None
        required, optional = set(), set()
        for _, text in leaves:
            for name, default in _PLACEHOLDER.findall(text):
                (required if default in ("", _REQUIRED) else optional).add(name.strip())
        required.discard(RUN_ID)
        optional.discard(RUN_ID)
        return cls(
            dataset_name, config or {}, tuple(leaves), frozenset(required), frozenset(optional)
        )

    @property
    def names(self) -> frozenset[str]:
        """Every ``itertime_params`` name the entry uses."""
        return self.required | self.optional

    def render(self, values: Mapping[str, Any]) -> AbstractDataset:
        """Build this run's dataset; ``values`` were checked by :func:`check_itertime_params`."""
        rendered = copy.deepcopy(self.config)
        for path, text in self.leaves:
            try:
                root = OmegaConf.create({**values, _DATASET_KEY: text})
                value = root[_DATASET_KEY]
            except (OmegaConfBaseException, ValueError) as exc:
                raise ItertimeParamsError(
                    f"Cannot render {text!r} of dataset {self.dataset_name!r}: {exc}"
                ) from exc
            target = rendered
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
        return AbstractDataset.from_config(self.dataset_name, rendered)


def check_itertime_params(
    namespace: str | None, templates: tuple[Template, ...], given: Mapping[str, Any]
) -> None:
    """Refuse unknown names and missing required names, naming the valid ones."""
    valid = {RUN_ID}.union(*(t.names for t in templates))
    unknown = set(given) - valid
    if unknown:
        raise ItertimeParamsError(
            f"Unknown itertime params {choices(unknown)} for namespace {namespace!r}; "
            f"its templates use {choices(valid)}."
        )
    missing = set().union(*(t.required for t in templates)) - set(given)
    if missing:
        raise ItertimeParamsError(
            f"Missing itertime params {choices(missing)} for namespace {namespace!r} "
            f"(they have no default in the catalog); its templates use {choices(valid)}."
        )
