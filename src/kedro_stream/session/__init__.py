"""Compile a Kedro pipeline's namespaces once; run them many times with injected data."""

from kedro_stream.session.boot import boot_package, boot_project
from kedro_stream.session.compiler import CompiledNamespace, DatasetEntry
from kedro_stream.session.session import StreamSession
from kedro_stream.session.specs import NamespaceSpec, Role

__all__ = [
    "CompiledNamespace",
    "DatasetEntry",
    "NamespaceSpec",
    "Role",
    "StreamSession",
    "boot_package",
    "boot_project",
]
