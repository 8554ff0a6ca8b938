"""``make demo``'s malformed records: ``kedro stream produce`` accepts them (keyed by the state
key, as the demo produces them), and the stream's decoder refuses every one, so they are what
the demo shows dead-lettered."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kedro_stream.kafka.file_producer import check_records
from kedro_stream.serde import DecodeError, build_codec
from payment_fraud.stream_demo import MALFORMED
from tests.conftest import REPO


def test_the_demo_s_malformed_records_are_produced_then_dead_lettered(tmp_path: Path) -> None:
    config = yaml.safe_load((REPO / "conf" / "base" / "stream.yml").read_text())
    (stream,) = config["streams"].values()
    (key,) = {state["key"] for state in stream["state"].values()}
    path = tmp_path / "malformed.jsonl"
    path.write_bytes(MALFORMED)

    check_records(path, fmt="json", schema_path=None, key_field=key, count=None)

    codec = build_codec(stream["input"]["format"], REPO / stream["input"]["schema"])
    for value in MALFORMED.splitlines():
        with pytest.raises(DecodeError):
            codec.decode(value)
