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

import functools
import zlib
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from autoloop.episodes import Episode
from autoloop.rollout import Batch, Step, actor_snapshot, actor_table, drive
from policies.expert import ExpertDriver
from sim.embedded.world import World
from sim.scenarios.suites import build_suite
from sim.scene.observation import Observation

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
    """The expert with a reaction delay and a drifting steering error, and a safety driver who takes over. Its
    drift draws from a generator seeded ``(seed, map)``."""

    def __init__(self, world: World, *, seed: int, params: HumanLikeParams = HumanLikeParams()) -> None:
        self.world, self.params = world, params
        self.expert = ExpertDriver(world)
        self.rng = np.random.default_rng([seed, zlib.crc32(world.map.name.encode())])
        batch = world.batch_size
        self.delayed = np.zeros((params.reaction_steps + 1, batch, 2), dtype=np.float32)
        self.drift = np.zeros(batch)
        self.takeover_until = np.full(batch, -np.inf)
        #: Whether the safety driver drove the last step, per scenario.
        self.intervening = np.zeros(batch, dtype=bool)

    def act(self, observation: Observation | None = None) -> NDArray[np.float32]:
        """Actions ``(B, 2)`` for the world's current state (no observation needed: it reads the world)."""
        world, p = self.world, self.params
        safe = self.expert.act()
        self.delayed = np.roll(self.delayed, 1, axis=0)
        self.delayed[0] = safe
        self.drift = p.drift_correlation * self.drift + np.sqrt(1.0 - p.drift_correlation**2) * p.steer_drift \
            * self.rng.standard_normal(world.batch_size)
        human = self.delayed[-1].copy()
        human[:, 0] = np.clip(human[:, 0] + self.drift, -1.0, 1.0)
        sc, now = world.scene, world.time_s
        closing = np.maximum(world.ego.speed_mps - sc.facts.leader_speed_mps, 1e-3)
        danger = (np.abs(world.lateral_m) > p.takeover_lateral_m) | (sc.facts.leader_gap_m / closing < p.takeover_ttc_s)
        self.takeover_until = np.where(danger & (now >= self.takeover_until), now + p.takeover_s,
                                       self.takeover_until)
        self.intervening = now < self.takeover_until
        actions: NDArray[np.float32] = np.where(self.intervening[:, None], safe, human).astype(np.float32)
        return actions

    def reset(self, done: NDArray[np.bool_]) -> None:
        """Nothing to forget: every route of a batch starts together."""


def synthetic_fleet(episodes: int, *, seed: int = 0, params: HumanLikeParams = HumanLikeParams()) -> list[Episode]:
    """``episodes`` synthetic fleet episodes on the ``train`` suite's routes of draw ``seed``."""
    suite = build_suite("train", routes=episodes, seed=seed)
    return drive(suite.scenarios, driver=functools.partial(HumanLikeDriver, seed=seed, params=params),
                 recorder=FleetRecorder(seed=seed), world=suite.world_config(), batch_size=len(suite.scenarios))


@dataclass(frozen=True)
class FleetRecorder:
    """Keeps each route of :class:`HumanLikeDriver` s as a fleet log at ``RECORD_DT_S`` (see the module docstring);
    ``seed`` names the suite draw in the episodes' ids and origins."""

    seed: int

    def begin(self, batch: Batch) -> _FleetRecording:
        return _FleetRecording(self.seed, batch)


class _FleetRecording:
    def __init__(self, seed: int, batch: Batch) -> None:
        assert isinstance(batch.driver, HumanLikeDriver)
        self.seed, self.batch, self.driver = seed, batch, batch.driver
        self.every = max(round(RECORD_DT_S / batch.world.config.dt_s), 1)
        self.steps = 0
        self.ego: list[dict[str, NDArray[np.generic]]] = []
        self.actors: list[dict[str, NDArray[np.generic]]] = []
        self.alive: list[NDArray[np.bool_]] = []

    def before_step(self, step: Step) -> None:
        pass

    def after_step(self, step: Step) -> None:
        """Every ``every``-th step, the state it led to (and whether the safety driver drove it)."""
        if self.steps % self.every == 0:
            self.alive.append(step.running)
            self.ego.append(_ego_row(self.batch.world, self.driver.intervening))
            self.actors.append(actor_snapshot(self.batch.world.scene))
        self.steps += 1

    def finish(self) -> list[Episode]:
        batch = self.batch
        return [_episode(scenario.model_dump(mode="json"), scenario.map_name, self.seed, index, slot, self.ego,
                         self.actors, self.alive, batch.world)
                for slot, (scenario, index) in enumerate(zip(batch.scenarios, batch.positions, strict=True))]


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
