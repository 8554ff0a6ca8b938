"""Boot a Kedro project once: config, catalog, hooks, and every namespace compiled.

``boot_project``/``boot_package`` mirror kedro-boot's entry points so its users can switch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro.framework.context import KedroContext
from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline

from kedro_stream.config.project import Project, check_conf_source
from kedro_stream.errors import (
    KedroStreamError,
    ProjectError,
    SpecError,
    UnknownNamespaceError,
    choices,
    headline,
)
from kedro_stream.session.compiler import (
    ArtifactMissing,
    CompiledNamespace,
    compile_namespace,
    namespaces_of,
)
from kedro_stream.session.session import StreamSession
from kedro_stream.session.specs import NamespaceSpec
from kedro_stream.session.templates import register_resolver
from kedro_stream.telemetry import unregister_telemetry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _BootOptions:
    """What to boot, as ``boot_project``, ``boot_package`` and ``compile_project`` take it."""

    project: Project
    pipeline: str
    env: str | None
    runtime_params: dict[str, Any] | None
    namespaces: Iterable[str | None] | None
    specs: Iterable[NamespaceSpec]


def _resolve(project_path: str | Path | None) -> Path:
    return Path(project_path or Path.cwd()).resolve()


def boot_project(
    project_path: str | Path | None = None,
    *,
    pipeline: str = "__default__",
    env: str | None = None,
    runtime_params: dict[str, Any] | None = None,
    namespaces: Iterable[str | None] | None = None,
    specs: Iterable[NamespaceSpec] = (),
) -> StreamSession:
    """Boot the Kedro project at ``project_path`` (default: the working directory).

    Args:
        pipeline: registered pipeline whose namespaces are compiled.
        env: Kedro configuration environment (default: ``KEDRO_ENV`` or the project's).
        runtime_params: parameter overrides, as ``kedro run --params``.
        namespaces: namespaces to compile (default: all of the pipeline's; ``None`` inside
            stands for nodes without a namespace). Only these load their artifacts.
        specs: explicit roles for some namespaces; the others are inferred.
    """
    return boot(
        Project(_resolve(project_path)),
        pipeline=pipeline,
        env=env,
        runtime_params=runtime_params,
        namespaces=namespaces,
        specs=specs,
    )


def boot_package(
    package_name: str,
    *,
    pipeline: str = "__default__",
    env: str | None = None,
    runtime_params: dict[str, Any] | None = None,
    namespaces: Iterable[str | None] | None = None,
    specs: Iterable[NamespaceSpec] = (),
    project_path: str | Path | None = None,
    conf_source: str | Path | None = None,
) -> StreamSession:
    """Boot an installed (packaged) Kedro project. Relative paths start at ``project_path``
    (default: the working directory); the configuration is ``conf_source`` (a folder or the
    archive ``kedro package`` writes), else ``conf/`` there."""
    project = Project(
        _resolve(project_path),
        package=package_name,
        conf_source=None if conf_source is None else Path(conf_source),
    )
    return boot(
        project,
        pipeline=pipeline,
        env=env,
        runtime_params=runtime_params,
        namespaces=namespaces,
        specs=specs,
    )


def boot(
    project: Project,
    *,
    pipeline: str = "__default__",
    env: str | None = None,
    runtime_params: dict[str, Any] | None = None,
    namespaces: Iterable[str | None] | None = None,
    specs: Iterable[NamespaceSpec] = (),
) -> StreamSession:
    """Boot ``project``, from its source tree or its package: what the two above and
    ``kedro stream consume`` share."""
    return _boot(_BootOptions(project, pipeline, env, runtime_params, namespaces, specs))


@dataclass(frozen=True)
class _OpenProject:
    session: KedroSession
    context: KedroContext
    pipeline: Pipeline
    catalog: DataCatalog
    namespaces: list[str | None]
    specs: dict[str | None, NamespaceSpec]


def _open(options: _BootOptions) -> _OpenProject:
    project = options.project
    project.open()
    check_conf_source(project.conf, options.env)
    kedro_session = KedroSession.create(
        project_path=project.path,
        save_on_close=False,
        env=options.env,
        runtime_params=options.runtime_params,
        conf_source=None if project.conf_source is None else str(project.conf_source),
    )
    unregister_telemetry(kedro_session._hook_manager)
    pipeline_name = options.pipeline
    pipelines.set_requested([pipeline_name])
    context = kedro_session.load_context()
    project.add_credentials(context.config_loader)
    register_resolver()  # before the catalog config is read, after plugins registered theirs
    try:
        pipeline = pipelines[pipeline_name]
    except (KeyError, ImportError) as exc:
        raise _pipeline_error(pipeline_name, exc) from None
    catalog = context.catalog  # one access: each builds a catalog and fires its hook
    if not isinstance(catalog, DataCatalog):
        raise SpecError(f"kedro-stream needs a DataCatalog, settings give {type(catalog).__name__}")

    available = namespaces_of(pipeline)
    wanted = list(available if options.namespaces is None else options.namespaces)
    unknown = [ns for ns in wanted if ns not in available]
    if unknown:
        raise UnknownNamespaceError(
            f"Namespaces {choices(str(ns) for ns in unknown)} are not in pipeline "
            f"{pipeline_name!r}; namespaces: {choices(str(ns) for ns in available)}."
        )
    by_namespace = {s.namespace: s for s in options.specs}
    stray = set(by_namespace) - set(wanted)
    if stray:
        raise SpecError(
            f"Specs given for namespaces {choices(str(ns) for ns in stray)} that are not booted; "
            f"booted: {choices(str(ns) for ns in wanted)}."
        )
    return _OpenProject(kedro_session, context, pipeline, catalog, wanted, by_namespace)


def _pipeline_error(name: str, error: Exception) -> KedroStreamError:
    """Kedro's ``find_pipelines`` answers a misspelt name with an ImportError and no names: say
    which pipelines exist, or, when the module exists but fails to import, why."""
    if isinstance(error, ImportError) and error.__cause__ is not None:
        return ProjectError(
            f"Pipeline {name!r} failed to import: {headline(error.__cause__)}. Fix it, then "
            f"check with: kedro stream compile --pipeline {name}"
        )
    return UnknownNamespaceError(
        f"Pipeline {name!r} is not registered; pipelines: {_registered_pipelines()}."
    )


def _registered_pipelines() -> str:
    pipelines.set_requested(None)
    try:
        return choices(pipelines.keys())
    except Exception as exc:  # another pipeline is broken: say so rather than hide the first error
        return f"(cannot list them: {headline(exc)})"


def create_artifact_hint(dataset: str) -> str:
    """What to run so that an artifact exists: the registered pipeline (other than
    ``__default__``) whose nodes write it, when there is exactly one."""
    pipelines.set_requested(None)
    try:
        found = pipelines.items()
    except Exception:  # a broken pipeline elsewhere: the hint is only a hint
        found = {}.items()
    writers = sorted(n for n, p in found if n != "__default__" and dataset in p.all_outputs())
    command = f"kedro run --pipeline {writers[0]}" if len(writers) == 1 else "kedro run"
    return f"create it with `{command}` (or the job that writes it)"


def _boot(options: _BootOptions) -> StreamSession:
    project = _open(options)
    pipeline, catalog = project.pipeline, project.catalog
    try:
        compiled = {
            ns: compile_namespace(pipeline, catalog, ns, project.specs.get(ns))
            for ns in project.namespaces
        }
    except ArtifactMissing as exc:
        raise ProjectError(
            f"{exc} It is loaded once at start, so it must exist before the stream starts: "
            f"{create_artifact_hint(exc.dataset)}."
        ) from None
    run_params = {
        "session_id": project.session.session_id,
        "run_id": project.session.session_id,
        "project_path": options.project.path.as_posix(),
        "env": project.context.env,
        "runtime_params": options.runtime_params or {},
        "pipeline_names": [options.pipeline],
        "namespaces": project.namespaces,
        "runner": "kedro_stream",
    }
    hook_manager = project.session._hook_manager
    hook_manager.hook.before_pipeline_run(run_params=run_params, pipeline=pipeline, catalog=catalog)
    logger.debug("Booted %s: namespaces %s", options.project, project.namespaces)
    return StreamSession(
        compiled,
        pipeline=pipeline,
        catalog=catalog,
        hook_manager=hook_manager,
        run_params=run_params,
    )


def compile_project(
    project: Project,
    *,
    pipeline: str = "__default__",
    env: str | None = None,
    namespaces: Iterable[str | None] | None = None,
    specs: Iterable[NamespaceSpec] = (),
) -> list[CompiledNamespace]:
    """Sort every namespace's datasets into roles without loading any data (no hooks fire
    past ``after_catalog_created``): what ``kedro stream compile`` prints."""
    options = _BootOptions(project, pipeline, env, None, namespaces, specs)
    opened = _open(options)
    return [
        compile_namespace(
            opened.pipeline, opened.catalog, ns, opened.specs.get(ns), load_artifacts=False
        )
        for ns in opened.namespaces
    ]
