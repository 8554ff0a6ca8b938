"""``kedro stream compile``'s pre-flight: every stream of ``stream.yml`` checked without a broker.

It runs the checks ``consume`` runs at start, the same functions, so the two cannot disagree:
the file parses, the environment exists, each stream's pipeline and namespace exist, its input
is an input of the namespace, its outputs are outputs, its schemas exist and parse, its state
key is a field of the input schema and of the state datasets' declared columns, and its
artifacts are on disk (checked, not loaded). Unpublished outputs are warnings.

Two checks are compile's own, because a stream runs without them: a state whose dataset has no
catalog entry (the stream injects its rows; ``kedro run`` of the namespace fails) is a problem
here and a warning at start; a state key with nothing to check it against is a warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from kedro_stream.config import Project, StreamConfig, StreamFile
from kedro_stream.errors import KedroStreamError
from kedro_stream.service.codecs import check_schemas, input_schema_fields
from kedro_stream.service.namespace_io import (
    check_published,
    check_state_key,
    check_states,
    input_dataset,
    state_key_fields,
    state_specs,
    unchecked_state_key_warning,
    undeclared,
    undeclared_states,
    undeclared_states_message,
    unpublished_outputs,
    unpublished_warning,
)
from kedro_stream.session import Role
from kedro_stream.session.boot import compile_project, create_artifact_hint
from kedro_stream.session.compiler import CompiledNamespace


@dataclass
class StreamCheck:
    """The verdict on one stream of stream.yml."""

    name: str
    stream: StreamConfig
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Its namespace as compiled with the roles stream.yml gives; None if it did not compile.
    compiled: CompiledNamespace | None = None


def check_streams(project: Project, file: StreamFile, env: str | None) -> list[StreamCheck]:
    """Each stream's verdict; a project that cannot compile a stream's pipeline is a problem of
    that stream, and the others are still checked."""
    checks = [StreamCheck(name, stream) for name, stream in file.streams.items()]
    by_pipeline: dict[str, list[StreamCheck]] = {}
    for check in checks:
        try:
            check_schemas(check.stream, project)
        except KedroStreamError as exc:
            check.problems.append(str(exc))
        by_pipeline.setdefault(check.stream.pipeline, []).append(check)
    for pipeline, group in by_pipeline.items():
        _check_against_project(project, env, pipeline, group)
    for check in checks:
        if check.compiled is not None:
            _check_namespace_io(check, check.compiled, project)
    return checks


def _check_against_project(
    project: Project, env: str | None, pipeline: str, checks: Sequence[StreamCheck]
) -> None:
    namespaces = sorted({c.stream.namespace for c in checks}, key=lambda ns: ns or "")
    specs = {spec.namespace: spec for c in checks for spec in state_specs(c.stream)}
    try:
        compiled = compile_project(
            project, pipeline=pipeline, env=env, namespaces=namespaces, specs=specs.values()
        )
    except KedroStreamError as exc:
        for check in checks:
            check.problems.append(str(exc))
        return
    by_namespace = {c.namespace: c for c in compiled}
    for check in checks:
        check.compiled = by_namespace[check.stream.namespace]


def _check_namespace_io(check: StreamCheck, compiled: CompiledNamespace, project: Project) -> None:
    stream = check.stream
    known = state_key_fields(compiled, stream, input_schema_fields(stream, project))
    for step in (
        lambda: input_dataset(
            compiled.inputs, stream, compiled.states, undeclared=undeclared(compiled)
        ),
        lambda: check_published(compiled.outputs, stream),
        lambda: check_states(compiled, stream),
        lambda: check_state_key(known, stream, check.name),
    ):
        try:
            step()
        except KedroStreamError as exc:
            check.problems.append(str(exc))
    try:
        unpublished = unpublished_outputs(compiled.outputs, stream)
    except KedroStreamError as exc:
        check.problems.append(str(exc))
    else:
        if unpublished:
            check.warnings.append(unpublished_warning(unpublished, stream))
    if stream.state and not known:
        check.warnings.append(unchecked_state_key_warning(stream, check.name))
    missing_states = undeclared_states(compiled, stream)
    if missing_states:
        check.problems.append(undeclared_states_message(missing_states, stream))
    for entry in compiled.report:
        if entry.role is Role.ARTIFACT and entry.missing:
            check.problems.append(
                f"artifact {entry.name!r} is not there yet: it is loaded once at start, so "
                f"{create_artifact_hint(entry.name)}"
            )
