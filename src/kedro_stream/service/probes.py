"""``/healthz`` and ``/readyz``: whether the service is alive (else restart it) and ready
(else route no work to it and count it out of the group's capacity).

Alive while the loop (or the keep-alive of a long run) keeps turning, or while state is
restored: a restore may take minutes inside one rebalance callback, and a restart would only
begin it again. Ready when alive, owning partitions, restored, and no batch is stuck past
``max_poll_interval_s``.
"""

from __future__ import annotations

import time
from typing import Protocol

from kedro_stream.config import StreamConfig

#: /healthz fails once the loop has not turned for this long (or three batch waits, if longer).
STALL_BOUND_S = 30.0


class Probed(Protocol):
    """What the probes read of a running service."""

    @property
    def restoring(self) -> bool:
        """A state store is being caught up."""
        ...

    @property
    def owned(self) -> set[tuple[str, int]]:
        """The partitions this member owns."""
        ...

    last_activity: float
    batch_started: float | None


def healthy(service: Probed, stream: StreamConfig) -> tuple[bool, str]:
    """Whether the service is alive, and why (or why not)."""
    if service.restoring:
        return True, "restoring state"
    bound = max(STALL_BOUND_S, 3 * stream.batch.max_wait_ms / 1000)
    idle = time.monotonic() - service.last_activity
    if idle > bound:
        return False, f"loop has not turned for {idle:.0f} s (bound {bound:.0f} s)"
    return True, "ok"


def ready(service: Probed, stream: StreamConfig) -> tuple[bool, str]:
    """Whether the service is ready for work, and why (or why not)."""
    if service.restoring:
        return False, "restoring state from the changelog"
    alive, reason = healthy(service, stream)
    if not alive:
        return False, reason
    if not service.owned:
        return False, "no partition assigned"
    started = service.batch_started
    if started is not None and time.monotonic() - started > stream.max_poll_interval_s:
        return False, f"a batch has been running for over {stream.max_poll_interval_s:.0f} s"
    return True, f"{len(service.owned)} partitions assigned"
