"""Where a Kedro project is: its source tree, or an installed package with its conf source.

Inside a source tree (``kedro stream ...`` in the folder of ``pyproject.toml``) Kedro finds
everything itself. A packaged project (``kedro package``: a wheel and a conf tarball, as Kedro
deployments ship it) has no source tree: ``kedro-stream consume --package NAME --conf-source
conf-NAME.tar.gz`` names the installed package and its configuration, as ``python -m NAME
--conf-source ...`` does for ``kedro run``. Everything that reads the project goes through
:class:`Project`, so the two ways cannot differ.
"""

from __future__ import annotations

import atexit
import functools
import importlib.resources
import importlib.util
import os
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kedro_stream.config.errors import ConfigError
from kedro_stream.errors import choices, headline

if TYPE_CHECKING:
    from kedro.config import AbstractConfigLoader

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".zip")


@dataclass(frozen=True)
class Project:
    """A Kedro project as a command reaches it.

    ``path`` is the working root: the catalog's and ``stream.yml``'s relative paths (``data/``,
    ``state_dir``) start there, as under ``kedro run``. ``package`` names an installed project
    (no source tree); ``conf_source`` a conf folder or a ``kedro package`` archive, else the
    project's own ``conf/``; ``credentials`` a ``credentials.yml`` mounted from a secret, whose
    entries win over the conf source's.
    """

    path: Path
    package: str | None = None
    conf_source: Path | None = None
    credentials: Path | None = None

    def open(self) -> None:
        """Make this project Kedro's current one: its settings, pipelines and package."""
        if self.package is None:
            from kedro.framework.startup import bootstrap_project

            bootstrap_project(self.path)
            return
        from kedro.framework.project import configure_project

        # Kedro would take any name, and fail much later on its missing settings.
        if importlib.util.find_spec(self.package) is None:
            raise ConfigError(
                f"Package {self.package!r} is not installed here: install the project's wheel "
                "(`kedro package` writes it to dist/) into this environment first"
            )
        configure_project(self.package)

    @property
    def conf(self) -> Path:
        """The conf source Kedro reads: the one given, else the project's ``conf/``. After
        :meth:`open` (the project's settings may move it)."""
        if self.conf_source is not None:
            return self.conf_source
        from kedro.framework.project import settings

        return self.path / settings.CONF_SOURCE

    def config_loader(self, env: str | None) -> AbstractConfigLoader:
        """The project's own config loader over its conf source, credentials attached."""
        from kedro.framework.project import settings

        self.open()
        conf = self.conf
        check_conf_source(conf, env)
        loader = settings.CONFIG_LOADER_CLASS(
            conf_source=str(conf), env=env, **settings.CONFIG_LOADER_ARGS
        )
        self.add_credentials(loader)
        return loader

    def add_credentials(self, loader: AbstractConfigLoader) -> None:
        """Lay the mounted ``credentials.yml`` over the conf source's, in the loader Kedro's
        catalog and ``stream.yml`` both read (a key set on the loader is what it answers)."""
        if self.credentials is None:
            return
        from kedro.config import MissingConfigException

        mounted = read_credentials_file(self.credentials)
        try:
            given: Mapping[str, Any] = loader["credentials"]
        except (KeyError, MissingConfigException):  # the conf source has none
            given = {}
        loader["credentials"] = {**given, **mounted}

    def locate(self, relative: Path) -> Path:
        """A file named in ``stream.yml`` (an Avro schema): an absolute path as it is; a
        relative one from the working root, then the conf source, then the project's package,
        the first that exists. Raises :class:`ConfigError` naming every place looked."""
        if relative.is_absolute():
            if relative.is_file():
                return relative
            raise ConfigError(f"{relative} does not exist")
        places = [self.path / relative, _conf_folder(self.conf) / relative]
        package = self._package_name()
        if package is not None:
            places.append(_package_file(package, relative))
        for place in places:
            if place.is_file():
                return place
        raise ConfigError(
            f"{relative} does not exist; looked in {choices(str(p) for p in places)} (the "
            "working directory, the conf source, the project's package)"
        )

    def _package_name(self) -> str | None:
        if self.package is not None:
            return self.package
        from kedro.framework import project

        return project.PACKAGE_NAME


def check_conf_source(conf: Path, env: str | None) -> None:
    """Kedro reads a missing conf source or environment folder as a missing file; name the
    real problem."""
    if not conf.exists():
        raise ConfigError(
            f"Conf source {conf} does not exist: give a conf folder or the archive that "
            "`kedro package` writes (dist/conf-<package>.tar.gz) with --conf-source"
        )
    env = env or os.environ.get("KEDRO_ENV")
    if not env or not conf.is_dir() or (conf / env).is_dir():
        return
    found = [p.name for p in conf.iterdir() if p.is_dir()]
    raise ConfigError(
        f"Environment {env!r} has no folder {conf.name}/{env}: create it (it may stay "
        f"empty: base still applies) or choose another --env; environments: {choices(found)}"
    )


def read_credentials_file(path: Path) -> dict[str, Any]:
    """A mounted ``credentials.yml``: entries by name, ``${oc.env:VAR}`` resolved as Kedro
    resolves it in credentials (so a secret may come from the environment instead)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if not path.is_file():
        raise ConfigError(f"Credentials file {path} does not exist")
    try:
        loaded = OmegaConf.to_container(_with_environment(OmegaConf.load(path)))
    except (OmegaConfBaseException, ValueError, OSError) as exc:
        raise ConfigError(f"Credentials file {path} cannot be read: {headline(exc)}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"Credentials file {path} must map names to entries")
    return {str(k): v for k, v in loaded.items()}


def _with_environment(config: Any) -> Any:
    """Resolve ``config`` with ``oc.env`` on just for it: Kedro turns that resolver off
    everywhere but in credentials, and so does this."""
    from omegaconf import OmegaConf
    from omegaconf.resolvers import oc

    if OmegaConf.has_resolver("oc.env"):
        OmegaConf.resolve(config)
        return config
    OmegaConf.register_new_resolver("oc.env", oc.env)
    try:
        OmegaConf.resolve(config)
    finally:
        OmegaConf.clear_resolver("oc.env")
    return config


def is_archive(path: Path) -> bool:
    """A conf source that ``kedro package`` wrote (or a zip of a conf folder)."""
    return path.name.endswith(ARCHIVE_SUFFIXES)


def _conf_folder(conf: Path) -> Path:
    """Files beside the environments of a conf source; an archive is unpacked once, privately
    (Kedro reads its YAML in place, but an Avro schema is read by path)."""
    return _unpacked(conf.resolve()) if is_archive(conf) and conf.is_file() else conf


@functools.cache
def _unpacked(archive: Path) -> Path:
    target = Path(tempfile.mkdtemp(prefix="kedro-stream-conf-"))
    atexit.register(shutil.rmtree, target, ignore_errors=True)
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as opened:
            opened.extractall(target)
    else:
        with tarfile.open(archive) as opened:
            opened.extractall(target, filter="data")
    # `kedro package` archives the folder itself (conf/base/...): its files sit below it.
    entries = list(target.iterdir())
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else target


def _package_file(package: str, relative: Path) -> Path:
    try:
        root = importlib.resources.files(package)
    except ModuleNotFoundError:
        return Path(package) / relative  # not importable: a place that does not exist
    return Path(str(root.joinpath(*relative.parts)))
