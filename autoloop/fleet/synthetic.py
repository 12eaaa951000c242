"""A synthetic fleet, for demos and large tests: the expert driving procedural towns with human-like noise and a
safety driver who takes over now and then. Every episode is labelled synthetic (metadata ``synthetic: true``,
``dataset: "synthetic-fleet"``) so it is never mistaken for a real log.

The human-like driver (:class:`HumanLikeDriver`) acts on what it saw ``reaction_steps`` ago and steers with a
slowly drifting error (an Ornstein-Uhlenbeck process); when it drifts more than ``takeover_lateral_m`` from its
lane or closes in on what is ahead with under ``takeover_ttc_s`` to collision, the safety driver (the expert,
without delay or drift) takes over for ``takeover_s`` seconds, and those steps carry the ``intervention`` flag.
Episodes have the fleet layout of :mod:`autoloop.fleet.av2`: the ego at 10 Hz and every actor around as rows of
the actors table, in the map frame of the town.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from autoloop.episodes import Episode
from autoloop.rollout import actor_snapshot, actor_table
from policies.expert import ExpertDriver
from sim.embedded.world import World
from sim.maps import get_map
from sim.scenarios.suites import build_suite

#: Episodes are recorded at this rate (the world steps at its own ``dt_s``).
RECORD_DT_S = 0.1


@dataclass(frozen=True)
class HumanLikeParams:
    """How imperfect the synthetic drivers are (see the module docstring)."""

    reaction_steps: int = 6
    steer_drift: float = 0.05
    drift_correlation: float = 0.98
    takeover_lateral_m: float = 1.2
    takeover_ttc_s: float = 0.8
    takeover_s: float = 3.0


class HumanLikeDriver:
    """The expert with a reaction delay and a drifting steering error, and a safety driver who takes over."""

    def __init__(self, world: World, seed: int, params: HumanLikeParams = HumanLikeParams()) -> None:
        self.world, self.params = world, params
        self.expert = ExpertDriver(world)
        self.rng = np.random.default_rng(seed)
        batch = world.batch_size
        self.delayed = np.zeros((params.reaction_steps + 1, batch, 2), dtype=np.float32)
        self.drift = np.zeros(batch)
        self.takeover_until = np.full(batch, -np.inf)
        #: Whether the safety driver drove the last step, per scenario.
        self.intervening = np.zeros(batch, dtype=bool)

    def act(self) -> NDArray[np.float32]:
        world, p = self.world, self.params
        safe = self.expert.act()
        self.delayed = np.roll(self.delayed, 1, axis=0)
        self.delayed[0] = safe
        self.drift = p.drift_correlation * self.drift + np.sqrt(1.0 - p.drift_correlation**2) * p.steer_drift \
            * self.rng.standard_normal(world.batch_size)
        human = self.delayed[-1].copy()
        human[:, 0] = np.clip(human[:, 0] + self.drift, -1.0, 1.0)
        st, now = world.state, world.time_s
        closing = np.maximum(world.ego.speed_mps - st.ego_leader_speed, 1e-3)
        danger = (np.abs(world.lateral_m) > p.takeover_lateral_m) | (st.ego_leader_gap / closing < p.takeover_ttc_s)
        self.takeover_until = np.where(danger & (now >= self.takeover_until), now + p.takeover_s,
                                       self.takeover_until)
        self.intervening = now < self.takeover_until
        actions: NDArray[np.float32] = np.where(self.intervening[:, None], safe, human).astype(np.float32)
        return actions


def synthetic_fleet(episodes: int, *, seed: int = 0, params: HumanLikeParams = HumanLikeParams(),
                    max_steps: int = 6000) -> list[Episode]:
    """``episodes`` synthetic fleet episodes on the ``train`` suite's routes of draw ``seed``."""
    suite = build_suite("train", routes=episodes, seed=seed)
    config = suite.world_config()
    found: dict[int, Episode] = {}
    for map_name, indices in suite.by_map().items():
        world = World(get_map(map_name), len(indices), config)
        world.reset([suite.scenarios[i] for i in indices])
        driver = HumanLikeDriver(world, seed=seed * 100_003 + indices[0], params=params)
        every = max(round(RECORD_DT_S / config.dt_s), 1)
        ego: list[dict[str, NDArray[np.generic]]] = []
        actors: list[dict[str, NDArray[np.generic]]] = []
        alive: list[NDArray[np.bool_]] = []
        for step in range(max_steps):
            if not world.running.any():
                break
            running = world.running.copy()
            world.step(driver.act().astype(np.float64))
            if step % every == 0:
                alive.append(running)
                ego.append(_ego_row(world, driver.intervening))
                actors.append(actor_snapshot(world))
        for slot, index in enumerate(indices):
            found[index] = _episode(suite.scenarios[index].model_dump(mode="json"), map_name, seed, index, slot,
                                    ego, actors, alive, world)
    return [found[i] for i in sorted(found)]


def _ego_row(world: World, intervening: NDArray[np.bool_]) -> dict[str, NDArray[np.generic]]:
    ego = world.ego
    return {"time_s": world.time_s.copy(), "x_m": ego.x_m.copy(), "y_m": ego.y_m.copy(), "yaw_rad": ego.yaw_rad.copy(),
            "speed_mps": ego.speed_mps.copy(), "accel_mps2": world.ego_accel_mps2.copy(),
            "route_progress_m": world.progress_s.copy(), "intervention": intervening.copy()}


def _episode(scenario: dict[str, object], map_name: str, seed: int, index: int, slot: int,
             ego: list[dict[str, NDArray[np.generic]]], actors: list[dict[str, NDArray[np.generic]]],
             alive: list[NDArray[np.bool_]], world: World) -> Episode:
    frames = [k for k, running in enumerate(alive) if running[slot]]
    steps: dict[str, NDArray[np.generic]] = {
        name: np.array([ego[k][name][slot] for k in frames]) for name in ego[0]} if frames else {}
    steps["step"] = np.arange(len(frames), dtype=np.int32)
    steps["time_s"] = steps["time_s"].astype(np.float32)
    for name in ("yaw_rad", "speed_mps", "accel_mps2", "route_progress_m"):
        steps[name] = steps[name].astype(np.float32)
    yaw = np.unwrap(steps["yaw_rad"].astype(np.float64))
    steps["yaw_rate_radps"] = (np.gradient(yaw, RECORD_DT_S) if len(yaw) > 1 else np.zeros(len(yaw))).astype(
        np.float32)
    actor_rows = actor_table(actors, slot, frames)
    record = world.route_record(slot)
    interventions = int(np.sum(np.diff(np.concatenate([[False], steps["intervention"].astype(bool)])) > 0))
    metadata = {"map_name": map_name, "dataset": "synthetic-fleet", "synthetic": True, "dt_s": RECORD_DT_S,
                "duration_s": float(len(frames) * RECORD_DT_S), "origin": f"synthetic:train/{seed}/{index}",
                "scenario": scenario, "policy": "human-like expert (synthetic)", "interventions": interventions,
                "tags": ["synthetic"], "record": {"status": record.status.value if record.status else None,
                                                  "route_completion": record.route_completion}}
    return Episode(f"synth-{seed}-{index}", "fleet", steps, metadata, actors=actor_rows)
