"""Score payment events and raise alerts; the namespace kedro-stream runs per micro-batch."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
