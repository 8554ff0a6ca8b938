"""Where a stream's state stores live on disk: the one owner of that layout.

``<state_dir>/<group>/<state>/<input topic>-<partition>``: one RocksDB directory per state and
input partition. Per group, so that two deployments of one stream (``--group-id``) never open
each other's stores; ``state_dir`` is relative to the project unless absolute.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kedro_stream.config import StreamConfig


@dataclass(frozen=True)
class StoreLayout:
    """The stores of one group's states for one input topic."""

    root: Path  # <state_dir>/<group>
    topic: str

    @classmethod
    def of(cls, stream: StreamConfig, project_path: Path) -> StoreLayout:
        """The layout of ``stream`` in the project at ``project_path``, for its group."""
        base = (
            stream.state_dir if stream.state_dir.is_absolute() else project_path / stream.state_dir
        )
        return cls(base / stream.group_id, stream.input.topics[0])

    def store(self, state: str, partition: int) -> Path:
        """The store of ``state`` for one input partition."""
        return self.root / state / f"{self.topic}-{partition}"

    def existing(self, states: Iterable[str]) -> list[Path]:
        """The stores of ``states`` on this machine, in path order."""
        prefix = f"{self.topic}-"
        return sorted(
            path
            for state in states
            for path in (self.root / state).glob(f"{prefix}*")
            if path.name.removeprefix(prefix).isdigit()
        )
