"""Reading a running CARLA world: the town's lane graph, and each tick's :class:`~sim.carla.scene.Snapshot`.

Ground truth, as privileged experts read it (the scenario runner's ``CarlaDataProvider`` hands out the same world):
every vehicle, walker and static prop with its transform, bounding box and velocity; the lanes a Traffic-Manager
vehicle takes next (``TrafficManager.get_all_actions``, for vehicles within :data:`PLANNED_RADIUS_M` of the ego:
one call per vehicle); parked cars that are part of the town (``World.get_environment_objects``, not actors: the
Leaderboard 2.x towns park their cars this way), read once per route; traffic-light states by OpenDRIVE signal id.
This is a privileged-input reading of the world, not a sensor stack.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from sim.carla import import_carla
from sim.carla.opendrive import load_opendrive
from sim.carla.scene import ActorView, Snapshot, steer_from_carla
from sim.maps import LaneGraph, register_map

#: Town maps read from servers are kept here (``$AUTOLOOP_CARLA_MAPS``, else under the user's cache).
MAP_CACHE = Path(os.environ.get("AUTOLOOP_CARLA_MAPS", Path.home() / ".cache" / "autoloop" / "carla-maps"))
#: Vehicles this close to the ego tell which lanes they take next.
PLANNED_RADIUS_M = 60.0
#: Parked cars of the town this close to the route's start are read (once per route).
PARKED_RADIUS_M = 2000.0
_ACTOR_PREFIXES = ("vehicle.", "walker.", "static.prop.")


def town_lane_graph(carla_map: Any, cache_dir: Path = MAP_CACHE) -> LaneGraph:
    """The lane graph of the town a server runs (``World.get_map()``), imported from its OpenDRIVE once per
    content and registered as ``carla:<town>:<content hash>`` (so a map name says which version of a town it is)."""
    text = carla_map.to_opendrive()
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    town = str(carla_map.name).rsplit("/", 1)[-1]
    name = f"carla:{town}:{digest}"
    path = Path(cache_dir) / f"{town}-{digest}.xodr"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(text)
        temporary.replace(path)
    return register_map(load_opendrive(path, name=name))


class WorldReader:
    """Reads one CARLA world around its ego vehicle.

    :param world: the ``carla.World``.
    :param hero: the ego's ``carla.Vehicle``.
    :param traffic_manager: the ``carla.TrafficManager`` driving the background traffic (``None``: planned lanes are
        guessed by the scene).
    """

    def __init__(self, world: Any, hero: Any, traffic_manager: Any = None) -> None:
        self.world = world
        self.hero = hero
        self.traffic_manager = traffic_manager
        self._parked: tuple[ActorView, ...] | None = None

    def snapshot(self, time_s: float) -> Snapshot:
        """The world now, ``time_s`` into the route."""
        carla = import_carla()
        hero = self.hero
        here = hero.get_location()
        views: list[ActorView] = []
        actors = self.world.get_actors()
        for actor in actors:
            if actor.id == hero.id or not actor.type_id.startswith(_ACTOR_PREFIXES):
                continue
            planned: tuple[Any, ...] = ()
            location = actor.get_location()
            if self.traffic_manager is not None and actor.type_id.startswith("vehicle.") \
                    and location.distance(here) < PLANNED_RADIUS_M:
                planned = self._planned(actor)
            views.append(ActorView(actor.id, actor.type_id, actor.get_transform(), actor.bounding_box,
                                   actor.get_velocity(), planned))
        views += self._parked_cars(here)
        lights = {str(light.get_opendrive_id()): light.get_state()
                  for light in actors.filter("traffic.traffic_light")}
        wheel_deg = hero.get_wheel_steer_angle(carla.VehicleWheelLocation.FL_Wheel)
        ego = ActorView(hero.id, hero.type_id, hero.get_transform(), hero.bounding_box, hero.get_velocity())
        return Snapshot(time_s=time_s, ego=ego, ego_acceleration=hero.get_acceleration(),
                        ego_steer_rad=steer_from_carla(wheel_deg), actors=views, lights=lights)

    def _planned(self, vehicle: Any) -> tuple[Any, ...]:
        try:
            actions = self.traffic_manager.get_all_actions(vehicle)
        except RuntimeError:  # not a Traffic-Manager vehicle (a scenario drives it)
            return ()
        return tuple(waypoint.transform for _, waypoint in actions)

    def _parked_cars(self, here: Any) -> tuple[ActorView, ...]:
        """The town's parked cars (environment objects), as obstacles that never move; read once."""
        if self._parked is None:
            carla = import_carla()
            found = []
            for label in (carla.CityObjectLabel.Car, carla.CityObjectLabel.Truck, carla.CityObjectLabel.Bus):
                for thing in self.world.get_environment_objects(label):
                    box = thing.bounding_box
                    if box.location.distance(here) > PARKED_RADIUS_M:
                        continue
                    found.append(ActorView(-int(thing.id) - 1, "static.parked_car",
                                           carla.Transform(box.location, box.rotation),
                                           carla.BoundingBox(carla.Location(), box.extent), carla.Vector3D()))
            self._parked = tuple(found)
        return self._parked
