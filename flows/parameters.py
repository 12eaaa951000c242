"""Flow parameters as a person fills them in the Prefect UI, read and checked before any work is done.

Every flow takes plain parameters (a config file and/or a profile, a suite, a model URI, paths) and turns them
into autoloop's typed config here. A parameter that cannot be used fails the flow run at once with a
:class:`ParameterError` that names the parameter and its value: no MLflow run is started, nothing is registered,
and the run is not retried (it would fail the same way).
"""

from __future__ import annotations

from pathlib import Path

from autoloop import stages
from autoloop.config import PROFILES, AutoloopConfig, ConfigError, load_config
from autoloop.paths import Paths
from sim.scenarios.suites import SUITE_NAMES


class ParameterError(ValueError):
    """A flow parameter that cannot be used; the message names the parameter and its value."""


def load(config_file: str | None, profile: str | None, *, suite: str | None = None) -> AutoloopConfig:
    """The config a flow run asks for: ``profile`` (else the file's, else ``default``), then ``config_file``'s keys,
    then ``suite`` as ``evaluate.suite`` (the whole suite: no slice).

    :raises ParameterError: naming ``config_file``, ``profile`` or ``suite``.
    """
    if profile is not None and profile not in PROFILES:
        raise ParameterError(f"parameter profile={profile!r}: unknown profile; choose one of {', '.join(PROFILES)}")
    if suite is not None and suite not in SUITE_NAMES:
        raise ParameterError(f"parameter suite={suite!r}: unknown suite; choose one of {', '.join(SUITE_NAMES)}")
    try:
        return load_config(Path(config_file) if config_file else None, profile=profile,
                           overrides={"evaluate": {"suite": suite, "routes": None}} if suite else None)
    except ConfigError as error:
        raise ParameterError(f"parameter config_file={config_file!r}: {error}") from None


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
