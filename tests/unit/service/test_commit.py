"""The producer's one delivery callback: a failed output must reach the commit protocol."""

from __future__ import annotations

from kedro_stream.config import KafkaConfig, parse_stream_file
from kedro_stream.kafka.clients import make_producer
from kedro_stream.service.commit import DeliveryFailures

STREAM = {
    "namespace": "scoring",
    "group_id": "g",
    "input": {"topics": ["payments"], "dataset": "payments"},
}


def test_the_producer_reports_a_failed_output_to_its_delivery_failures() -> None:
    """No broker listens on port 1, so the record times out: a real librdkafka failure,
    reported through the callback given when the producer was built, not with the record."""
    stream = parse_stream_file({"streams": {"s": STREAM}}, {}).streams["s"]
    kafka = KafkaConfig(
        bootstrap_servers="127.0.0.1:1", producer={"message.timeout.ms": 200, "log_level": 0}
    )
    failures = DeliveryFailures()
    producer = make_producer(kafka, stream, on_delivery=failures)
    producer.produce("scores", b"{}", b"key")
    assert producer.flush(10) == 0
    assert len(failures.failed) == 1
    failures.clear()
    assert failures.failed == []
