"""A stream's inputs and outputs as ``stream.yml`` maps them onto its compiled namespace: which
dataset it injects, which outputs it publishes, which are state. Checked before the first batch
(and by ``kedro stream compile``): a misnamed dataset in stream.yml fails at start, naming the
valid ones."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kedro_stream.config import StreamConfig
from kedro_stream.errors import KedroStreamError
from kedro_stream.serde import Codec
from kedro_stream.service.encode import PublishedOutput
from kedro_stream.session.compiler import CompiledNamespace
from kedro_stream.session.specs import NamespaceSpec, short_name


def input_dataset(
    inputs: Mapping[str, str], stream: StreamConfig, states: Iterable[str] = ()
) -> str:
    """The injected input's name; ``inputs`` maps the namespace's short input names to their
    full ones, ``states`` are the short names of its state inputs.

    The stream injects that one dataset and its states' rows, so any other input would fail
    every run: refused at start instead."""
    wanted = stream.input.dataset
    if wanted not in inputs and wanted not in set(inputs.values()):
        raise KedroStreamError(
            f"stream.yml feeds dataset {wanted!r}, which is not an input of namespace "
            f"{stream.namespace!r}; inputs: {sorted(inputs)}"
        )
    fed = {wanted, *states}
    unfed = sorted(full for short, full in inputs.items() if not fed & {short, full})
    if unfed:
        raise KedroStreamError(
            f"namespace {stream.namespace!r} also takes {unfed} as injected inputs, which the "
            f"stream cannot feed: it injects {wanted!r} alone. Keep per-key state in one under "
            "the stream's state: in stream.yml, or have it loaded once as an artifact (catalog "
            "metadata: {kedro-stream: {role: artifact}})"
        )
    return wanted


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
