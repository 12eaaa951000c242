"""Evaluation: bootstrap intervals with known answers, resume-after-interruption equality, explicit failure
statuses, paired comparison, and the report — on the real embedded simulator (the ``smoke`` suite)."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from autoloop.config import AutoloopConfig, load_config
from autoloop.episodes import EpisodeStore
from autoloop.evaluation import (
    AGENT_CRASHED,
    AGENT_SETUP_FAILED,
    COMPLETED,
    SIMULATION_CRASHED,
    EvaluationResult,
    RouteResult,
    aggregate,
    bootstrap_mean,
    checkpoint_path,
    compare,
    run_evaluation,
)
from autoloop.evaluation.report import write_report
from autoloop.rollout import expert_driver
from sim.embedded.world import World
from sim.scenarios.suites import Suite, build_suite

# ---------------------------------------------------------------------------------------------- bootstrap


def test_constant_values_give_a_zero_width_interval() -> None:
    interval = bootstrap_mean([73.5] * 12, seed=3)
    assert (interval.mean, interval.low, interval.high) == (73.5, 73.5, 73.5)


def test_two_values_give_the_interval_worked_out_by_hand() -> None:
    # resampled means of [0, 1]: 0 (p=1/4), 0.5 (p=1/2), 1 (p=1/4): the 2.5 % and 97.5 % quantiles are 0 and 1
    interval = bootstrap_mean([0.0, 1.0], resamples=4000, seed=0)
    assert (interval.mean, interval.low, interval.high) == (0.5, 0.0, 1.0)


def test_interval_of_a_known_mean_sample() -> None:
    values = np.random.default_rng(7).normal(0.0, 10.0, 400)
    values += 50.0 - values.mean()  # a sample whose mean is 50 exactly
    interval = bootstrap_mean(values, resamples=4000, seed=1)
    assert interval.mean == pytest.approx(50.0)
    assert interval.low < 50.0 < interval.high
    assert abs((interval.low + interval.high) / 2 - 50.0) < 0.1 * interval.half_width  # about symmetric
    # the normal approximation: half-width 1.96 * sd / sqrt(n)
    assert interval.half_width == pytest.approx(1.96 * values.std(ddof=1) / 20.0, rel=0.1)
    assert bootstrap_mean(values, resamples=4000, seed=1) == interval  # seeded: reproducible
    with pytest.raises(ValueError, match="at least one value"):
        bootstrap_mean([])


def test_the_interval_of_skewed_route_scores_leans_towards_the_failures() -> None:
    """Twelve routes, most near 100 and two failures far below: the bias-corrected interval reaches further down
    than up from the mean (twice as far; the percentile interval leans less and misses low)."""
    values = np.array([98.0, 99.0, 100.0, 97.0, 100.0, 99.0, 96.0, 100.0, 98.0, 99.0, 20.0, 35.0])
    interval = bootstrap_mean(values, resamples=4000, seed=0)
    assert interval.mean == pytest.approx(values.mean())
    assert interval.mean - interval.low > 1.7 * (interval.high - interval.mean)  # (percentile: 1.4)
    assert interval.high <= 100.0


# ---------------------------------------------------------------------------------------------- aggregation


def route(index: int, score: float, *, kind: str = "Route", town: str = "town-1", status: str = COMPLETED,
          episode: str | None = None) -> RouteResult:
    """A route result with a route record that scores ``score`` under ``lb2`` (a red light's 0.7 times
    completion)."""
    ran = status not in (AGENT_CRASHED, AGENT_SETUP_FAILED, SIMULATION_CRASHED)
    completion = score / 100.0
    record = {"route_completion": completion, "infractions": {}, "outside_lanes_share": 0.0,
              "status": "completed" if completion == 1.0 else "failed_agent_blocked", "driven_m": 100.0 * completion,
              "route_length_m": 100.0, "min_speed_percentages": []}
    return RouteResult(index=index, scenario_seed=1000 + index, scenario_type=kind, town=town,
                       episode_id=(episode or f"ep-{index}") if ran else None, status=status,
                       driving_score=score if ran else 0.0, route_completion=score if ran else 0.0,
                       infraction_penalty=1.0 if ran else 0.0, driven_m=100.0 * completion if ran else 0.0,
                       record=record if ran else None)


def result_of(routes: list[RouteResult], *, policy: str = "p", suite_hash: str = "h") -> EvaluationResult:
    return aggregate(routes, policy=policy, suite="s", suite_hash=suite_hash, scorer="lb2", resamples=500)


def test_routes_that_did_not_run_count_as_zero_with_their_status() -> None:
    result = result_of([route(0, 100.0, kind="A"), route(1, 50.0, kind="B", town="town-2"),
                        route(2, 0.0, kind="B", status=AGENT_CRASHED)])
    assert result.driving_score == pytest.approx(50.0)
    assert result.failed_runs == 1 and result.completed_routes == 1
    assert result.success_rate == pytest.approx(100.0 / 3)
    assert result.by_type["B"].routes == 2 and result.by_type["B"].driving_score == pytest.approx(25.0)
    assert set(result.by_town) == {"town-1", "town-2"}
    assert result.driven_km == pytest.approx(0.15)
    assert result.metrics()["driving_score_ci_low"] <= 50.0 <= result.metrics()["driving_score_ci_high"]


def test_paired_comparison_lists_regressed_routes_with_viewer_links() -> None:
    champion = result_of([route(i, s, kind=k, episode=f"ch-{i}") for i, (s, k) in
                          enumerate([(100.0, "A"), (80.0, "A"), (60.0, "B")])], policy="champ")
    candidate = result_of([route(i, s, kind=k, episode=f"ca-{i}") for i, (s, k) in
                           enumerate([(100.0, "A"), (90.0, "A"), (30.0, "B")])])
    comparison = compare(candidate, champion, resamples=500)
    assert comparison.difference.mean == pytest.approx((0 + 10 - 30) / 3)
    assert comparison.by_type == {"A": pytest.approx(5.0), "B": pytest.approx(-30.0)}
    [regressed] = comparison.regressed()
    assert regressed.index == 2 and regressed.difference == pytest.approx(-30.0)
    assert regressed.link == "http://127.0.0.1:8765/#/compare/ch-2/ca-2"  # champion (A), then candidate (B)
    with pytest.raises(ValueError, match="different scenarios"):
        compare(candidate, result_of(list(champion.routes), suite_hash="other"))


# ---------------------------------------------------------------------------------------------- the simulator


@pytest.fixture(scope="module")
def smoke() -> Suite:
    return build_suite("smoke")


@pytest.fixture(scope="module")
def config() -> AutoloopConfig:
    return load_config(profile="quick", overrides={"sim": {"batch_size": 2}, "evaluate": {"suite": "smoke"}})


@dataclass(frozen=True)
class Run:
    result: EvaluationResult
    store: EpisodeStore
    checkpoint: Path


def evaluate(suite: Suite, config: AutoloopConfig, root: Path, driver: Any = expert_driver, **kwargs: Any) -> Run:
    store = EpisodeStore(root / "episodes")
    checkpoint = checkpoint_path(root / "evaluations", identity="expert", suite=suite, sim=config.sim,
                                 scorer=config.evaluate.scorer)
    result = run_evaluation(suite, driver, policy_name="expert", identity="expert", sim=config.sim,
                            settings=config.evaluate, store=store, checkpoint=checkpoint, tags={"model_version": "7"},
                            **kwargs)
    return Run(result, store, checkpoint)


@pytest.fixture(scope="module")
def clean(smoke: Suite, config: AutoloopConfig, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return evaluate(smoke, config, tmp_path_factory.mktemp("clean"))


class Interrupted(Exception):
    pass


def without_episode_ids(result: EvaluationResult) -> dict[str, Any]:
    data = result.to_json()
    for r in data["routes"]:
        r.pop("episode_id")
    data.pop("checkpoint")
    return data


def test_an_interrupted_evaluation_resumes_to_the_same_numbers(smoke: Suite, config: AutoloopConfig, clean: Run,
                                                               tmp_path: Path) -> None:
    def stop_after_first_batch(done: int, planned: int) -> None:
        raise Interrupted(f"killed after {done} of {planned} routes")

    with pytest.raises(Interrupted, match="after 2 of 5"):
        evaluate(smoke, config, tmp_path, on_batch=stop_after_first_batch)
    lines = tmp_path.joinpath("evaluations").glob("*.jsonl").__next__().read_text().splitlines()
    assert len(lines) == 1 + 2  # header + the first batch's routes
    batches: list[int] = []
    resumed = evaluate(smoke, config, tmp_path, on_batch=lambda done, planned: batches.append(done))
    assert batches == [4, 5]  # only the batches still missing ran
    assert len(resumed.store.episode_ids()) == 5  # no route was driven twice
    assert without_episode_ids(resumed.result) == without_episode_ids(clean.result)
    assert resumed.result.metrics() == clean.result.metrics()
    # a complete checkpoint is reused as it is
    again = evaluate(smoke, config, tmp_path, on_batch=lambda done, planned: batches.append(-1))
    assert batches == [4, 5] and again.result == resumed.result


def test_route_results_carry_status_scores_infractions_and_tagged_episodes(smoke: Suite, clean: Run) -> None:
    result = clean.result
    assert result.suite == "smoke" and result.suite_hash == smoke.content_hash
    assert [r.index for r in result.routes] == list(range(5))
    assert {r.scenario_type for r in result.routes} == {smoke.event_type(i) for i in range(5)}
    assert all(r.status == COMPLETED and r.episode_id and r.town == "town-1" for r in result.routes)
    assert all(0.0 <= r.comfort <= 1.0 and r.route_completion == 100.0 for r in result.routes)
    assert result.driving_score == pytest.approx(np.mean([r.driving_score for r in result.routes]))
    metadata = clean.store.metadata("sim")
    assert set(metadata) == {r.episode_id for r in result.routes}
    header = json.loads(clean.checkpoint.read_text().splitlines()[0])
    for meta in metadata.values():
        assert meta["tags"] == {"purpose": "eval", "suite": "smoke", "suite_hash": smoke.content_hash,
                                "model_version": "7", "evaluation": header["key"]}
    assert header["suite_hash"] == smoke.content_hash and header["routes"] == 5


class Crashing:
    def act(self, observation: Any) -> Any:
        raise RuntimeError("CUDA error: out of memory")

    def reset(self, done: Any) -> None:
        pass


def test_failures_get_explicit_statuses_never_silent_zeros(smoke: Suite, config: AutoloopConfig,
                                                           tmp_path: Path) -> None:
    two = replace(smoke, scenarios=smoke.scenarios[:2])
    crashed = evaluate(two, config, tmp_path / "agent", driver=lambda world: Crashing()).result
    assert [r.status for r in crashed.routes] == [AGENT_CRASHED] * 2
    assert "out of memory" in crashed.routes[0].error and crashed.driving_score == 0.0

    def no_setup(world: World) -> Any:
        raise FileNotFoundError("policy.pt")

    assert {r.status for r in evaluate(two, config, tmp_path / "setup", driver=no_setup).result.routes} == {
        AGENT_SETUP_FAILED}
    broken = replace(smoke, scenarios=(smoke.scenarios[0].model_copy(update={"map_name": "no-such-map"}),
                                       *smoke.scenarios[1:2]))
    run = evaluate(broken, config, tmp_path / "sim")
    assert [r.status for r in run.result.routes] == [SIMULATION_CRASHED, COMPLETED]
    assert "no-such-map" in run.result.routes[0].error
    assert run.result.failed_runs == 1 and run.result.driving_score == pytest.approx(
        run.result.routes[1].driving_score / 2)
    # a simulator crash is driven again on resume (the agent's routes are kept)
    batches: list[int] = []
    evaluate(broken, config, tmp_path / "sim", on_batch=lambda done, planned: batches.append(done))
    assert batches == [2]


def test_a_checkpoint_of_another_evaluation_is_refused(smoke: Suite, config: AutoloopConfig, clean: Run,
                                                      tmp_path: Path) -> None:
    other = tmp_path / "other.jsonl"
    other.write_text(clean.checkpoint.read_text())
    with pytest.raises(ValueError, match="belongs to another evaluation"):
        run_evaluation(smoke, expert_driver, policy_name="expert", identity="someone-else", sim=config.sim,
                       settings=config.evaluate, store=clean.store, checkpoint=other)


def test_report_is_markdown_and_self_contained_html(clean: Run, tmp_path: Path) -> None:
    result = clean.result
    # an infraction to map (the expert drove cleanly)
    first = result.routes[0]
    located = replace(first, infractions=(replace_event(first),))
    result = replace(result, routes=(located, *result.routes[1:]))
    comparison = compare(result, clean.result, resamples=200)
    files = write_report(result, tmp_path / "report", store=clean.store, comparison=comparison, clips=2)
    markdown = files.markdown.read_text()
    assert "## Per scenario type" in markdown and "## Versus the champion" in markdown
    assert "driving score" in markdown and "[" in markdown
    for name in ("figures/driving_score_by_type.png", "figures/success_rate_by_town.png",
                 "figures/infractions_map.png", "figures/difference_by_metric.png", "figures/difference_by_type.png",
                 "clips/route_"):
        assert name in markdown
    page = files.html.read_text()
    images = re.findall(r'src="data:image/(png|gif);base64,([^"]+)"', page)
    # six charts (DS and success per type and per town, differences per metric and per type), the map, two clips
    assert [kind for kind, _ in images].count("gif") == 2 and [kind for kind, _ in images].count("png") == 7
    assert "src=\"http" not in page and "src=\"figures" not in page  # nothing outside the page
    gif = tmp_path / "clip.gif"
    gif.write_bytes(base64.b64decode(images[-1][1]))
    with Image.open(gif) as clip:
        assert clip.n_frames > 5


def replace_event(route: RouteResult) -> Any:
    from autoloop.evaluation import InfractionEvent

    return InfractionEvent("red_light", 3.5, 10.0, -4.0)


@pytest.mark.slow
def test_a_killed_evaluation_process_resumes_to_the_same_numbers(smoke: Suite, config: AutoloopConfig, clean: Run,
                                                                 tmp_path: Path) -> None:
    """As above, with the process killed (SIGKILL, nothing cleaned up) after its second batch."""
    import os
    import signal
    import subprocess
    import sys

    code = f"""
import os, signal
from pathlib import Path
from tests.autoloop.test_evaluation import evaluate
from autoloop.config import load_config
from sim.scenarios.suites import build_suite

config = load_config(profile="quick", overrides={config.model_dump(mode="json")!r})
def kill(done, planned):
    if done >= 4:
        os.kill(os.getpid(), signal.SIGKILL)
evaluate(build_suite("smoke"), config, Path({str(tmp_path)!r}), on_batch=kill)
"""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    checkpoint = next(tmp_path.joinpath("evaluations").glob("*.jsonl"))
    assert len(checkpoint.read_text().splitlines()) == 1 + 4
    batches: list[int] = []
    resumed = evaluate(smoke, config, tmp_path, on_batch=lambda done, planned: batches.append(done))
    assert batches == [5]
    assert without_episode_ids(resumed.result) == without_episode_ids(clean.result)


def test_a_kill_between_a_batchs_episodes_and_its_checkpoint_leaves_one_episode_per_route(
        smoke: Suite, config: AutoloopConfig, clean: Run, tmp_path: Path) -> None:
    """The process is killed (SIGKILL) after its second batch's episodes are in the store and before its routes
    are in the checkpoint: the resume drives those routes again and leaves exactly one episode per route."""
    import os
    import signal
    import subprocess
    import sys

    code = f"""
import os, signal
from pathlib import Path
from autoloop.evaluation import runner
from tests.autoloop.test_evaluation import evaluate
from autoloop.config import load_config
from sim.scenarios.suites import build_suite

config = load_config(profile="quick", overrides={config.model_dump(mode="json")!r})
append, calls = runner.append_routes, []
def killed_on_the_second_batch(path, routes):
    calls.append(len(routes))
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    append(path, routes)
runner.append_routes = killed_on_the_second_batch
evaluate(build_suite("smoke"), config, Path({str(tmp_path)!r}))
"""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    store = EpisodeStore(tmp_path / "episodes")
    assert len(store.episode_ids()) == 4  # batches 1 and 2 wrote their episodes; only batch 1 is checkpointed
    resumed = evaluate(smoke, config, tmp_path)
    assert without_episode_ids(resumed.result) == without_episode_ids(clean.result)
    named = sorted(str(route.episode_id) for route in resumed.result.routes)
    assert resumed.store.episode_ids() == named and len(named) == len(smoke.scenarios)


def test_a_last_line_cut_short_by_a_kill_is_driven_again(smoke: Suite, config: AutoloopConfig, clean: Run,
                                                         tmp_path: Path) -> None:
    lines = clean.checkpoint.read_text().splitlines(keepends=True)
    checkpoint = tmp_path / "evaluations" / clean.checkpoint.name
    checkpoint.parent.mkdir()
    # header, routes 0 and 1 (batch 1), route 2 (batch 2) and route 3 half written
    checkpoint.write_text("".join(lines[:4]) + lines[4][:40])
    batches: list[int] = []
    resumed = evaluate(smoke, config, tmp_path, on_batch=lambda done, planned: batches.append(done))
    assert batches == [5]  # routes 3 and 4, in one batch
    assert without_episode_ids(resumed.result) == without_episode_ids(clean.result)
    assert len(resumed.store.episode_ids()) == 2  # routes 3 and 4: route 2's episode was not written twice
    checkpoint.write_text("".join(lines[:2]) + "not json\n" + "".join(lines[2:]))
    with pytest.raises(ValueError, match="line 3 is not JSON"):
        evaluate(smoke, config, tmp_path)


def test_an_evaluated_trajectory_driver_keeps_its_planned_waypoints(smoke: Suite, config: AutoloopConfig,
                                                                    tmp_path: Path) -> None:
    import torch

    from autoloop.rollout import PolicyDriver
    from policies.waypoints import WaypointNet, WaypointNetConfig, WaypointPolicy
    from sim.scene.bev import Channel
    from sim.scene.observation import STATE_SIZE

    torch.manual_seed(0)
    size = config.sim.bev().size_px
    learner = WaypointPolicy(WaypointNet(WaypointNetConfig(len(Channel), size, STATE_SIZE, width=4, hidden=16)))
    short = replace(smoke, scenarios=[smoke.scenarios[0].model_copy(update={"timeout_s": 2.0})])
    run = evaluate(short, config, tmp_path, driver=PolicyDriver.of(learner))
    (route,) = run.result.routes
    episode = run.store.read(route.episode_id)
    plan = episode.steps["plan_xy"].reshape(episode.num_steps, 4, 2)
    # the last step's plan is what the driver planned last, in the map frame around the ego
    assert np.all(np.isfinite(plan))
    distance = np.linalg.norm(plan[-1] - [episode.steps["x_m"][-1], episode.steps["y_m"][-1]], axis=-1)
    assert distance.max() == pytest.approx(np.linalg.norm(learner.plan_xy[0], axis=-1).max(), abs=1e-3)
