"""Stage 3 of a batch: the namespace's output datasets → messages for their topics.

A record that carries the metadata columns of its source (``input.metadata_columns``) is
written without them and with its source's headers. An output that cannot be written in its
topic's format raises :class:`~kedro_stream.serde.EncodeError`: running the batch again would
fail the same way, so the service does not retry it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from kedro_stream.records import Decoded, Headers, Outgoing
from kedro_stream.serde import METADATA_COLUMNS, Codec, EncodeError, records_of

_METADATA = frozenset(METADATA_COLUMNS)
SourceHeaders = dict[tuple[str, int, int], Headers]


@dataclass(frozen=True)
class PublishedOutput:
    """One output dataset of the namespace and the topic it is published to."""

    name: str
    topic: str
    codec: Codec
    key: str | None  # the record field written as the message key


class Encoder:
    """Step 4 of a batch: the published outputs' codecs over the run's output datasets."""

    def __init__(self, outputs: Iterable[PublishedOutput], *, with_metadata: bool) -> None:
        self.outputs = list(outputs)
        self._with_metadata = with_metadata  # only then can a record name its source

    def encode(self, datasets: Mapping[str, Any], good: list[Decoded]) -> list[Outgoing]:
        """Messages for every published output in ``datasets`` (the run's outputs)."""
        if not datasets:  # no good record, no run
            return []
        source_headers: SourceHeaders = (
            {(m.topic(), m.partition(), m.offset()): m.headers() for m, _ in good if m.headers()}
            if self._with_metadata
            else {}
        )
        return [
            message
            for output in self.outputs
            for message in _encode(output, datasets[output.name], source_headers)
        ]


def _encode(output: PublishedOutput, data: Any, source_headers: SourceHeaders) -> list[Outgoing]:
    topic, encode, key_field = output.topic, output.codec.encode, output.key
    try:
        records = records_of(data)
    except TypeError as exc:  # not a frame, a list of dicts or a dict: no run would change that
        raise EncodeError(f"output {output.name!r}: {exc}") from exc
    # A frame's columns tell at once whether any of its records carries metadata.
    may_carry = not isinstance(data, pd.DataFrame) or not _METADATA.isdisjoint(data.columns)
    messages = []
    for record in records:
        body, headers = record, None
        if may_carry and not _METADATA.isdisjoint(record):  # copy only those records
            source = (record.get("_topic"), record.get("_partition"), record.get("_offset"))
            body = {k: v for k, v in record.items() if k not in _METADATA}
            headers = list(source_headers.get(source, []))  # type: ignore[call-overload]
        messages.append(Outgoing(topic, encode(body), _key(body, key_field), headers))
    return messages


def _key(record: Mapping[str, Any], field: str | None) -> bytes | None:
    value = record.get(field) if field else None
    return None if value is None else str(value).encode()
