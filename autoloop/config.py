"""Experiment configuration: one YAML file, parsed once at the edge into frozen models.

A config file may name a packaged ``profile`` (``quick`` or ``default``) as its base and override any key; every
key is checked, and an unknown or ill-typed key is an error that names the file and the key.
"""

from __future__ import annotations

import dataclasses
import re
import reprlib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Self, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sim.bounded_yaml import MAX_BYTES, load_yaml
from sim.embedded.config import WorldConfig
from sim.metrics import SCORERS
from sim.scenarios import Scenario, sample_scenario
from sim.scenarios.suites import SUITE_NAMES
from sim.scene.bev import BevSpec

#: The packaged profiles (``autoloop/profiles/<name>.yaml``).
Profile = Literal["quick", "default"]
PROFILES: tuple[str, ...] = get_args(Profile)
#: Where evaluation drives: the embedded simulator, or CARLA through the Leaderboard's evaluator.
Backend = Literal["embedded", "carla"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SimConfig(_Frozen):
    """Embedded simulator settings shared by collection and evaluation.

    :param map_name: map every scenario runs on (``junction4-60``, ``town-<seed>``, ... see ``sim.maps.get_map``).
    :param traffic_vehicles: background vehicles per scenario.
    :param pedestrians: pedestrians per scenario.
    :param batch_size: scenarios stepped together in one batched world.
    :param bev_size_px: the BEV raster is ``bev_size_px`` square (the ego sits at three quarters of its height);
        64 (32 m around the ego) keeps a cycle to minutes on a laptop's CPU, the simulator's own default is 128.
    :param bev_resolution_m: metres per BEV pixel.
    """

    map_name: str = "junction4-60"
    traffic_vehicles: int = Field(default=6, ge=0, le=64)
    pedestrians: int = Field(default=0, ge=0, le=64)
    batch_size: int = Field(default=16, ge=1)
    bev_size_px: int = Field(default=64, ge=16, le=512)
    bev_resolution_m: float = Field(default=0.5, gt=0.0)

    def bev(self) -> BevSpec:
        """The BEV raster these settings ask for."""
        return BevSpec(size_px=self.bev_size_px, resolution_m=self.bev_resolution_m,
                       ego_row=3 * self.bev_size_px // 4)

    def world_config(self) -> WorldConfig:
        """The world these settings ask for: the default one, with actor slots for ``traffic_vehicles`` and
        ``pedestrians`` (at least the default's)."""
        default = WorldConfig()
        return dataclasses.replace(default, max_vehicles=max(default.max_vehicles, self.traffic_vehicles),
                                   max_pedestrians=max(default.max_pedestrians, self.pedestrians))

    def sample(self, seed: int) -> Scenario:
        """The scenario of ``seed`` on these settings."""
        return sample_scenario(seed, map_name=self.map_name, traffic_vehicles=self.traffic_vehicles,
                               pedestrians=self.pedestrians)


class CollectConfig(_Frozen):
    """Expert data collection.

    Each collection drives new scenarios: the first uses seeds ``seed .. seed + episodes - 1`` and later ones
    continue after the highest seed already collected in the episode store. The data engine
    (:class:`EngineConfig`) spends a share of them on what failed.

    :param source: where routes are drawn: ``towns`` (procedural training towns, each route with one scenario event
        of a type drawn by the engine's weights, or none; towns with seeds from 9000 on are held out) or ``map``
        (random routes on ``sim.map_name``, e.g. one junction).
    :param episodes: scenarios to drive per collection (the collection's budget).
    :param seed: first scenario seed.
    :param action_noise: standard deviation of the temporally correlated noise added to the expert's executed
        actions (the stored labels stay clean), so the data shows how to recover from mistakes.
    :param dataset_episodes: episodes in the dataset snapshot a collection produces: the new ones plus the
        most recent earlier collected ones, up to this many (unset: every collected episode: the dataset
        accumulates).
    :param fleet_episodes: the snapshot also holds up to this many of the store's fleet episodes (the newest
        ingested; see ``autoloop ingest``), which training learns from by their recorded future (0: none).
    :param start_lateral_m: perturbed starts: each ego starts shifted sideways by up to this much (uniform)...
    :param start_yaw_rad: ... and turned by up to this much, so the expert shows how to get back to the route.
    """

    source: Literal["towns", "map"] = "towns"
    episodes: int = Field(default=48, ge=1)
    seed: int = Field(default=0, ge=0)
    action_noise: float = Field(default=0.15, ge=0.0)
    start_lateral_m: float = Field(default=0.75, ge=0.0, le=1.5)
    start_yaw_rad: float = Field(default=0.15, ge=0.0, le=0.5)
    dataset_episodes: int | None = Field(default=None, ge=1)
    fleet_episodes: int = Field(default=64, ge=0)

    @model_validator(mode="after")
    def _dataset_holds_collection(self) -> Self:
        if self.dataset_episodes is not None and self.dataset_episodes < self.episodes:
            raise ValueError(f"dataset_episodes ({self.dataset_episodes}) must be at least episodes "
                             f"({self.episodes})")
        return self


class DaggerConfig(_Frozen):
    """DAgger after behaviour cloning: the learner drives new scenarios, the expert labels every state it visits,
    the labelled episodes join the dataset (a new snapshot per iteration) and training continues on all of it.

    :param iterations: rounds of roll out, label, aggregate, retrain (0: behaviour cloning alone).
    :param episodes: scenarios the learner drives per round.
    :param seed: first scenario seed of DAgger rollouts (later rounds and cycles continue after the highest seed
        already in the store); must stay clear of the evaluation seeds.
    :param epochs: training epochs after each round (continuing from the current weights).
    :param takeover_s: the expert drives a learner that has stood still this long while the expert would drive
        on, until it is under way (0: never; see :class:`autoloop.rollout.RolloutOptions`).
    """

    iterations: int = Field(default=0, ge=0)
    episodes: int = Field(default=16, ge=1)
    seed: int = Field(default=500_000, ge=0)
    epochs: int = Field(default=3, ge=1)
    takeover_s: float = Field(default=5.0, ge=0.0)


class PpoConfig(_Frozen):
    """RL fine-tuning with stable-baselines3 PPO on the native vector env (the env's reward: 0.1 per metre of
    route progress, minus ``1 - penalty`` per Leaderboard infraction, minus 1 when the route fails).

    :param timesteps: environment steps in all (0: no fine-tuning).
    :param num_envs: scenarios stepped together.
    :param n_steps: steps per environment per rollout.
    :param batch_size: minibatch size.
    :param n_epochs: passes over each rollout.
    :param learning_rate: Adam learning rate.
    :param log_std_init: initial log standard deviation of the Gaussian actions (small: the warm start already
        drives).
    :param warm_start: start the features extractor and the action head from the imitation weights.
    :param seed: seed of SB3 and of the sampled scenarios.
    """

    timesteps: int = Field(default=0, ge=0)
    num_envs: int = Field(default=8, ge=1)
    n_steps: int = Field(default=128, ge=2)
    batch_size: int = Field(default=256, ge=2)
    n_epochs: int = Field(default=4, ge=1)
    learning_rate: float = Field(default=1e-4, gt=0.0)
    log_std_init: float = -2.0
    warm_start: bool = True
    seed: int = 0


class SacConfig(_Frozen):
    """RL fine-tuning with stable-baselines3 SAC (off-policy, squashed Gaussian actions, a replay buffer of
    ``Dict(bev, state)`` transitions) on the native vector env, with the same reward as :class:`PpoConfig`.

    SAC acts uniformly at random for its first ``learning_starts`` steps (SB3's warm-up) and then samples its own
    actor; every ``train_freq`` vector steps (``num_envs`` environment steps each) it takes ``gradient_steps``
    gradient steps.

    :param timesteps: environment steps in all (0: no fine-tuning).
    :param num_envs: scenarios stepped together.
    :param buffer_size: transitions in the replay buffer (each holds two BEVs: 9x64x64 uint8 is 36 KiB, 9x128x128
        is 144 KiB, so 4096 transitions take 0.3 or 1.2 GiB).
    :param learning_starts: environment steps of uniformly random actions before the first gradient step.
    :param batch_size: transitions per gradient step.
    :param train_freq: vector steps between updates.
    :param gradient_steps: gradient steps per update (-1: as many as environment steps since the last update).
    :param learning_rate: Adam learning rate (actor, critics and entropy coefficient).
    :param tau: soft update coefficient of the target critics.
    :param gamma: discount factor.
    :param ent_coef: entropy coefficient: a number, ``auto`` (learned, starting at 1) or ``auto_<start>``
        (learned, starting at ``<start>``).
    :param log_std_init: with the warm start, the actor's log standard deviation (before the ``tanh``) starts at
        this constant (small: the warm start already drives).
    :param warm_start: start the features extractors (actor and critics) and the actor from the imitation weights.
    :param seed: seed of SB3 and of the sampled scenarios.
    """

    timesteps: int = Field(default=0, ge=0)
    num_envs: int = Field(default=8, ge=1)
    buffer_size: int = Field(default=4096, ge=1)
    learning_starts: int = Field(default=256, ge=0)
    batch_size: int = Field(default=128, ge=1)
    train_freq: int = Field(default=1, ge=1)
    gradient_steps: int = Field(default=1, ge=-1)
    learning_rate: float = Field(default=1e-4, gt=0.0)
    tau: float = Field(default=0.005, gt=0.0, le=1.0)
    gamma: float = Field(default=0.99, gt=0.0, le=1.0)
    ent_coef: float | str = "auto_0.01"
    log_std_init: float = -2.0
    warm_start: bool = True
    seed: int = 0

    @field_validator("ent_coef")
    @classmethod
    def _known_ent_coef(cls, value: float | str) -> float | str:
        if isinstance(value, str) and not re.fullmatch(r"auto(_\d+(\.\d*)?([eE]-?\d+)?)?", value):
            raise ValueError(f"ent_coef {value!r}: expected a number, 'auto' or 'auto_<start>' (e.g. 'auto_0.01')")
        if isinstance(value, float) and value <= 0.0:
            raise ValueError(f"ent_coef {value}: a fixed entropy coefficient must be positive")
        return value


class TrainConfig(_Frozen):
    """Imitation learning (behaviour cloning, then optionally DAgger and PPO fine-tuning).

    :param policy: ``waypoints`` (trajectory imitation with a controller, :mod:`policies.waypoints`) or ``bc``
        (direct ``[steer, accel]`` regression, :mod:`policies.bc`).
    :param control: for ``waypoints``: what drives, ``controller`` (waypoints + target speed), ``head`` (the
        auxiliary direct control head) or ``blend`` (their mean).
    :param steering: for ``waypoints``: what the controller steers along, ``route`` (the route in the state
        vector, shifted by its planned offset, the network setting the speed alone:
        :func:`policies.waypoints.route_steer`; pure pursuit on the predicted path cuts junction turns into
        oncoming traffic) or ``waypoints`` (pure pursuit on the predicted path: trajectory imitation as TCP's).
    :param waypoints: future waypoints predicted, 0.5 s apart.
    :param width: channels of the encoder's first convolution.
    :param hidden: width of the encoder's projection and of the heads.
    :param init: what training starts from: ``champion`` (warm start: the weights of the registry's ``champion``,
        fine-tuned by ``finetune_epochs`` at ``finetune_learning_rate``; from scratch when there is no champion
        yet or its network differs from this config's: :mod:`autoloop.training.warm`) or ``scratch`` (fresh
        weights from ``seed``, trained by ``epochs`` at ``learning_rate``).
    :param epochs: passes over the dataset.
    :param batch_size: samples per gradient step (per process under DDP).
    :param learning_rate: Adam learning rate.
    :param finetune_epochs: passes over the dataset when warm-starting from the champion: a fine-tune needs fewer
        than training from scratch, and stops before it forgets what the champion knew.
    :param finetune_learning_rate: Adam learning rate when warm-starting from the champion: lower than
        ``learning_rate``, so the updates refine the champion's weights rather than overwrite them.
    :param weight_decay: Adam weight decay.
    :param seed: seed for initialization and shuffling.
    :param repeat_threshold: repeat-factor sampling of rare situations (:mod:`autoloop.training.balance`): a
        category of samples rarer than this share is repeated ``sqrt(threshold / share)`` times per epoch (0: off).
    :param rows_per_epoch: an epoch trains on at most this many rows (after repeat-factor sampling and weights),
        drawn anew each epoch from the seed, so that an epoch's cost stays bounded as the dataset accumulates over
        cycles (unset: every row, every epoch).
    :param threads: torch CPU threads (default: torch's choice, one per core); use 1 when other work shares
        the cores.
    :param loader_workers: processes that read and collate training samples beside the training process (0: it
        reads them itself): :mod:`autoloop.training.stream`.
    :param shuffle_buffer: samples held at once to shuffle (per loader process): an epoch's order is shuffled
        within windows of this many rows of episodes in an order drawn per epoch.
    :param amp: mixed precision (bfloat16 autocast) when training on a GPU.
    :param compile: ``torch.compile`` the network when training on a GPU.
    :param dagger: DAgger rounds after behaviour cloning.
    :param ppo: PPO fine-tuning after imitation.
    :param sac: SAC fine-tuning after imitation; when PPO runs too, SAC comes after it and warm-starts from the
        PPO driver's actor (same encoder and control path; SAC squashes its mean by ``tanh`` where PPO clipped it).
    """

    policy: Literal["waypoints", "bc"] = "waypoints"
    control: Literal["controller", "head", "blend"] = "controller"
    steering: Literal["waypoints", "route"] = "route"
    waypoints: int = Field(default=4, ge=1, le=8)
    width: int = Field(default=16, ge=1)
    hidden: int = Field(default=128, ge=2)
    init: Literal["champion", "scratch"] = "champion"
    epochs: int = Field(default=10, ge=1)
    batch_size: int = Field(default=256, ge=1)
    learning_rate: float = Field(default=1e-3, gt=0.0)
    finetune_epochs: int = Field(default=4, ge=1)
    finetune_learning_rate: float = Field(default=3e-4, gt=0.0)
    weight_decay: float = Field(default=1e-5, ge=0.0)
    seed: int = 0
    repeat_threshold: float = Field(default=0.05, ge=0.0, le=1.0)
    rows_per_epoch: int | None = Field(default=65_536, ge=1)
    threads: int | None = Field(default=None, ge=1)
    loader_workers: int = Field(default=0, ge=0)
    shuffle_buffer: int = Field(default=16_384, ge=1)
    amp: bool = True
    compile: bool = True
    dagger: DaggerConfig = DaggerConfig()
    ppo: PpoConfig = PpoConfig()
    sac: SacConfig = SacConfig()


class CarlaConfig(_Frozen):
    """Evaluation in CARLA (``evaluate.backend: carla``): the CARLA Leaderboard 2.x's own evaluator drives
    ``routes`` with autoloop's agent, on CARLA servers autoloop starts (one per GPU of ``gpus``, from
    ``carla_root``) or on servers already running (``hosts``); see :mod:`autoloop.carla.evaluate`.

    Paths and servers left unset come from the environment of the process that evaluates (a Prefect worker's own),
    when the evaluation starts.

    :param routes: the Leaderboard routes XML to drive (``<routes><route id town>...``, numeric ids).
    :param carla_root: the unpacked CARLA package (``CarlaUE4.sh``, ``PythonAPI/carla``, ``VERSION``); unset:
        ``$CARLA_ROOT``. Without ``hosts`` autoloop starts its servers from it.
    :param hosts: CARLA servers already running, ``HOST:PORT`` each (one evaluator each, never started or stopped
        by autoloop); unset: ``$CARLA_HOST`` (``HOST`` or ``HOST:PORT``, the port else ``$CARLA_PORT``, else 2000)
        when no ``carla_root`` is set here.
    :param leaderboard_root: the checkout of carla-simulator/leaderboard (2.x) or of Bench2Drive's
        ``leaderboard`` folder; unset: ``$LEADERBOARD_ROOT``.
    :param scenario_runner_root: the scenario runner of that Leaderboard; unset: ``$SCENARIO_RUNNER_ROOT`` (else
        whatever ``PYTHONPATH`` holds).
    :param python: the interpreter that runs the evaluator (with the ``carla`` client, the Leaderboard's
        requirements and autoloop installed); unset: this one.
    :param gpus: GPUs to start a server on, one server each (also the evaluator's ``CUDA_VISIBLE_DEVICES``).
    :param base_port: RPC port of the first started server; server ``i`` listens on
        ``base_port + i * port_spacing`` and its Traffic Manager on that port + 3.
    :param port_spacing: ports between two started servers (at least 4).
    :param chunk_routes: routes per evaluator run (a chunk, checkpointed and resumed as one).
    :param hang_timeout_s: an evaluator with no progress this long (its checkpoint, live results and log unchanged)
        is taken for hung, killed with its server, and the route retried once; more than the longest route takes.
    :param repetitions: runs of each route (the evaluator's ``--repetitions``).
    :param track: the Leaderboard track, ``SENSORS`` or ``MAP``.
    :param scorer: the scorer of the results (``lb2``, ``lb21``, or ``bench2drive`` for Bench2Drive's fork);
        unset: ``evaluate.scorer``.
    """

    routes: Path | None = None
    carla_root: Path | None = None
    hosts: tuple[str, ...] = ()
    leaderboard_root: Path | None = None
    scenario_runner_root: Path | None = None
    python: str | None = None
    gpus: tuple[int, ...] = Field(default=(0,), min_length=1)
    base_port: int = Field(default=2000, ge=1024, le=65535)
    port_spacing: int = Field(default=10, ge=4)
    chunk_routes: int = Field(default=10, ge=1)
    hang_timeout_s: float = Field(default=900.0, gt=0.0)
    repetitions: int = Field(default=1, ge=1)
    track: Literal["SENSORS", "MAP"] = "SENSORS"
    scorer: str | None = None

    @field_validator("scorer")
    @classmethod
    def _known_scorer(cls, value: str | None) -> str | None:
        if value is not None and value not in SCORERS:
            raise ValueError(f"unknown scorer {value!r}; choose one of {', '.join(SCORERS)}")
        return value

    @field_validator("hosts")
    @classmethod
    def _host_and_port(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for address in value:
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"host {address!r}: expected HOST:PORT, e.g. 127.0.0.1:2000")
        return value


class EvaluateConfig(_Frozen):
    """Closed-loop evaluation.

    :param backend: where routes are driven: ``embedded`` (the suite below, on the embedded simulator) or ``carla``
        (the route file of :attr:`carla`, in the CARLA Leaderboard's evaluator).
    :param carla: the CARLA evaluation's settings.
    :param suite: a named scenario suite (``sim.scenarios.suites``: ``smoke``, ``eval``, ``carla-towns``...); when
        unset, the held-out scenarios of :attr:`AutoloopConfig.sim` with the seeds below.
    :param routes: with ``suite: eval``, a fixed held-out slice of it: this many routes, a type at a time
        (:func:`sim.scenarios.suites.eval_slice`); unset: the whole suite.
    :param regression: candidates also drive the regression suite (routes a champion once failed, fleet moments
        used; :mod:`autoloop.engine.regression`), and the gate checks them.
    :param episodes: without ``suite``: scenarios to drive; seeds ``seed .. seed + episodes - 1``, disjoint from
        collection's.
    :param seed: without ``suite``: first scenario seed.
    :param scorer: Leaderboard scorer version (``sim.metrics.SCORERS``: ``lb2``, ``lb21``, ``bench2drive``).
    :param bootstrap_resamples: resamples of the routes for the bootstrap confidence intervals.
    :param confidence: level of the confidence intervals (0.95: 95 %).
    :param bootstrap_seed: seed of the bootstrap resampling (intervals are reproducible).
    :param report_clips: animated clips of the worst routes in the evaluation report.
    """

    backend: Backend = "embedded"
    carla: CarlaConfig = CarlaConfig()
    suite: str | None = "eval"
    routes: int | None = Field(default=40, ge=1)
    regression: bool = True
    episodes: int = Field(default=24, ge=1)
    seed: int = Field(default=1_000_000, ge=0)
    scorer: str = "lb2"
    bootstrap_resamples: int = Field(default=2000, ge=100)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    bootstrap_seed: int = 0
    report_clips: int = Field(default=3, ge=0, le=20)

    @field_validator("scorer")
    @classmethod
    def _known_scorer(cls, value: str) -> str:
        if value not in SCORERS:
            raise ValueError(f"unknown scorer {value!r}; choose one of {', '.join(SCORERS)}")
        return value

    @field_validator("suite")
    @classmethod
    def _known_suite(cls, value: str | None) -> str | None:
        if value is not None and value not in SUITE_NAMES:
            raise ValueError(f"unknown suite {value!r}; choose one of {', '.join(SUITE_NAMES)}")
        return value

    @model_validator(mode="after")
    def _slice_of_eval(self) -> Self:
        if self.routes is not None and self.suite != "eval":
            raise ValueError(f"routes: a slice is taken of the suite 'eval' only (suite is {self.suite!r}); "
                             f"unset routes")
        return self


class GateConfig(_Frozen):
    """Promotion gate; scores and rates in percent like the Leaderboard.

    :param min_driving_score: minimum mean driving score.
    :param min_success_rate: minimum Bench2Drive success rate (routes completed with no infraction).
    :param min_route_completion: minimum mean route completion.
    :param max_collisions_per_km: maximum collisions per kilometre driven.
    :param champion_margin: "not worse than the champion": the lower bound of the bootstrap confidence interval of
        the mean paired driving-score difference (candidate minus champion, same scenarios and seeds) must be above
        ``-champion_margin``.
    :param type_tolerance: no scenario type may regress: the candidate's mean paired driving-score difference on
        the routes of each scenario type must be at least ``-type_tolerance``...
    :param type_min_routes: ... for the types the suite has at least this many routes of (a type's mean over one or
        two routes is one route's luck; the paired difference over all routes counts them).
    :param regression_tolerance: of the regression-suite routes the champion passes, the candidate may fail at
        most this share (percent, rounded down to routes; a route fails as :attr:`EngineConfig.failing_ds` says).
    """

    min_driving_score: float = Field(default=60.0, ge=0.0)
    min_success_rate: float = Field(default=0.0, ge=0.0, le=100.0)
    min_route_completion: float = Field(default=80.0, ge=0.0)
    max_collisions_per_km: float = Field(default=5.0, ge=0.0)
    champion_margin: float = Field(default=5.0, ge=0.0)
    type_tolerance: float = Field(default=15.0, ge=0.0)
    type_min_routes: int = Field(default=3, ge=1)
    regression_tolerance: float = Field(default=10.0, ge=0.0, le=100.0)


class PerturbationConfig(_Frozen):
    """How far a scenario generated from a fleet moment (:mod:`autoloop.engine.generate`) may stray from it; every
    amount is drawn uniformly, per actor.

    :param time_shift_s: a tracked actor's track moves in time by ``U(-b, b)`` seconds (non-reactive replays). A
        track moved to before the replay's start is cut there (its state at 0 s interpolated); one that would lie
        wholly before it moves only as far as keeps its last sample, at 0 s.
    :param speed_scale: an actor's speed is scaled by ``U(1 - b, 1 + b)``; along a track, so is its progression
        (the track's samples after its first come ``1 / scale`` times as far apart in time).
    :param longitudinal_m: an actor moves ``U(-b, b)`` metres along its heading (at its pose; a track moves
        rigidly with it).
    :param lateral_m: ... and ``U(-b, b)`` metres across it (to the left for positive amounts).
    :param ego_start_m: the ego starts ``U(0, b)`` metres later along the route (a draw that leaves too little of
        the route ahead is refused).
    :param ego_speed_scale: the ego's start speed is scaled by ``U(1 - b, 1 + b)``.
    """

    time_shift_s: float = Field(default=1.0, ge=0.0)
    speed_scale: float = Field(default=0.2, ge=0.0, lt=1.0)
    longitudinal_m: float = Field(default=3.0, ge=0.0)
    lateral_m: float = Field(default=0.5, ge=0.0)
    ego_start_m: float = Field(default=5.0, ge=0.0)
    ego_speed_scale: float = Field(default=0.2, ge=0.0, lt=1.0)


class EngineConfig(_Frozen):
    """The data engine: each collection spends a share of its budget on what failed (:mod:`autoloop.engine`).

    :param failure_share: share of the collection's episodes spent on failures (fleet moments and generated
        scenarios, then routes of the failing types and places); 0 turns the engine off (random collection).
    :param floor: no scenario type or place gets a targeted weight below this.
    :param failing_ds: an evaluated route fails below this driving score (or when it has an infraction or does not
        complete).
    :param fleet_moments: fleet moments (mined triggers and shadow-mode moments not used yet) per collection.
    :param generated_per_moment: scenarios generated from each fleet moment.
    :param shadow_episodes: fleet logs the champion drives open-loop in shadow mode per collection (0: none).
    :param failure_weight: sampling weight of the failure parts of the dataset (breadth has 1).
    :param perturbation: bounds of generated scenarios.
    :param seed: seed of the generated scenarios' perturbations.
    """

    failure_share: float = Field(default=0.5, ge=0.0, le=1.0)
    floor: float = Field(default=0.01, ge=0.0, le=0.05)
    failing_ds: float = Field(default=80.0, ge=0.0, le=100.0)
    fleet_moments: int = Field(default=4, ge=0)
    generated_per_moment: int = Field(default=2, ge=0)
    shadow_episodes: int = Field(default=8, ge=0)
    failure_weight: float = Field(default=2.0, gt=0.0)
    perturbation: PerturbationConfig = PerturbationConfig()
    seed: int = 0


class RegistryConfig(_Frozen):
    """MLflow names.

    :param experiment: experiment that holds every run.
    :param model_name: registered model the gate promotes into.
    """

    experiment: str = "autoloop"
    model_name: str = "autoloop-driver"


class ComputeConfig(_Frozen):
    """Where the work runs: rollouts in this process or sharded over a Ray cluster, training in this process or
    data-parallel under ``torchrun``.

    Results do not depend on either choice: each scenario drives the same whatever shard or batch slot it runs in,
    and data-parallel training is the same optimisation over the same samples.

    :param ray_address: the Ray cluster that collection, evaluation and DAgger rollouts shard over (``host:port`` of
        its head, ``ray://host:10001`` for Ray Client); unset: ``$RAY_ADDRESS`` when set, else this process. Every
        shard's episodes come back to the process that asked, which writes them to the episode store.
    :param shard_scenarios: scenarios per shard (one Ray task, driven batched on its worker; an evaluation
        checkpoints after each shard); default ``sim.batch_size``.
    :param train_processes: imitation training processes (``torchrun --nproc-per-node``; gloo on CPUs, NCCL with
        one GPU each); default: one per GPU when the machine has two or more, else this process. Nodes come from
        the job's environment (``PET_NNODES``, ``PET_NODE_RANK``, ``PET_RDZV_ENDPOINT``: torchrun reads them).
    """

    ray_address: str | None = None
    shard_scenarios: int | None = Field(default=None, ge=1)
    train_processes: int | None = Field(default=None, ge=1)


class AutoloopConfig(_Frozen):
    """Everything one cycle needs."""

    profile: str = "default"
    sim: SimConfig = SimConfig()
    collect: CollectConfig = CollectConfig()
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    gate: GateConfig = GateConfig()
    engine: EngineConfig = EngineConfig()
    registry: RegistryConfig = RegistryConfig()
    compute: ComputeConfig = ComputeConfig()

    @model_validator(mode="after")
    def _held_out(self) -> Self:
        if self.collect.source != "map" or self.evaluate.suite is not None:
            return self  # (towns from 9000 on are held out for evaluation; named suites run on those)
        collect = range(self.collect.seed, self.collect.seed + self.collect.episodes)
        evaluate = range(self.evaluate.seed, self.evaluate.seed + self.evaluate.episodes)
        if collect.start < evaluate.stop and evaluate.start < collect.stop:
            raise ValueError(
                f"evaluation seeds {evaluate.start}..{evaluate.stop - 1} overlap collection seeds "
                f"{collect.start}..{collect.stop - 1}: evaluation must be held out"
            )
        return self


class ConfigError(ValueError):
    """A configuration file or value that cannot be used; the message names the file and key."""


def load_config(path: Path | None = None, *, profile: str | None = None,
                overrides: dict[str, Any] | None = None) -> AutoloopConfig:
    """Read a config: the packaged profile (``profile``, else the file's ``profile`` key, else ``default``),
    then the file's keys, then ``overrides`` (nested dicts), each merged over the last.
    """
    source = str(path) if path is not None else "<defaults>"
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with Path(path).open("rb") as file:
                text = file.read(MAX_BYTES + 1)
            loaded = load_yaml(text, source=f"config {source}")
        except OSError as error:
            raise ConfigError(f"config {source}: cannot read it ({error.strerror})") from error
        except ValueError as error:
            raise ConfigError(str(error)) from error
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config {source}: expected a mapping of sections at the top level")
        data = loaded or {}
    name = profile or data.get("profile") or "default"
    if name not in PROFILES:
        raise ConfigError(f"config {source}: unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    merged = _merge(_profile(name), data)
    merged = _merge(merged, overrides or {})
    merged["profile"] = name
    try:
        return AutoloopConfig.model_validate(merged)
    except ValidationError as error:
        raise ConfigError(_describe(source, error)) from None


def evaluate_overrides(*, suite: str | None = None, backend: str | None = None,
                       carla: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The overrides (for :func:`load_config`) a command line or a flow run gives the ``evaluate`` section: a
    ``suite`` (driven whole: no slice of it), the ``backend``, and keys of ``evaluate.carla``."""
    evaluate: dict[str, Any] = {}
    if suite is not None:
        evaluate.update(suite=suite, routes=None)
    if backend is not None:
        evaluate["backend"] = backend
    if carla:
        evaluate["carla"] = dict(carla)
    return {"evaluate": evaluate} if evaluate else {}


def dump_config(config: AutoloopConfig) -> str:
    """The effective configuration as YAML (loads back to the same config)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def _profile(name: str) -> dict[str, Any]:
    text = resources.files("autoloop").joinpath("profiles", f"{name}.yaml").read_text()
    return dict(yaml.safe_load(text) or {})


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _shown(value: Any, limit: int = 80) -> str:
    """A value for an error message: its repr, cut short."""
    shortened = reprlib.Repr()
    shortened.maxlevel, shortened.maxstring, shortened.maxother = 2, limit, limit
    text = shortened.repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _describe(source: str, error: ValidationError) -> str:
    lines = [f"config {source} is invalid:"]
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "<top level>"
        if problem["type"] == "extra_forbidden":
            lines.append(f"  unknown key '{key}'")
        else:
            lines.append(f"  {key}: {problem['msg']} (got {_shown(problem.get('input'))})")
    return "\n".join(lines)
