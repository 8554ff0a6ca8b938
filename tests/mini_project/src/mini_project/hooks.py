"""Hooks that record every call, so tests can count what fires per run and per session."""

from __future__ import annotations

from typing import Any

from kedro.framework.hooks import hook_impl

CALLS: list[tuple[str, str]] = []


class RecordingHooks:
    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        CALLS.append(("before_pipeline_run", ""))

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any]) -> None:
        CALLS.append(("after_pipeline_run", ""))

    @hook_impl
    def on_pipeline_error(self, error: Exception) -> None:
        CALLS.append(("on_pipeline_error", type(error).__name__))

    @hook_impl
    def before_node_run(self, node: Any, inputs: dict[str, Any]) -> dict[str, Any] | None:
        CALLS.append(("before_node_run", node.name))
        return None

    @hook_impl
    def after_node_run(self, node: Any) -> None:
        CALLS.append(("after_node_run", node.name))

    @hook_impl
    def on_node_error(self, node: Any, error: Exception) -> None:
        CALLS.append(("on_node_error", node.name))

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str) -> None:
        CALLS.append(("after_dataset_loaded", dataset_name))

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        CALLS.append(("after_dataset_saved", dataset_name))
