"""Fit the fraud model on labelled payments and report holdout metrics."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
