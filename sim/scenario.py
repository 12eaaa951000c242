"""Scenarios: one description of a driving task that every backend runs the same way.

A scenario is a map, a route on it (a lane path plus where the ego starts and where the route ends), background
traffic (count and seed) and the traffic lights' phase offset. It serializes to plain data (YAML/JSON) and back.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sim.embedded.traffic import LightTiming
from sim.maps import connector_id, get_map


class Scenario(BaseModel):
    """One route to drive.

    :param map_name: registered map id (``sim.maps.get_map``).
    :param route: lane ids the route follows, in order.
    :param start_s_m: where the ego starts, as arc length along the route's lane path.
    :param end_s_m: where the route ends, as arc length along the route's lane path.
    :param traffic_vehicles: number of background vehicles.
    :param traffic_seed: seed for the background traffic's placement and behaviour.
    :param light_offset_s: traffic-light cycle offset at time 0.
    :param timeout_s: the route fails when it is not completed after this long.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    map_name: str
    route: tuple[int, ...] = Field(min_length=1)
    start_s_m: float = Field(ge=0.0)
    end_s_m: float = Field(gt=0.0)
    traffic_vehicles: int = Field(ge=0)
    traffic_seed: int
    light_offset_s: float = 0.0
    timeout_s: float = Field(gt=0.0)


def sample_scenario(seed: int, *, map_name: str = "junction4-60", traffic_vehicles: int = 6,
                    timing: LightTiming = LightTiming()) -> Scenario:
    """Draw a junction-crossing route (random approach and turn, random traffic and light phase) from ``seed``.

    The timeout allows 4 m/s on average plus two full light cycles (a queue may need two greens).
    """
    rng = np.random.default_rng(seed)
    lane_graph = get_map(map_name)
    arm_in = int(rng.integers(4))
    arm_out = int((arm_in + 1 + rng.integers(3)) % 4)
    route = (2 * arm_in, connector_id(arm_in, arm_out), 2 * arm_out + 1)
    inbound, connector, outbound = (lane_graph.lanes[lane_id].length_m for lane_id in route)
    start = float(rng.uniform(0.15, 0.5) * inbound)
    end = float(inbound + connector + rng.uniform(0.5, 0.85) * outbound)
    return Scenario(
        map_name=map_name,
        route=route,
        start_s_m=round(start, 2),
        end_s_m=round(end, 2),
        traffic_vehicles=traffic_vehicles,
        traffic_seed=seed,
        light_offset_s=round(float(rng.uniform(0.0, timing.cycle_s(lane_graph.light_groups))), 2),
        timeout_s=round((end - start) / 4.0 + 2 * timing.cycle_s(lane_graph.light_groups), 1),
    )
