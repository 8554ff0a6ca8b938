"""Exponential backoff, shared by the two things the service retries: a failing batch (per
``retry`` in stream.yml) and a commit step the broker asks to repeat."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: ``first_s``, doubled after each wait, at most ``max_s``."""

    first_s: float
    max_s: float

    def delays(self) -> Iterator[float]:
        """``first_s``, doubled after each wait, never more than ``max_s``; endless."""
        delay = self.first_s
        while True:
            yield min(delay, self.max_s)
            delay *= 2
