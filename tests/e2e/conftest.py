from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.processes import kill_leftovers


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test() -> Iterator[None]:
    yield
    kill_leftovers()
