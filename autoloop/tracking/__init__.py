"""MLflow tracking and model registry: the only module of autoloop that imports ``mlflow``.

Runs: one per cycle, with one nested run per stage (``parent_run_id``). Models: the pyfunc model of
:mod:`autoloop.tracking.model_code`, logged from code with a signature, an input example, the code it needs and
the exact pins of what that code imports (it loads where autoloop is not installed). Registry: versions of
one registered model, promoted with aliases (never stages).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.data.dataset_source_registry import get_dataset_source_from_json
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import RunStatus
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

import policies
import sim
from autoloop.episodes import DatasetSnapshot
from autoloop.network import check_reachable
from autoloop.paths import Paths
from autoloop.proc import identity
from autoloop.tracking.leftovers import PROCESS_TAG
from autoloop.tracking.local_store import ensure_local_store
from autoloop.tracking.pyfunc import signature
from autoloop.tracking.registry import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS_CHAMPION,
    ModelVersionRef,
    RegistryLock,
    VersionInfo,
    file_lock,
    get_version,
    list_versions,
    promote,
    register,
    rollback,
    set_version_tags,
    version_by_alias,
)
from policies.base import LearnedPolicy
from sim.scene.observation import OBSERVATION_FORMAT, Observation, check_observation_format

#: Re-exported from :mod:`autoloop.tracking.registry` (what this module defines is public too).
__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "PREVIOUS_CHAMPION",
    "ModelVersionRef",
    "RegistryLock",
    "VersionInfo",
    "file_lock",
    "get_version",
    "list_versions",
    "promote",
    "register",
    "rollback",
    "set_version_tags",
    "version_by_alias",
]

MODEL_NAME_IN_RUN = "driver"
_MODEL_CODE = Path(__file__).with_name("model_code.py")
#: The packages a driver model carries (its ``code`` folder): what :mod:`autoloop.tracking.model_code` and the
#: drivers' checkpoints import of ours, so the model loads where autoloop is not installed.
DRIVER_CODE = (Path(policies.__file__).parent, Path(sim.__file__).parent)
#: The distributions that code imports (every kind of driver), pinned in a model's requirements ...
_DRIVER_DISTRIBUTIONS = ("mlflow", "numpy", "torch", "numba", "gymnasium")
#: ... and those of the drivers of some kinds.
_KIND_DISTRIBUTIONS = {"ppo": ("stable-baselines3",), "sac": ("stable-baselines3",)}


@dataclass(frozen=True)
class LoggedPolicy:
    """A driver logged to a run: ``model_uri`` (``models:/m-…``) and the MLflow logged-model id."""

    model_uri: str
    model_id: str
    run_id: str


def configure(paths: Paths, experiment: str) -> str:
    """Point MLflow at the tracking store and make sure the experiment exists; returns its id.

    With the default SQLite store the experiment's artifacts go to ``<home>/mlartifacts``, and the store is created
    whole or not at all (:mod:`autoloop.tracking.local_store`); with ``MLFLOW_TRACKING_URI`` set, the server
    decides.

    :raises autoloop.tracking.local_store.IncompleteStore: for a half-created home store that holds runs.
    """
    uri = paths.tracking_uri
    if uri == f"sqlite:///{paths.mlflow_db}":
        ensure_local_store(paths.mlflow_db, paths.mlflow_artifacts)
    elif uri.startswith("sqlite:///"):
        paths.home.mkdir(parents=True, exist_ok=True)
    check_store(paths)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    found = mlflow.get_experiment_by_name(experiment)
    if found is not None:
        experiment_id = str(found.experiment_id)
    else:
        location = paths.mlflow_artifacts.as_uri() if uri.startswith("sqlite:///") else None
        try:
            experiment_id = mlflow.create_experiment(experiment, artifact_location=location)
        except MlflowException:  # created concurrently
            experiment_id = str(mlflow.get_experiment_by_name(experiment).experiment_id)  # type: ignore[union-attr]
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def check_store(paths: Paths) -> None:
    """Fail within seconds when the tracking store is a server or database that does not answer (MLflow's client
    would retry for minutes).

    :raises autoloop.network.Unreachable: naming the address (never its password).
    """
    uri = paths.tracking_uri
    if uri.split("://", 1)[0].split("+", 1)[0] in ("http", "https", "postgresql", "mysql"):
        check_reachable(uri, what="the MLflow tracking store (MLFLOW_TRACKING_URI)")


def create_run(name: str, *, experiment_id: str, tags: Mapping[str, str] | None = None) -> str:
    """Create a run that is not bound to the calling thread (e.g. a cycle's parent run); returns its id."""
    tags = {MLFLOW_RUN_NAME: name, PROCESS_TAG: identity(), **(tags or {})}
    run = MlflowClient().create_run(experiment_id, tags=tags)
    return str(run.info.run_id)


def end_run(run_id: str, *, failed: bool = False) -> None:
    MlflowClient().set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED if failed else RunStatus.FINISHED))


@contextmanager
def stage_run(name: str, *, experiment_id: str, parent_run_id: str | None,
              tags: Mapping[str, str] | None = None) -> Iterator[str]:
    """Run a stage inside an MLflow run of its own, nested under ``parent_run_id``; yields the run id.

    The run is marked failed if the stage raises.
    """
    all_tags = {"autoloop.stage": name, PROCESS_TAG: identity(), **(tags or {})}
    if parent_run_id:
        all_tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
    with mlflow.start_run(experiment_id=experiment_id, run_name=name, tags=all_tags, nested=True) as run:
        yield str(run.info.run_id)


def log_params(params: Mapping[str, Any], *, run_id: str | None = None) -> None:
    mlflow.log_params({key: str(value) for key, value in params.items()}, run_id=run_id)


def log_metrics(metrics: Mapping[str, float], *, step: int | None = None, run_id: str | None = None) -> None:
    mlflow.log_metrics({key: float(value) for key, value in metrics.items()}, step=step, run_id=run_id)


def set_tags(tags: Mapping[str, str], *, run_id: str | None = None) -> None:
    client = MlflowClient()
    active = mlflow.active_run()
    target = run_id or (active.info.run_id if active else None)
    if target is None:
        raise RuntimeError("set_tags needs an active run or a run_id")
    for key, value in tags.items():
        client.set_tag(target, key, value)


def log_text(text: str, artifact_file: str) -> None:
    mlflow.log_text(text, artifact_file)


def log_dict(data: Mapping[str, Any], artifact_file: str) -> None:
    mlflow.log_dict(dict(data), artifact_file)


def load_dict(run_id: str, artifact_file: str) -> dict[str, Any]:
    """A JSON artifact :func:`log_dict` logged to a run.

    :raises ValueError: when the run or the artifact does not exist.
    """
    try:
        return dict(mlflow.artifacts.load_dict(f"runs:/{run_id}/{artifact_file}"))
    except (MlflowException, OSError) as error:
        raise ValueError(f"run {run_id} has no {artifact_file} ({error})") from None


def log_artifacts(folder: Path, artifact_path: str | None = None) -> str:
    """Log every file under ``folder`` to the active run; returns the artifact URI they went to."""
    mlflow.log_artifacts(str(folder), artifact_path)
    return str(mlflow.get_artifact_uri(artifact_path))


def registry_lock(paths: Paths) -> RegistryLock:
    """The registry lock of one machine: a file beside the home's store (see :mod:`autoloop.tracking.registry`)."""
    return file_lock(paths.home / "registry.lock")


def log_dataset(snapshot: DatasetSnapshot, *, context: str = "training") -> None:
    """Record a dataset snapshot as an input of the active run (its lineage)."""
    dataset = MetaDataset(  # type: ignore[abstract]
        source=get_dataset_source_from_json(json.dumps({"uri": snapshot.path.resolve().as_uri()}), "local"),
        name=f"episodes-{snapshot.digest[:12]}",
        digest=snapshot.digest[:32],
    )
    mlflow.log_input(dataset, context=context, tags={"episodes": str(len(snapshot.episode_ids)),
                                                      "steps": str(snapshot.num_steps),
                                                      "sha256": snapshot.digest})


def log_suite(name: str, content_hash: str, routes: int) -> None:
    """Record the scenario suite an evaluation drove as an input of the active run (context ``evaluation``)."""
    dataset = MetaDataset(  # type: ignore[abstract]
        source=get_dataset_source_from_json(json.dumps({"uri": f"autoloop-suite:{name}@{content_hash}"}), "local"),
        name=f"suite-{name}",
        digest=content_hash[:32],
    )
    mlflow.log_input(dataset, context="evaluation", tags={"routes": str(routes), "suite_hash": content_hash})


def log_artifact(path: Path, artifact_path: str | None = None) -> None:
    """Log a file (e.g. a training checkpoint) to the active run."""
    mlflow.log_artifact(str(path), artifact_path)


def log_policy(policy: LearnedPolicy, checkpoint: Path, example: Observation) -> LoggedPolicy:
    """Log a learned driver of any kind (pyfunc from code, with signature and input example) to the active run."""
    active = mlflow.active_run()
    if active is None:
        raise RuntimeError("log_policy needs an active run")
    policy.save(checkpoint)
    bev, state = example["bev"], example["state"]
    info = mlflow.pyfunc.log_model(
        name=MODEL_NAME_IN_RUN,
        python_model=str(_MODEL_CODE),
        artifacts={"checkpoint": str(checkpoint)},
        signature=signature(tuple(bev.shape[1:]), int(state.shape[1])),
        input_example={"bev": bev, "state": state},
        code_paths=[str(path) for path in DRIVER_CODE],
        pip_requirements=driver_requirements(policy.kind),
        metadata={"autoloop_version": _version("autoloop"), "driver_kind": policy.kind,
                  "observation_format": OBSERVATION_FORMAT},
    )
    return LoggedPolicy(model_uri=info.model_uri, model_id=str(info.model_id), run_id=active.info.run_id)


def driver_requirements(kind: str) -> list[str]:
    """The pip requirements of a driver model of ``kind``: exact versions (those installed here) of the
    distributions its code imports."""
    return [f"{name}=={_version(name)}" for name in (*_DRIVER_DISTRIBUTIONS, *_KIND_DISTRIBUTIONS.get(kind, ()))]


def log_model_metrics(metrics: Mapping[str, float], *, model: LoggedPolicy) -> None:
    """Log metrics on the run that produced a model, linked to the logged model itself."""
    mlflow.log_metrics({key: float(value) for key, value in metrics.items()}, run_id=model.run_id,
                       model_id=model.model_id)


def run_tag(run_id: str, key: str) -> str | None:
    """A tag of a run, or ``None``."""
    value = MlflowClient().get_run(run_id).data.tags.get(key)
    return None if value is None else str(value)


def logged_policy(model_uri: str) -> LoggedPolicy:
    """Resolve a model URI (``models:/m-…``, ``models:/name/3``, ``models:/name@alias``) to the logged model
    and the run that produced it.

    :raises ValueError: when the model, version or alias does not exist.
    """
    try:
        return _logged_policy(model_uri)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise ValueError(f"{model_uri}: {error.message}; `autoloop models` lists the registered versions "
                             "(none yet? run `autoloop cycle`)") from None
        raise


def _logged_policy(model_uri: str) -> LoggedPolicy:
    client = MlflowClient()
    if model_uri.startswith("models:/m-"):
        model_id = model_uri.removeprefix("models:/")
    else:
        name, _, rest = model_uri.removeprefix("models:/").partition("/")
        if "@" in name:
            name, alias = name.split("@", 1)
            version = client.get_model_version_by_alias(name, alias)
        else:
            version = client.get_model_version(name, rest)
        # the SQL store leaves ``model_id`` empty on versions registered from ``models:/m-...``: read the source
        model_id = version.model_id or str(version.source or "").removeprefix("models:/")
        if not model_id.startswith("m-"):
            raise ValueError(f"{model_uri} was not registered from a logged model (source {version.source})")
    logged = mlflow.get_logged_model(model_id)
    return LoggedPolicy(model_uri=f"models:/{model_id}", model_id=model_id, run_id=str(logged.source_run_id))


def registered_version(model_uri: str) -> ModelVersionRef | None:
    """The registered version a ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS`` URI names now (``None`` for
    other URIs)."""
    if not model_uri.startswith("models:/") or model_uri.startswith("models:/m-"):
        return None
    name, _, rest = model_uri.removeprefix("models:/").partition("/")
    if "@" in name:
        name, alias = name.split("@", 1)
        return version_by_alias(name, alias)
    version = MlflowClient().get_model_version(name, rest)
    return ModelVersionRef(name=name, version=str(version.version), run_id=str(version.run_id))


def observation_format(model_uri: str) -> object:
    """The observation format a logged or registered driver was logged with (its metadata's
    ``observation_format``; ``None``: it records none)."""
    return (mlflow.models.get_model_info(model_uri).metadata or {}).get("observation_format")


def load_policy(model_uri: str) -> LearnedPolicy:
    """Load a logged or registered driver (``models:/name@alias``, ``models:/name/3``, ``models:/m-…``).

    :raises ~sim.scene.observation.ObservationFormatError: naming the model, when it was logged with another
        observation format (:func:`observation_format`).
    """
    check_observation_format(observation_format(model_uri), what=f"model {model_uri}",
                             remedy="retrain it (`autoloop train`)")
    model = mlflow.pyfunc.load_model(model_uri)
    policy: LearnedPolicy = model.unwrap_python_model().policy
    return policy


def ui_command(paths: Paths) -> str:
    """The command that opens the MLflow UI on this home's store."""
    uri = paths.tracking_uri
    if not uri.startswith("sqlite:///"):
        return f"open {uri} in a browser"
    return f"mlflow ui --backend-store-uri {uri} --port 5000"


@dataclass(frozen=True)
class Lineage:
    """Where a registered version comes from, and why it holds its aliases."""

    version: VersionInfo
    dataset_digest: str
    dataset_inputs: tuple[str, ...]
    training_run: str
    training_run_name: str
    evaluation_run: str
    promote_run: str
    verdict: str
    reasons: str


def lineage(name: str, version: str) -> Lineage:
    """The chain dataset snapshot -> training run -> evaluation run -> gate verdict of one version."""
    info = get_version(name, version)
    client = MlflowClient()
    training = client.get_run(info.run_id) if info.run_id and info.run_id != "None" else None
    inputs = tuple(f"{i.dataset.name} (digest {i.dataset.digest})"
                   for i in (training.inputs.dataset_inputs if training is not None and training.inputs else []))
    return Lineage(
        version=info,
        dataset_digest=info.tags.get("dataset_digest", "unknown"),
        dataset_inputs=inputs,
        training_run=info.run_id,
        training_run_name=training.info.run_name if training is not None else "",
        evaluation_run=info.tags.get("evaluation_run_id", "unknown"),
        promote_run=info.tags.get("promote_run_id", "unknown"),
        verdict=info.tags.get("verdict", "unknown"),
        reasons=info.tags.get("reasons", ""),
    )


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package).split("+")[0]
