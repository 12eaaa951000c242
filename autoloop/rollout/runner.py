"""The rollout runner: a driver drives a list of scenarios closed-loop on the embedded simulator, batched per map,
and a recorder keeps what its caller wants of every step.

``drive(scenarios, driver=..., recorder=..., world=..., options=...)`` groups the scenarios by map, cuts each group
into shards (:meth:`autoloop.compute.Compute.shards`; this process or a Ray cluster runs them) and each shard into
batches of ``batch_size``, one :class:`~sim.embedded.world.World` per batch. Each batch runs until every route in
it has ended (scenarios carry their timeouts). Per step:

1. the driver acts: on the batch's observations (BEV + state vector), or on the world itself for a driver that
   reads it (:class:`~autoloop.rollout.drivers.WorldDriver`, the privileged expert), which gets none;
2. with ``options.labels`` the privileged expert acts too (the label); with ``options.takeover_s`` it takes over a
   learner that stands where it would drive; ``options.action_noise`` adds correlated noise;
3. the recorder sees the step (:meth:`Recording.before_step`), the world takes it, the recorder sees it again
   (:meth:`Recording.after_step`), and the driver forgets the routes that ended.

A scenario drives the same whatever batch or shard it lands in: its noise and start perturbation come from a
generator of its own (seeded ``(options.noise_seed, position)``, ``position`` its index in ``scenarios``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

from autoloop.compute import IN_PROCESS, Compute
from autoloop.progress import Progress
from autoloop.rollout.drivers import DriverFactory, WorldDriver
from policies.base import Planner, Policy
from policies.expert import ExpertDriver
from sim.embedded.config import WorldConfig
from sim.embedded.world import World
from sim.maps import get_map
from sim.scenarios import Scenario
from sim.scene.bev import BevSpec
from sim.scene.observation import Observation, Observer

log = logging.getLogger(__name__)

R = TypeVar("R")
F = TypeVar("F")

#: Correlation of the exploration noise from one step to the next (about 1 s at 20 Hz).
NOISE_CORRELATION = 0.95
#: A learner counts as standing still below this speed (m/s) ...
TAKEOVER_STILL_MPS = 0.1
#: ... while the expert would drive on: its planned speed 0.5 s ahead is above this (m/s).
TAKEOVER_GO_MPS = 1.0
#: The expert, once it took over, drives until the ego is this fast (m/s) or it would stop itself.
TAKEOVER_UNTIL_MPS = 3.0


@dataclass(frozen=True)
class RolloutOptions:
    """How a rollout drives, besides its driver.

    :param labels: the privileged expert labels every step: its action (``Step.label``) and its intended trajectory
        (``Step.labeller.plan_xy``, ``plan_speed``); the driver's observations are rendered for the record.
    :param action_noise: standard deviation of correlated noise (``NOISE_CORRELATION``) added to the executed
        actions.
    :param noise_seed: seed of that noise and of the start perturbations: the scenario at ``position`` in the list
        draws from its own generator, seeded ``(noise_seed, position)``.
    :param start_perturbation: ``(lateral_m, yaw_rad)``: each ego starts shifted sideways and turned by amounts
        drawn uniformly from ``[-lateral_m, lateral_m]`` and ``[-yaw_rad, yaw_rad]``
        (:meth:`~sim.embedded.world.World.perturb_ego`; an ego leaving a parking place is left where it is).
    :param takeover_s: with a learner driving and ``labels``: once the learner has stood still this long while the
        expert would drive on, the expert drives that ego until it is under way (``TAKEOVER_UNTIL_MPS``), as in
        HG-DAgger's interventions; a learner stuck before a stop would otherwise add the same labelled state for
        minutes. 0: the expert never takes over.
    """

    labels: bool = False
    action_noise: float = 0.0
    noise_seed: int = 0
    start_perturbation: tuple[float, float] = (0.0, 0.0)
    takeover_s: float = 0.0


#: Drive as the driver drives: no labels, noise, perturbed starts or takeovers.
PLAIN = RolloutOptions()


@dataclass(frozen=True)
class Batch:
    """A batch about to be driven: its world (one scenario per slot, on one map) and what drives it.

    :param positions: each slot's scenario's index in the list the runner was given.
    :param perturbation: ``(n, 2)`` start perturbations ``[lateral_m, yaw_rad]`` per slot, ``None`` when none were
        asked for.
    """

    world: World
    scenarios: list[Scenario]
    positions: list[int]
    driver: Policy
    bev: BevSpec
    perturbation: NDArray[np.float64] | None


@dataclass(frozen=True)
class Step:
    """One step of a batch, as decided before the world takes it (arrays over the batch's slots).

    :param running: the routes still running before the step (a route's steps are the first ones of its batch).
    :param action: ``(n, 2)`` executed actions ``[steer, accel]``: the driver's (or the expert's where it took over)
        plus noise, clipped to [-1, 1].
    :param observation: what the driver saw (``None``: a driver that reads the world, and no labels asked for).
    :param label: the expert's action (with ``options.labels``).
    :param labeller: the expert that labelled, for its plan (with ``options.labels``).
    :param expert_drives: the slots the expert drives at this step (with ``options.takeover_s``).
    :param takeovers: takeovers so far per slot (with ``options.takeover_s``).
    :param plan: ``(n, K, 2)`` the waypoints the driver planned for this step, ego frame (x forward, y left,
        metres), when it plans (a :class:`~policies.base.Planner`: a trajectory network, the expert); where the
        expert took over, still the driver's.
    """

    running: NDArray[np.bool_]
    action: NDArray[np.float32]
    observation: Observation | None = None
    label: NDArray[np.float32] | None = None
    labeller: ExpertDriver | None = None
    expert_drives: NDArray[np.bool_] | None = None
    takeovers: NDArray[np.intp] | None = None
    plan: NDArray[np.float64] | None = None


class Recording(Protocol[R]):
    """What a recorder keeps of one batch."""

    def before_step(self, step: Step) -> None:
        """The step is decided; the world still shows the state the driver acted on."""
        ...

    def after_step(self, step: Step) -> None:
        """The world took the step."""
        ...

    def finish(self) -> list[R]:
        """Every route has ended: one result per slot, in slot order."""
        ...


class Recorder(Protocol[R]):
    """What a rollout keeps (episodes for the store, route records for scoring, fleet logs ...): a fresh
    :class:`Recording` per batch. Recorders travel to the workers that drive the shards: keep them picklable."""

    def begin(self, batch: Batch) -> Recording[R]:
        ...


def drive(scenarios: Sequence[Scenario], *, driver: DriverFactory, recorder: Recorder[R], world: WorldConfig,
          batch_size: int, bev: BevSpec = BevSpec(), options: RolloutOptions = PLAIN,
          compute: Compute = IN_PROCESS) -> list[R]:
    """Drive every scenario once; the recorder's result of each, in scenario order.

    :param driver: builds the driver of a batch's world (the expert reads it; learned drivers ignore it).
    :param recorder: what to keep of each step and what to return per scenario.
    :param world: the world's settings and actor slots (every scenario must fit them).
    :param batch_size: scenarios stepped together in one world.
    :param bev: the observations' BEV raster (rendered only for drivers that observe, or with labels).
    :param compute: where the shards run (:mod:`autoloop.compute`: this process, or a Ray cluster).
    """
    results: dict[int, R] = {}
    with Progress("drive", len(scenarios), "scenarios") as progress:
        for positions, shard in drive_shards(scenarios, driver=driver, recorder=recorder, world=world,
                                             batch_size=batch_size, bev=bev, options=options, compute=compute):
            results.update(zip(positions, shard, strict=True))
            progress.update(len(results))
    return [results[position] for position in range(len(scenarios))]


def drive_shards(scenarios: Sequence[Scenario], *, driver: DriverFactory, recorder: Recorder[R],
                 world: WorldConfig, batch_size: int, bev: BevSpec = BevSpec(),
                 options: RolloutOptions = PLAIN, compute: Compute = IN_PROCESS,
                 on_error: Callable[[Exception], F] | None = None) -> Iterator[tuple[list[int], list[R | F]]]:
    """:func:`drive`, shard by shard as each finishes: ``(positions in scenarios, their results)``.

    :param on_error: when given, a batch that raises (its driver, or the simulator) does not stop the rollout:
        each of its scenarios gets ``on_error(error)`` (worked out where the batch ran) as its result.
    """
    groups: dict[str, list[int]] = {}
    for position, scenario in enumerate(scenarios):
        groups.setdefault(scenario.map_name, []).append(position)
    shards = [[group[i] for i in shard] for group in groups.values()
              for shard in compute.shards(len(group), batch_size)]
    run = functools.partial(_drive_shard, scenarios=list(scenarios), driver=driver, recorder=recorder, world=world,
                            batch_size=batch_size, bev=bev, options=options, on_error=on_error)
    for index, results in compute.map(run, shards):
        yield shards[index], results


def _drive_shard(shard: list[int], *, scenarios: list[Scenario], driver: DriverFactory, recorder: Recorder[R],
                 world: WorldConfig, batch_size: int, bev: BevSpec, options: RolloutOptions,
                 on_error: Callable[[Exception], F] | None) -> list[R | F]:
    """The scenarios at the shard's positions (one map), in batches of ``batch_size``."""
    results: list[R | F] = []
    for start in range(0, len(shard), batch_size):
        positions = shard[start:start + batch_size]
        try:
            batch: list[R] = _drive_batch([scenarios[p] for p in positions], positions, driver=driver,
                                         recorder=recorder, world=world, bev=bev, options=options)
        except Exception as error:
            if on_error is None:
                raise
            results += [on_error(error)] * len(positions)
        else:
            results += batch
    return results


def _drive_batch(scenarios: list[Scenario], positions: list[int], *, driver: DriverFactory, recorder: Recorder[R],
                 world: WorldConfig, bev: BevSpec, options: RolloutOptions) -> list[R]:
    """One world running ``scenarios`` (all on one map) until every route has ended; the recorder's results.

    :param positions: the scenarios' indices in the caller's list (they seed each one's noise).
    """
    sim = World(get_map(scenarios[0].map_name), len(scenarios), world)
    sim.reset(scenarios)
    rngs = [np.random.default_rng([options.noise_seed, position]) for position in positions]
    perturbation = _perturb(sim, rngs, options.start_perturbation)
    policy = driver(sim)
    # a driver that reads the world needs no observations (unless they are recorded with labels)
    world_driver = policy if isinstance(policy, WorldDriver) and not options.labels else None
    observer = Observer(sim, bev) if world_driver is None else None
    labeller = None
    if options.labels:
        labeller = policy if isinstance(policy, ExpertDriver) else ExpertDriver(sim)
    takeover = _Takeover(len(scenarios), options.takeover_s) if (
        options.takeover_s > 0.0 and labeller is not None and labeller is not policy) else None
    noise = np.zeros((len(scenarios), 2))
    recording = recorder.begin(Batch(sim, scenarios, positions, policy, bev, perturbation))
    while sim.running.any():
        running = sim.running.copy()
        observation: Observation | None = None
        if world_driver is not None:
            action = world_driver.act()
        else:
            assert observer is not None
            observation = observer.observe()
            action = policy.act(observation)
        plan = np.array(policy.plan_xy) if isinstance(policy, Planner) else None
        label = None
        if labeller is not None:
            label = action if labeller is policy else labeller.act(observation)
        if takeover is not None:
            assert labeller is not None and label is not None
            action = takeover.step(sim, labeller, action, label)
        if options.action_noise:
            innovation = np.stack([rng.standard_normal(2) for rng in rngs])
            noise = NOISE_CORRELATION * noise + options.action_noise * np.sqrt(1 - NOISE_CORRELATION**2) * innovation
        executed = np.clip(action + noise, -1.0, 1.0).astype(np.float32)
        step = Step(running, executed, observation, label, labeller,
                    takeover.expert_drives.copy() if takeover is not None else None,
                    takeover.count.copy() if takeover is not None else None, plan)
        recording.before_step(step)
        sim.step(executed.astype(np.float64))
        recording.after_step(step)
        policy.reset(~sim.running)
    return recording.finish()


def _perturb(world: World, rngs: list[np.random.Generator], start_perturbation: tuple[float, float],
             ) -> NDArray[np.float64] | None:
    """Shift and turn each ego at its start (``RolloutOptions.start_perturbation``); the amounts, or ``None``."""
    lateral_m, yaw_rad = start_perturbation
    if not (lateral_m or yaw_rad):
        return None
    drawn = np.stack([rng.uniform(-1.0, 1.0, 2) for rng in rngs])
    amounts: NDArray[np.float64] = drawn * np.array([lateral_m, yaw_rad])
    parked = world.scene.mission.curb_until_m > -np.inf  # (a ParkingExit start: it already starts off its lane)
    amounts[parked] = 0.0
    for slot in np.flatnonzero(~parked):
        world.placement(int(slot)).perturb_ego(float(amounts[slot, 0]), float(amounts[slot, 1]))
    return amounts


class _Takeover:
    """The expert taking over learners that stand where it would drive (``RolloutOptions.takeover_s``)."""

    def __init__(self, batch_size: int, after_s: float) -> None:
        self.after_s = after_s
        self.stuck_s = np.zeros(batch_size)
        self.expert_drives = np.zeros(batch_size, dtype=bool)
        self.count = np.zeros(batch_size, dtype=np.intp)

    def step(self, world: World, expert: ExpertDriver, action: NDArray[np.float32], label: NDArray[np.float32],
             ) -> NDArray[np.float32]:
        """This step's actions: the expert's where it drives, the learner's elsewhere."""
        speed = world.ego.speed_mps
        wants_to_go = expert.plan_speed[:, 0] > TAKEOVER_GO_MPS
        self.stuck_s = np.where((speed < TAKEOVER_STILL_MPS) & wants_to_go & ~self.expert_drives,
                                self.stuck_s + world.config.dt_s, 0.0)
        starts = self.stuck_s >= self.after_s
        self.count += starts
        self.expert_drives = (self.expert_drives | starts) & (speed < TAKEOVER_UNTIL_MPS) & wants_to_go
        taken: NDArray[np.float32] = np.where(self.expert_drives[:, None], label, action)
        return taken
