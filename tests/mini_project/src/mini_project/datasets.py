"""A pickle dataset that counts its loads: proves artifacts are loaded once."""

from __future__ import annotations

from typing import Any, ClassVar

from kedro_datasets.pickle import PickleDataset


class CountingPickleDataset(PickleDataset):
    loads: ClassVar[int] = 0

    def load(self) -> Any:
        type(self).loads += 1
        return super().load()
