"""Driving simulators behind one Gymnasium API, with maps, scenarios and Leaderboard metrics.

Importing ``sim`` registers the embedded simulator's environment ids (``ENV_IDS``); ``gymnasium.make`` builds a
single environment and ``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")`` the native batched one.
"""

from __future__ import annotations

import gymnasium as gym

from sim import jit_cache

jit_cache.install()

#: Registered environment ids of the embedded simulator and their settings: ``Junction-v0`` is one signalized
#: crossroads with light traffic; ``Town-v0`` a procedural town (``town-1``) with vehicles and pedestrians.
ENV_KWARGS = {
    "autoloop/Junction-v0": {"map_name": "junction4-60", "traffic_vehicles": 6},
    "autoloop/Town-v0": {"map_name": "town-1", "traffic_vehicles": 20, "pedestrians": 8},
}
ENV_IDS = tuple(ENV_KWARGS)

for _env_id, _kwargs in ENV_KWARGS.items():
    if _env_id not in gym.registry:
        gym.register(
            id=_env_id,
            entry_point="sim.embedded.env:DrivingEnv",
            vector_entry_point="sim.embedded.env:DrivingVectorEnv",
            kwargs=_kwargs,
        )
