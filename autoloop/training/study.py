"""The driving-quality study (``autoloop bench drive``): the training pipeline's drivers (imitation, each DAgger
round, PPO and SAC fine-tuning: :mod:`autoloop.training.pipeline`) scored on the held-out ``eval`` suite against the
expert, in one table.

Data: the expert drives the ``train`` suite (procedural towns, every scenario event type) with exploration noise;
DAgger rounds drive fresh draws of the train suite; PPO and SAC sample scenarios on ``town-1``, PPO fine-tuning the
last DAgger driver and SAC the driver before it (PPO's when both run). The eval suite's towns are never trained on.
Every stage's driver is written under the work folder, so an interrupted study resumes where it stopped (and a
finished one, run again, scores its drivers again with the code of the day).

Validation: optionally every driver is also scored on a draw of the train suite that no round trains on
(``VALIDATION_SEED``): routes like the training routes, on which to choose settings without looking at ``eval``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from autoloop.bench import SuiteTypeResult, bench_driver
from autoloop.config import DaggerConfig, PpoConfig, SacConfig, SimConfig, TrainConfig
from autoloop.episodes import EpisodeStore, create_snapshot
from autoloop.rollout import DriverFactory, PolicyDriver, RolloutOptions, expert_driver, rollout
from autoloop.training.dagger import by_map, sim_for
from autoloop.training.pipeline import Stage, train_pipeline
from policies.waypoints import Steering, WaypointPolicy
from sim.scenarios.suites import Suite, build_suite

log = logging.getLogger(__name__)

#: The train-suite draw of the validation routes (collection draws seed 0, DAgger round n seed n).
VALIDATION_SEED = 1000


@dataclass(frozen=True)
class StudyConfig:
    """Sizes of the study.

    :param train_routes: routes of the train suite the expert drives.
    :param eval_every: evaluate every n-th route of the eval suite (1: all).
    :param dagger_rounds: DAgger rounds.
    :param dagger_routes: train-suite routes the learner drives per round.
    :param ppo_timesteps: PPO environment steps (0: none).
    :param sac_timesteps: SAC environment steps (0: none).
    :param action_noise: exploration noise of the expert's collection drives.
    :param start_perturbation: perturbed starts of the collection drives (``(lateral_m, yaw_rad)``, see
        :class:`autoloop.rollout.RolloutOptions`).
    :param validation_routes: also score every driver on this many validation routes (0: none).
    :param train: imitation settings.
    """

    train_routes: int = 32
    eval_every: int = 1
    dagger_rounds: int = 2
    dagger_routes: int = 16
    ppo_timesteps: int = 4096
    sac_timesteps: int = 0
    action_noise: float = 0.15
    start_perturbation: tuple[float, float] = (0.0, 0.0)
    validation_routes: int = 0
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=8, batch_size=128, threads=1))


def run_study(work: Path, study: StudyConfig = StudyConfig()) -> dict[str, Any]:
    """Run (or resume) the study under ``work``; returns the table (one row per driver) as JSON-ready data."""
    if study.dagger_rounds >= VALIDATION_SEED:
        raise ValueError(f"dagger_rounds: {study.dagger_rounds} rounds would train on the validation routes "
                         f"(train-suite seed {VALIDATION_SEED})")
    sim = SimConfig()
    store = EpisodeStore(work / "episodes")
    datasets = work / "datasets"
    full = build_suite("eval")
    suite = Suite(full.name, full.version, full.scenarios[::study.eval_every])
    rows: list[dict[str, Any]] = []
    results_file = work / "rows.json"
    validation = (build_suite("train", routes=study.validation_routes, seed=VALIDATION_SEED)
                  if study.validation_routes else None)

    def row(name: str, driver: DriverFactory, **extra: Any) -> None:
        rows.append({"driver": name, **_overall(bench_driver(suite, driver, bev=sim.bev())), **extra})
        if validation is not None:
            rows[-1]["validation"] = _overall(bench_driver(validation, driver, bev=sim.bev()))
        results_file.write_text(json.dumps(rows, indent=1))
        log.info("%s: %s", name, rows[-1])

    row("expert", expert_driver)
    # collection
    scenarios = build_suite("train", routes=study.train_routes).scenarios
    if not store.episode_ids():
        for group in by_map(list(scenarios)):
            options = RolloutOptions(labels=True, action_noise=study.action_noise,
                                     noise_seed=zlib.crc32(group[0].map_name.encode()),
                                     start_perturbation=study.start_perturbation)
            results = rollout(group, sim=sim_for(sim, group), driver=expert_driver, policy_name="expert",
                              tags={"purpose": "collect"}, options=options)
            store.write_many([episode for episode, _ in results])
    base = create_snapshot(store, datasets, [e for e in store.episode_ids() if "collect" in e], {"purpose": "study"})
    config = study.train.model_copy(update={"dagger": DaggerConfig(iterations=study.dagger_rounds, epochs=3),
                                            "ppo": PpoConfig(timesteps=study.ppo_timesteps),
                                            "sac": SacConfig(timesteps=study.sac_timesteps)})
    last_imitation = f"dagger-{study.dagger_rounds}" if study.dagger_rounds else "bc"

    def score(stage: Stage) -> None:
        row(stage.name, PolicyDriver.of(stage.policy), **({"samples": base.num_steps} if stage.name == "bc" else {}))
        # the last imitation driver again, steering the other way (along the route or along its waypoints)
        if stage.name == last_imitation and isinstance(stage.policy, WaypointPolicy):
            other: Steering = "waypoints" if stage.policy.params.steering == "route" else "route"
            steered = WaypointPolicy(stage.policy.net, dataclasses.replace(stage.policy.params, steering=other))
            row(f"{last_imitation} {other} steering", PolicyDriver.of(steered))

    # imitation on the expert's drives, DAgger rounds on fresh train-suite draws (round n: seed n), then PPO and SAC
    # on sampled town-1 scenarios
    train_pipeline(base, config=config, sim=sim, store=store, datasets=datasets, folder=work,
                   dagger_scenarios=lambda n: build_suite("train", routes=study.dagger_routes, seed=n).scenarios,
                   rl_sim=SimConfig(map_name="town-1", traffic_vehicles=10, pedestrians=4),
                   on_epoch=lambda stage, metrics: log.info("%s epoch %s", stage, metrics),
                   on_rollout=lambda step, metrics: log.info("step %d %s", step, metrics), on_stage=score)
    return {"suite": suite.name, "routes": len(suite.scenarios), "eval_every": study.eval_every,
            "study": {k: v for k, v in asdict(study).items() if k != "train"}, "train": config.model_dump(),
            "rows": rows}


def _overall(result: list[SuiteTypeResult]) -> dict[str, Any]:
    overall = asdict(result[-1])
    return {k: overall[k] for k in ("routes", "driving_score", "route_completion", "success_rate",
                                    "collisions_per_km", "infractions_per_km", "infractions")}
