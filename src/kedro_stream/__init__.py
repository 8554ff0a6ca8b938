"""kedro-stream: run a Kedro pipeline namespace as a Kafka stream processor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kedro_stream.version import __version__

__all__ = ["NamespaceSpec", "StreamSession", "__version__", "boot_package", "boot_project"]

if TYPE_CHECKING:
    from kedro_stream.session import NamespaceSpec, StreamSession, boot_package, boot_project


def __getattr__(name: str) -> Any:
    # Lazy: `python -m kedro_stream.devbroker` must not import Kedro (whose default logging
    # writes to stdout before the broker's bootstrap line, and costs ~0.6 s of start-up).
    if name in __all__:
        from kedro_stream import session

        return getattr(session, name)
    raise AttributeError(f"module 'kedro_stream' has no attribute {name!r}")
