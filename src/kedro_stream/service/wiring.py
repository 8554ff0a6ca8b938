"""What one stream reads and writes, checked against its compiled namespace before the first
batch: a misnamed dataset in stream.yml fails at start, naming the valid ones."""

from __future__ import annotations

from collections.abc import Mapping

from kedro_stream.config import StreamConfig
from kedro_stream.errors import KedroStreamError
from kedro_stream.serde import Codec
from kedro_stream.service.encode import PublishedOutput


def input_dataset(inputs: Mapping[str, str], stream: StreamConfig) -> str:
    """The injected input's name; ``inputs`` maps the namespace's names to their short ones."""
    wanted = stream.input.dataset
    if wanted in inputs or wanted in set(inputs.values()):
        return wanted
    raise KedroStreamError(
        f"stream.yml feeds dataset {wanted!r}, which is not an input of namespace "
        f"{stream.namespace!r}; inputs: {sorted(inputs)}"
    )


def published_outputs(
    outputs: Mapping[str, str], stream: StreamConfig, codecs: Mapping[str, Codec]
) -> list[PublishedOutput]:
    """stream.yml's outputs, each of which the namespace must produce."""
    produced = set(outputs.values())
    unknown = set(stream.outputs) - produced
    if unknown:
        raise KedroStreamError(
            f"stream.yml publishes {sorted(unknown)}, which namespace {stream.namespace!r} "
            f"does not output; outputs: {sorted(produced)}"
        )
    return [
        PublishedOutput(name, spec.topic, codecs[name], spec.key)
        for name, spec in stream.outputs.items()
    ]
