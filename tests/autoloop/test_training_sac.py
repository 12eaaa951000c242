"""SAC fine-tuning on the native vector env (real SB3, a few hundred steps with gradient steps), and the SAC driver
logged to MLflow (real SQLite store) predicting through pyfunc exactly what it drives with."""

from __future__ import annotations

import math
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

from autoloop import tracking
from autoloop.config import SacConfig, SimConfig
from autoloop.paths import Paths
from autoloop.training.rl import FineTuneResult
from autoloop.training.sac import train_sac
from policies.checkpoint import load_policy
from policies.sb3 import Sb3Policy
from policies.waypoints import ControllerParams, WaypointNet, WaypointNetConfig, WaypointPolicy
from sim.scene.observation import STATE_SIZE

SIM = SimConfig(bev_size_px=32, traffic_vehicles=2)
OBS = {"bev": np.random.default_rng(0).integers(0, 2, (4, 9, 32, 32), dtype=np.uint8),
       "state": np.random.default_rng(1).uniform(-1, 1, (4, STATE_SIZE)).astype(np.float32)}


@pytest.fixture(scope="module")
def tuned() -> tuple[FineTuneResult, list[tuple[int, dict[str, float]]]]:
    torch.manual_seed(0)
    imitation = WaypointPolicy(WaypointNet(WaypointNetConfig(9, 32, STATE_SIZE, width=4, hidden=16)),
                               ControllerParams(mode="head"))
    config = SacConfig(timesteps=320, num_envs=4, buffer_size=512, learning_starts=64, batch_size=32)
    reports: list[tuple[int, dict[str, float]]] = []
    result = train_sac(config, sim=SIM, width=4, hidden=16, init=imitation,
                       on_rollout=lambda step, metrics: reports.append((step, metrics)))
    return result, reports


def test_sac_fine_tunes_on_the_native_vector_env(
        tuned: tuple[FineTuneResult, list[tuple[int, dict[str, float]]]]) -> None:
    result, reports = tuned
    assert result.timesteps == 320 and result.policy.kind == "sac"
    assert result.finished_routes == 0 or 0.0 <= result.mean_driving_score <= 100.0
    assert result.finished_routes > 0 or math.isnan(result.mean_driving_score)
    # fewer steps than a report interval: one report, at the end of training
    assert [step for step, _ in reports] == [320]
    assert {"sac_reward_per_step", "sac_routes_ended"} <= set(reports[0][1])
    actions = result.policy.act(OBS)
    assert actions.shape == (4, 2) and actions.dtype == np.float32 and np.all(np.abs(actions) <= 1.0)


def test_a_sac_driver_file_loads_and_its_pyfunc_predicts_its_actions(
        tuned: tuple[FineTuneResult, list[tuple[int, dict[str, float]]]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    driver = tuned[0].policy
    driver.save(tmp_path / "sac.pt")
    loaded = load_policy(tmp_path / "sac.pt")
    assert isinstance(loaded, Sb3Policy) and loaded.kind == "sac"
    np.testing.assert_array_equal(loaded.act(OBS), driver.act(OBS))

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    experiment_id = tracking.configure(Paths(tmp_path / "home"), "sac")
    with tracking.stage_run("train", experiment_id=experiment_id, parent_run_id=None):
        model = tracking.log_policy(driver, tmp_path / "checkpoint.pt", {key: value[:2] for key, value in OBS.items()})
    pyfunc = mlflow.pyfunc.load_model(model.model_uri)
    assert pyfunc.metadata.metadata["driver_kind"] == "sac"
    np.testing.assert_array_equal(pyfunc.predict(OBS), driver.act(OBS))
