"""``lag`` without ``--topic`` reads the topics of the streams whose group it was given: the
group's own listing of offsets is empty on the development broker, and a project knows its
topics."""

from __future__ import annotations

from typing import Any

from kedro_stream.cli.lag import _read_by_group
from kedro_stream.config import StreamFile, parse_stream_file


def stream(group: str, *topics: str) -> dict[str, Any]:
    return {"group_id": group, "input": {"topics": list(topics), "dataset": "events"}}


def stream_file(**streams: dict[str, Any]) -> StreamFile:
    return parse_stream_file({"streams": streams}, {})


def test_the_topics_of_the_groups_streams_each_once() -> None:
    file = stream_file(
        scoring=stream("fraud", "payments", "refunds"),
        audit=stream("audit", "payments", "logins"),
        alerts=stream("fraud", "refunds", "chargebacks"),
    )

    assert _read_by_group(file, "fraud") == ["payments", "refunds", "chargebacks"]


def test_no_topics_for_a_group_no_stream_has() -> None:
    assert _read_by_group(stream_file(scoring=stream("fraud", "payments")), "other") == []
    assert _read_by_group(stream_file(), "fraud") == []
