"""The loop's parts, built once at start from ``stream.yml`` and the compiled namespace.

Building them checks the stream against its namespace (:mod:`.namespace_io`), in the order a
user fixes mistakes: the injected input, the schemas and codecs, the state directory and
states, the published outputs; then it warns of outputs computed and dropped on every batch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kedro_stream.config import KafkaConfig, Project, StreamConfig
from kedro_stream.kafka.clients import make_restore_consumer
from kedro_stream.metrics import StreamMetrics
from kedro_stream.service.codecs import input_schema_fields, stream_codecs
from kedro_stream.service.dead_letters import DeadLetters
from kedro_stream.service.decode import Decoder
from kedro_stream.service.encode import Encoder
from kedro_stream.service.namespace_io import (
    check_state_key,
    check_states,
    input_dataset,
    published_outputs,
    state_key_fields,
    undeclared,
    undeclared_states,
    undeclared_states_message,
    unpublished_outputs,
    unpublished_warning,
)
from kedro_stream.service.runner import NamespaceRunner
from kedro_stream.session import StreamSession
from kedro_stream.state.keeper import NoState, State, StateKeeper

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoopParts:
    """What each batch goes through, in the order of the protocol."""

    decoder: Decoder  # 1. decode
    state: State  # 2. read state, 5. encode its updates, 8. apply them
    runner: NamespaceRunner  # 3. run
    encoder: Encoder  # 4. encode outputs
    dead_letters: DeadLetters  # where failed records go


def build_parts(
    session: StreamSession,
    stream: StreamConfig,
    kafka: KafkaConfig,
    *,
    project: Project,
    metrics: StreamMetrics,
) -> LoopParts:
    """The parts of ``stream``'s loop; a stream.yml that does not fit the namespace raises."""
    compiled = session.compiled(stream.namespace)
    input_name = input_dataset(
        compiled.inputs, stream, compiled.states, undeclared=undeclared(compiled)
    )
    codecs = stream_codecs(stream, kafka, project)
    dead_letters = DeadLetters(stream.dead_letter_topic, stream.namespace)
    state: State = (
        StateKeeper(
            stream,
            project_path=project.path,
            metrics=metrics,
            restore_consumer=lambda: make_restore_consumer(kafka, stream),
        )
        if stream.state
        else NoState()
    )
    check_states(compiled, stream)
    check_state_key(
        state_key_fields(compiled, stream, input_schema_fields(stream, project)), stream
    )
    missing_states = undeclared_states(compiled, stream)
    if missing_states:  # the stream needs no catalog entry; `kedro run` does
        logger.warning(undeclared_states_message(missing_states, stream))
    with_metadata = stream.input.metadata_columns
    decoder = Decoder(codecs.input, dead_letters, with_metadata=with_metadata, key_field=state.key)
    encoder = Encoder(
        published_outputs(compiled.outputs, stream, codecs.outputs), with_metadata=with_metadata
    )
    unpublished = unpublished_outputs(compiled.outputs, stream)
    if unpublished:
        logger.warning(unpublished_warning(unpublished, stream))
    runner = NamespaceRunner(
        session, stream, input_name=input_name, fields=decoder.fields, metrics=metrics
    )
    return LoopParts(decoder, state, runner, encoder, dead_letters)
