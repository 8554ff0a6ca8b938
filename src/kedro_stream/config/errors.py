"""Errors of ``stream.yml``, and pydantic's validation errors in a user's words."""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from kedro_stream.errors import KedroStreamError, did_you_mean


class ConfigError(KedroStreamError):
    """``stream.yml`` (with CLI overrides) does not describe a runnable stream."""


class NoStreamFile(ConfigError):
    """The environment has no ``stream.yml``: only the Python API can be used."""


def described(error: ValidationError, model: type[BaseModel] | None = None) -> str:
    """Every problem pydantic found, ``key.path: message``, on one line. With the validated
    ``model``, an unknown key also gets the known key it is closest to: ``on_falure`` is
    answered with ``on_failure``."""
    lines = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        hint = ""
        if model is not None and item["type"] == "extra_forbidden" and item["loc"]:
            *parents, unknown = item["loc"]
            hint = did_you_mean(str(unknown), _keys_at(model, parents))
        lines.append(f"{where}: {item['msg']}{hint}")
    return "; ".join(lines)


def _keys_at(model: type[BaseModel], path: Sequence[str | int]) -> list[str]:
    """The keys a file may write at ``path`` under ``model`` (aliases where a field has one);
    none where the path does not lead to a model."""
    annotation: Any = model
    for part in path:
        annotation = _unwrapped(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = {f.alias or name: f for name, f in annotation.model_fields.items()}
            field = fields.get(str(part))
            if field is None:
                return []
            annotation = field.annotation
        elif get_origin(annotation) in (dict, Mapping):  # a key of the file's own choosing
            annotation = get_args(annotation)[1]
        elif get_origin(annotation) in (list, tuple):
            annotation = get_args(annotation)[0]
        else:
            return []
    annotation = _unwrapped(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or name for name, f in annotation.model_fields.items()]
    return []


def _unwrapped(annotation: Any) -> Any:
    """``X | None`` → ``X``: an optional section is still that section."""
    if get_origin(annotation) in (Union, types.UnionType):
        present = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(present) == 1:
            return present[0]
    return annotation
