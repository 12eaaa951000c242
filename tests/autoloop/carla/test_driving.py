"""The Leaderboard agent's work without the Leaderboard: a route from the global plan, the expert driving on the
CARLA scene, its action as the vehicle's control, and the route kept as a ``carla`` episode the viewer can read.

The world is an embedded run on a CARLA town, read through the ``carla`` wheel's own types
(:mod:`tests.sim.carla.embedded_snapshots`); the embedded world moves on with the embedded expert's action, so
the agent's control each tick must be that action as a ``carla.VehicleControl``."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from autoloop.carla.agent_config import AgentConfig
from autoloop.config import SimConfig
from autoloop.episodes import EpisodeStore
from autoloop.paths import Paths
from policies.expert import ExpertDriver
from sim.embedded.world import World
from sim.geometry import cumulative_length, interpolate_along
from sim.maps import get_map
from sim.scenarios.suites import route_with_event

carla = pytest.importorskip("carla", reason="the CARLA side needs the carla package (autoloop[carla])")

from autoloop.carla.driving import CarlaDriving  # noqa: E402
from sim.carla.control import vehicle_control  # noqa: E402
from tests.sim.carla.embedded_snapshots import snapshot  # noqa: E402

MAP = "opendrive:carla/maps/Town01.xodr"
LINCOLN_DEG = 70.0
STEPS = 200


def _global_plan(world: World, env: int) -> list[tuple[object, str]]:
    """The scenario's route from its start to its end, a point a metre, as the evaluator hands it over."""
    scenario = world.scenarios[env]
    assert scenario is not None
    polyline = world.map.route_path(scenario.route).polyline(world.map)
    s = np.arange(scenario.start_s_m, scenario.end_s_m, 1.0)
    xy, heading = interpolate_along(polyline[None], cumulative_length(polyline)[None], s[None])
    return [(carla.Transform(carla.Location(float(x), -float(y), 0.0), carla.Rotation(yaw=-math.degrees(h))),
             "LANEFOLLOW") for (x, y), h in zip(xy[0], heading[0], strict=True)]


def test_the_agent_drives_the_expert_on_the_carla_scene_and_keeps_a_carla_episode(tmp_path: Path,
                                                                                  shared_data: Path) -> None:
    scenario = route_with_event(MAP, 4, "PedestrianCrossing", traffic_vehicles=12, pedestrians=6)
    sim = SimConfig()
    world = World(get_map(MAP), 1, replace(sim.world_config(), max_vehicles=16, max_pedestrians=10, max_statics=4))
    world.reset([scenario])
    expert = ExpertDriver(world)
    settings = AgentConfig(driver="expert", home=tmp_path / "home", tags={"purpose": "evaluate"})
    driving = CarlaDriving.from_config(settings, world.map, sim)
    driving.start(_global_plan(world, 0), route_id="RouteScenario_7")
    matched = 0
    for _ in range(STEPS):
        if not world.running[0]:
            break
        control = driving.step(snapshot(world, 0), max_steer_angle_deg=LINCOLN_DEG)
        action = expert.act()
        wanted = vehicle_control(float(action[0, 0]), float(action[0, 1]), speed_mps=float(world.ego.speed_mps[0]),
                                 max_steer_rad=world.params.bicycle.max_steer_rad, max_steer_angle_deg=LINCOLN_DEG)
        assert isinstance(control, carla.VehicleControl)
        matched += int(abs(control.steer - wanted.steer) < 1e-3 and abs(control.throttle - wanted.throttle) < 1e-3
                       and abs(control.brake - wanted.brake) < 1e-3)
        world.step(action)
    driven = driving.scene.scene.time_s[0] / world.params.dt + 1
    assert matched >= 0.98 * driven, f"{matched} of {driven:.0f} ticks gave the embedded expert's control"
    assert driving.scene.scene.outcome.driven_m[0] > 20.0  # it drove

    episode = driving.finish()
    assert episode is not None and episode.source == "carla"
    store = EpisodeStore(Paths(tmp_path / "home").episodes)
    assert store.episode_ids("carla") == [episode.episode_id]
    stored = store.read(episode.episode_id)
    assert stored.num_steps == len(episode.steps["step"]) == round(driven)
    assert stored.metadata["map_name"] == MAP and stored.metadata["route_id"] == "RouteScenario_7"
    assert stored.metadata["policy"] == "expert" and stored.metadata["tags"]["purpose"] == "evaluate"
    assert {"x_m", "y_m", "speed_mps", "action", "light_states"} <= set(stored.steps)
    assert stored.actors is not None and set(stored.actors["kind"]) >= {"vehicle", "pedestrian"}
    assert store.get_map(MAP).name == MAP  # the viewer draws the town from the store
    assert driving.finish() is None  # nothing driven since


def test_the_agent_reads_its_drivers_simulator_settings_from_the_config_it_names(tmp_path: Path,
                                                                                 shared_data: Path) -> None:
    config = tmp_path / "autoloop.yaml"
    config.write_text("sim:\n  bev_size_px: 32\n")
    driving = CarlaDriving.from_config(AgentConfig(driver="expert", config=config), get_map(MAP))
    assert driving.sim.bev_size_px == 32 and driving.observer.renderer.spec.size_px == 32
    assert driving.store is None  # no home: nothing recorded
