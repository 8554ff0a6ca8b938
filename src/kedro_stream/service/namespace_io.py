"""A stream's inputs and outputs as ``stream.yml`` maps them onto its compiled namespace: which
dataset it injects, which outputs it publishes, which are state. Checked before the first batch
(and by ``kedro stream compile``): a misnamed dataset in stream.yml fails at start, naming the
valid ones."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from kedro_stream.config import StreamConfig
from kedro_stream.errors import KedroStreamError, did_you_mean
from kedro_stream.serde import Codec
from kedro_stream.service.encode import PublishedOutput
from kedro_stream.session.compiler import STATE_DATASET_TYPE, CompiledNamespace
from kedro_stream.session.specs import NamespaceSpec, full_name, short_name


def input_dataset(
    inputs: Mapping[str, str],
    stream: StreamConfig,
    states: Iterable[str] = (),
    *,
    undeclared: Iterable[str] = (),
) -> str:
    """The injected input's name; ``inputs`` maps the namespace's short input names to their
    full ones, ``states`` are the short names of its state inputs, ``undeclared`` the full
    names of the inputs the catalog has no entry for.

    The stream injects that one dataset and its states' rows, so any other input would fail
    every run: refused at start instead."""
    wanted = stream.input.dataset
    if wanted not in inputs and wanted not in set(inputs.values()):
        raise KedroStreamError(
            f"stream.yml feeds dataset {wanted!r}, which is not an input of namespace "
            f"{stream.namespace!r}{did_you_mean(wanted, inputs)}; inputs: {sorted(inputs)}"
        )
    fed = {wanted, *states}
    unfed = sorted(full for short, full in inputs.items() if not fed & {short, full})
    if not unfed:
        return wanted
    # A dataset with no catalog entry is most often one the catalog forgot: say that, rather
    # than that the stream cannot feed it.
    missing = [name for name in unfed if name in set(undeclared)]
    unfed = [name for name in unfed if name not in missing]
    reasons = []
    if missing:
        reasons.append(
            f"namespace {stream.namespace!r} takes {missing}, which the catalog has no entry "
            f"for, and the stream injects {wanted!r} alone: add an entry to the catalog "
            "(conf/base/catalog.yml) saying where it is loaded from, with metadata "
            "{kedro-stream: {role: artifact}} if it is a table loaded once at start; per-key "
            f"state is a {STATE_DATASET_TYPE} entry kept under the stream's state: in stream.yml"
        )
    if unfed:
        reasons.append(
            f"namespace {stream.namespace!r} also takes {unfed} as injected inputs, which the "
            f"stream cannot feed: it injects {wanted!r} alone. Keep per-key state in one under "
            "the stream's state: in stream.yml, or have it loaded once as an artifact (catalog "
            "metadata: {kedro-stream: {role: artifact}})"
        )
    raise KedroStreamError(". ".join(reasons))


def undeclared(compiled: CompiledNamespace) -> set[str]:
    """The full names of the namespace's datasets that the catalog has no entry for."""
    return {entry.name for entry in compiled.report if not entry.declared}


def _check_named_outputs(
    outputs: Mapping[str, str], stream: StreamConfig, names: Iterable[str], verb: str
) -> None:
    produced = set(outputs.values())
    unknown = set(names) - produced
    if unknown:
        raise KedroStreamError(
            f"stream.yml {verb} {sorted(unknown)}, which namespace {stream.namespace!r} does "
            f"not output; outputs: {sorted(produced)}"
        )


def check_published(outputs: Mapping[str, str], stream: StreamConfig) -> None:
    """Every output stream.yml publishes is one the namespace computes."""
    _check_named_outputs(outputs, stream, stream.outputs, "publishes")


def unpublished_outputs(outputs: Mapping[str, str], stream: StreamConfig) -> list[str]:
    """Outputs the namespace computes that stream.yml neither publishes, keeps as state, nor
    ignores: each run computes them and throws them away, which a user who forgot one would
    never notice."""
    _check_named_outputs(outputs, stream, stream.ignore_outputs, "ignores")
    kept = {*stream.outputs, *stream.ignore_outputs, *state_updates(stream)}
    return sorted(set(outputs.values()) - kept)


def state_updates(stream: StreamConfig) -> set[str]:
    """The short names of the stream's state-updates outputs."""
    return {short_name(spec.updates, stream.namespace) for spec in stream.state.values()}


def check_states(compiled: CompiledNamespace, stream: StreamConfig) -> None:
    """Each state of stream.yml is a state pair of the compiled namespace."""
    if not stream.state:
        return
    pairs = {
        short_name(spec.input, stream.namespace): short_name(spec.updates, stream.namespace)
        for spec in stream.state.values()
    }
    compiled_pairs = dict(compiled.states)
    for state_input, updates in pairs.items():
        if compiled_pairs.get(state_input) != updates:
            raise KedroStreamError(
                f"stream.yml keeps state in {state_input!r} → {updates!r}, which namespace "
                f"{stream.namespace!r} was not compiled with; its states: {compiled_pairs}"
            )


def state_key_fields(
    compiled: CompiledNamespace, stream: StreamConfig, input_fields: Sequence[str] | None
) -> dict[str, tuple[str, ...]]:
    """Where the state key is known to be needed, and the fields there: the input records'
    fields when their schema says them (``input_fields``), and the columns each state's
    datasets declare in the catalog. Empty when none of them is known."""
    known: dict[str, tuple[str, ...]] = {}
    if input_fields is not None:
        known[f"the input schema {stream.input.schema_path}"] = tuple(input_fields)
    entries = {entry.name: entry for entry in compiled.report}
    for spec in stream.state.values():
        for dataset in (spec.input, spec.updates):
            entry = entries.get(full_name(dataset, stream.namespace))
            if entry is not None and entry.columns is not None:
                known[f"state dataset {short_name(dataset, stream.namespace)!r}"] = entry.columns
    return known


def check_state_key(
    known: Mapping[str, Sequence[str]], stream: StreamConfig, name: str | None = None
) -> None:
    """The state key is a field wherever fields are ``known`` (see :func:`state_key_fields`).

    A key that is not one would make every record a dead letter, since its state key would be
    missing; refused before the first record instead. ``name`` is the stream's name in
    stream.yml, when the caller knows it."""
    key = stream.state_key
    if key is None:
        return
    lacking = {where: fields for where, fields in known.items() if key not in fields}
    if not lacking:
        return
    fields = list(dict.fromkeys(field for found in lacking.values() for field in found))
    where = f"streams.{name}.state" if name is not None else "state"
    listed = "; ".join(f"{place}: {list(found)}" for place, found in lacking.items())
    raise KedroStreamError(
        f"{_stream_label(stream, name)} keeps state {', '.join(map(repr, stream.state))} by key "
        f"{key!r}, which is not a field of {' nor of '.join(lacking)}{did_you_mean(key, fields)}. "
        f"Fields: {listed}. The key is a field of every record, state row and update: fix "
        f"{where}.<state>.key in stream.yml"
    )


def unchecked_state_key_warning(stream: StreamConfig, name: str) -> str:
    """What to declare so that the state key can be checked before records arrive."""
    states = [spec.input for spec in stream.state.values()]
    return (
        f"State key {stream.state_key!r} of stream {name!r} is checked against nothing: no "
        "input.schema in stream.yml, and no columns in the catalog entries of state datasets "
        f"{states}; a wrong key would send every record to the dead-letter topic. Declare "
        f"columns: in the {STATE_DATASET_TYPE} entries (or give the input a schema)"
    )


def undeclared_states(compiled: CompiledNamespace, stream: StreamConfig) -> list[str]:
    """The state inputs of stream.yml that the catalog has no entry for. The stream injects
    their rows and does not need one, but ``kedro run`` of the namespace has nothing to load
    them from and fails."""
    missing = undeclared(compiled)
    return [
        spec.input
        for spec in stream.state.values()
        if full_name(spec.input, stream.namespace) in missing
    ]


def undeclared_states_message(missing: Sequence[str], stream: StreamConfig) -> str:
    """Why a state with no catalog entry matters, and the entry to add."""
    namespace = stream.namespace
    entries = "; ".join(
        f"{full_name(name, namespace)}: {{type: {STATE_DATASET_TYPE}, columns: "
        f"[{stream.state_key}, ...]}}"
        for name in missing
    )
    return (
        f"stream.yml keeps state in {list(missing)}, which the catalog has no entry for: the "
        f"stream injects the rows, but `kedro run` of namespace {namespace!r} has nothing to "
        f"load them from and fails. Add to conf/base/catalog.yml: {entries}"
    )


def _stream_label(stream: StreamConfig, name: str | None) -> str:
    """The stream as a message names it: by its stream.yml name when known, else by the topic
    ``consume --topic`` chose it by (a stateful stream reads one)."""
    if name is not None:
        return f"stream {name!r}"
    return f"the stream reading {stream.input.topics[0]!r}"


def state_specs(stream: StreamConfig) -> list[NamespaceSpec]:
    """What stream.yml's ``state:`` tells the compiler: which input and output of the
    namespace are state (the session injects one and returns the other on every run)."""
    if not stream.state:
        return []
    pairs = {spec.input: spec.updates for spec in stream.state.values()}
    return [NamespaceSpec(namespace=stream.namespace, states=pairs)]


def unpublished_warning(unpublished: list[str], stream: StreamConfig) -> str:
    """The warning for outputs computed and dropped on every batch, with the two ways out."""
    return (
        f"Namespace {stream.namespace!r} outputs {unpublished}, which stream.yml does not "
        "publish: they are computed and dropped on every batch. Publish them under outputs:, "
        "or list them under ignore_outputs: to say it is on purpose"
    )


def published_outputs(
    outputs: Mapping[str, str], stream: StreamConfig, codecs: Mapping[str, Codec]
) -> list[PublishedOutput]:
    """stream.yml's outputs, each of which the namespace must produce."""
    check_published(outputs, stream)
    return [
        PublishedOutput(name, spec.topic, codecs[name], spec.key)
        for name, spec in stream.outputs.items()
    ]
