"""The model registry as the source of truth for which model drives.

Aliases, never stages: ``challenger`` (the latest candidate that ran its evaluation), ``champion`` (what drives)
and ``previous-champion`` (what drove before; ``rollback`` moves ``champion`` back to it). Every promotion is
appended to the registered model's ``champion_history`` tag, so rolling back twice goes back two promotions.

Alias moves are read-check-write sequences, so they hold a lock (``lock``: any context manager factory) and
re-read the aliases inside it: two promotions that finish at once end with exactly one champion and every version
registered. On one machine :func:`file_lock` (``fcntl.flock`` on a file beside the tracking store) serializes them;
workers on several machines need a lock they all see: the Prefect flows add a Prefect global concurrency limit of
one slot (:mod:`flows.locks`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from autoloop.locks import exclusive

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous-champion"
HISTORY_TAG = "champion_history"
#: What the registered model is, for its page in the MLflow UI.
MODEL_DESCRIPTION = ("The driving policy autoloop trains and promotes. `champion` is the version that drives, "
                     "`challenger` the latest candidate evaluated, `previous-champion` what `autoloop promote "
                     "--rollback` goes back to. Each version's tags hold its evaluation suite and scores and the "
                     "gate's verdict; `autoloop models show VERSION` prints its lineage.")
#: The version tag naming the logged model a version was registered from.
MODEL_URI_TAG = "model_uri"
#: MLflow's limit on a tag value (longer verdict reasons are cut; ``verdict.json`` of the promote run has them all).
TAG_VALUE_LIMIT = 5000

#: Held around every read-check-write of the registry's aliases and tags.
RegistryLock = Callable[[], AbstractContextManager[Any]]


def file_lock(path: Path) -> RegistryLock:
    """A registry lock on one machine: an exclusive ``flock`` on ``path``."""
    return functools.partial(exclusive, path)


@dataclass(frozen=True)
class ModelVersionRef:
    """A registered model version."""

    name: str
    version: str
    run_id: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class VersionInfo:
    """A registered version as ``autoloop models`` lists it."""

    version: str
    aliases: tuple[str, ...]
    tags: dict[str, str]
    run_id: str
    description: str
    created_ms: int


def register(model_uri: str, name: str, *, lock: RegistryLock, tags: Mapping[str, str], description: str = "",
             alias: str | None = CHALLENGER) -> ModelVersionRef:
    """Register ``model_uri`` as a version of ``name`` with ``tags`` and ``description``, and point ``alias`` at it
    (``challenger`` by default).

    Registering is idempotent: a model already registered as a version of ``name`` (a promotion that was killed
    and runs again) keeps that version, which takes the new tags and description, instead of becoming a second
    version."""
    client = MlflowClient()
    with lock():
        version = registered_version(name, model_uri)
        if version is None:
            version = mlflow.register_model(model_uri, name, tags={**tags, MODEL_URI_TAG: model_uri})
        else:
            for key, value in tags.items():
                client.set_model_version_tag(name, str(version.version), key, str(value)[:TAG_VALUE_LIMIT])
        ref = ModelVersionRef(name=name, version=str(version.version), run_id=str(version.run_id))
        if not client.get_registered_model(name).description:
            client.update_registered_model(name, description=MODEL_DESCRIPTION)
        if description:
            client.update_model_version(name, ref.version, description=description)
        if alias:
            client.set_registered_model_alias(name, alias, ref.version)
    return ref


def registered_version(name: str, model_uri: str) -> Any:
    """The version of ``name`` that ``model_uri`` was registered as (``None``: none, or no such model)."""
    try:
        versions = MlflowClient().search_model_versions(f"name = '{name}'")
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    found = [v for v in versions if v.tags.get(MODEL_URI_TAG) == model_uri or v.source == model_uri]
    return min(found, key=lambda v: int(v.version)) if found else None


def version_by_alias(name: str, alias: str = CHAMPION) -> ModelVersionRef | None:
    """The version holding ``alias``, or ``None`` if the model or the alias does not exist."""
    try:
        version = MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise
    return ModelVersionRef(name=name, version=str(version.version), run_id=str(version.run_id))


def promote(ref: ModelVersionRef, *, expected_champion: str | None, lock: RegistryLock) -> bool:
    """Make ``ref`` the champion if the champion is still ``expected_champion`` (the version it was compared
    with; ``None``: there was none); the old champion takes ``previous-champion``. Returns whether it moved: a
    ``False`` means another promotion got there first, and the candidate must be compared with the new champion.
    Promoting the champion itself changes nothing.
    """
    client = MlflowClient()
    with lock():
        current = version_by_alias(ref.name, CHAMPION)
        if (current.version if current else None) != expected_champion:
            return False
        if current is not None and current.version == ref.version:
            return True  # already champion
        if current is not None:
            client.set_registered_model_alias(ref.name, PREVIOUS_CHAMPION, current.version)
        client.set_registered_model_alias(ref.name, CHAMPION, ref.version)
        history = _history(client, ref.name)
        if current is not None and (not history or history[-1] != current.version):
            history.append(current.version)  # a champion set by hand before the history began
        client.set_registered_model_tag(ref.name, HISTORY_TAG, json.dumps([*history, ref.version]))
    return True


def rollback(name: str, *, lock: RegistryLock) -> tuple[str, str]:
    """Move ``champion`` back to the version it replaced (``previous-champion``, and that one's predecessor
    becomes ``previous-champion``). Returns ``(from version, to version)``.

    :raises ValueError: when there is no earlier champion to go back to.
    """
    client = MlflowClient()
    with lock():
        current = version_by_alias(name, CHAMPION)
        previous = version_by_alias(name, PREVIOUS_CHAMPION)
        if current is None or previous is None:
            raise ValueError(f"model {name!r} has no {PREVIOUS_CHAMPION!r} version to roll back to")
        history = _history(client, name)
        if history and history[-1] == current.version:
            history.pop()
        if not history or history[-1] != previous.version:
            history.append(previous.version)
        client.set_registered_model_alias(name, CHAMPION, previous.version)
        client.set_model_version_tag(name, current.version, "rolled_back", "true")
        if len(history) >= 2:
            client.set_registered_model_alias(name, PREVIOUS_CHAMPION, history[-2])
        else:
            client.delete_registered_model_alias(name, PREVIOUS_CHAMPION)
        client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
    return current.version, previous.version


def set_version_tags(ref: ModelVersionRef, tags: Mapping[str, str], *, lock: RegistryLock) -> None:
    client = MlflowClient()
    with lock():
        for key, value in tags.items():
            client.set_model_version_tag(ref.name, ref.version, key, value[:TAG_VALUE_LIMIT])


def list_versions(name: str) -> list[VersionInfo]:
    """Every version of ``name`` (newest first) with its aliases and tags; empty when the model does not exist."""
    client = MlflowClient()
    try:
        aliases = client.get_registered_model(name).aliases
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return []
        raise
    by_version: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(str(version), []).append(alias)
    versions = client.search_model_versions(f"name = '{name}'")
    return sorted((VersionInfo(version=str(v.version), aliases=tuple(sorted(by_version.get(str(v.version), []))),
                               tags=dict(v.tags), run_id=str(v.run_id), description=v.description or "",
                               created_ms=int(v.creation_timestamp or 0)) for v in versions),
                  key=lambda info: -int(info.version))


def get_version(name: str, version: str) -> VersionInfo:
    """One version (as :func:`list_versions` gives it).

    :raises ValueError: when it does not exist.
    """
    for info in list_versions(name):
        if info.version == version:
            return info
    raise ValueError(f"model {name!r} has no version {version!r}; `autoloop models` lists them")


def _history(client: MlflowClient, name: str) -> list[str]:
    tag = client.get_registered_model(name).tags.get(HISTORY_TAG)
    return [str(v) for v in json.loads(tag)] if tag else []
