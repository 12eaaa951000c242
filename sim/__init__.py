"""Driving simulators behind one Gymnasium API, with maps, scenarios and Leaderboard metrics.

Importing ``sim`` registers the embedded simulator's environment ids (``ENV_IDS``); ``gymnasium.make`` builds a
single environment and ``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")`` the native batched one.
"""

from __future__ import annotations

import gymnasium as gym

#: Registered environment ids of the embedded simulator.
ENV_IDS = ("autoloop/Junction-v0",)

for _env_id in ENV_IDS:
    if _env_id not in gym.registry:
        gym.register(
            id=_env_id,
            entry_point="sim.embedded.env:DrivingEnv",
            vector_entry_point="sim.embedded.env:DrivingVectorEnv",
        )
