"""Real-format episodes for the store and data benchmarks, and ``autoloop bench data``.

An episode here has the columns a labelled collection rollout writes (:mod:`autoloop.rollout.episodes`): the ego's
poses and controls, the executed ``action``, the expert's ``label``, ``label_plan_xy`` and ``label_plan_speed``, the
``STATE_SIZE``-float ``obs_state`` and the bit-packed ``obs_bev`` of ``len(Channel)`` channels; the BEV bits are set
with the share of a rendered town BEV (about one in eight), so that zstd compresses them as it does real ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autoloop.episodes import Episode
from policies.expert import ExpertParams
from sim.scene.bev import Channel
from sim.scene.observation import STATE_SIZE

#: Share of set BEV bits (drivable area and lane lines dominate a rendered BEV).
BEV_FILL = 0.125


def bev_shape(size_px: int) -> tuple[int, int, int]:
    """The stored BEV shape at ``size_px``: ``(len(Channel), size_px, size_px)``."""
    return len(Channel), size_px, size_px


def real_format_episode(episode_id: str, steps: int, shape: tuple[int, int, int], rng: np.random.Generator,
                        ) -> Episode:
    """A sim episode of ``steps`` steps (dt 0.05 s) with every column a labelled rollout stores, driven by the
    expert (trajectory targets come from its poses), of BEV ``shape``."""
    plan_steps = ExpertParams().plan_steps
    speed = np.clip(8.0 + np.cumsum(rng.standard_normal(steps) * 0.1), 0.0, 20.0).astype(np.float32)
    yaw = np.cumsum(rng.standard_normal(steps) * 0.01).astype(np.float32)
    columns: dict[str, Any] = {"step": np.arange(steps, dtype=np.int32),
                               "time_s": np.arange(steps, dtype=np.float32) * 0.05,
                               "x_m": np.cumsum(speed * np.cos(yaw) * 0.05),
                               "y_m": np.cumsum(speed * np.sin(yaw) * 0.05), "yaw_rad": yaw, "speed_mps": speed}
    for name in ("steer_rad", "accel_mps2", "route_progress_m"):
        columns[name] = rng.standard_normal(steps).astype(np.float32)
    for name in ("action", "label"):
        columns[name] = rng.uniform(-1, 1, (steps, 2)).astype(np.float32)
    columns["label_plan_xy"] = rng.standard_normal((steps, 2 * plan_steps)).astype(np.float32)
    columns["label_plan_speed"] = rng.uniform(0, 15, (steps, plan_steps)).astype(np.float32)
    columns["obs_state"] = rng.uniform(0, 1, (steps, STATE_SIZE)).astype(np.float32)
    bits = rng.random((steps, int(np.prod(shape))), dtype=np.float32) < BEV_FILL
    columns["obs_bev"] = np.packbits(bits, axis=1)
    return Episode(episode_id, "sim", columns, {"map_name": "town-1", "policy": "expert", "dt_s": 0.05,
                                                "tags": {"purpose": "bench"}, "bev_shape": list(shape)})
