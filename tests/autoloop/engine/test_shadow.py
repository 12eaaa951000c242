"""Shadow mode: a driver's open-loop predictions on the real AV2 logs of the shared data scored against the human's
future and the recorded actors, hand-made trajectories that hit an actor, leave the lanes or run a red light
flagged, and the worst moments turned into triggers."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from autoloop.config import TrainConfig
from autoloop.engine.shadow import (
    ShadowScores,
    policy_predictor,
    score_trajectories,
    shadow_scores,
    shadow_triggers,
)
from autoloop.episodes import Episode
from autoloop.fleet.av2 import read_log
from autoloop.training.bc import build_policy
from autoloop.training.data import future_waypoints
from autoloop.training.fleet import render_observations
from policies.base import LearnedPolicy
from sim.embedded.traffic import LightState
from sim.geometry import to_local_frame
from sim.maps import get_map
from sim.scene.bev import BevSpec, Channel
from sim.scene.observation import observation_space
from tests.autoloop.av2_logs import log_map, logs

BEV = BevSpec(size_px=32, resolution_m=1.0, ego_row=24)
#: 4 waypoints 0.5 s apart on 10 Hz logs: the last one is 20 steps ahead.
WAYPOINTS, HORIZON_STEPS = 4, 20


def _human_future(episode: Episode) -> np.ndarray:
    steps = episode.steps
    future, _, _ = future_waypoints(steps["x_m"], steps["y_m"], steps["yaw_rad"], steps["speed_mps"], dt_s=0.1,
                                    waypoints=WAYPOINTS, waypoint_dt_s=0.5)
    return future


def _untrained_driver(policy: Literal["waypoints", "bc"] = "waypoints") -> LearnedPolicy:
    state = observation_space(BEV)["state"]
    assert state.shape is not None
    config = TrainConfig(policy=policy, waypoints=WAYPOINTS, width=4, hidden=16, seed=1)
    return build_policy(config, (len(Channel), BEV.size_px, BEV.size_px), state.shape[0])


def test_an_untrained_driver_is_scored_at_every_step_with_a_future(shared_data: Path) -> None:
    predict = policy_predictor(_untrained_driver())
    for log_dir in logs(shared_data):
        episode = read_log(log_dir)
        scores = shadow_scores(predict, episode, log_map(log_dir), bev=BEV, waypoints=WAYPOINTS)
        count = len(episode.steps["time_s"])
        # the human's future covers the 2 s horizon at every step but the last 20
        np.testing.assert_array_equal(scores.has_future, np.arange(count) + HORIZON_STEPS < count)
        future = scores.has_future
        for values in (scores.ade_m, scores.fde_m, scores.score):
            assert values.shape == (count,)
            assert np.isfinite(values[future]).all() and np.isnan(values[~future]).all()
        assert (scores.ade_m[future] >= 0.0).all() and (scores.fde_m[future] >= 0.0).all()
        assert ((scores.score[future] >= 0.0) & (scores.score[future] <= 1.0)).all()
        # an AV2 log records no light states: the red-light check is not available, not passed
        assert not scores.red_light_checked and not scores.red_light.any()
        assert all(isinstance(a, str) for a in scores.collision_actor)
        assert all(scores.collision_actor[scores.collision]) and not any(scores.collision_actor[~scores.collision])
    # the packed observations of the rendering cache (of the last log) score the same as rendered ones
    frames, states = render_observations(episode, log_map(log_dir), bev=BEV)
    packed = np.packbits(frames.reshape(len(frames), -1), axis=1)
    again = shadow_scores(predict, episode, log_map(log_dir), bev=BEV, waypoints=WAYPOINTS,
                          observations=(packed, states))
    np.testing.assert_array_equal(again.fde_m, scores.fde_m)
    np.testing.assert_array_equal(again.collision, scores.collision)
    with pytest.raises(ValueError, match=r"\(6, 2\)"):
        shadow_scores(predict, episode, log_map(log_dir), bev=BEV, waypoints=6, observations=(packed, states))


def _through_an_actor(episode: Episode, step: int, k: int, *, at_step: int | None = None,
                      ) -> tuple[np.ndarray, str]:
    """The human's future with waypoint ``k`` (0-based) of ``step`` moved onto the nearest vehicle driving faster
    than 5 m/s at that waypoint's time (or, ``at_step``, onto where that vehicle was then), and its id."""
    actors = episode.actors
    assert actors is not None
    steps = episode.steps
    ego = np.array([steps["x_m"][step], steps["y_m"][step]], dtype=np.float64)
    xy = np.stack([actors["x_m"], actors["y_m"]], axis=-1).astype(np.float64)
    at = step + (k + 1) * 5
    rows = np.flatnonzero((actors["step"] == at) & (actors["kind"] == "vehicle") & actors["observed"]
                          & (actors["speed_mps"] > 5.0))
    actor_id = str(actors["actor_id"][rows[int(np.argmin(np.linalg.norm(xy[rows] - ego, axis=-1)))]])
    [row] = np.flatnonzero((actors["actor_id"] == actor_id) & (actors["step"] == (at if at_step is None else at_step)))
    predicted = _human_future(episode)
    predicted[step, k] = to_local_frame(xy[row], ego, np.array(steps["yaw_rad"][step], dtype=np.float64))
    return predicted, actor_id


def test_a_trajectory_through_a_recorded_actor_collides_and_the_humans_own_does_not(shared_data: Path) -> None:
    log_dir = logs(shared_data)[0]
    episode, lane_graph = read_log(log_dir), log_map(log_dir)
    human = score_trajectories(_human_future(episode), episode, lane_graph)
    assert not human.collision.any() and not human.off_road.any()
    np.testing.assert_allclose(human.ade_m[human.has_future], 0.0, atol=1e-9)
    np.testing.assert_allclose(human.score[human.has_future], 1.0)

    step, k = 40, 2  # waypoint 3, 1.5 s (15 steps) ahead
    predicted, actor_id = _through_an_actor(episode, step, k)
    scores = score_trajectories(predicted, episode, lane_graph)
    assert scores.collision[step] and scores.collision_actor[step] == actor_id
    assert scores.score[step] == 0.0 and scores.ade_m[step] > 0.0
    others = np.arange(len(scores.collision)) != step
    assert not scores.collision[others].any()
    # the waypoint is compared with the actors recorded at its own time: where the vehicle was at the step the
    # trajectory is predicted (1.5 s earlier, 15 m back) is no collision with it
    earlier, _ = _through_an_actor(episode, step, k, at_step=step)
    assert score_trajectories(earlier, episode, lane_graph).collision_actor[step] != actor_id


def _along_the_west_arm(count: int = 60, speed_mps: float = 8.0, lights: LightState | None = None) -> Episode:
    """An ego driving west along the inbound lane of the east arm of ``junction4-60`` (y = 1.75 m) at a steady
    speed (10 Hz), through its stop line at x = 10 m; with ``lights``, every group in that state all along."""
    time = np.arange(count, dtype=np.float32) * 0.1
    x = 40.0 - speed_mps * time.astype(np.float64)
    steps = {"step": np.arange(count, dtype=np.int32), "time_s": time, "x_m": x, "y_m": np.full(count, 1.75),
             "yaw_rad": np.full(count, np.pi, dtype=np.float32), "speed_mps": np.full(count, speed_mps, np.float32),
             "accel_mps2": np.zeros(count, dtype=np.float32)}
    if lights is not None:
        steps["light_states"] = np.full((count, 4), float(lights), dtype=np.float32)
    return Episode("west-arm", "fleet", steps, {"dt_s": 0.1, "synthetic": True})


def test_a_waypoint_off_every_lane_is_off_road_and_crossing_a_red_stop_line_is_a_red_light() -> None:
    lane_graph = get_map("junction4-60")
    episode = _along_the_west_arm()
    human = _human_future(episode)
    on_lanes = score_trajectories(human, episode, lane_graph)
    assert not on_lanes.off_road.any() and not on_lanes.red_light_checked
    # 30 m to the left of the ego at x = 40 - 0.8 t is (x, -28.25): 28 m and more from every lane of the junction
    wide = human.copy()
    wide[10, 1] = [8.0, 30.0]
    off = score_trajectories(wide, episode, lane_graph)
    assert off.off_road[10] and off.score[10] == 0.0 and off.off_road.sum() == 1

    # the ego crosses the stop line (x = 10 m) 3.75 s in: the trajectories of steps 18-37 cross it within 2 s
    step = np.arange(60)
    crossing = (40.0 - 0.8 * step > 10.0) & (40.0 - 0.8 * (step + HORIZON_STEPS) <= 10.0)
    red = score_trajectories(human, _along_the_west_arm(lights=LightState.RED), lane_graph)
    assert red.red_light_checked
    np.testing.assert_array_equal(red.red_light, crossing & red.has_future)
    assert red.summary()["red_light_rate"] > 0.0
    green = score_trajectories(human, _along_the_west_arm(lights=LightState.GREEN), lane_graph)
    assert green.red_light_checked and not green.red_light.any()
    assert green.summary()["red_light_rate"] == 0.0
    # driving the other way (east, away from the junction) over the same line is no red light
    backwards = human.copy()
    backwards[..., 0] *= -1.0
    assert not score_trajectories(backwards, _along_the_west_arm(lights=LightState.RED), lane_graph).red_light.any()


def test_the_summary_logs_as_plain_floats_and_the_worst_moments_become_triggers(shared_data: Path) -> None:
    log_dir = logs(shared_data)[0]
    episode, lane_graph = read_log(log_dir), log_map(log_dir)
    predicted, actor_id = _through_an_actor(episode, 40, 2)
    predicted[60:64, -1] += [8.0, 0.0]  # four steps 8 m off at the end of the horizon: one displacement stretch
    scores = score_trajectories(predicted, episode, lane_graph)
    summary = scores.summary()
    assert set(summary) == {"steps", "ade_m", "fde_m", "fde_max_m", "collision_rate", "off_road_rate", "score",
                            "score_min"}
    assert all(type(value) is float and math.isfinite(value) for value in summary.values())
    json.dumps(summary)
    assert summary["steps"] == float(scores.has_future.sum())
    assert summary["collision_rate"] == pytest.approx(1.0 / summary["steps"])
    assert summary["score_min"] == 0.0 and summary["fde_max_m"] == pytest.approx(8.0, abs=1e-6)

    triggers = shadow_triggers(scores, episode)
    assert [(t.kind, t.step) for t in triggers] == [("shadow_collision", 40), ("shadow_displacement", 60)]
    collision, displacement = triggers
    assert collision.actor_id == actor_id and collision.value == 1.0
    assert collision.x_m == pytest.approx(float(episode.steps["x_m"][40]))
    assert displacement.value == pytest.approx(8.0, abs=1e-6) and displacement.actor_id == ""
    assert shadow_triggers(scores, episode, fde_threshold_m=10.0) == [collision]

    # flags on steps closer than MERGE_S (2 s) merge into one trigger at the first
    flagged = np.zeros(len(scores.time_s), dtype=bool)
    flagged[[70, 75, 90, 130]] = True
    off = ShadowScores(**{**scores.__dict__, "off_road": flagged})
    assert [t.step for t in shadow_triggers(off, episode) if t.kind == "shadow_off_road"] == [70, 130]


def test_a_driver_without_a_trajectory_is_refused_by_kind() -> None:
    with pytest.raises(ValueError, match="'bc' driver"):
        policy_predictor(_untrained_driver("bc"))
