"""A stand-in for the Leaderboard's evaluator process, for testing how autoloop runs it: it takes the real
evaluator's arguments, connects once to the server's port (and binds the Traffic Manager's port, as the Traffic
Manager in the real evaluator's process does), "drives" each route of its ``--routes-subset`` in the routes file's
order (sleeping), and writes a checkpoint in the Leaderboard 2.x's format (``_checkpoint.records`` of full records:
``index``, ``route_id``, ``status``, ``num_infractions``, ``infractions``, ``scores``, ``meta``;
``_checkpoint.progress``, ``entry_status``), honouring ``--resume`` by skipping recorded routes. It does not speak
CARLA's protocol.

How a route ends, from the environment:

- ``STANDIN_OUTCOMES``: a JSON file ``{driver: {route_id: outcome}}`` (driver: the ``driver`` of the
  ``--agent-config`` JSON file, or the bare spec; ``*`` for any), an outcome ``{"score_route": %, "score_penalty":
  [0, 1], "infractions": {key: [message, ...]}, "route_length": m, "status": str}``, each key optional (default: the
  route completed, 100 m, no infraction: ``Perfect``; with infractions ``Completed``).
- ``STANDIN_CALLS``: a file that gets a JSON line per run: its arguments and the environment variables the
  evaluator reads (``MLFLOW_TRACKING_URI``, ``AUTOLOOP_HOME``, ``PYTHONPATH``, ``CUDA_VISIBLE_DEVICES``, the roots).

Faults, from the environment:

- ``STANDIN_FAULTS``: a JSON file ``{route_id: [fault, ...]}``: the n-th time a route is reached, fault n happens
  (none once the list is used up): ``exit`` (record the route ``Failed - Simulation crashed`` and exit with -1, as
  the evaluator does when the simulation fails), ``hang`` (sleep for ever), ``kill-server`` (SIGKILL the server
  stand-in, found through ``STANDIN_PIDS``, then hang, as the evaluator can after its server dies).
- ``STANDIN_DRIVEN``: a file that gets ``<route_id> <port>`` for every route driven to its end.
- ``STANDIN_ROUTE_S``: seconds a route takes (default 0.05).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

CRASHED = "Failed - Simulation crashed"
#: The infraction lists of a Leaderboard 2.x record.
INFRACTIONS = ("collisions_layout", "collisions_pedestrian", "collisions_vehicle", "red_light", "stop_infraction",
               "outside_route_lanes", "min_speed_infractions", "yield_emergency_vehicle_infractions",
               "scenario_timeouts", "route_dev", "vehicle_blocked", "route_timeout")
#: The environment variables a run reports in ``STANDIN_CALLS``.
REPORTED = ("MLFLOW_TRACKING_URI", "AUTOLOOP_HOME", "PYTHONPATH", "CUDA_VISIBLE_DEVICES", "CARLA_ROOT",
            "LEADERBOARD_ROOT", "SCENARIO_RUNNER_ROOT")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", default=2000, type=int)
    parser.add_argument("--traffic-manager-port", default=8000, type=int)
    parser.add_argument("--traffic-manager-seed", default=0, type=int)
    parser.add_argument("--debug", type=int, default=0)
    parser.add_argument("--record", type=str, default="")
    parser.add_argument("--timeout", default=60.0, type=float)
    parser.add_argument("--routes", required=True)
    parser.add_argument("--routes-subset", default="", type=str)
    parser.add_argument("--repetitions", type=int, default=1)
    parser.add_argument("-a", "--agent", type=str, required=True)
    parser.add_argument("--agent-config", type=str, default="")
    parser.add_argument("--track", type=str, default="SENSORS")
    parser.add_argument("--resume", type=bool, default=False)
    parser.add_argument("--checkpoint", type=str, default="./simulation_results.json")
    parser.add_argument("--debug-checkpoint", type=str, default="./live_results.txt")
    args = parser.parse_args()
    calls = os.environ.get("STANDIN_CALLS")
    if calls:
        with open(calls, "a") as log:
            log.write(json.dumps({"argv": sys.argv[1:], "env": {name: os.environ.get(name) for name in REPORTED}})
                      + "\n")
    outcomes = _outcomes(args.agent_config)

    try:
        socket.create_connection((args.host, args.port), timeout=2.0).close()
    except OSError as error:
        print(f"time-out while waiting for the simulator at {args.host}:{args.port}: {error}", flush=True)
        sys.exit(-1)
    traffic_manager = socket.socket()
    traffic_manager.bind(("127.0.0.1", args.traffic_manager_port))  # a second user of this port fails here
    traffic_manager.listen(1)

    subset = set(args.routes_subset.split(",")) if args.routes_subset else None
    routes = [route.get("id", "") for route in ET.parse(args.routes).getroot().iter("route")]
    entries = [f"RouteScenario_{route_id}_rep{rep}" for route_id in routes if subset is None or route_id in subset
               for rep in range(args.repetitions)]
    checkpoint = Path(args.checkpoint)
    data = _read(checkpoint) if args.resume else None
    if data is None or data["_checkpoint"]["progress"][1:] != [len(entries)]:
        data = {"_checkpoint": {"global_record": {}, "progress": [0, len(entries)], "records": []},
                "entry_status": "Started", "eligible": False, "sensors": [], "values": [], "labels": []}
    records: list[dict[str, Any]] = data["_checkpoint"]["records"]
    recorded = {record["route_id"] for record in records if record["status"] != CRASHED}
    print(f"stand-in evaluator: {len(entries)} entries, {len(recorded)} recorded", flush=True)

    for index, entry in enumerate(entries):
        if entry in recorded:
            continue
        route_id = entry.split("_")[1]
        print(f"> Running route {entry}", flush=True)
        fault = _fault(route_id)
        if fault == "exit":
            _record(data, records, index, entry, {"status": CRASHED, "score_route": 0.0}, checkpoint)
            data["entry_status"] = "Crashed"
            _write(checkpoint, data)
            print("Error during the simulation", flush=True)
            sys.exit(-1)
        if fault == "kill-server":
            pid = int((Path(os.environ["STANDIN_PIDS"]) / f"server-{args.port}.pid").read_text())
            os.kill(pid, signal.SIGKILL)
        if fault in ("hang", "kill-server"):
            while True:
                time.sleep(1)
        time.sleep(float(os.environ.get("STANDIN_ROUTE_S", "0.05")))
        _record(data, records, index, entry, outcomes.get(route_id, {}), checkpoint)
        driven = os.environ.get("STANDIN_DRIVEN")
        if driven:
            with open(driven, "a") as log:
                log.write(f"{route_id} {args.port}\n")
    data["entry_status"] = "Finished"
    _write(checkpoint, data)
    print("> Registering the global statistics", flush=True)


def _outcomes(agent_config: str) -> dict[str, Any]:
    """The outcomes ``STANDIN_OUTCOMES`` gives the driver of ``agent_config``, by route id."""
    path = os.environ.get("STANDIN_OUTCOMES")
    if not path:
        return {}
    driver = agent_config
    if agent_config.endswith(".json") and os.path.isfile(agent_config):
        driver = json.loads(Path(agent_config).read_text())["driver"]
    table = json.loads(Path(path).read_text())
    return {**table.get("*", {}), **table.get(driver, {})}


def _record(data: dict[str, Any], records: list[dict[str, Any]], index: int, entry: str, outcome: dict[str, Any],
            checkpoint: Path) -> None:
    infractions = {key: list(outcome.get("infractions", {}).get(key, [])) for key in INFRACTIONS}
    count = sum(len(messages) for messages in infractions.values())
    status = outcome.get("status", "Completed" if count else "Perfect")
    route, penalty = float(outcome.get("score_route", 100.0)), float(outcome.get("score_penalty", 1.0))
    record = {"index": index, "route_id": entry, "status": status, "num_infractions": count,
              "infractions": infractions,
              "scores": {"score_route": route, "score_penalty": penalty, "score_composed": route * penalty},
              "meta": {"route_length": float(outcome.get("route_length", 100.0)), "duration_game": 10.0,
                       "duration_system": 1.0}}
    position = next((i for i, old in enumerate(records) if old["route_id"] == entry), None)
    if position is None:
        records.append(record)
    else:
        records[position] = record
    data["_checkpoint"]["progress"][0] = sum(1 for old in records if old["status"] != CRASHED)
    _write(checkpoint, data)


def _fault(route_id: str) -> str | None:
    plan_path = os.environ.get("STANDIN_FAULTS")
    if not plan_path:
        return None
    faults = json.loads(Path(plan_path).read_text()).get(route_id, [])
    arrivals_path = Path(plan_path + ".arrivals")
    arrivals = json.loads(arrivals_path.read_text()) if arrivals_path.exists() else {}
    arrival = arrivals.get(route_id, 0)
    arrivals[route_id] = arrival + 1
    _write(arrivals_path, arrivals)
    return faults[arrival] if arrival < len(faults) else None


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write(path: Path, data: Any) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=1))
    os.replace(temporary, path)


if __name__ == "__main__":
    main()
