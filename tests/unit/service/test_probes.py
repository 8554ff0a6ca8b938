"""/healthz and /readyz decisions: a restoring state store is alive but not ready."""

from __future__ import annotations

import time
from types import SimpleNamespace

from kedro_stream.service.probes import healthy, ready
from tests.fake_clients import stream_config


def service(**changes: object) -> SimpleNamespace:
    now = time.monotonic()
    state = {"restoring": False, "last_activity": now, "owned": {("in", 0)}, "batch_started": None}
    return SimpleNamespace(**{**state, **changes})


def test_a_turning_loop_with_partitions_is_alive_andready() -> None:
    assert healthy(service(), stream_config())[0]  # type: ignore[arg-type]
    assert ready(service(), stream_config()) == (True, "1 partitions assigned")  # type: ignore[arg-type]


def test_a_restore_is_alive_however_long_but_notready() -> None:
    """A restore of millions of records may take minutes, inside one rebalance callback: the
    loop does not turn meanwhile, and a restart would only begin the restore again."""
    restoring = service(restoring=True, last_activity=time.monotonic() - 3600)
    assert healthy(restoring, stream_config()) == (True, "restoring state")  # type: ignore[arg-type]
    assert ready(restoring, stream_config()) == (  # type: ignore[arg-type]
        False,
        "restoring state from the changelog",
    )


def test_a_loop_that_stopped_turning_is_not_alive() -> None:
    stalled = service(last_activity=time.monotonic() - 3600)
    alive, reason = healthy(stalled, stream_config())  # type: ignore[arg-type]
    assert not alive and reason.startswith("loop has not turned for")
