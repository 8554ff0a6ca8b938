"""Prometheus metrics of the stream service, and the HTTP endpoint that serves them."""

from kedro_stream.metrics.registry import StreamMetrics

__all__ = ["StreamMetrics"]
