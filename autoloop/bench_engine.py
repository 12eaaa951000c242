"""``autoloop bench engine``: does the data engine make the champion better, cycle after cycle?

Two arms run ``cycles`` cycles each from an empty home and the same seeds, with the same budget of collected
episodes per cycle and the same training, evaluation and gate: ``engine`` (the config as given) and ``control`` (the
engine's failure share set to 0: every collected route drawn at random, no fleet moments or shadow mode). After
each cycle the arm's champion drives the curve suite (the whole held-out ``eval`` suite by default; a champion that
did not change reuses its evaluation). The result is both curves (champion driving score with its interval,
collisions per km, success rate, steps collected, wall time per cycle) and the final paired difference, engine minus
control, route by route with its bootstrap interval; as JSON (``engine.json``), a plot (``engine.png``) and an MLflow
run in ``<folder>/mlflow.db``. The cycles of both arms show as progress (``bench engine``), each stage as its own.

Every cycle's point is written to ``engine.json`` as soon as it is measured; run again on the same folder, the
bench goes on from the first point missing. A cycle interrupted midway runs again from its start (what its
collection had stored stays in its arm's store).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from autoloop import stages, tracking
from autoloop.config import AutoloopConfig, dump_config
from autoloop.context import open_context
from autoloop.evaluation import EvaluationResult, compare
from autoloop.paths import Paths
from autoloop.progress import Progress

log = logging.getLogger(__name__)

ARMS = ("engine", "control")


@dataclass(frozen=True)
class Point:
    """One arm's champion after one cycle, on the curve suite (scores in percent)."""

    arm: str
    cycle: int
    champion: str
    promoted: bool
    driving_score: float
    driving_score_low: float
    driving_score_high: float
    collisions_per_km: float
    success_rate: float
    route_completion: float
    episodes: int
    steps: int
    cycle_wall_s: float
    curve_run_id: str


def arm_config(config: AutoloopConfig, arm: str, server: str | None = None) -> AutoloopConfig:
    """The config an arm runs: ``engine`` as given, ``control`` with the failure-driven share off; on a tracking
    ``server`` both share, each arm has an experiment and a registered model of its own (``<name>-<arm>``)."""
    if server is not None:
        config = config.model_copy(update={"registry": config.registry.model_copy(update={
            "experiment": f"{config.registry.experiment}-{arm}", "model_name": f"{config.registry.model_name}-{arm}"})})
    if arm == "engine":
        return config
    return config.model_copy(update={"engine": config.engine.model_copy(
        update={"failure_share": 0.0, "fleet_moments": 0, "shadow_episodes": 0})})


def curve_config(config: AutoloopConfig, curve_routes: int | None) -> AutoloopConfig:
    """The config of the curve's evaluations: the held-out ``eval`` suite (a slice of ``curve_routes`` when
    given), without the regression suite (the same routes for every cycle and both arms)."""
    return config.model_copy(update={"evaluate": config.evaluate.model_copy(
        update={"suite": "eval", "routes": curve_routes, "regression": False})})


def bench_engine(folder: Path, config: AutoloopConfig, *, cycles: int = 6,
                 curve_routes: int | None = None) -> dict[str, Any]:
    """Run (or go on with) the bench in ``folder``; the result as written to ``engine.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    state_path = folder / "engine.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    settings = {"cycles": cycles, "curve_routes": curve_routes, "config": dump_config(config)}
    if state and state.get("settings", {}).get("config") != settings["config"]:
        raise ValueError(f"{folder}: a bench of another config is there; use a new folder")
    state = {**state, "settings": settings, "points": state.get("points", [])}
    points = [Point(**point) for point in state["points"]]
    server = os.environ.get("MLFLOW_TRACKING_URI")
    measured = sum(p.cycle <= cycles for p in points)
    try:
        with Progress("bench engine", len(ARMS) * cycles, "cycles", done=measured) as progress:
            for arm in ARMS:
                paths = Paths(folder / arm)
                for cycle in range(1, cycles + 1):
                    if any(p.arm == arm and p.cycle == cycle for p in points):
                        continue
                    _track(paths, server)
                    points.append(_cycle(paths, arm_config(config, arm, server), arm, cycle, curve_routes))
                    state["points"] = [asdict(point) for point in points]
                    _write(state_path, state)
                    log.info("bench engine: %s cycle %d/%d: champion DS %.1f", arm, cycle, cycles,
                             points[-1].driving_score)
                    progress.advance()
        state["final"] = _final(folder, points, cycles, config, curve_routes, server)
        _write(state_path, state)
        _plot(points, folder / "engine.png")
        _track(Paths(folder), server)
        _log(folder, state, points)
    finally:
        _track(None, server)
    return state


def _track(paths: Paths | None, server: str | None) -> None:
    """Point MLflow at ``paths``' own SQLite store, or at ``server`` (``$MLFLOW_TRACKING_URI`` as the bench
    started) when there was one; ``None``: back to how it was. (MLflow keeps the URI it was set to in the
    environment, which :attr:`Paths.tracking_uri` reads.)"""
    if server is not None:
        os.environ["MLFLOW_TRACKING_URI"] = server
    elif paths is not None:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{paths.mlflow_db}"
    else:
        os.environ.pop("MLFLOW_TRACKING_URI", None)


def _cycle(paths: Paths, config: AutoloopConfig, arm: str, cycle: int, curve_routes: int | None) -> Point:
    started = time.perf_counter()
    context = stages.start_cycle(open_context(config, paths=paths), tags={"autoloop.bench": arm})
    try:
        collected = stages.collect(context)
        trained = stages.train(context, collected.snapshot)
        evaluated = stages.evaluate(context, trained.model.model_uri)
        promotion = stages.promote(context, trained.model, evaluated)
    except BaseException:
        stages.finish_cycle(context, failed=True)
        raise
    stages.finish_cycle(context)
    wall_s = time.perf_counter() - started
    champion = f"models:/{config.registry.model_name}@{tracking.CHAMPION}"
    curve = stages.evaluate(open_context(curve_config(config, curve_routes), paths=paths), champion)
    result = curve.result
    version = tracking.version_by_alias(config.registry.model_name)
    return Point(arm=arm, cycle=cycle, champion=version.uri if version else "", promoted=promotion.promoted,
                 driving_score=result.driving_score,
                 driving_score_low=result.intervals["driving_score"].low,
                 driving_score_high=result.intervals["driving_score"].high,
                 collisions_per_km=result.collisions_per_km, success_rate=result.success_rate,
                 route_completion=result.route_completion, episodes=collected.episodes, steps=collected.steps,
                 cycle_wall_s=round(wall_s, 1), curve_run_id=curve.run_id)


def _final(folder: Path, points: list[Point], cycles: int, config: AutoloopConfig, curve_routes: int | None,
           server: str | None) -> dict[str, Any]:
    """Engine minus control at the last cycle, paired over the curve suite's routes."""
    results: dict[str, EvaluationResult] = {}
    for arm in ARMS:
        last = next(p for p in points if p.arm == arm and p.cycle == cycles)
        _track(Paths(folder / arm), server)
        tracking.configure(Paths(folder / arm), arm_config(config, arm, server).registry.experiment)
        results[arm] = EvaluationResult.from_json(tracking.load_dict(last.curve_run_id, "evaluation.json"))
    settings = config.evaluate
    comparison = compare(results["engine"], results["control"], resamples=settings.bootstrap_resamples,
                         confidence=settings.confidence, seed=settings.bootstrap_seed)
    interval = comparison.difference
    curve = curve_config(config, curve_routes).evaluate
    return {"suite": results["engine"].suite, "routes": len(results["engine"].routes),
            "curve_routes": curve.routes, "engine_driving_score": results["engine"].driving_score,
            "control_driving_score": results["control"].driving_score, "difference": interval.mean,
            "difference_low": interval.low, "difference_high": interval.high, "confidence": interval.confidence,
            "difference_above_zero": interval.low > 0.0}


def _plot(points: list[Point], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for arm, colour in zip(ARMS, ("tab:blue", "tab:grey"), strict=True):
        mine = sorted((p for p in points if p.arm == arm), key=lambda p: p.cycle)
        cycles = [p.cycle for p in mine]
        axes[0].plot(cycles, [p.driving_score for p in mine], "o-", color=colour, label=arm)
        axes[0].fill_between(cycles, [p.driving_score_low for p in mine], [p.driving_score_high for p in mine],
                             color=colour, alpha=0.15)
        axes[1].plot(cycles, [p.collisions_per_km for p in mine], "o-", color=colour, label=arm)
        axes[2].plot(cycles, [p.success_rate for p in mine], "o-", color=colour, label=arm)
    for axis, title in zip(axes, ("champion driving score", "collisions per km", "success rate (%)"), strict=True):
        axis.set_title(title)
        axis.set_xlabel("cycle")
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _log(folder: Path, state: dict[str, Any], points: list[Point]) -> None:
    experiment_id = tracking.configure(Paths(folder), "autoloop-bench-engine")
    with tracking.stage_run("bench-engine", experiment_id=experiment_id, parent_run_id=None):
        for point in points:
            tracking.log_metrics({f"{point.arm}_driving_score": point.driving_score,
                                  f"{point.arm}_collisions_per_km": point.collisions_per_km,
                                  f"{point.arm}_success_rate": point.success_rate,
                                  f"{point.arm}_cycle_wall_s": point.cycle_wall_s}, step=point.cycle)
        final = state["final"]
        tracking.log_metrics({"final_difference": final["difference"],
                              "final_difference_low": final["difference_low"],
                              "final_difference_high": final["difference_high"]})
        tracking.log_dict(state, "engine.json")
        tracking.log_artifact(folder / "engine.png")


def _write(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=1))
    os.replace(temporary, path)
