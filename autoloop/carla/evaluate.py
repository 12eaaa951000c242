"""Evaluate a driver in CARLA (``evaluate.backend: carla``): the CARLA Leaderboard 2.x's own evaluator drives a route
file with autoloop's agent, and its results become the :class:`~autoloop.evaluation.EvaluationResult` an embedded
evaluation gives, so that the evaluate stage logs, reports and gates it the same way (:mod:`autoloop.stages`).

:func:`carla_setup` checks every input before any work (the route file, the Leaderboard, CARLA or a running server,
the interpreter) and says what is wrong in one line. :func:`evaluate_in_carla` then

1. keeps its run in ``<home>/evaluations/carla/<routes file stem>-<key>/``, the key covering the driver's identity,
   the route file (path and content), what the evaluator is given (repetitions, track, chunks, the Leaderboard) and
   the ``sim`` settings, so an interrupted evaluation resumes there and a finished one is read again without
   driving (the champion's, when a candidate is compared with it);
2. writes there the effective config (``config.yaml``) and the agent's settings (``agent.json``,
   :class:`~autoloop.carla.agent_config.AgentConfig`: the driver, pinned to the logged model an alias names now; the
   home whose episode store gets each route's episode; the tags of an embedded evaluation's episodes);
3. runs the evaluator on the servers (:func:`~autoloop.carla.leaderboard_runner.run_leaderboard`: started on
   ``gpus`` from ``carla_root``, or already running at ``hosts``), with ``MLFLOW_TRACKING_URI`` set to this home's
   tracking store so that the agent loads ``models:/`` URIs from it;
4. reads the Leaderboard's results (:func:`~autoloop.evaluation.leaderboard.leaderboard_evaluation`) into the
   evaluation checkpoint ``evaluation-<scorer>.jsonl`` beside them; a route the runner gave up is ``Failed -
   Simulation crashed`` (zero) with the runner's reason.

A route given up stays given up in its run folder: delete the folder to drive the route file again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from autoloop.carla.agent_config import AGENT_MODULE, AgentConfig
from autoloop.carla.evaluator import (
    EvaluatorSettings,
    evaluator_environment,
    leaderboard_evaluator_prefix,
    route_ids_in,
)
from autoloop.carla.leaderboard_runner import WatchSettings, run_leaderboard
from autoloop.carla.servers import (
    CarlaServer,
    ExternalCarlaServer,
    carla_launch_command,
    local_servers,
    server_ports,
)
from autoloop.config import AutoloopConfig, CarlaConfig, EvaluateConfig, SimConfig, dump_config
from autoloop.evaluation.leaderboard import leaderboard_checkpoint_header, leaderboard_evaluation
from autoloop.evaluation.results import EvaluationResult
from autoloop.paths import Paths
from sim.scenarios.routes import read_routes

#: What a version is when it cannot be found out.
UNKNOWN = "unknown"
#: The port of ``$CARLA_HOST`` when neither it nor ``$CARLA_PORT`` names one.
DEFAULT_CARLA_PORT = 2000


@dataclass(frozen=True)
class CarlaSetup:
    """A CARLA evaluation's inputs, checked by :func:`carla_setup`.

    :param routes: the route file (absolute).
    :param routes_sha256: the SHA-256 of its bytes (hex).
    :param leaderboard_root: the Leaderboard checkout the evaluator comes from.
    :param carla_root: the CARLA package (``None``: servers already running, and ``carla`` on ``PYTHONPATH``).
    :param hosts: servers already running (``HOST:PORT``); empty: servers started from ``carla_root``.
    :param evaluator_prefix: the evaluator program (interpreter and script).
    :param environment: the evaluator's environment (the roots and ``PYTHONPATH`` set).
    :param scorer: the scorer of the results.
    :param settings: the config section (ports, GPUs, chunks, hang timeout, repetitions, track).
    """

    routes: Path
    routes_sha256: str
    leaderboard_root: Path
    carla_root: Path | None
    hosts: tuple[str, ...]
    evaluator_prefix: tuple[str, ...]
    environment: Mapping[str, str]
    scorer: str
    settings: CarlaConfig

    @property
    def server_count(self) -> int:
        """CARLA servers the evaluation uses at once (one evaluator each)."""
        return len(self.hosts) or len(self.settings.gpus)

    def servers(self, log_dir: Path) -> list[CarlaServer]:
        """The servers: those at ``hosts``, else one started per GPU, logging to ``log_dir/server-<i>.log``."""
        if self.hosts:
            return [ExternalCarlaServer.from_address(address) for address in self.hosts]
        assert self.carla_root is not None
        return list(local_servers(self.carla_root, gpus=self.settings.gpus, log_dir=log_dir,
                                  base_port=self.settings.base_port, port_spacing=self.settings.port_spacing))

    def watch(self) -> WatchSettings:
        """How the evaluator is watched: ``hang_timeout_s``, checked 20 times within it (at most every second)."""
        return WatchSettings(hang_timeout_s=self.settings.hang_timeout_s,
                             poll_s=min(1.0, self.settings.hang_timeout_s / 20))

    def tags(self) -> dict[str, str]:
        """What the evaluation ran on, for its MLflow run: CARLA's version (``$CARLA_ROOT/VERSION``), the
        Leaderboard's (``git describe`` of its checkout), the route file's name and SHA-256; ``unknown`` where a
        version cannot be found out."""
        return {"autoloop.carla_version": carla_version(self.carla_root),
                "autoloop.leaderboard_version": leaderboard_version(self.leaderboard_root),
                "autoloop.routes_file": self.routes.name, "autoloop.routes_sha256": self.routes_sha256}


def carla_setup(settings: EvaluateConfig, *, environ: Mapping[str, str] | None = None) -> CarlaSetup:
    """Check the inputs of a CARLA evaluation (``settings.carla``, unset paths and servers from ``environ``, default
    this process's environment) before anything runs.

    :raises ValueError: one line naming the setting (or variable) or file and what to do.
    """
    environ = os.environ if environ is None else environ
    carla = settings.carla
    routes = _routes(carla.routes)
    leaderboard_root = _root(carla.leaderboard_root, "leaderboard_root", "LEADERBOARD_ROOT", environ)
    if leaderboard_root is None:
        raise ValueError("evaluate.carla.leaderboard_root: unset, and so is $LEADERBOARD_ROOT: point it at a "
                         "checkout of carla-simulator/leaderboard (2.x) or Bench2Drive's leaderboard folder")
    carla_root = _root(carla.carla_root, "carla_root", "CARLA_ROOT", environ)
    hosts = carla.hosts
    if not hosts and carla.carla_root is None and environ.get("CARLA_HOST"):
        hosts = (_environment_host(environ),)
    if not hosts and carla_root is None:
        raise ValueError("evaluate.carla: no CARLA server: set carla_root (or $CARLA_ROOT) to start servers from a "
                         "CARLA package, or hosts (or $CARLA_HOST) to use running ones")
    if not hosts:
        assert carla_root is not None
        for index, gpu in enumerate(carla.gpus):
            ports = server_ports(index, base_port=carla.base_port, port_spacing=carla.port_spacing)
            carla_launch_command(carla_root, rpc_port=ports.rpc_port, gpu=gpu)
    python = carla.python or sys.executable
    if shutil.which(python) is None:
        raise ValueError(f"evaluate.carla.python {python!r}: no such interpreter")
    prefix = leaderboard_evaluator_prefix(leaderboard_root, python=python)
    environment = evaluator_environment(
        carla_root=carla_root, leaderboard_root=leaderboard_root,
        scenario_runner_root=_root(carla.scenario_runner_root, "scenario_runner_root", "SCENARIO_RUNNER_ROOT",
                                   environ), base=environ)
    return CarlaSetup(routes=routes, routes_sha256=hashlib.sha256(routes.read_bytes()).hexdigest(),
                      leaderboard_root=leaderboard_root, carla_root=carla_root, hosts=hosts,
                      evaluator_prefix=tuple(prefix), environment=environment,
                      scorer=carla.scorer or settings.scorer, settings=carla)


def evaluate_in_carla(setup: CarlaSetup, *, driver: str, identity: str, policy_name: str, config: AutoloopConfig,
                      paths: Paths, tags: Mapping[str, str]) -> EvaluationResult:
    """Drive ``setup.routes`` with ``driver`` in the Leaderboard's evaluator (or resume its run) and return the
    evaluation (see the module docstring).

    :param driver: the driver spec the agent loads (:func:`agent_driver`).
    :param identity: the driver's identity (:func:`autoloop.stages.resolve_driver`).
    :param policy_name: the result's ``policy`` (what was asked for: an alias, a file, ``expert``).
    :param config: the effective config (its ``sim`` settings are the driver's; ``evaluate`` gives the bootstrap).
    :param paths: the home: the run folder, the episode store and the tracking store the agent uses.
    :param tags: stored with each episode, besides ``purpose=eval``, ``suite`` and ``suite_hash``.
    """
    carla = setup.settings
    header = leaderboard_checkpoint_header(setup.routes, identity=identity, scorer=setup.scorer,
                                           repetitions=carla.repetitions)
    folder = run_folder(paths.evaluations, setup, identity=identity, sim=config.sim)
    folder.mkdir(parents=True, exist_ok=True)
    config_file = folder / "config.yaml"
    config_file.write_text(dump_config(config))
    episode_tags = {**tags, "purpose": "eval", "suite": header["suite"], "suite_hash": header["suite_hash"]}
    agent_config = AgentConfig(driver=driver, home=paths.home, config=config_file,
                               tags=episode_tags).write(folder / "agent.json")
    environment = {**setup.environment, "MLFLOW_TRACKING_URI": paths.tracking_uri, "AUTOLOOP_HOME": str(paths.home)}
    run = run_leaderboard(
        EvaluatorSettings(routes=setup.routes, agent=AGENT_MODULE, agent_config=str(agent_config), track=carla.track,
                          repetitions=carla.repetitions),
        servers=setup.servers(folder / "logs"), output_dir=folder, evaluator_prefix=setup.evaluator_prefix,
        environment=environment, chunk_routes=carla.chunk_routes, watch=setup.watch())
    given_up = {route.route_id: f"{route.reason} ({route.attempts} attempts)" for route in run.crashed}
    return leaderboard_evaluation(
        run.checkpoints, route_file=setup.routes, checkpoint=folder / f"evaluation-{setup.scorer}.jsonl",
        policy_name=policy_name, identity=identity,
        settings=config.evaluate.model_copy(update={"scorer": setup.scorer}), repetitions=carla.repetitions,
        given_up=given_up, episode_tags=episode_tags)


def agent_driver(spec: str, identity: str) -> str:
    """The driver spec the agent loads for ``spec``: the logged model ``identity`` names for a ``models:/`` URI (an
    alias could move while the evaluation runs), a checkpoint file's absolute path, or ``expert``."""
    if spec.startswith("models:/"):
        return f"models:/{identity}"
    return spec if spec == "expert" else str(Path(spec).resolve())


def run_folder(evaluations: Path, setup: CarlaSetup, *, identity: str, sim: SimConfig) -> Path:
    """Where the evaluation of ``identity`` on ``setup`` runs: ``<evaluations>/carla/<routes stem>-<key>``."""
    carla = setup.settings
    payload = {"identity": identity, "routes": str(setup.routes), "routes_sha256": setup.routes_sha256,
               "repetitions": carla.repetitions, "track": carla.track, "chunk_routes": carla.chunk_routes,
               "leaderboard_root": str(setup.leaderboard_root), "sim": sim.model_dump(mode="json")}
    key = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    return evaluations / "carla" / f"{setup.routes.stem}-{key}"


def carla_version(carla_root: Path | None) -> str:
    """The first line of ``$CARLA_ROOT/VERSION`` (a CARLA package's), else ``unknown``."""
    try:
        return (Path(carla_root) / "VERSION").read_text().strip().splitlines()[0] if carla_root else UNKNOWN
    except (OSError, IndexError):
        return UNKNOWN


def leaderboard_version(leaderboard_root: Path) -> str:
    """``git describe --tags --always --dirty`` of the Leaderboard checkout, else ``unknown``."""
    try:
        described = subprocess.run(["git", "describe", "--tags", "--always", "--dirty"], cwd=leaderboard_root,
                                   capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    return described or UNKNOWN


def _routes(routes: Path | None) -> Path:
    if routes is None:
        raise ValueError("evaluate.carla.routes: no route file given (--routes FILE.xml)")
    path = Path(routes).resolve()
    if not path.is_file():
        raise ValueError(f"evaluate.carla.routes {routes}: no such file")
    route_ids_in(path)  # numeric, unique ids (the evaluator's --routes-subset)
    read_routes(path)  # towns and waypoints (the results are read against them)
    return path


def _root(value: Path | None, key: str, variable: str, environ: Mapping[str, str]) -> Path | None:
    """A folder from the setting ``key``, else from ``$variable``; ``None`` when neither is set."""
    if value is not None:
        where, path = f"evaluate.carla.{key}", Path(value)
    elif environ.get(variable):
        where, path = f"${variable}", Path(environ[variable])
    else:
        return None
    if not path.is_dir():
        raise ValueError(f"{where} {path}: no such folder")
    return path.resolve()


def _environment_host(environ: Mapping[str, str]) -> str:
    """``$CARLA_HOST`` as ``HOST:PORT`` (its port, else ``$CARLA_PORT``, else 2000)."""
    host = environ["CARLA_HOST"]
    if ":" in host:
        address = host
    else:
        port = environ.get("CARLA_PORT") or str(DEFAULT_CARLA_PORT)
        if not port.isdigit():
            raise ValueError(f"$CARLA_PORT {port!r}: expected a port number")
        address = f"{host}:{port}"
    host_name, _, port = address.rpartition(":")
    if not host_name or not port.isdigit():
        raise ValueError(f"$CARLA_HOST {host!r}: expected HOST or HOST:PORT, e.g. 127.0.0.1:2000")
    return address
