"""The CARLA side's scene builder reads what the embedded simulator shows, in CARLA's own types and frame, into
the same observation.

Each step of embedded runs on the CARLA towns we have (traffic, pedestrians, lights changing, a curbside stop) is
expressed as the ``carla`` wheel's types, built offline in CARLA's left-handed frame with the actors' origins off
their boxes' centres, and goes through :class:`sim.carla.scene.CarlaScene`; its BEV and state vector must be the
embedded observer's."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from policies.expert import ExpertDriver
from sim.embedded.config import WorldConfig
from sim.embedded.world import World
from sim.maps import get_map
from sim.scene import codes
from sim.scene.observation import Observer
from sim.scene.records import ActorKind
from sim.scene.route_path import RoutePath

carla = pytest.importorskip("carla", reason="the CARLA side needs the carla package (autoloop[carla])")

from sim.carla.scene import CarlaScene  # noqa: E402
from sim.scenarios.suites import route_with_event  # noqa: E402
from tests.sim.carla.embedded_snapshots import snapshot  # noqa: E402

#: Every CARLA town we have, with a parked obstacle and a pedestrian crossing; the CARLA towns have no curbside
#: stops, so a procedural town brings one (its light groups named as CARLA names signals).
MAPS = {**{f"opendrive:carla/maps/{town}.xodr": (None, "ParkedObstacle", "PedestrianCrossing")
           for town in ("Town01", "Town04", "Town10HD")},
        "town-3": (None, "CurbsideDropoff")}
STEPS = 240
@pytest.mark.parametrize("map_name", MAPS)
def test_carla_scenes_of_embedded_runs_give_the_embedded_observation(map_name: str, shared_data: Path) -> None:
    town = map_name
    scenarios = [route_with_event(map_name, seed, kind, traffic_vehicles=16, pedestrians=10)
                 for seed, kind in enumerate(MAPS[map_name], start=1)]
    lane_graph = get_map(map_name)
    if not lane_graph.light_sources:
        lane_graph = replace(lane_graph, light_sources=tuple(f"{100 + g}" for g in range(lane_graph.light_groups)))
    world = World(lane_graph, len(scenarios), WorldConfig(max_vehicles=20, max_pedestrians=12, max_statics=4))
    assert len(world.map.light_sources) == world.map.light_groups > 0
    world.reset(scenarios)
    expert, observer = ExpertDriver(world), Observer(world)
    carla_scenes = []
    for env, scenario in enumerate(scenarios):
        scene = CarlaScene(world.map, world.params, vehicles=24, pedestrians=16, statics=8)
        scene.start(RoutePath.build(world.map, scenario.route), timeout_s=scenario.timeout_s,
                    start_m=scenario.start_s_m, end_m=scenario.end_s_m)
        for field in scene.scene.mission._fields:  # the robotaxi mission comes with the scenario, not the server
            getattr(scene.scene.mission, field)[0] = getattr(world.scene.mission, field)[env]
        carla_scenes.append(scene)
    observers = [Observer(scene) for scene in carla_scenes]
    assert ("CurbsideDropoff" not in MAPS[map_name]) or world.scene.mission.stop_n.any(), "a curbside stop"
    seen_lights, seen = set(), {"pedestrian": 0, "leader": 0, "must_stop": 0}
    for step in range(STEPS):
        expected = observer.observe()
        for env, scene in enumerate(carla_scenes):
            if not world.running[env]:
                continue
            scene.update(snapshot(world, env))
            got = observers[env].observe()
            where = f"{town} env {env} step {step}"
            differs = np.count_nonzero(got["bev"][0] != expected["bev"][env])
            assert differs <= 12, f"{where}: {differs} BEV pixels differ"  # float32 poses: pixels on edges
            np.testing.assert_allclose(got["state"][0], expected["state"][env], atol=2e-3, err_msg=where)
            seen_lights.update(int(s) for s in scene.scene.lights[0])
            seen["pedestrian"] += int((scene.scene.actors.kind[0] == ActorKind.PEDESTRIAN).any())
            seen["leader"] += int(np.isfinite(scene.scene.facts.leader_gap_m[0]))
            seen["must_stop"] += int(scene.scene.facts.must_stop[0])
        world.step(expert.act())
    assert seen_lights == {codes.GREEN, codes.YELLOW, codes.RED}
    assert all(count > 0 for count in seen.values()), seen
