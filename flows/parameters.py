"""Flow parameters as a person fills them in the Prefect UI, read and checked before any work is done.

Every flow takes plain parameters (a config file and/or a profile, a suite, a model URI, paths) and turns them
into autoloop's typed config here. A parameter that cannot be used fails the flow run at once with a
:class:`ParameterError` that names the parameter and its value: no MLflow run is started, nothing is registered,
and the run is not retried (it would fail the same way).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

from autoloop import stages
from autoloop.config import PROFILES, AutoloopConfig, Backend, ConfigError, evaluate_overrides, load_config
from autoloop.paths import Paths
from sim.scenarios.suites import SUITE_NAMES

#: The evaluation backends.
BACKENDS: tuple[str, ...] = get_args(Backend)


class ParameterError(ValueError):
    """A flow parameter that cannot be used; the message names the parameter and its value."""


def load(config_file: str | None, profile: str | None, *, suite: str | None = None, backend: str | None = None,
         routes: str | None = None, carla: Mapping[str, Any] | None = None) -> AutoloopConfig:
    """The config a flow run asks for: ``profile`` (else the file's, else ``default``), then ``config_file``'s keys,
    then ``suite`` as ``evaluate.suite`` (the whole suite: no slice), ``backend`` as ``evaluate.backend``, ``carla``'s
    keys over ``evaluate.carla`` and ``routes`` as ``evaluate.carla.routes``.

    :raises ParameterError: naming ``config_file``, ``profile``, ``suite``, ``backend`` or ``carla``.
    """
    if profile is not None and profile not in PROFILES:
        raise ParameterError(f"parameter profile={profile!r}: unknown profile; choose one of {', '.join(PROFILES)}")
    if suite is not None and suite not in SUITE_NAMES:
        raise ParameterError(f"parameter suite={suite!r}: unknown suite; choose one of {', '.join(SUITE_NAMES)}")
    if backend is not None and backend not in BACKENDS:
        raise ParameterError(f"parameter backend={backend!r}: unknown backend; choose one of {', '.join(BACKENDS)}")
    carla = {**(carla or {}), **({"routes": routes} if routes is not None else {})}
    try:
        return load_config(Path(config_file) if config_file else None, profile=profile,
                           overrides=evaluate_overrides(suite=suite, backend=backend, carla=carla))
    except ConfigError as error:
        given = f"parameter config_file={config_file!r}" + (f" with carla={carla!r}" if carla else "")
        raise ParameterError(f"{given}: {error}") from None


def carla_servers(config: AutoloopConfig) -> int:
    """The CARLA servers an evaluation with ``config`` uses (0 on the embedded simulator), its CARLA inputs (route
    file, Leaderboard, CARLA or a running server) checked.

    :raises ParameterError: naming the setting or file that cannot be used.
    """
    try:
        setup = stages.evaluation_backend(config)
    except ValueError as error:
        raise ParameterError(f"evaluate.backend=carla: {error}") from None
    return 0 if setup is None else setup.server_count


def home(folder: str | None) -> Paths:
    """Where the flow writes: ``folder``, else ``$AUTOLOOP_HOME``, else ``./.autoloop``."""
    return Paths(Path(folder).resolve()) if folder else Paths.from_env()


def existing(value: str, *, name: str, folder: bool = False) -> Path:
    """An existing file (``folder``: folder) the flow reads.

    :raises ParameterError: naming the parameter and the value.
    """
    found = Path(value)
    if not (found.is_dir() if folder else found.is_file()):
        raise ParameterError(f"parameter {name}={value!r}: no such {'folder' if folder else 'file'}")
    return found


def driver(model_uri: str, *, name: str = "model_uri") -> None:
    """Check that ``model_uri`` names a driver (``expert``, a checkpoint file, a ``models:/`` URI that resolves);
    the tracking store must be configured.

    :raises ParameterError: naming the parameter and the value.
    """
    try:
        stages.resolve_driver(model_uri)
    except ValueError as error:
        raise ParameterError(f"parameter {name}={model_uri!r}: {error}") from None
