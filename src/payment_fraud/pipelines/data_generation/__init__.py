"""Generate deterministic synthetic payments for training and batch scoring."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
