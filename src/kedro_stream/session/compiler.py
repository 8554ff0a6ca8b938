"""Compile one pipeline namespace: sort its datasets into roles and load what is loaded once.

Inference of a free input's role, first rule that applies:
1. an explicit :class:`NamespaceSpec` lists it (a state under ``states`` → state: injected on
   every run like an input, with the state rows of the batch's keys);
2. its catalog entry says ``metadata: {kedro-stream: {role: input|artifact}}``;
3. it holds ``${itertime_params:...}`` → template (loaded per run from the rendered entry);
4. it is not declared in the catalog → input (there is nothing to load it from);
5. it is a :class:`~kedro_stream.datasets.StateDataset` → input: its snapshot serves
   ``kedro run``, the stream injects the rows;
6. its dataset type stores tables (pandas, polars, spark, ...) → input: that is what a stream
   carries; any other type (pickle, model, ...) → artifact: loaded once, like the model.
The type decides rather than the name: Kedro maps shared datasets into a namespace under their
own (un-prefixed) names, so the stream's events and the model both arrive un-prefixed. A shared
table that is reference data says so with rule 2.

Outputs, unless a spec lists them: the free outputs, plus every produced dataset the catalog
stores — what ``kedro run`` persists is a result, even when a later node also reads it (the
example's ``scores`` feed ``alerts``). The updates of each spec'd state are always outputs,
whatever the spec's ``outputs``. Outputs are returned, never saved: no I/O per run.
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kedro.io import DataCatalog, DatasetError
from kedro.pipeline import Pipeline
from kedro.pipeline.node import Node

from kedro_stream.errors import ProjectError, SpecError, choices
from kedro_stream.session.calls import NodeCall, bind
from kedro_stream.session.specs import NamespaceSpec, Role, full_name, short_name, short_param_name
from kedro_stream.session.templates import Template

METADATA_KEY = "kedro-stream"
# Module path fragments of dataset families that hold tables of records.
_TABULAR_FAMILIES = (".pandas.", ".polars.", ".spark.", ".dask.", ".ibis.", ".snowflake.")
_MEMORY_TYPES = ("MemoryDataset", "CachedDataset")
# The catalog type of kedro_stream.datasets.StateDataset, by name: that dataset belongs to the
# state room, which a session (Kedro only) does not import. A unit test holds the two equal.
STATE_DATASET_TYPE = "kedro_stream.datasets.StateDataset"


@dataclass(frozen=True)
class DatasetEntry:
    """One row of the compilation report."""

    name: str
    role: Role
    dataset_type: str
    reason: str
    missing: bool = False  # an artifact whose data is not there yet (checked without loading)
    declared: bool = True  # the catalog has an entry for it (or a pattern that matches it)
    # The columns its catalog entry declares (a StateDataset's ``columns``), when it does: what
    # a state key can be checked against before any row exists.
    columns: tuple[str, ...] | None = None


class ArtifactMissing(ProjectError):
    """An artifact could not be loaded at boot."""

    def __init__(self, dataset: str, namespace: str | None, cause: Exception) -> None:
        super().__init__(
            f"Artifact {dataset!r} of namespace {namespace!r} cannot be loaded: "
            f"{_root_cause(cause)}."
        )
        self.dataset = dataset


def _root_cause(error: BaseException) -> str:
    """Kedro's DatasetError repeats the dataset's repr; its cause says what is wrong."""
    while error.__cause__ is not None:
        error = error.__cause__
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return " ".join(lines[-1:]) or type(error).__name__


@dataclass(frozen=True)
class CompiledNamespace:
    """Everything a run of one namespace needs, resolved once."""

    namespace: str | None
    steps: tuple[tuple[Node, NodeCall], ...]  # topological order
    inputs: Mapping[str, str]  # short name -> full name (state inputs included)
    outputs: Mapping[str, str]  # full name -> short name
    parameters: Mapping[str, str]  # short name -> full name ("params:...")
    static: Mapping[str, Any]  # full name -> value: parameters and artifacts
    template_inputs: tuple[Template, ...]  # free inputs loaded per run
    template_saves: Mapping[str, Template]  # produced datasets saved per run
    states: Mapping[str, str] = field(default_factory=dict)  # short state -> short updates
    report: tuple[DatasetEntry, ...] = field(default=())

    @property
    def templates(self) -> tuple[Template, ...]:
        """Every templated dataset of the namespace, loaded or saved per run."""
        return (*self.template_inputs, *self.template_saves.values())


def namespaces_of(pipeline: Pipeline) -> list[str | None]:
    """Top-level namespaces of a pipeline, ``None`` standing for nodes without one."""
    found = {n.namespace.split(".")[0] if n.namespace else None for n in pipeline.nodes}
    return sorted(found, key=lambda ns: (ns is not None, ns or ""))


def namespace_pipeline(pipeline: Pipeline, namespace: str | None) -> Pipeline:
    """Nodes of ``namespace`` (nested namespaces included), in topological order."""
    if namespace is None:
        return Pipeline([n for n in pipeline.nodes if not n.namespace])
    return pipeline.only_nodes_with_namespaces([namespace])


def _is_stored(dataset_type: str | None) -> bool:
    return dataset_type is not None and not dataset_type.endswith(_MEMORY_TYPES)


def _metadata_role(config: Mapping[str, Any]) -> Role | None:
    declared = ((config.get("metadata") or {}).get(METADATA_KEY) or {}).get("role")
    if declared is None:
        return None
    allowed = {Role.INPUT.value, Role.ARTIFACT.value}
    if declared not in allowed:
        raise SpecError(
            f"metadata.{METADATA_KEY}.role is {declared!r}; allowed: {choices(allowed)}"
        )
    return Role(declared)


def infer_role(
    dataset_type: str | None,
    config: Mapping[str, Any],
    is_template: bool = False,
) -> tuple[Role, str]:
    """Role of a free, non-parameter input and the reason shown in the report (rules 2-6)."""
    declared = _metadata_role(config)
    if declared is not None:
        return declared, f"catalog metadata {METADATA_KEY}.role"
    if is_template:
        return Role.TEMPLATE, "catalog entry uses itertime_params"
    if not _is_stored(dataset_type):
        return Role.INPUT, "not stored in the catalog"
    if dataset_type == STATE_DATASET_TYPE:
        return Role.INPUT, "state dataset (injected)"
    if any(family in dataset_type for family in _TABULAR_FAMILIES):
        return Role.INPUT, "table dataset"
    return Role.ARTIFACT, "object dataset (loaded once)"


def _config(catalog: DataCatalog, name: str) -> dict[str, Any]:
    if name not in catalog:
        return {}
    return dict(catalog.config_resolver.resolve_pattern(name) or {})


def _declared_columns(
    dataset_type: str | None, config: Mapping[str, Any]
) -> tuple[str, ...] | None:
    if dataset_type != STATE_DATASET_TYPE or not config.get("columns"):
        return None
    return tuple(str(column) for column in config["columns"])


def _exists(catalog: DataCatalog, name: str) -> bool:
    """Whether an artifact's data is there, without loading it (a dataset that cannot tell
    counts as there: the load at start will say)."""
    try:
        return name not in catalog or catalog.exists(name)
    except Exception:  # exists() of some datasets raises where load would; report, never fail
        return True


def _resolved(name: str, namespace: str | None, allowed: set[str]) -> str:
    """A spec's name as the pipeline spells it: full names pass, short ones get the prefix."""
    return name if name in allowed else full_name(name, namespace)


def _explicit(
    names: Iterable[str] | None, namespace: str | None, allowed: set[str], what: str
) -> set[str] | None:
    if names is None:
        return None
    resolved = {_resolved(n, namespace, allowed) for n in names}
    wrong = resolved - allowed
    if wrong:
        raise SpecError(
            f"Spec of namespace {namespace!r} lists {what} {choices(wrong)} that it cannot have; "
            f"candidates: {choices(short_name(a, namespace) for a in allowed)}."
        )
    return resolved


def _is_param(name: str) -> bool:
    return name.startswith("params:") or name == "parameters"


@dataclass(frozen=True)
class _Explicit:
    """What a spec says about a namespace's datasets, as full names; ``None``: infer it."""

    inputs: set[str] | None
    artifacts: set[str] | None
    states: Mapping[str, str]  # state input -> its updates output


def _explicit_states(
    given: Mapping[str, str] | None,
    ns: str | None,
    free_data: set[str],
    produced: set[str],
    listed: set[str],
) -> dict[str, str]:
    """A spec's states as full names, checked; ``listed``: the spec's inputs and artifacts."""
    if not given:
        return {}
    _explicit(given, ns, free_data, "state inputs")
    _explicit(given.values(), ns, produced, "state updates")
    states = {
        _resolved(state, ns, free_data): _resolved(updates, ns, produced)
        for state, updates in given.items()
    }
    both = set(states) & listed
    if both:
        raise SpecError(
            f"Spec of namespace {ns!r} lists {choices(short_name(n, ns) for n in both)} both as "
            "a state and under inputs or artifacts; a state is injected with its rows on every "
            "run: list it under states only."
        )
    shared = [updates for updates, n in Counter(states.values()).items() if n > 1]
    if shared:
        raise SpecError(
            f"Spec of namespace {ns!r} gives several states the same updates "
            f"{choices(short_name(n, ns) for n in shared)}; each state needs its own."
        )
    return states


@dataclass
class _Sorted:
    """Accumulates the roles of one namespace while it is compiled."""

    report: list[DatasetEntry] = field(default_factory=list)
    static: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    template_inputs: list[Template] = field(default_factory=list)
    template_saves: dict[str, Template] = field(default_factory=dict)


def _free_input_role(
    name: str,
    namespace: str | None,
    *,
    dataset_type: str | None,
    config: Mapping[str, Any],
    spec: _Explicit,
    is_template: bool,
) -> tuple[Role, str]:
    if name in spec.states:
        return Role.STATE, "state rows of the batch's keys (injected)"
    spec_inputs, spec_artifacts = spec.inputs, spec.artifacts
    if spec_inputs is not None and name in spec_inputs:
        return Role.INPUT, "explicit spec"
    if spec_artifacts is not None and name in spec_artifacts:
        return Role.ARTIFACT, "explicit spec"
    if spec_inputs is not None and spec_artifacts is not None:
        raise SpecError(
            f"Spec of namespace {namespace!r} lists neither as input nor as artifact the free "
            f"input {short_name(name, namespace)!r}."
        )
    role, reason = infer_role(dataset_type, config, is_template)
    if role is Role.INPUT and spec_inputs is not None:
        return Role.ARTIFACT, "not among the spec's inputs"
    return role, reason


def _sort_free_inputs(
    free: set[str],
    catalog: DataCatalog,
    namespace: str | None,
    spec: _Explicit,
    out: _Sorted,
    *,
    load_artifacts: bool,
) -> None:
    for name in sorted(free):
        if _is_param(name):
            out.static[name] = catalog.load(name)
            out.parameters[short_param_name(name, namespace)] = name
            out.report.append(DatasetEntry(name, Role.PARAMETER, "parameters", "parameter"))
            continue
        dataset_type = catalog.get_type(name) if name in catalog else None
        config = _config(catalog, name)
        template = Template.from_config(name, config)
        role, reason = _free_input_role(
            name,
            namespace,
            dataset_type=dataset_type,
            config=config,
            spec=spec,
            is_template=template is not None,
        )
        if role in (Role.INPUT, Role.STATE):
            out.inputs[short_name(name, namespace)] = name
        elif template is not None:  # a per-run entry is never loaded once, whatever the spec
            role = Role.TEMPLATE
            out.template_inputs.append(template)
        elif load_artifacts:
            try:
                out.static[name] = catalog.load(name)
            except DatasetError as exc:
                raise ArtifactMissing(name, namespace, exc) from exc
        missing = role is Role.ARTIFACT and not load_artifacts and not _exists(catalog, name)
        shown_type = (dataset_type or "MemoryDataset (injected)").rsplit(".", 1)[-1]
        columns = _declared_columns(dataset_type, config)
        out.report.append(
            DatasetEntry(name, role, shown_type, reason, missing, name in catalog, columns)
        )


def _sort_produced(
    produced: set[str], outputs: set[str], updates: set[str], catalog: DataCatalog, out: _Sorted
) -> None:
    for name in sorted(produced):
        dataset_type = catalog.get_type(name) if name in catalog else None
        config = _config(catalog, name)
        template = Template.from_config(name, config)
        if template is not None:
            out.template_saves[name] = template
            reason = "rendered and saved per run"
        else:
            reason = "returned" if name in outputs else "kept in memory"
        shown_type = (dataset_type or "MemoryDataset").rsplit(".", 1)[-1]
        role = Role.OUTPUT if name in outputs else Role.INTERMEDIATE
        if name in updates:
            role, reason = Role.STATE, "state updates (to the store and changelog)"
        columns = _declared_columns(dataset_type, config)
        out.report.append(
            DatasetEntry(name, role, shown_type, reason, declared=name in catalog, columns=columns)
        )


def compile_namespace(
    pipeline: Pipeline,
    catalog: DataCatalog,
    namespace: str | None,
    spec: NamespaceSpec | None,
    *,
    load_artifacts: bool = True,
) -> CompiledNamespace:
    """Sort the namespace's datasets into roles; load its parameters and artifacts once.

    ``load_artifacts=False`` only reports: the result cannot run.
    """
    spec = spec or NamespaceSpec(namespace=namespace)
    sub = namespace_pipeline(pipeline, namespace)
    generators = [n.name for n in sub.nodes if inspect.isgeneratorfunction(n.func)]
    if generators:
        raise SpecError(
            f"Namespace {namespace!r} has generator nodes {choices(generators)}: a run returns "
            "whole outputs, so its nodes must return rather than yield."
        )
    free = sub.inputs()
    produced = sub.all_outputs()
    free_data = {n for n in free if not _is_param(n)}
    spec_inputs = _explicit(spec.inputs, namespace, free_data, "inputs")
    spec_artifacts = _explicit(spec.artifacts, namespace, free_data, "artifacts")
    spec_outputs = _explicit(spec.outputs, namespace, produced, "outputs")
    listed = (spec_inputs or set()) | (spec_artifacts or set())
    states = _explicit_states(spec.states, namespace, free_data, produced, listed)
    if spec_outputs is not None:
        outputs = spec_outputs
    else:
        stored = {n for n in produced if n in catalog and _is_stored(catalog.get_type(n))}
        outputs = sub.outputs() | stored
    outputs |= set(states.values())

    out = _Sorted()
    explicit = _Explicit(spec_inputs, spec_artifacts, states)
    _sort_free_inputs(free, catalog, namespace, explicit, out, load_artifacts=load_artifacts)
    _sort_produced(produced, outputs, set(states.values()), catalog, out)
    return CompiledNamespace(
        namespace=namespace,
        steps=tuple((node, bind(node)) for node in sub.nodes),
        inputs=out.inputs,
        outputs={name: short_name(name, namespace) for name in sorted(outputs)},
        parameters=out.parameters,
        static=out.static,
        template_inputs=tuple(out.template_inputs),
        template_saves=out.template_saves,
        states={
            short_name(state, namespace): short_name(updates, namespace)
            for state, updates in states.items()
        },
        report=tuple(out.report),
    )
