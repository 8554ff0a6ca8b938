"""Helpers for tests that read the service's metrics registry."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from kedro_stream.metrics import StreamMetrics


def populate(metrics: StreamMetrics) -> None:
    """One observation on every labelled metric, so that each one has a series to scrape."""
    for metric in vars(metrics).values():
        if not isinstance(metric, Counter | Gauge | Histogram):
            continue
        names = metric._labelnames  # prometheus_client has no public accessor
        child = metric.labels(*(f"{name}-value" for name in names)) if names else metric
        if isinstance(child, Counter):
            child.inc()
        elif isinstance(child, Gauge):
            child.set(1)
        else:
            child.observe(0.1)
