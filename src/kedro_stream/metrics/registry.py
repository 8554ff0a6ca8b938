"""The service's metrics: Prometheus conventions (base units, ``_total`` counters), the
``kedro_stream_`` prefix, and only low-cardinality labels: group, topic, partition, namespace.

Each service owns a registry of its own, so tests (and several services in one process) never
share series.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from kedro import __version__ as kedro_version
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from kedro_stream.version import __version__

_BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class StreamMetrics:
    """Every metric of one stream service, in a registry of its own."""

    def __init__(self, *, group: str, namespace: str | None, guarantee: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.group = group
        self.namespace = namespace or ""
        r = self.registry
        Info("kedro_stream_build", "Versions and settings of this service.", registry=r).info(
            {
                "version": __version__,
                "kedro_version": kedro_version,
                "group": group,
                "namespace": self.namespace,
                "guarantee": guarantee,
            }
        )
        topic = ("group", "topic")
        partition = ("group", "topic", "partition")
        self.consumed = Counter(
            "kedro_stream_records_consumed", "Records read and committed.", topic, registry=r
        )
        self.produced = Counter(
            "kedro_stream_records_produced", "Output records acknowledged.", topic, registry=r
        )
        self.dead_lettered = Counter(
            "kedro_stream_records_dead_lettered",
            "Records sent to the dead-letter topic.",
            ("group", "topic", "stage"),
            registry=r,
        )
        self.batch_size = Histogram(
            "kedro_stream_batch_records",
            "Records per micro-batch.",
            ("group",),
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.run_duration = Histogram(
            "kedro_stream_pipeline_run_duration_seconds",
            "Duration of one namespace run.",
            ("namespace",),
            buckets=_SECONDS_BUCKETS,
            registry=r,
        )
        self.end_to_end = Histogram(
            "kedro_stream_end_to_end_latency_seconds",
            "From a record's timestamp to the commit of its batch.",
            topic,
            buckets=_SECONDS_BUCKETS,
            registry=r,
        )
        self.commit_duration = Histogram(
            "kedro_stream_commit_duration_seconds",
            "Publishing and committing one batch (flush, delivery reports, offset commit).",
            ("group",),
            buckets=_SECONDS_BUCKETS,
            registry=r,
        )
        self.commit_failures = Counter(
            "kedro_stream_commit_failures",
            "Batches a rebalance overtook: nothing of them published, read again.",
            ("group",),
            registry=r,
        )
        self.batch_failures = Counter(
            "kedro_stream_batch_failures",
            "Failed attempts at processing a batch.",
            ("group",),
            registry=r,
        )
        self.isolation_runs = Counter(
            "kedro_stream_isolation_runs",
            "Namespace runs spent finding the records that fail on their own (on_failure: "
            "isolate), besides the batch's own runs.",
            ("group",),
            registry=r,
        )
        self.isolated = Counter(
            "kedro_stream_isolated_records",
            "Records found to fail on their own (on_failure: isolate), counted when found; "
            "their dead letters count in kedro_stream_records_dead_lettered once committed.",
            ("group",),
            registry=r,
        )
        self.rebalances = Counter(
            "kedro_stream_rebalances",
            "Partition assignment changes seen by this member.",
            ("group",),
            registry=r,
        )
        self.last_commit = Gauge(
            "kedro_stream_last_commit_timestamp_seconds",
            "Unix time of the last successful commit.",
            ("group",),
            registry=r,
        )
        self.assigned = Gauge(
            "kedro_stream_assigned_partitions",
            "Partitions assigned to this member.",
            ("group",),
            registry=r,
        )
        self.lag = Gauge(
            "kedro_stream_consumer_lag",
            "High watermark minus committed offset, per assigned partition.",
            partition,
            registry=r,
        )
        self.committed_offset = Gauge(
            "kedro_stream_committed_offset",
            "Committed offset per assigned partition.",
            partition,
            registry=r,
        )
        self.high_watermark = Gauge(
            "kedro_stream_high_watermark",
            "High watermark per assigned partition.",
            partition,
            registry=r,
        )
        self.restore_duration = Histogram(
            "kedro_stream_state_restore_duration_seconds",
            "Catching one partition's state store up with its changelog.",
            ("group", "state"),
            buckets=_SECONDS_BUCKETS,
            registry=r,
        )
        self.restored = Counter(
            "kedro_stream_state_restored_records",
            "Changelog records read while restoring state stores.",
            ("group", "state"),
            registry=r,
        )
        self.state_keys = Gauge(
            "kedro_stream_state_keys",
            "Keys with a row in a partition's state store.",
            ("group", "state", "topic", "partition"),
            registry=r,
        )
        for metric in (
            self.batch_failures,
            self.commit_failures,
            self.isolation_runs,
            self.isolated,
            self.rebalances,
        ):
            metric.labels(group)  # exported at 0 from the start: rate() and alerts need it

    def forget_partitions(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Drop the lag series of partitions this member no longer owns."""
        for topic, partition in partitions:
            labels = (self.group, topic, str(partition))
            for gauge in (self.lag, self.committed_offset, self.high_watermark):
                try:
                    gauge.remove(*labels)
                except KeyError:
                    pass

    def committed_now(self) -> None:
        """A batch was committed: the time the no-commit alert watches."""
        self.last_commit.labels(self.group).set(time.time())
