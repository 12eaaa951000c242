"""Imitation training: trajectory targets worked out by hand, learning, same-seed determinism, DDP across two gloo
processes, and exact resume after an interruption — on a real episode store."""

from pathlib import Path

import numpy as np
import pytest
import torch

from autoloop.config import TrainConfig
from autoloop.episodes import Episode, EpisodeStore, create_snapshot
from autoloop.training import TrajectoryArrays, load_trajectory_arrays, train_bc
from autoloop.training.data import future_waypoints
from autoloop.training.ddp import main as ddp_main
from policies.checkpoint import load_policy
from sim.scene.observation import OBSERVATION_FORMAT, ObservationFormatError

BEV = (2, 16, 16)


def _episode(index: int, steps: int = 120, policy: str = "expert") -> Episode:
    """A car driving straight along x at a speed set by the state, turning by the BEV: labels follow the inputs."""
    rng = np.random.default_rng(index)
    speed = float(rng.uniform(2.0, 8.0))
    bev = (rng.uniform(size=(steps, *BEV)) < rng.uniform(0.1, 0.9)).astype(np.uint8)
    state = rng.uniform(-0.9, 0.9, (steps, 3)).astype(np.float32)
    state[:, 0] = speed / 10.0
    label = np.stack([state[:, 1], bev.mean(axis=(1, 2, 3)) - 0.5], axis=1).astype(np.float32)
    t = np.arange(steps) * 0.05
    columns = {"step": np.arange(steps, dtype=np.int32), "time_s": t.astype(np.float32), "x_m": speed * t,
               "y_m": np.zeros(steps), "yaw_rad": np.zeros(steps, dtype=np.float32),
               "speed_mps": np.full(steps, speed, dtype=np.float32), "label": label, "obs_state": state,
               "obs_bev": np.packbits(bev.reshape(steps, -1), axis=1)}
    return Episode(f"test-{index:04d}", "sim", columns, {"map_name": "junction4-60", "policy": policy, "dt_s": 0.05,
                                                         "tags": {"purpose": "collect"}, "bev_shape": list(BEV)})


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    store = EpisodeStore(home / "episodes")
    episodes = [_episode(i) for i in range(4)]
    store.write_many(episodes)
    create_snapshot(store, home / "datasets", [e.episode_id for e in episodes], {"purpose": "test"})
    return home


@pytest.fixture(scope="module")
def data(home: Path) -> TrajectoryArrays:
    store = EpisodeStore(home / "episodes")
    [manifest] = (home / "datasets").glob("*.json")
    from autoloop.episodes import load_snapshot

    return load_trajectory_arrays(store, load_snapshot(manifest))


def test_future_waypoints_are_the_logged_future_in_the_ego_frame() -> None:
    # heading north (yaw pi/2) at 4 m/s from (10, 20): 0.5 s later the car is 2 m ahead, nothing to the side
    t = np.arange(60) * 0.05
    x, y = np.full(60, 10.0), 20.0 + 4.0 * t
    waypoints, speed, valid = future_waypoints(x, y, np.full(60, np.pi / 2), np.full(60, 4.0), dt_s=0.05,
                                               waypoints=4, waypoint_dt_s=0.5)
    np.testing.assert_allclose(waypoints[0], [[2.0, 0.0], [4.0, 0.0], [6.0, 0.0], [8.0, 0.0]], atol=1e-9)
    assert speed[0] == 4.0
    # the last waypoint (2 s = 40 steps ahead) is in the log up to step 19
    assert valid[:20].all() and not valid[20:].any()


def test_dataset_targets(data: TrajectoryArrays) -> None:
    assert len(data) == 4 * 120 and data.waypoints.shape == (480, 4, 2)
    speed = data.state[:, 0] * 10.0
    rows = np.flatnonzero(data.has_trajectory)
    np.testing.assert_allclose(data.waypoints[rows, 0, 0], 0.5 * speed[rows], rtol=1e-4)
    np.testing.assert_allclose(data.waypoints[rows, :, 1], 0.0, atol=1e-6)


@pytest.mark.parametrize("policy", ["waypoints", "bc"])
def test_training_learns_and_is_reproducible(data: TrajectoryArrays, policy: str) -> None:
    config = TrainConfig(policy=policy, epochs=6, batch_size=32, learning_rate=3e-3, seed=3, threads=1, width=4,
                         hidden=32)
    seen = []
    first = train_bc(data, config, on_epoch=seen.append)
    second = train_bc(data, config)
    assert [m.epoch for m in seen] == list(range(1, 7))
    assert seen[-1].train_loss < seen[0].train_loss / 2
    _assert_same_weights(first.policy.net.state_dict(), second.policy.net.state_dict())
    different = train_bc(data, config.model_copy(update={"seed": 4}))
    assert not all(torch.equal(a, b) for a, b in zip(first.policy.net.state_dict().values(),
                                                     different.policy.net.state_dict().values(), strict=True))


def test_interrupted_training_resumes_to_the_same_weights(data: TrajectoryArrays, tmp_path: Path) -> None:
    config = TrainConfig(epochs=3, batch_size=32, learning_rate=3e-3, seed=5, threads=1, width=4, hidden=32)

    def crash(step: int, losses: dict[str, float]) -> None:
        if step == 20:  # in the second epoch (14 steps per epoch)
            raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        train_bc(data, config, checkpoint_dir=tmp_path / "run", on_step=crash)
    assert (tmp_path / "run" / "last.pt").exists()
    resumed = train_bc(data, config, checkpoint_dir=tmp_path / "run")
    straight = train_bc(data, config, checkpoint_dir=tmp_path / "straight")
    assert [m.epoch for m in resumed.history] == [1, 2, 3]
    assert resumed.history == straight.history
    _assert_same_weights(resumed.policy.net.state_dict(), straight.policy.net.state_dict())


def test_a_training_checkpoint_of_another_observation_format_is_refused(data: TrajectoryArrays,
                                                                        tmp_path: Path) -> None:
    config = TrainConfig(epochs=1, batch_size=64, seed=5, threads=1, width=4, hidden=8)
    train_bc(data, config, checkpoint_dir=tmp_path / "run")
    path = tmp_path / "run" / "last.pt"
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["observation_format"] == OBSERVATION_FORMAT
    checkpoint["observation_format"] = OBSERVATION_FORMAT + 1
    torch.save(checkpoint, path)
    with pytest.raises(ObservationFormatError) as refused:
        train_bc(data, config.model_copy(update={"epochs": 2}), checkpoint_dir=tmp_path / "run")
    assert str(refused.value) == (f"training checkpoint {path} has observation format {OBSERVATION_FORMAT + 1}, "
                                  f"this autoloop reads observation format {OBSERVATION_FORMAT}: delete it to train "
                                  f"from the start (`rm {path}`)")


def test_ddp_two_gloo_processes_end_with_identical_weights(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    config.write_text("train: {epochs: 2, batch_size: 16, threads: 1, width: 4, hidden: 32, seed: 1}\n")
    [manifest] = (home / "datasets").glob("*.json")
    args = ["--home", str(home), "--dataset", str(manifest), "--config", str(config), "--all-ranks"]
    ddp_main([*args, "--nproc", "2", "--checkpoints", str(tmp_path / "ddp"), "--output", str(tmp_path / "ddp.pt")])
    zero, one = load_policy(tmp_path / "ddp.pt"), load_policy(tmp_path / "ddp.rank1.pt")
    _assert_same_weights(zero.net.state_dict(), one.net.state_dict())  # type: ignore[attr-defined]
    # one process on the same data takes other (bigger-batch) steps: the two ranks did share the work
    ddp_main([*args, "--checkpoints", str(tmp_path / "one"), "--output", str(tmp_path / "one.pt")])
    alone = load_policy(tmp_path / "one.pt")
    assert not all(torch.equal(a, b) for a, b in zip(zero.net.state_dict().values(),  # type: ignore[attr-defined]
                                                     alone.net.state_dict().values(),  # type: ignore[attr-defined]
                                                     strict=True))


def _assert_same_weights(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> None:
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


def test_the_train_stage_launches_torchrun_on_several_processes(home: Path, data: TrajectoryArrays,
                                                                 tmp_path: Path) -> None:
    from autoloop.config import load_config
    from autoloop.episodes import load_snapshot
    from autoloop.paths import Paths
    from autoloop.training.launch import torchrun, train_processes

    config = load_config(overrides={"train": {"epochs": 2, "batch_size": 16, "threads": 1, "width": 4, "hidden": 32,
                                              "seed": 1}, "compute": {"train_processes": 2}})
    assert train_processes(config) == 2
    [manifest] = (home / "datasets").glob("*.json")
    launched = torchrun(config, paths=Paths(home), snapshot=load_snapshot(manifest), checkpoints=tmp_path / "run",
                        processes=2)
    assert [m.epoch for m in launched.history] == [1, 2] and launched.samples == len(data)
    assert launched.policy.kind == config.train.policy
    # started again on the same folder, it resumes after the last finished epoch: nothing left to train
    again = torchrun(config, paths=Paths(home), snapshot=load_snapshot(manifest), checkpoints=tmp_path / "run",
                     processes=2)
    _assert_same_weights(again.policy.net.state_dict(), launched.policy.net.state_dict())  # type: ignore[attr-defined]
