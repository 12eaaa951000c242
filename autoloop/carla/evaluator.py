"""The CARLA Leaderboard 2.x evaluator as a program: its command line, its environment, the route ids it accepts, and
how far a run of it got.

Its command line (the argparse of ``main()`` in carla-simulator/leaderboard ``leaderboard/leaderboard_evaluator.py``,
2.x, and of the copy Thinklab-SJTU/Bench2Drive ships in ``leaderboard/leaderboard/leaderboard_evaluator.py``, which
adds ``--gpu-rank`` for the server it starts itself)::

    python $LEADERBOARD_ROOT/leaderboard/leaderboard_evaluator.py --host=H --port=P
        --traffic-manager-port=TM --traffic-manager-seed=S --timeout=T --debug=D
        --routes=ROUTES.xml --routes-subset=ID,ID,... --repetitions=R
        --agent=AGENT.py --agent-config=CONFIG --track=SENSORS
        --checkpoint=CHUNK.json --debug-checkpoint=CHUNK.live.txt [--record=DIR] [--resume=1]

Facts this module relies on, read in those files and in Bench2Drive's copy of the Leaderboard 2.x utilities
(``leaderboard/leaderboard/utils/route_parser.py``, ``route_indexer.py``, ``statistics_manager.py``,
``leaderboard/leaderboard/scenarios/scenario_manager.py``):

- ``--resume`` is declared ``type=bool``: any non-empty value, ``0`` and ``False`` included, means *resume*. So a
  first run passes no ``--resume`` at all and a rerun passes ``--resume=1``.
- ``--routes-subset`` takes route ids separated by commas (or ``a-b`` ranges) and the parser sorts them with
  ``int(id)``, so subsets need numeric ids; the routes then run in the order of the routes file.
- The checkpoint (``--checkpoint``) is rewritten in place after every route: ``_checkpoint.records`` holds one record
  per finished route (``route_id`` ``RouteScenario_<id>_rep<r>``, ``status``, ``index``; the route in progress, index
  -1, is left out) and ``_checkpoint.progress`` is ``[routes done, routes planned]``. A route the simulation failed
  is recorded as ``Failed - Simulation crashed`` and the evaluator exits with code -1 (255); ``--resume``
  (``validate_and_resume``) starts again at the first record with a failed status, and starts afresh when the
  planned count differs from the file's, so a checkpoint is only ever resumed with the same subset.
- With ``--debug`` 2 or more the scenario manager rewrites ``--debug-checkpoint`` every tick
  (``write_live_results``); otherwise only the checkpoint (once a route) and what the agent prints show that it is
  alive.
- The environment the Leaderboard documents (leaderboard.carla.org ``get_started``; Bench2Drive
  ``leaderboard/scripts/run_evaluation.sh``): ``PYTHONPATH`` with ``$CARLA_ROOT/PythonAPI/carla`` (the ``agents``
  package), ``$SCENARIO_RUNNER_ROOT`` (``srunner``) and ``$LEADERBOARD_ROOT`` (``leaderboard``).

Reading the checkpoint here only tells which routes are finished, to steer a run; turning its records into results is
:mod:`autoloop.evaluation`'s business.
"""

from __future__ import annotations

import json
import os
import sys
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autoloop.carla.servers import ServerPorts
from autoloop.evaluation.results import SIMULATION_CRASHED

#: The evaluator, relative to ``$LEADERBOARD_ROOT``.
EVALUATOR_SCRIPT = Path("leaderboard") / "leaderboard_evaluator.py"


@dataclass(frozen=True)
class EvaluatorSettings:
    """The evaluator's arguments that every chunk of a run shares.

    :param routes: the routes file (``--routes``), a Leaderboard routes XML.
    :param agent: the agent's Python file (``--agent``).
    :param agent_config: the agent's configuration (``--agent-config``), passed through as it is.
    :param track: ``SENSORS`` or ``MAP`` (``--track``).
    :param repetitions: runs of each route (``--repetitions``).
    :param traffic_manager_seed: ``--traffic-manager-seed``.
    :param client_timeout_s: ``--timeout``: the CARLA client's timeout and the evaluator's watchdogs, s.
    :param debug: ``--debug`` (2 or more: the live-results file is rewritten every tick, a heartbeat).
    :param record_dir: ``--record``: where the CARLA server writes a recorder log per route (none when unset).
    """

    routes: Path
    agent: Path
    agent_config: str = ""
    track: str = "SENSORS"
    repetitions: int = 1
    traffic_manager_seed: int = 0
    client_timeout_s: float = 60.0
    debug: int = 0
    record_dir: Path | None = None

    def __post_init__(self) -> None:
        if not Path(self.routes).is_file():
            raise ValueError(f"routes {self.routes}: no such file")
        if not Path(self.agent).is_file():
            raise ValueError(f"agent {self.agent}: no such file")
        if self.track not in ("SENSORS", "MAP"):
            raise ValueError(f"track {self.track!r}: the Leaderboard's tracks are SENSORS and MAP")
        if self.repetitions < 1:
            raise ValueError(f"repetitions {self.repetitions}: must be at least 1")


def leaderboard_evaluator_prefix(leaderboard_root: Path, *, python: str = sys.executable) -> list[str]:
    """``[python, $LEADERBOARD_ROOT/leaderboard/leaderboard_evaluator.py]``.

    :param python: an interpreter with the Leaderboard's requirements (the ``carla`` client of the server's version,
        ``py_trees``, ...), usually not autoloop's own.
    :raises ValueError: when ``leaderboard_root`` holds no evaluator.
    """
    script = Path(leaderboard_root) / EVALUATOR_SCRIPT
    if not script.is_file():
        raise ValueError(f"LEADERBOARD_ROOT {leaderboard_root}: no {EVALUATOR_SCRIPT} there; point it at a checkout "
                         "of carla-simulator/leaderboard")
    return [python, str(script)]


def evaluator_command(prefix: Sequence[str], settings: EvaluatorSettings, *, host: str, ports: ServerPorts,
                      route_ids: Sequence[str], checkpoint: Path, live_results: Path, resume: bool) -> list[str]:
    """The evaluator's command line for ``route_ids`` of ``settings.routes`` against the server at
    ``host:ports.rpc_port`` (see the module docstring).

    :param prefix: the program: :func:`leaderboard_evaluator_prefix`, or a stand-in in tests.
    :param checkpoint: ``--checkpoint``, the results of these routes.
    :param live_results: ``--debug-checkpoint``.
    :param resume: continue ``checkpoint`` (``--resume=1``) rather than start it afresh (no ``--resume``).
    """
    command = [*prefix, f"--host={host}", f"--port={ports.rpc_port}",
               f"--traffic-manager-port={ports.traffic_manager_port}",
               f"--traffic-manager-seed={settings.traffic_manager_seed}", f"--timeout={settings.client_timeout_s:g}",
               f"--debug={settings.debug}", f"--routes={settings.routes}", f"--routes-subset={','.join(route_ids)}",
               f"--repetitions={settings.repetitions}", f"--agent={settings.agent}",
               f"--agent-config={settings.agent_config}", f"--track={settings.track}", f"--checkpoint={checkpoint}",
               f"--debug-checkpoint={live_results}"]
    if settings.record_dir is not None:
        command.append(f"--record={settings.record_dir}")
    if resume:
        command.append("--resume=1")  # type=bool: never "--resume=0", which would resume too
    return command


def evaluator_environment(*, carla_root: Path | None, leaderboard_root: Path | None,
                          scenario_runner_root: Path | None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with ``CARLA_ROOT``, ``LEADERBOARD_ROOT``,
    ``SCENARIO_RUNNER_ROOT`` and, in front of its ``PYTHONPATH``, ``$CARLA_ROOT/PythonAPI/carla``,
    ``$SCENARIO_RUNNER_ROOT`` and ``$LEADERBOARD_ROOT`` (those given).

    :raises ValueError: when a root lacks what the evaluator imports from it.
    """
    env = dict(os.environ if base is None else base)
    paths = []
    for name, root, inside in (("CARLA_ROOT", carla_root, Path("PythonAPI") / "carla"),
                               ("SCENARIO_RUNNER_ROOT", scenario_runner_root, Path("srunner")),
                               ("LEADERBOARD_ROOT", leaderboard_root, Path("leaderboard"))):
        if root is None:
            continue
        if not (Path(root) / inside).is_dir():
            raise ValueError(f"{name} {root}: no {inside} there")
        env[name] = str(root)
        paths.append(str(Path(root) / inside) if name == "CARLA_ROOT" else str(root))
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def route_ids_in(routes: Path) -> list[str]:
    """The ids of the routes in a Leaderboard routes file (``<routes><route id=... town=...>``), in file order.

    :raises ValueError: when the file is not such a file, or an id is not a number (``--routes-subset`` needs
        numbers) or appears twice.
    """
    try:
        root = ET.parse(routes).getroot()
    except (OSError, ET.ParseError) as error:
        raise ValueError(f"routes {routes}: not a readable routes XML ({error})") from error
    ids = [route.get("id", "") for route in root.iter("route")]
    for route_id in ids:
        if not route_id.isdigit():
            raise ValueError(f"routes {routes}: route id {route_id!r} is not a number (the evaluator's "
                             "--routes-subset needs numeric ids)")
    repeated = sorted({route_id for route_id in ids if ids.count(route_id) > 1})
    if repeated:
        raise ValueError(f"routes {routes}: route ids {', '.join(repeated)} appear more than once")
    return ids


def entry_id(route_id: str, repetition: int) -> str:
    """The ``route_id`` of a route's record in the evaluator's checkpoint."""
    return f"RouteScenario_{route_id}_rep{repetition}"


def read_checkpoint(checkpoint: Path) -> dict[str, Any] | None:
    """The checkpoint's JSON, or ``None`` when it is missing, empty or half written (the evaluator writes it in
    place, not atomically)."""
    try:
        data = json.loads(checkpoint.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def finished_routes(data: Mapping[str, Any] | None, route_ids: Sequence[str], *, repetitions: int) -> set[str]:
    """Which of ``route_ids`` the checkpoint ``data`` holds finished: every repetition recorded with a status other
    than ``Failed - Simulation crashed`` (an agent's failure is a result; a simulation's is not)."""
    checkpoint = (data or {}).get("_checkpoint")
    records = checkpoint.get("records") if isinstance(checkpoint, dict) else None
    if not isinstance(records, list):
        return set()
    recorded = {str(record.get("route_id")) for record in records
                if isinstance(record, dict) and record.get("status") not in (None, "Started", SIMULATION_CRASHED)}
    return {route_id for route_id in route_ids
            if all(entry_id(route_id, repetition) in recorded for repetition in range(repetitions))}
