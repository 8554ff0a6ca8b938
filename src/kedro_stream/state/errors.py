"""Errors of the state room: each names the state, and the dataset, key or record at fault."""

from __future__ import annotations

from kedro_stream.errors import KedroStreamError


class StateError(KedroStreamError):
    """State cannot be kept as configured: a store that cannot be written, a missing changelog."""


class StateUpdateError(StateError):
    """A batch's state updates are not a valid replacement of its keys' rows. The nodes are
    deterministic, so running the batch again would fail the same way."""


class CorruptChangelog(StateError):
    """A changelog record is not a state row: restoring past it would silently lose a key."""
