"""kedro-stream: run a Kedro pipeline namespace as a Kafka stream processor."""

from kedro_stream.session import NamespaceSpec, StreamSession, boot_package, boot_project

__version__ = "0.1.0"

__all__ = ["NamespaceSpec", "StreamSession", "__version__", "boot_package", "boot_project"]
