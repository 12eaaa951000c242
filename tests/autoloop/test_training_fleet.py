"""Fleet logs as training samples: their observations rendered from the log by the simulator's own renderer, on the
real Argoverse 2 logs of the shared data, and trained on next to a simulated episode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from autoloop.config import SimConfig, TrainConfig
from autoloop.episodes import EpisodeStore, create_snapshot
from autoloop.fleet.av2 import read_log
from autoloop.rollout import RolloutOptions, expert_driver, rollout
from autoloop.training import load_trajectory_arrays, train_bc
from autoloop.training.bc import network
from autoloop.training.fleet import CACHE_FOLDER, UnreplayableLog, render_observations
from autoloop.training.stream import StreamedSnapshot
from sim.geometry import to_local_frame
from sim.scene.bev import BevSpec, Channel
from sim.scene.observation import observation_space
from tests.autoloop.av2_logs import log_map, logs

SIM = SimConfig(traffic_vehicles=2, bev_size_px=64)
FORECASTING = "0a1e6f0a-1817-4a98-b02e-db8c9327d151"


def test_rendered_fleet_observations_show_the_recorded_actors_and_the_route_ahead(shared_data: Path) -> None:
    spec = SIM.bev()
    space = observation_space(spec)
    for log_dir in logs(shared_data):
        episode = read_log(log_dir)
        bev, state = render_observations(episode, log_map(log_dir), bev=spec)
        steps = len(episode.steps["time_s"])
        assert bev.shape == (steps, len(Channel), spec.size_px, spec.size_px) and bev.dtype == np.uint8
        assert state.shape == (steps, *space["state"].shape) and state.dtype == np.float32
        assert all(space.contains({"bev": bev[k], "state": state[k]}) for k in range(0, steps, 10))
        # the recorded speed is the state's first feature
        np.testing.assert_allclose(state[:, 0], np.minimum(episode.steps["speed_mps"] / 10.0, 4.0), atol=1e-5)
        actors = episode.actors
        assert actors is not None
        checked = 0
        for k in range(0, steps, 5):
            ego = np.array([episode.steps["x_m"][k], episode.steps["y_m"][k]], dtype=np.float64)
            ego_yaw = float(episode.steps["yaw_rad"][k])
            rows = np.flatnonzero((actors["step"] == k) & (actors["kind"] == "vehicle") & actors["observed"])
            xy = np.stack([actors["x_m"][rows], actors["y_m"][rows]], axis=-1).astype(np.float64)
            local = to_local_frame(xy, ego[None, :], np.full(len(rows), ego_yaw))
            row = np.rint(spec.ego_row - local[:, 0] / spec.resolution_m).astype(int)
            col = np.rint(spec.size_px / 2.0 - 0.5 - local[:, 1] / spec.resolution_m).astype(int)
            inside = (row >= 1) & (row < spec.size_px - 1) & (col >= 1) & (col < spec.size_px - 1)
            for r, c in zip(row[inside], col[inside], strict=True):
                # the centre of each recorded vehicle near the ego is drawn (within a pixel of rounding)
                assert bev[k, Channel.VEHICLES, r - 1:r + 2, c - 1:c + 2].any(), (episode.episode_id, k, r, c)
                checked += 1
            # the route lies ahead of the ego (rows above it) more than behind, until the log's last seconds
            route = bev[k, Channel.ROUTE]
            assert route[spec.ego_row - 10:spec.ego_row].any(), (episode.episode_id, k)
            if k < steps - 20:
                assert route[:spec.ego_row].sum() > route[spec.ego_row + 1:].sum(), (episode.episode_id, k)
        assert checked > 5, episode.episode_id
        # and nowhere else: vehicle pixels lie near a recorded actor (sampled mid-log)
        k = steps // 2
        rows = np.flatnonzero(actors["step"] == k)
        pixels = np.argwhere(bev[k, Channel.VEHICLES])
        forward = (spec.ego_row - pixels[:, 0]) * spec.resolution_m
        left = (spec.size_px / 2.0 - 0.5 - pixels[:, 1]) * spec.resolution_m
        ego = np.array([episode.steps["x_m"][k], episode.steps["y_m"][k]], dtype=np.float64)
        xy = np.stack([actors["x_m"][rows], actors["y_m"][rows]], axis=-1).astype(np.float64)
        local = to_local_frame(xy, ego[None, :], np.full(len(rows), float(episode.steps["yaw_rad"][k])))
        gaps = np.hypot(forward[:, None] - local[None, :, 0], left[:, None] - local[None, :, 1]).min(axis=1)
        assert (gaps < 8.0).all(), episode.episode_id


def test_a_snapshot_of_a_sim_episode_and_a_fleet_log_trains_on_both(shared_data: Path, tmp_path: Path) -> None:
    log_dir = shared_data / "av2" / "forecasting" / FORECASTING
    if not log_dir.is_dir():
        pytest.skip(f"the AV2 forecasting scenario is not at {log_dir}")
    store = EpisodeStore(tmp_path / "episodes")
    scenario = SIM.sample(3).model_copy(update={"timeout_s": 4.0})
    [(simulated, _)] = rollout([scenario], sim=SIM, driver=expert_driver, policy_name="expert",
                               tags={"purpose": "collect"}, options=RolloutOptions(labels=True))
    fleet = read_log(log_dir)
    store.put_map(log_map(log_dir))
    store.write_many([simulated, fleet])
    snapshot = create_snapshot(store, tmp_path / "datasets", [simulated.episode_id, fleet.episode_id], {})
    data = load_trajectory_arrays(store, snapshot)
    sim_steps = len(simulated.steps["step"])
    fleet_steps = len(fleet.steps["step"])
    # the last 2 s of the 10 Hz log (20 steps) have no future to learn from and are dropped
    assert int((~data.has_action).sum()) == fleet_steps - 20
    assert len(data) == sim_steps + fleet_steps - 20
    assert data.bev_shape == (len(Channel), SIM.bev_size_px, SIM.bev_size_px)
    fleet_rows = np.flatnonzero(~data.has_action)
    assert data.has_trajectory[fleet_rows].all()
    # the fleet samples are the rendered observations, labelled with the recorded future
    bev, state = render_observations(fleet, log_map(log_dir), bev=SIM.bev())
    np.testing.assert_array_equal(data.bev(fleet_rows[:5]), bev[:5])
    np.testing.assert_array_equal(data.state[fleet_rows], state[:fleet_steps - 20])
    assert data.waypoints[fleet_rows[0], -1, 0] > 0.0  # the ego drives on: its future lies ahead
    # the rendering is cached under the store, keyed by the episode's content, and read back the same
    cached = list((store.root / CACHE_FOLDER).glob(f"{fleet.episode_id}-*.npz"))
    assert len(cached) == 1
    again = load_trajectory_arrays(store, snapshot)
    np.testing.assert_array_equal(again.bev_packed, data.bev_packed)
    np.testing.assert_array_equal(again.state, data.state)

    config = TrainConfig(epochs=1, batch_size=64, threads=1, width=4, hidden=16, seed=1)
    result = train_bc(data, config, epochs=1)
    assert result.samples == len(data) and len(result.history) == 1
    assert np.isfinite(result.history[0].train_loss)
    # streamed from the store (the rendering read from its cache), the fleet log trains to the same weights
    streamed = train_bc(StreamedSnapshot(store, snapshot), config, epochs=1)
    assert streamed.samples == len(data) and streamed.history == result.history
    for (name, a), (_, b) in zip(network(streamed.policy).state_dict().items(),
                                 network(result.policy).state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_rendering_asks_for_a_bev_spec_of_its_own(shared_data: Path) -> None:
    log_dir = shared_data / "av2" / "forecasting" / FORECASTING
    if not log_dir.is_dir():
        pytest.skip(f"the AV2 forecasting scenario is not at {log_dir}")
    episode = read_log(log_dir)
    spec = BevSpec(size_px=32, resolution_m=1.0, ego_row=24)
    bev, _ = render_observations(episode, log_map(log_dir), bev=spec)
    assert bev.shape[1:] == (len(Channel), 32, 32)


def test_a_log_whose_ego_stands_still_cannot_be_replayed(shared_data: Path) -> None:
    log_dir = shared_data / "av2" / "forecasting" / FORECASTING
    if not log_dir.is_dir():
        pytest.skip(f"the AV2 forecasting scenario is not at {log_dir}")
    episode = read_log(log_dir)
    for column in ("x_m", "y_m"):
        episode.steps[column] = np.full_like(episode.steps[column], episode.steps[column][0])
    with pytest.raises(UnreplayableLog, match="a replay needs a route"):
        render_observations(episode, log_map(log_dir))


def test_the_collect_stage_snapshots_the_newest_fleet_logs_and_the_train_stage_learns_from_them(
        shared_data: Path, tmp_path: Path) -> None:
    from autoloop.config import load_config
    from autoloop.context import open_context
    from autoloop.fleet.ingest import ingest
    from autoloop.paths import Paths
    from autoloop.stages import collect, train

    log_dirs = logs(shared_data)
    paths = Paths(tmp_path / "home")
    report = ingest(log_dirs, EpisodeStore(paths.episodes), paths.home / "quarantine")
    assert len(report.landed) == len(log_dirs), report
    quick = load_config(profile="quick")
    config = quick.model_copy(update={
        "sim": quick.sim.model_copy(update={"bev_size_px": 64}),
        "collect": quick.collect.model_copy(update={"episodes": 1, "dataset_episodes": 1, "fleet_episodes": 2}),
        "train": quick.train.model_copy(update={"epochs": 1})})
    context = open_context(config, paths=paths)
    collected = collect(context)
    manifests = context.store.manifests("fleet")
    newest = sorted(manifests, key=lambda i: (manifests[i]["date"], i))[-2:]
    fleet_ids = [i for i in collected.snapshot.episode_ids if i in manifests]
    assert sorted(fleet_ids) == sorted(newest) and len(collected.snapshot.episode_ids) == 3
    trained = train(context, collected.snapshot)
    fleet_steps = sum(int(manifests[i]["num_steps"]) for i in fleet_ids)
    assert trained.samples > collected.steps + fleet_steps // 2  # the fleet logs' steps with a future count
