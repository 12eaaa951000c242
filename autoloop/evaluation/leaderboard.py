"""The CARLA Leaderboard 2.x evaluator's results file, read into :class:`~autoloop.evaluation.results.RouteResult`s.

autoloop runs the Leaderboard's own ``leaderboard/leaderboard_evaluator.py`` (carla-simulator/leaderboard, branches
leaderboard-2.0/2.1, or Bench2Drive's fork of it); its ``--checkpoint`` file is what this module reads.

The format is leaderboard-2.0's ``Results.to_json`` (carla-simulator/leaderboard
``leaderboard/utils/statistics_manager.py``), as its fork Thinklab-SJTU/Bench2Drive
``leaderboard/leaderboard/utils/statistics_manager.py`` writes it::

    {"_checkpoint": {"global_record": {...}, "progress": [routes done, routes planned], "records": [RouteRecord...]},
     "entry_status": "Started" | "Finished" | "Rejected" | "Crashed" | "Invalid", "eligible": bool,
     "sensors": [...], "values": [...], "labels": [...]}

    RouteRecord: {"index": int, "route_id": "RouteScenario_<route file id>_rep<repetition>", "status": str,
                  "num_infractions": int, "infractions": {key: [message, ...]},
                  "scores": {"score_route": %, "score_penalty": [0, 1], "score_composed": %},
                  "meta": {"route_length": m, "duration_game": s, "duration_system": s}}

Only ``_checkpoint.records`` is read (the global record, progress and entry status are derived from the records). A
record is matched to the route file by its ``route_id`` (``config.name`` is ``RouteScenario_<id>``, suffixed
``_rep<n>`` in ``leaderboard_evaluator._load_and_run_scenario``), not by ``index``: Bench2Drive renumbers records
(``sort_records``) and its ``tools/merge_reoute_json.py`` drops ``index``. Several results files (one per
evaluator process, as Bench2Drive runs it) are read together.

Statuses (``compute_route_statistics``; failure messages from ``FAILURE_MESSAGES`` and the evaluator):

- ``Perfect`` (completed, no infraction) and ``Completed`` become ``RouteStatus.COMPLETED``;
  ``Failed - Agent deviated from the route`` / ``got blocked`` / ``timed out`` keep their
  :data:`~autoloop.evaluation.results.ROUTE_STATUSES` meaning.
- Routes the evaluator could not drive to an end become run failures that score zero (``RUN_FAILURES``), their
  Leaderboard status and score kept in ``error``: ``Failed - Simulation crashed``, ``Failed - Agent crashed``,
  ``Failed - Agent couldn't be set up``, ``Failed - Agent's sensors were invalid`` (an agent set-up failure),
  Bench2Drive's ``Failed - TickRuntime`` (a tick that raised: the simulator), ``Failed`` with no reason
  (Bench2Drive's ``route_indexer`` runs it again, like a crash), ``Started`` (a record never completed), and every
  route of the route file with no record at all (the evaluator does not write the route in progress).

Infractions (``PENALTY_NAME_DICT``; messages from scenario_runner's ``srunner/scenariomanager/scenarioatomics/
atomic_criteria.py``, Thinklab-SJTU/Bench2Drive ``scenario_runner/...``): each key maps to an
:class:`~sim.metrics.Infraction` (:data:`INFRACTION_KEYS`) counted once per message. Messages that name a place,
``... at (x=12.3, y=-45.6, z=0.1)`` (the ego for collisions, deviation and blocking; the light or the stop sign for
those), become :class:`InfractionEvent`\\ s in the map frame (:func:`sim.maps.frames.from_carla_xy`); the messages
carry no time, so ``time_s`` is NaN. ``Average speed is 63.1% of the surrounding traffic's one`` gives a
minimum-speed percentage; ``... for about 18.0 meters (1.5% of the completed route)`` the outside-lanes share.

Scores: the route is rebuilt as a :class:`sim.metrics.RouteRecord` (completion ``score_route / 100``, length
``meta.route_length``, driven ``completion x length`` as the Leaderboard counts kilometres, outside-lanes share of
the *completed* route as the Leaderboard penalizes it, where the embedded simulator's is of the whole route) and
scored by the chosen :data:`sim.metrics.SCORERS` version; comfort is NaN (the file holds no trajectory). The
Leaderboard's own scores stay in ``record["leaderboard"]`` (:func:`leaderboard_scores`). ``lb2`` on a
leaderboard-2.0 file gives its ``score_composed`` except:

- the message's outside-lanes percentage has 2 decimals, the Leaderboard's penalty none (DS off by < 0.005);
- autoloop snaps completion to 100 % within ``COMPLETION_SNAP_M`` of the end; the Leaderboard also needs 99 %;
- run failures score zero here; the Leaderboard keeps what an agent crash or a crash mid-route had driven.

Bench2Drive's fork marks the minimum-speed penalty ``'unused'``: its ``score_composed`` is the ``bench2drive``
scorer's (``lb2`` takes the factor off), and its success rate is :func:`sim.metrics.bench2drive_success` (as its
``tools/ability_benchmark.py``: completed with no infraction but minimum speed). ``lb21`` rescores a 2.0 file with
the 2.1 weights.

Bench2Drive's records add ``scenario_name``, ``weather_id``, ``save_name`` and ``town_name`` (not read: town and
scenario type come from the route file).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from autoloop.config import EvaluateConfig
from autoloop.evaluation.results import (
    AGENT_CRASHED,
    AGENT_SETUP_FAILED,
    ROUTE_STATUSES,
    SIMULATION_CRASHED,
    EvaluationResult,
    InfractionEvent,
    RouteResult,
    aggregate,
    record_json,
)
from autoloop.evaluation.runner import CHECKPOINT_FORMAT, append_routes, read_checkpoint
from autoloop.locks import exclusive
from sim.maps.frames import from_carla_xy
from sim.metrics import Infraction, RouteRecord, RouteStatus, score_route
from sim.scenarios.routes import RouteSpec, read_routes

#: The Leaderboard's infraction lists and what each counts.
INFRACTION_KEYS: Mapping[str, Infraction] = MappingProxyType({
    "collisions_pedestrian": Infraction.COLLISION_PEDESTRIAN,
    "collisions_vehicle": Infraction.COLLISION_VEHICLE,
    "collisions_layout": Infraction.COLLISION_STATIC,
    "red_light": Infraction.RED_LIGHT,
    "stop_infraction": Infraction.STOP_SIGN,
    "scenario_timeouts": Infraction.SCENARIO_TIMEOUT,
    "yield_emergency_vehicle_infractions": Infraction.YIELD_TO_EMERGENCY,
    "min_speed_infractions": Infraction.MIN_SPEED,
    "outside_route_lanes": Infraction.OUTSIDE_ROUTE_LANES,
    "route_dev": Infraction.ROUTE_DEVIATION,
    "vehicle_blocked": Infraction.AGENT_BLOCKED,
    "route_timeout": Infraction.ROUTE_TIMEOUT,
})

#: Statuses of routes driven to an end, and how each ended.
DRIVEN_STATUSES: Mapping[str, RouteStatus] = MappingProxyType(
    {"Perfect": RouteStatus.COMPLETED}
    | {name: status for status, name in ROUTE_STATUSES.items() if status is not RouteStatus.CRASHED})

#: Statuses of routes not driven to an end, and the run failure each is.
RUN_FAILURE_STATUSES: Mapping[str, str] = MappingProxyType({
    SIMULATION_CRASHED: SIMULATION_CRASHED,
    AGENT_CRASHED: AGENT_CRASHED,
    AGENT_SETUP_FAILED: AGENT_SETUP_FAILED,
    "Failed - Agent's sensors were invalid": AGENT_SETUP_FAILED,
    "Failed - TickRuntime": SIMULATION_CRASHED,
    "Failed": SIMULATION_CRASHED,
    "Started": SIMULATION_CRASHED,
})

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_PLACE = re.compile(rf"at \(x=({_NUMBER}), y=({_NUMBER}), z={_NUMBER}\)")
_MIN_SPEED = re.compile(rf"Average speed is ({_NUMBER})% of the surrounding traffic's one")
_OUTSIDE = re.compile(rf"\(({_NUMBER})% of the completed route\)")


@dataclass(frozen=True)
class LeaderboardScores:
    """The Leaderboard's own record of a route: its status as written, completion and driving score in percent,
    penalty in [0, 1]."""

    route_id: str
    status: str
    score_route: float
    score_penalty: float
    score_composed: float


@dataclass(frozen=True)
class _Record:
    """One validated record; ``where`` is its place in its file, for errors."""

    scores: LeaderboardScores
    messages: Mapping[str, tuple[str, ...]]
    route_length_m: float
    file: Path
    where: str


def route_seed(route_id: str) -> int:
    """A route's scenario seed: its route-file id when that is a decimal integer (as in the Leaderboard's and
    Bench2Drive's route files), else the first 8 hex digits of the id's SHA-256. Repetitions share it (the evaluator
    drives them with one Traffic Manager seed); they differ by index."""
    if route_id.isdecimal():
        return int(route_id)
    return int(hashlib.sha256(route_id.encode()).hexdigest()[:8], 16)


def read_leaderboard_results(results_files: Sequence[Path], *, route_file: Path, scorer: str = "lb2",
                             repetitions: int = 1, given_up: Mapping[str, str] | None = None
                             ) -> tuple[RouteResult, ...]:
    """Every route the evaluator was given (``route_file`` x ``repetitions``), in its order, as a result.

    Route ``i``'s repetition ``r`` has index ``i * repetitions + r`` (the evaluator's ``config.index``).

    :param results_files: the evaluator's ``--checkpoint`` files for this route file (together, each route at most
        once).
    :param scorer: the :data:`sim.metrics.SCORERS` version that scores the routes.
    :param given_up: routes (route-file ids) that whoever ran the evaluator gave up after their runs crashed, and
        why: each repetition with no record, or a failure's, is ``Failed - Simulation crashed`` with that reason.
    :raises ValueError: one line naming the file and the field, for a malformed file, a record of no route of
        ``route_file``, a route in two records, or an unknown status or infraction.
    """
    planned = _planned(route_file, repetitions)
    records: dict[str, _Record] = {}
    for file in results_files:
        for record in _read_records(Path(file)):
            route_id = record.scores.route_id
            if route_id not in planned:
                raise ValueError(f"{file}: {record.where}.route_id: {route_id!r} is not a route of {route_file} "
                                 f"(x{repetitions}); expected one of {', '.join(list(planned)[:3])}, ...")
            if route_id in records:
                other = records[route_id]
                raise ValueError(f"{file}: {record.where}.route_id: {route_id!r} also at {other.file}: "
                                 f"{other.where}")
            records[route_id] = record
    names = ", ".join(Path(file).name for file in results_files)
    return tuple(_route_result(index, spec, records.get(route_id), scorer=scorer, files=names,
                               given_up=(given_up or {}).get(spec.route_id))
                 for index, (route_id, spec) in enumerate(planned.items()))


def leaderboard_scores(route: RouteResult) -> LeaderboardScores | None:
    """The Leaderboard's own scores of a route :func:`read_leaderboard_results` converted; ``None`` for a run
    failure (no record: its ``error`` names the Leaderboard's status and score)."""
    if route.record is None or "leaderboard" not in route.record:
        return None
    return LeaderboardScores(**route.record["leaderboard"])


def leaderboard_checkpoint_header(route_file: Path, *, identity: str, scorer: str,
                                  repetitions: int = 1) -> dict[str, Any]:
    """The first line of an evaluation checkpoint (:mod:`autoloop.evaluation.runner`'s format) for ``identity``
    driving ``route_file`` in the Leaderboard's evaluator: the suite is named after the file, its hash is the
    SHA-256 (16 hex digits) of the file's bytes and the repetitions, and its key hashes the header."""
    digest = hashlib.sha256(Path(route_file).read_bytes() + f"\nrepetitions={repetitions}".encode())
    header = {"format": CHECKPOINT_FORMAT, "identity": identity, "suite": Path(route_file).stem,
              "suite_hash": digest.hexdigest()[:16], "routes": len(_planned(route_file, repetitions)),
              "scorer": scorer}
    key = hashlib.sha256(json.dumps(header, sort_keys=True).encode()).hexdigest()[:16]
    return {**header, "key": key}


def write_checkpoint(checkpoint: Path, routes: Sequence[RouteResult], *, header: Mapping[str, Any]) -> int:
    """Append the routes that ``checkpoint`` lacks or holds otherwise, with the runner's writer (it starts a new
    checkpoint with ``header`` and refuses one of another evaluation); returns how many were written.

    As for the runner's own evaluations, a later read leaves simulator crashes out so that they run again.
    """
    with exclusive(checkpoint.with_suffix(".lock")):
        done = read_checkpoint(checkpoint, dict(header))
        fresh = [route for route in routes
                 if route.index not in done or _canonical(done[route.index]) != _canonical(route)]
        append_routes(checkpoint, fresh)
    return len(fresh)


def leaderboard_evaluation(results_files: Sequence[Path], *, route_file: Path, checkpoint: Path, policy_name: str,
                           identity: str, settings: EvaluateConfig, repetitions: int = 1,
                           given_up: Mapping[str, str] | None = None,
                           episode_tags: Mapping[str, str] | None = None) -> EvaluationResult:
    """Read the evaluator's results, record them in ``checkpoint`` and aggregate every planned route, scored with
    ``settings.scorer`` and with ``settings``' bootstrap (the result :func:`~autoloop.evaluation.run_evaluation`
    gives for an embedded evaluation).

    :param given_up: routes given up after crashes, and why (:func:`read_leaderboard_results`).
    :param episode_tags: the tags the agent stored its episodes with.
    """
    routes = read_leaderboard_results(results_files, route_file=route_file, scorer=settings.scorer,
                                      repetitions=repetitions, given_up=given_up)
    header = leaderboard_checkpoint_header(route_file, identity=identity, scorer=settings.scorer,
                                           repetitions=repetitions)
    write_checkpoint(checkpoint, routes, header=header)
    return aggregate(routes, policy=policy_name, suite=header["suite"], suite_hash=header["suite_hash"],
                     scorer=settings.scorer, resamples=settings.bootstrap_resamples, confidence=settings.confidence,
                     seed=settings.bootstrap_seed, checkpoint=str(checkpoint), episode_tags=episode_tags)


def _planned(route_file: Path, repetitions: int) -> dict[str, RouteSpec]:
    """The evaluator's route ids (``RouteScenario_<id>_rep<r>``) in its order, and their routes."""
    if repetitions < 1:
        raise ValueError(f"repetitions must be at least 1, got {repetitions}")
    planned: dict[str, RouteSpec] = {}
    for spec in read_routes(Path(route_file)):
        for repetition in range(repetitions):
            route_id = f"RouteScenario_{spec.route_id}_rep{repetition}"
            if route_id in planned:
                raise ValueError(f"{route_file}: route id {spec.route_id!r} appears twice")
            planned[route_id] = spec
    return planned


def _route_result(index: int, spec: RouteSpec, record: _Record | None, *, scorer: str, files: str,
                  given_up: str | None) -> RouteResult:
    seed = route_seed(spec.route_id)
    kind = spec.scenarios[0].type if spec.scenarios else "Route"
    if record is None or record.scores.status in RUN_FAILURE_STATUSES:
        if given_up is not None:
            status, error = SIMULATION_CRASHED, f"given up: {given_up}"
        elif record is None:
            status, error = SIMULATION_CRASHED, f"not in {files}: the evaluator never drove it"
        else:
            lb = record.scores
            status = RUN_FAILURE_STATUSES[lb.status]
            error = f"the Leaderboard's status {lb.status!r} (its driving score {lb.score_composed:g})"
        return RouteResult(index=index, scenario_seed=seed, scenario_type=kind, town=spec.town, episode_id=None,
                           status=status, driving_score=0.0, route_completion=0.0, infraction_penalty=0.0,
                           error=error)
    rebuilt, events = _rebuild(record)
    score = score_route(rebuilt, scorer=scorer)
    return RouteResult(
        index=index, scenario_seed=seed, scenario_type=kind, town=spec.town, episode_id=None,
        status=ROUTE_STATUSES[rebuilt.status], driving_score=score.driving_score,
        route_completion=score.route_completion, infraction_penalty=score.infraction_penalty,
        driven_m=round(rebuilt.driven_m, 3), route_length_m=rebuilt.route_length_m,
        comfort=math.nan,  # the results hold no trajectory
        infractions=events, record={**record_json(rebuilt), "leaderboard": asdict(record.scores)})


def _rebuild(record: _Record) -> tuple[RouteRecord, tuple[InfractionEvent, ...]]:
    """The route's record for :mod:`sim.metrics`, and its infractions that name a place (map frame)."""
    counts: dict[Infraction, int] = {}
    events: list[InfractionEvent] = []
    min_speed: list[float] = []
    outside_share = 0.0
    for key, messages in record.messages.items():
        kind = INFRACTION_KEYS[key]
        if messages:
            counts[kind] = len(messages)
        for position, message in enumerate(messages):
            where = f"{record.where}.infractions.{key}[{position}]"
            if kind is Infraction.MIN_SPEED:
                min_speed.append(_percent(_MIN_SPEED, message, record.file, where))
            elif kind is Infraction.OUTSIDE_ROUTE_LANES:
                if position > 0:
                    raise ValueError(f"{record.file}: {where}: the Leaderboard writes one outside-lanes message a "
                                     f"route, found {len(messages)}")
                outside_share = _percent(_OUTSIDE, message, record.file, where) / 100.0
            place = _PLACE.search(message)
            if place is not None:
                x_m, y_m = from_carla_xy(np.array([float(place.group(1)), float(place.group(2))]))
                events.append(InfractionEvent(kind=kind.value, time_s=math.nan, x_m=float(x_m), y_m=float(y_m)))
    status = DRIVEN_STATUSES[record.scores.status]
    completion = record.scores.score_route / 100.0
    rebuilt = RouteRecord(route_completion=completion, infractions=counts, outside_lanes_share=outside_share,
                          status=status, driven_m=completion * record.route_length_m,
                          route_length_m=record.route_length_m, min_speed_percentages=tuple(min_speed))
    return rebuilt, tuple(events)


def _percent(pattern: re.Pattern[str], message: str, file: Path, where: str) -> float:
    found = pattern.search(message)
    if found is None:
        raise ValueError(f"{file}: {where}: {message!r} does not give its percentage (expected the form "
                         f"{pattern.pattern!r})")
    return float(found.group(1))


def _read_records(file: Path) -> list[_Record]:
    try:
        data = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{file}: not a readable JSON file ({error})") from error
    if not isinstance(data, dict):
        raise ValueError(f"{file}: expected a JSON object with '_checkpoint', found {type(data).__name__}")
    checkpoint = _field(data, "_checkpoint", dict, file, "")
    raw = _field(checkpoint, "records", list, file, "_checkpoint")
    return [_record(item, file, f"_checkpoint.records[{position}]") for position, item in enumerate(raw)]


def _record(item: Any, file: Path, where: str) -> _Record:
    if not isinstance(item, dict):
        raise ValueError(f"{file}: {where}: expected an object, found {type(item).__name__}")
    status = _field(item, "status", str, file, where)
    if status not in DRIVEN_STATUSES and status not in RUN_FAILURE_STATUSES:
        raise ValueError(f"{file}: {where}.status: {status!r} is not a status of the Leaderboard's evaluator "
                         f"(known: {', '.join(sorted({*DRIVEN_STATUSES, *RUN_FAILURE_STATUSES}))})")
    infractions = _field(item, "infractions", dict, file, where)
    messages = {}
    for key, value in infractions.items():
        if key not in INFRACTION_KEYS:
            raise ValueError(f"{file}: {where}.infractions.{key}: not an infraction of the Leaderboard "
                             f"(known: {', '.join(INFRACTION_KEYS)})")
        if not isinstance(value, list) or not all(isinstance(message, str) for message in value):
            raise ValueError(f"{file}: {where}.infractions.{key}: expected a list of messages, found {value!r:.80}")
        messages[key] = tuple(value)
    scores = _field(item, "scores", dict, file, where)
    lb = LeaderboardScores(route_id=_field(item, "route_id", str, file, where), status=status,
                           score_route=_number(scores, "score_route", file, f"{where}.scores"),
                           score_penalty=_number(scores, "score_penalty", file, f"{where}.scores"),
                           score_composed=_number(scores, "score_composed", file, f"{where}.scores"))
    route_length_m = _number(_field(item, "meta", dict, file, where), "route_length", file, f"{where}.meta")
    return _Record(lb, messages, route_length_m, file, where)


def _field(data: Mapping[str, Any], key: str, kind: type, file: Path, where: str) -> Any:
    at = f"{where}.{key}" if where else key
    if key not in data:
        raise ValueError(f"{file}: {at}: missing")
    if not isinstance(data[key], kind):
        raise ValueError(f"{file}: {at}: expected {kind.__name__}, found {type(data[key]).__name__} "
                         f"{data[key]!r:.80}")
    return data[key]


def _number(data: Mapping[str, Any], key: str, file: Path, where: str) -> float:
    """A finite, non-negative number (JSON int or float, not a boolean)."""
    value = _field(data, key, object, file, where)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{file}: {where}.{key}: expected a finite number >= 0, found {value!r:.80}")
    return float(value)


def _canonical(route: RouteResult) -> str:
    """A route's checkpoint line, to compare routes (NaN is not equal to itself)."""
    return json.dumps(route.to_json(), sort_keys=True)
