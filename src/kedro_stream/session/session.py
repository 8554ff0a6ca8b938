"""The booted session: compiled namespaces that run many times with injected data."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from kedro.io import CatalogProtocol
from kedro.pipeline import Pipeline
from pluggy import PluginManager

from kedro_stream.errors import (
    InjectionError,
    ParameterError,
    UnknownNamespaceError,
    choices,
)
from kedro_stream.session.compiler import CompiledNamespace, DatasetEntry
from kedro_stream.session.executor import HookDispatcher, RunOutputs, execute
from kedro_stream.session.specs import short_name
from kedro_stream.session.templates import RUN_ID, check_itertime_params


class StreamSession:
    """Runs compiled namespaces; built by :func:`kedro_stream.boot_project`.

    Hooks: ``after_context_created``, ``after_catalog_created`` and ``before_pipeline_run`` fire
    once at boot; ``after_pipeline_run`` (or ``on_pipeline_error`` when the ``with`` block
    raised) once at :meth:`close`. Node hooks (``before_node_run``, ``after_node_run``,
    ``on_node_error``) and dataset hooks (``before/after_dataset_loaded/saved``) fire on every
    run, exactly as a ``kedro run`` fires them for each node.
    """

    def __init__(
        self,
        compiled: Mapping[str | None, CompiledNamespace],
        *,
        pipeline: Pipeline,
        catalog: CatalogProtocol,
        hook_manager: PluginManager,
        run_params: dict[str, Any],
    ) -> None:
        self._compiled = dict(compiled)
        self._pipeline = pipeline
        self._catalog = catalog
        self._hook_manager = hook_manager
        self._hooks = HookDispatcher(hook_manager)
        self._run_params = run_params
        self._closed = False

    @property
    def namespaces(self) -> list[str | None]:
        """The namespaces compiled at boot (``None``: the nodes without one)."""
        return list(self._compiled)

    @property
    def catalog(self) -> CatalogProtocol:
        """The catalog compiled at boot (artifacts and parameters loaded)."""
        return self._catalog

    def compiled(self, namespace: str | None) -> CompiledNamespace:
        """One namespace as compiled at boot; :class:`UnknownNamespaceError` names the others."""
        try:
            return self._compiled[namespace]
        except KeyError:
            raise UnknownNamespaceError(
                f"Namespace {namespace!r} is not in the booted pipeline; "
                f"namespaces: {choices(str(ns) for ns in self._compiled)}."
            ) from None

    def report(self, namespace: str | None) -> tuple[DatasetEntry, ...]:
        """How each dataset of ``namespace`` was compiled: its role and why."""
        return self.compiled(namespace).report

    def run(
        self,
        namespace: str | None = None,
        inputs: Mapping[str, Any] | None = None,
        parameters: Mapping[str, Any] | None = None,
        itertime_params: Mapping[str, Any] | None = None,
        run_id: str | None = None,
    ) -> RunOutputs:
        """Run ``namespace`` once on injected ``inputs``; return its outputs by short name.

        Names are relative to the namespace (``payments`` for ``scoring.payments``); full names
        work too, in ``inputs`` and as keys of the result. Values are passed by reference: nodes
        must not mutate their inputs.
        """
        compiled = self.compiled(namespace)
        values = dict(compiled.static)
        self._inject(compiled, inputs or {}, values)
        if parameters:
            self._override(compiled, parameters, values)
        run_id = run_id or uuid.uuid4().hex
        rendered: dict[str, Any] = {}
        if compiled.template_inputs or compiled.template_saves:
            rendered = {**(itertime_params or {}), RUN_ID: run_id}
            check_itertime_params(namespace, compiled.templates, itertime_params or {})
        elif itertime_params:
            check_itertime_params(namespace, (), itertime_params)
        return execute(
            compiled,
            values,
            hooks=self._hooks,
            catalog=self._catalog,
            run_id=run_id,
            itertime_params=rendered,
        )

    @staticmethod
    def _inject(
        compiled: CompiledNamespace, inputs: Mapping[str, Any], values: dict[str, Any]
    ) -> None:
        expected = compiled.inputs
        given = {short_name(k, compiled.namespace): v for k, v in inputs.items()}
        if given.keys() == expected.keys():  # the common case: one membership test
            for short, value in given.items():
                values[expected[short]] = value
            return
        ns = compiled.namespace
        roles = {short_name(e.name, ns): e.role for e in compiled.report}
        problems = []
        for name in sorted(given.keys() - expected.keys()):
            role = roles.get(name)
            problems.append(
                f"{name!r} is {'an ' + role.value if role else 'not a dataset'} of the namespace"
                + (", not an injectable input" if role else "")
            )
        missing = sorted(expected.keys() - given.keys())
        if missing:
            problems.append(f"missing {choices(missing)}")
        raise InjectionError(
            f"Inputs of namespace {ns!r}: {'; '.join(problems)}. "
            f"Injectable inputs: {choices(expected)}."
        )

    @staticmethod
    def _override(
        compiled: CompiledNamespace, parameters: Mapping[str, Any], values: dict[str, Any]
    ) -> None:
        for name, value in parameters.items():
            full = compiled.parameters.get(name) or compiled.parameters.get(
                name.removeprefix("params:").removeprefix(f"{compiled.namespace}.")
            )
            if full is None or full == "parameters":
                valid = (k for k, v in compiled.parameters.items() if v != "parameters")
                raise ParameterError(
                    f"Parameter {name!r} is not used by namespace {compiled.namespace!r}; "
                    f"parameters: {choices(valid)}."
                )
            values[full] = value

    def close(self, error: BaseException | None = None) -> None:
        """Fire the once-per-session pipeline hook; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if error is None:
            self._hook_manager.hook.after_pipeline_run(
                run_params=self._run_params,
                run_result={},
                pipeline=self._pipeline,
                catalog=self._catalog,
            )
        elif isinstance(error, Exception):
            self._hook_manager.hook.on_pipeline_error(
                error=error,
                run_params=self._run_params,
                pipeline=self._pipeline,
                catalog=self._catalog,
            )

    def __enter__(self) -> StreamSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(exc)
