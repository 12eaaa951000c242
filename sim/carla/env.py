"""``CarlaEnv``: the embedded environment's Gymnasium API over a running CARLA server.

Spaces, reward, termination and info are the embedded :class:`sim.embedded.env.DrivingEnv`'s: the observation is
rendered from the CARLA world's scene (:class:`sim.carla.scene.CarlaScene`), reward and info come from the scene's
outcome (:mod:`sim.scene.outcome`), the action becomes a ``carla.VehicleControl``
(:func:`sim.carla.control.vehicle_control`). Info adds ``contacts``: the collisions CARLA's own collision sensor
reported this step (the scene counts infractions from the boxes, as the embedded world does).

The world runs in synchronous mode at the scene's step (``fixed_delta_seconds = dt``), with the Traffic Manager in
synchronous mode and seeded (``set_random_device_seed``) and pedestrians walking under CARLA's AI controllers
(``world.set_pedestrians_seed``). Each ``reset`` drives a route of a Leaderboard route file (the same route the
embedded simulator builds from that file: :func:`sim.scenarios.routes.densify`): ``options={"route_id": ...}``, else
the file's routes in turn. The town is loaded only when the route is on another one. Every actor the env spawned is
destroyed at the next ``reset`` and on ``close``, also after an error; ``close`` gives the server back in
asynchronous mode.

:func:`carla_vector_env` runs one env per server (several servers, one each) as a Gymnasium ``AsyncVectorEnv``
for RL and collection in CARLA.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from sim.carla import import_carla
from sim.carla.control import max_steer_angle_deg, vehicle_control
from sim.carla.scene import CarlaScene
from sim.carla.world_reader import MAP_CACHE, WorldReader, town_lane_graph
from sim.metrics import RouteStatus, score_route
from sim.scenarios.model import route_timeout_s
from sim.scenarios.routes import RouteSpec, densify, lane_route, read_routes
from sim.scene import outcome
from sim.scene.bev import BevSpec
from sim.scene.observation import Observation, Observer, observation_space
from sim.scene.params import Params
from sim.scene.records import STATUSES
from sim.scene.route_path import RoutePath

ACTION_SPACE = gym.spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
#: The ego's blueprint (the Leaderboard's car).
EGO_BLUEPRINT = "vehicle.lincoln.mkz_2020"
#: Background vehicles spawn no closer than this to the ego.
SPAWN_CLEARANCE_M = 15.0


class CarlaEnv(gym.Env[Observation, NDArray[np.float32]]):
    """One ego on a CARLA server, one Leaderboard route per episode.

    :param routes: a Leaderboard route file (1.0 or 2.0 format).
    :param params: the rules the scene is read by and its step (the embedded world's: ``WorldConfig().params()``).
    :param host: the server; ``port`` its RPC port and ``traffic_manager_port`` the Traffic Manager's.
    :param traffic_vehicles: background vehicles driven by the Traffic Manager; ``pedestrians`` walkers.
    :param bev: the BEV raster's size.
    :param timeout_s: how long the client waits for the server.
    :param map_cache: where the towns' OpenDRIVE files are kept.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, routes: Path, params: Params, *, host: str = "127.0.0.1", port: int = 2000,
                 traffic_manager_port: int = 8000, traffic_vehicles: int = 30, pedestrians: int = 20,
                 bev: BevSpec = BevSpec(), timeout_s: float = 60.0, map_cache: Path = MAP_CACHE) -> None:
        self.routes: list[RouteSpec] = read_routes(Path(routes))
        if not self.routes:
            raise ValueError(f"{routes}: no <route> in the route file")
        self.params, self.bev = params, bev
        self.traffic_vehicles, self.pedestrians = traffic_vehicles, pedestrians
        self.map_cache = Path(map_cache)
        self.observation_space: gym.spaces.Dict = observation_space(bev)  # type: ignore[assignment]
        self.action_space = ACTION_SPACE
        carla = import_carla()
        self.client = carla.Client(host, port)
        self.client.set_timeout(timeout_s)
        try:
            self.world = self.client.get_world()
        except RuntimeError as error:
            raise ConnectionError(f"no CARLA server answers at {host}:{port} within {timeout_s:g} s ({error})") \
                from None
        self.traffic_manager = self.client.get_trafficmanager(traffic_manager_port)
        self.traffic_manager_port = traffic_manager_port
        self._original_settings = self.world.get_settings()
        self._actors: list[Any] = []  # spawned by this env, destroyed at the next reset and on close
        self._controllers: list[Any] = []
        self._sensors: list[Any] = []
        self._contacts: list[str] = []
        self._next_route = 0
        self.scene: CarlaScene | None = None
        self._observer: Observer | None = None
        self._reader: WorldReader | None = None
        self._ego: Any = None
        self._steer_deg = 0.0
        self._time_s = 0.0

    # ------------------------------------------------------------------ Gymnasium
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Observation,
                                                                                              dict[str, Any]]:
        """Start a route (``options["route_id"]``, else the next of the file) with fresh traffic."""
        super().reset(seed=seed)
        spec = self._route((options or {}).get("route_id"))
        self._clear()
        try:
            self._start(spec)
        except BaseException:
            self._clear()
            raise
        observation, info = self._observe()
        return observation, info

    def step(self, action: NDArray[np.float32]) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        scene = self._scene()
        sc = scene.scene
        before_progress, before_infractions = sc.route.progress_m.copy(), sc.outcome.infractions.copy()
        was_running = outcome.route_status(sc, 0) is None
        steer, accel = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -1.0, 1.0)
        self._ego.apply_control(vehicle_control(float(steer), float(accel), speed_mps=float(sc.ego.speed_mps[0]),
                                                max_steer_rad=self.params.bicycle.max_steer_rad,
                                                max_steer_angle_deg=self._steer_deg))
        self._contacts.clear()
        self.world.tick()
        self._time_s += self.params.dt
        assert self._reader is not None
        scene.update(self._reader.snapshot(self._time_s))
        sc = scene.scene
        ended = np.array([was_running and outcome.route_status(sc, 0) is not None])
        reward = float(outcome.reward(sc, before_progress, before_infractions, ended)[0])
        truncated = bool(ended[0] and sc.outcome.status[0] == STATUSES.index(RouteStatus.ROUTE_TIMEOUT))
        observation, info = self._observe()
        if ended[0]:
            info["driving_score"] = score_route(outcome.route_record(sc, 0)).driving_score
        return observation, reward, bool(ended[0]) and not truncated, truncated, info

    def close(self) -> None:
        """Destroy what this env spawned and give the server back in asynchronous mode."""
        try:
            self._clear()
        finally:
            self.traffic_manager.set_synchronous_mode(False)
            self.world.apply_settings(self._original_settings)

    # ------------------------------------------------------------------ a route
    def _route(self, route_id: str | None) -> RouteSpec:
        if route_id is None:
            spec = self.routes[self._next_route % len(self.routes)]
            self._next_route += 1
            return spec
        for spec in self.routes:
            if spec.route_id == str(route_id):
                return spec
        raise ValueError(f"options['route_id']: no route {route_id!r} in {self.routes[0].source}")

    def _start(self, spec: RouteSpec) -> None:
        carla = import_carla()
        if not str(self.world.get_map().name).endswith(spec.town):
            self.world = self.client.load_world(spec.town)
        settings = self.world.get_settings()
        settings.synchronous_mode, settings.fixed_delta_seconds = True, self.params.dt
        self.world.apply_settings(settings)
        seed = int(self.np_random.integers(2**31 - 1))
        self.traffic_manager.set_synchronous_mode(True)
        self.traffic_manager.set_random_device_seed(seed)
        self.world.set_pedestrians_seed(seed)
        carla_map = self.world.get_map()
        graph = town_lane_graph(carla_map, self.map_cache)
        lanes, start_m, end_m = lane_route(graph, densify(graph, spec))
        route = RoutePath.build(graph, lanes)
        self._ego = self._spawn_ego(carla, carla_map, route, start_m)
        self._spawn_traffic(carla, carla_map, seed)
        self._spawn_pedestrians(carla, seed)
        collision = self.world.spawn_actor(self.world.get_blueprint_library().find("sensor.other.collision"),
                                           carla.Transform(), attach_to=self._ego)
        collision.listen(lambda event: self._contacts.append(str(event.other_actor.type_id)))
        self._sensors.append(collision)
        self.world.tick()
        for controller in self._controllers:
            controller.start()
            controller.go_to_location(self.world.get_random_location_from_navigation())
            controller.set_max_speed(1.4)
        self._steer_deg = max_steer_angle_deg(self._ego.get_physics_control())
        if self.scene is None or self.scene.map is not graph:  # one scene and observer per town (its BEV raster)
            self.scene = CarlaScene(graph, self.params)
            self._observer = Observer(self.scene, self.bev)
        self.scene.start(route, timeout_s=route_timeout_s(graph, lanes, end_m - start_m), start_m=start_m,
                         end_m=end_m)
        self._reader = WorldReader(self.world, self._ego, self.traffic_manager)
        self._time_s = 0.0
        self.scene.update(self._reader.snapshot(0.0))

    def _spawn_ego(self, carla: Any, carla_map: Any, route: RoutePath, start_m: float) -> Any:
        k = min(int(start_m / route.spacing_m), len(route.points) - 2)
        (x, y), (x1, y1) = route.points[k], route.points[k + 1]
        location = carla.Location(float(x), -float(y), 0.0)
        ground = carla_map.get_waypoint(location)
        location.z = (ground.transform.location.z if ground is not None else 0.0) + 0.5
        transform = carla.Transform(location, carla.Rotation(yaw=-math.degrees(math.atan2(y1 - y, x1 - x))))
        blueprint = self.world.get_blueprint_library().find(EGO_BLUEPRINT)
        blueprint.set_attribute("role_name", "hero")
        ego = self.world.try_spawn_actor(blueprint, transform)
        if ego is None:
            raise RuntimeError(f"CARLA could not spawn the ego at the route's start {transform} (occupied?)")
        self._actors.append(ego)
        return ego

    def _spawn_traffic(self, carla: Any, carla_map: Any, seed: int) -> None:
        rng = np.random.default_rng(seed)
        here = self._ego.get_location()
        points = [p for p in carla_map.get_spawn_points() if p.location.distance(here) > SPAWN_CLEARANCE_M]
        points = [points[i] for i in rng.permutation(len(points))]
        blueprints = [b for b in self.world.get_blueprint_library().filter("vehicle.*")
                      if int(b.get_attribute("number_of_wheels")) == 4]
        batch = []
        for transform in points[:self.traffic_vehicles]:
            blueprint = blueprints[int(rng.integers(len(blueprints)))]
            batch.append(carla.command.SpawnActor(blueprint, transform).then(
                carla.command.SetAutopilot(carla.command.FutureActor, True, self.traffic_manager_port)))
        for response in self.client.apply_batch_sync(batch, True):
            if not response.error:
                self._actors.append(self.world.get_actor(response.actor_id))

    def _spawn_pedestrians(self, carla: Any, seed: int) -> None:
        rng = np.random.default_rng([seed, 1])
        library = self.world.get_blueprint_library()
        walkers = library.filter("walker.pedestrian.*")
        controller_blueprint = library.find("controller.ai.walker")
        for _ in range(self.pedestrians):
            location = self.world.get_random_location_from_navigation()
            if location is None:
                continue
            blueprint = walkers[int(rng.integers(len(walkers)))]
            if blueprint.has_attribute("is_invincible"):
                blueprint.set_attribute("is_invincible", "false")
            walker = self.world.try_spawn_actor(blueprint, carla.Transform(location))
            if walker is None:
                continue
            self._actors.append(walker)
            controller = self.world.spawn_actor(controller_blueprint, carla.Transform(), attach_to=walker)
            self._controllers.append(controller)

    def _clear(self) -> None:
        """Destroy everything this env spawned (sensors and controllers first)."""
        carla = import_carla()
        for sensor in self._sensors:
            sensor.stop()
        for controller in self._controllers:
            controller.stop()
        doomed = [actor.id for actor in self._sensors + self._controllers + self._actors if actor is not None]
        self._sensors, self._controllers, self._actors = [], [], []
        if doomed:
            self.client.apply_batch_sync([carla.command.DestroyActor(actor_id) for actor_id in doomed], True)
        self._ego, self._reader = None, None

    # ------------------------------------------------------------------ reading
    def _scene(self) -> CarlaScene:
        if self.scene is None or self._reader is None:
            raise RuntimeError("CarlaEnv.step before reset (or after a reset that failed)")
        return self.scene

    def _observe(self) -> tuple[Observation, dict[str, Any]]:
        assert self._observer is not None
        batch = self._observer.observe()
        info: dict[str, Any] = {key: value[0] for key, value in outcome.info(self._scene().scene).items()}
        info["contacts"] = list(self._contacts)
        return {key: value[0] for key, value in batch.items()}, info


def carla_vector_env(servers: Sequence[tuple[str, int, int]], routes: Path, params: Params,
                     **kwargs: Any) -> gym.vector.AsyncVectorEnv:
    """One :class:`CarlaEnv` per server (``(host, rpc port, Traffic Manager port)``), stepped in subprocesses."""
    return gym.vector.AsyncVectorEnv([functools.partial(CarlaEnv, routes, params, host=host, port=port,
                                                        traffic_manager_port=tm, **kwargs)
                                      for host, port, tm in servers])
