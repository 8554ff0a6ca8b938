"""The example's velocity features, streamed in micro-batches of any size over 8 partitions,
equal what `kedro run` computes over the same payments in one batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.kafka_helpers import produce_payments, read_topic
from tests.reconcile import assert_reconciled, expected_outputs, reconcile_features
from tests.stream_helpers import configure, create_input, payments, run_stream, topics

pytestmark = pytest.mark.integration
PARTITIONS = 8
COUNT = 600


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_streamed_features_equal_kedro_run(
    kafka_broker, stream_project: Path, batch_size: int
) -> None:
    names = topics(f"velocity{batch_size}")
    bootstrap = kafka_broker.bootstrap_servers
    create_input(kafka_broker, names, PARTITIONS)
    configure(stream_project, names, **{"batch.max_size": batch_size, "batch.max_wait_ms": 50})
    good = payments(stream_project, COUNT)
    produce_payments(bootstrap, names["input"], good)

    progress = run_stream(stream_project, names, bootstrap, max_messages=COUNT, idle_timeout_s=30)

    assert progress.records == COUNT
    assert progress.batches >= COUNT // batch_size
    expected = expected_outputs(stream_project, good)
    features = read_topic(bootstrap, names["features"], expect=COUNT)
    assert_reconciled(reconcile_features(expected, features), exact=True)
    # Accounts repeat within these payments, so state really carried between batches.
    assert max(json.loads(m.value())["count_24h"] for m in features) >= 2
