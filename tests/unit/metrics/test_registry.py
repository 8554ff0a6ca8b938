"""The service's Prometheus registry as a scrape sees it: ``kedro_stream_*`` names in base units,
counters as ``_total``, only low-cardinality labels, the alerting counters at 0 from the start,
the lag series of lost partitions dropped, and one registry per service."""

from __future__ import annotations

import time

from prometheus_client.samples import Sample

from kedro_stream.metrics import StreamMetrics
from tests.metrics_helpers import populate

LABELS = {"group", "topic", "partition", "namespace", "stage", "state"}
#: Units that are not Prometheus' base units (seconds, bytes, ratios).
NOT_BASE_UNITS = {"ms", "millis", "milliseconds", "us", "microseconds", "minutes", "hours"}
#: Counters the dashboard and alerts take rate() of.
COUNTERS = {
    "kedro_stream_records_consumed",
    "kedro_stream_records_produced",
    "kedro_stream_records_dead_lettered",
    "kedro_stream_commit_failures",
    "kedro_stream_batch_failures",
    "kedro_stream_isolation_runs",
    "kedro_stream_isolated_records",
    "kedro_stream_rebalances",
    "kedro_stream_state_restored_records",
}
AT_ZERO = (
    "kedro_stream_commit_failures_total",
    "kedro_stream_batch_failures_total",
    "kedro_stream_isolation_runs_total",
    "kedro_stream_isolated_records_total",
    "kedro_stream_rebalances_total",
)
PARTITION_GAUGES = (
    "kedro_stream_consumer_lag",
    "kedro_stream_committed_offset",
    "kedro_stream_high_watermark",
)


def metrics(group: str = "g") -> StreamMetrics:
    return StreamMetrics(group=group, namespace="ns", guarantee="at-least-once")


def scrape(m: StreamMetrics) -> dict[str, tuple[str, list[Sample]]]:
    """Family name → its type and samples, named as /metrics exports them (``_total``,
    ``_created``, ``_bucket``, ``_info``)."""
    return {family.name: (family.type, family.samples) for family in m.registry.collect()}


def set_partition(m: StreamMetrics, topic: str, partition: int) -> None:
    labels = (m.group, topic, str(partition))
    for gauge in (m.lag, m.committed_offset, m.high_watermark):
        gauge.labels(*labels).set(7)


def partition_series(m: StreamMetrics, topic: str, partition: int) -> list[float | None]:
    labels = {"group": m.group, "topic": topic, "partition": str(partition)}
    return [m.registry.get_sample_value(name, labels) for name in PARTITION_GAUGES]


def test_every_series_is_a_kedro_stream_series_in_base_units() -> None:
    m = metrics()
    populate(m)
    families = scrape(m)

    assert families
    for name, (_, samples) in families.items():
        assert name.startswith("kedro_stream_"), name
        assert not set(name.split("_")) & NOT_BASE_UNITS, name
        if {"duration", "latency", "timestamp"} & set(name.split("_")):
            assert name.endswith("_seconds"), name
        assert all(s.name.startswith(name) for s in samples)


def test_the_counters_are_exported_as_total_counters() -> None:
    m = metrics()
    populate(m)
    families = scrape(m)

    assert {name for name, (kind, _) in families.items() if kind == "counter"} == COUNTERS
    for name in COUNTERS:
        _, samples = families[name]
        assert {s.name for s in samples} == {f"{name}_total", f"{name}_created"}


def test_labels_are_only_the_low_cardinality_ones() -> None:
    """A label per key or offset would make a series per record. Histogram buckets add ``le``;
    the build info's labels are its content, one series."""
    m = metrics()
    populate(m)

    for name, (kind, samples) in scrape(m).items():
        if kind == "info":
            continue
        for sample in samples:
            assert set(sample.labels) - {"le"} <= LABELS, (name, sample.labels)


def test_the_build_info_names_the_versions_and_settings() -> None:
    m = StreamMetrics(group="g", namespace=None, guarantee="exactly-once")

    [sample] = scrape(m)["kedro_stream_build"][1]
    assert sample.name == "kedro_stream_build_info"
    assert {"version", "kedro_version"} <= sample.labels.keys()
    assert (sample.labels["group"], sample.labels["namespace"]) == ("g", "")
    assert sample.labels["guarantee"] == "exactly-once"


def test_failure_rebalance_and_isolation_counters_are_exported_at_zero_from_the_start() -> None:
    """rate() and an alert on increase() need the series before the first failure."""
    m = metrics()

    for name in AT_ZERO:
        assert m.registry.get_sample_value(name, {"group": "g"}) == 0.0, name


def test_forget_partitions_drops_the_lag_series_of_those_partitions_only() -> None:
    m = metrics()
    set_partition(m, "in", 0)
    set_partition(m, "in", 1)

    m.forget_partitions([("in", 0)])

    assert partition_series(m, "in", 0) == [None, None, None]
    assert partition_series(m, "in", 1) == [7, 7, 7]


def test_forget_partitions_tolerates_partitions_never_set() -> None:
    m = metrics()
    set_partition(m, "in", 0)

    m.forget_partitions([("in", 5), ("other", 0), ("in", 0)])

    assert partition_series(m, "in", 0) == [None, None, None]


def test_two_services_never_share_series() -> None:
    first, second = metrics(), metrics()

    first.consumed.labels("g", "in").inc(3)
    first.rebalances.labels("g").inc()

    assert first.registry is not second.registry
    labels = {"group": "g", "topic": "in"}
    assert first.registry.get_sample_value("kedro_stream_records_consumed_total", labels) == 3
    assert second.registry.get_sample_value("kedro_stream_records_consumed_total", labels) is None
    assert second.registry.get_sample_value("kedro_stream_rebalances_total", {"group": "g"}) == 0


def test_committed_now_sets_the_last_commit_time() -> None:
    m = metrics()
    before = time.time()
    m.committed_now()
    after = time.time()

    value = m.registry.get_sample_value(
        "kedro_stream_last_commit_timestamp_seconds", {"group": "g"}
    )
    assert value is not None
    assert before <= value <= after
