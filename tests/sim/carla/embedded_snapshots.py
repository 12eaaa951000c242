"""Embedded-simulator states as a CARLA client reads them: the ``carla`` wheel's own types, built offline in CARLA's
left-handed frame, with the actors' origins off their boxes' centres (as CARLA's vehicles have them)."""

from __future__ import annotations

import math
from typing import Any

import carla
import numpy as np

from sim.carla.scene import ActorView, Snapshot
from sim.embedded.world import World
from sim.scene import codes
from sim.scene.records import ActorKind

#: The box's centre is this far ahead of the actor's origin (CARLA's vehicles: about 0 to 0.5 m, and up).
BOX_OFFSET = (0.35, 0.0, 0.7)
_LIGHTS = {codes.GREEN: carla.TrafficLightState.Green, codes.YELLOW: carla.TrafficLightState.Yellow,
           codes.RED: carla.TrafficLightState.Red}
_TYPES = {ActorKind.VEHICLE: "vehicle.lincoln.mkz_2020", ActorKind.PEDESTRIAN: "walker.pedestrian.0001",
          ActorKind.STATIC: "static.prop.constructioncone"}


def view(actor_id: int, type_id: str, x: float, y: float, yaw: float, speed: float, length: float, width: float,
         planned: tuple[Any, ...] = ()) -> ActorView:
    """An actor whose box centre is at map-frame ``(x, y)`` heading ``yaw``, as CARLA gives it."""
    yaw_deg = -math.degrees(yaw)
    heading = (math.cos(yaw), -math.sin(yaw))  # in CARLA's frame
    origin = carla.Location(x - BOX_OFFSET[0] * heading[0], -y - BOX_OFFSET[0] * heading[1], 0.0)
    return ActorView(actor_id=actor_id, type_id=type_id,
                     transform=carla.Transform(origin, carla.Rotation(yaw=yaw_deg)),
                     bounding_box=carla.BoundingBox(carla.Location(*BOX_OFFSET),
                                                    carla.Vector3D(length / 2, width / 2, 0.8)),
                     velocity=carla.Vector3D(speed * heading[0], speed * heading[1], 0.0), planned=planned)


def snapshot(world: World, env: int) -> Snapshot:
    """Scenario ``env`` of ``world`` now, as a client reads it (light groups by ``world.map.light_sources``)."""
    light_ids = world.map.light_sources
    sc = world.scene
    actors = []
    for n in np.flatnonzero(sc.actors.valid[env]):
        kind = int(sc.actors.kind[env, n])
        planned: tuple[Any, ...] = ()
        if n < world.config.max_vehicles:  # the lanes it takes next, as the Traffic Manager's next actions
            planned = tuple(on_lane(world, int(lane)) for lane in sc.vehicles.lanes[env, n, 1:] if lane >= 0)
        actors.append(view(100 + int(n), _TYPES[kind], sc.actors.x_m[env, n], sc.actors.y_m[env, n],
                           sc.actors.yaw_rad[env, n], sc.actors.speed_mps[env, n], sc.actors.length_m[env, n],
                           sc.actors.width_m[env, n], planned))
    ego = view(1, "vehicle.lincoln.mkz_2020", sc.ego.x_m[env], sc.ego.y_m[env], sc.ego.yaw_rad[env],
               sc.ego.speed_mps[env], world.params.ego_length, world.params.ego_width)
    yaw = sc.ego.yaw_rad[env]
    accel = sc.ego.accel_mps2[env]
    return Snapshot(time_s=float(sc.time_s[env]), ego=ego,
                    ego_acceleration=carla.Vector3D(accel * math.cos(yaw), -accel * math.sin(yaw), 0.0),
                    ego_steer_rad=float(sc.ego.steer_rad[env]), actors=actors,
                    lights={light_ids[g]: _LIGHTS[int(state)] for g, state in enumerate(sc.lights[env])})


def on_lane(world: World, lane: int) -> Any:
    """A waypoint's transform a third of the way along ``lane``."""
    line = world.map.lanes[lane].centerline
    k = min(len(line) // 3, len(line) - 2)
    (x, y), (x1, y1) = line[k], line[k + 1]
    return carla.Transform(carla.Location(float(x), -float(y), 0.0),
                           carla.Rotation(yaw=-math.degrees(math.atan2(y1 - y, x1 - x))))
