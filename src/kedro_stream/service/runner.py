"""Step 3 of a batch: the namespace run on the good records (and their state rows).

The records become the injected input dataset (a frame, or a list of dicts), the run happens on
the keep-alive's worker thread (so a long run keeps the member in its group, and
``run_timeout_s`` can abandon a hung one), and its duration is observed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from kedro_stream.config import StreamConfig
from kedro_stream.metrics import StreamMetrics
from kedro_stream.records import Decoded
from kedro_stream.serde.frames import to_dataset
from kedro_stream.service.keepalive import KeepAlive
from kedro_stream.session import StreamSession


class NamespaceRunner:
    """Runs the stream's namespace of a booted session on one batch's records."""

    def __init__(
        self,
        session: StreamSession,
        stream: StreamConfig,
        *,
        input_name: str,
        fields: tuple[str, ...] | None,
        metrics: StreamMetrics,
    ) -> None:
        self._session = session
        self._namespace = stream.namespace
        self._input_name = input_name  # the injected input dataset
        self._data_type = stream.input.data_type
        self._fields = fields  # the input schema's fields, in order, if it has one
        self._timeout_s = stream.run_timeout_s
        self._duration = metrics.run_duration.labels(metrics.namespace)

    def run(
        self, good: list[Decoded], state_rows: Mapping[str, Any], keepalive: KeepAlive
    ) -> dict[str, Any]:
        """The namespace's outputs for ``good`` and their ``state_rows`` (none without records:
        there is nothing to run)."""
        if not good:
            return {}
        dataset = to_dataset(
            [record for _, record in good], data_type=self._data_type, fields=self._fields
        )
        inputs = {self._input_name: dataset, **state_rows}
        started = time.perf_counter()
        outputs = keepalive.call(
            lambda: self._session.run(self._namespace, inputs=inputs), timeout_s=self._timeout_s
        )
        self._duration.observe(time.perf_counter() - started)
        return outputs
