"""Long work says how far it is against its total: log lines (the console without a terminal, and the Prefect
run's log) and, on a terminal, a rich bar."""

from pathlib import Path

import numpy as np
import pytest

from autoloop import progress
from autoloop.episodes import Episode
from autoloop.progress import Progress


@pytest.fixture(autouse=True)
def _every_update(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "EVERY_S", 0.0)


def _lines(caplog: pytest.LogCaptureFixture, what: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "autoloop.progress" and r.getMessage().startswith(what)]


def test_counts_against_the_total_with_a_rate(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO"), Progress("work", 3, "items", bar=True) as shown:
        for _ in range(3):
            shown.advance()
    lines = _lines(caplog, "work: ")
    assert [line.split(",")[0] for line in lines] == ["work: 1/3 items", "work: 2/3 items", "work: 3/3 items"]
    assert " items/s, 0:00:0" in lines[-1]


def test_an_evaluation_counts_its_routes_from_where_it_resumes(caplog: pytest.LogCaptureFixture,
                                                                tmp_path: Path) -> None:
    from autoloop.config import load_config
    from sim.scenarios.suites import build_suite
    from tests.autoloop.test_evaluation import evaluate

    config = load_config(profile="quick", overrides={"sim": {"batch_size": 2}, "evaluate": {"suite": "smoke"}})
    with caplog.at_level("INFO"):
        evaluate(build_suite("smoke"), config, tmp_path)
    assert [line.split(",")[0] for line in _lines(caplog, "evaluate smoke: ")] == [
        "evaluate smoke: 2/5 routes", "evaluate smoke: 4/5 routes", "evaluate smoke: 5/5 routes"]


def test_training_counts_its_steps(caplog: pytest.LogCaptureFixture) -> None:
    from autoloop.config import TrainConfig
    from autoloop.training import train_bc
    from tests.autoloop.test_balance import _arrays, _state

    data = _arrays([_state(8.0)] * 200, [8.0] * 200)  # 180 training rows: 18 batches of 10 an epoch
    with caplog.at_level("INFO"):
        train_bc(data, TrainConfig(epochs=2, batch_size=10, threads=1, width=4, hidden=16, seed=1))
    lines = [line.split(",")[0] for line in _lines(caplog, "train: ")]
    assert lines[0] == "train: 1/36 steps" and lines[-1] == "train: 36/36 steps"


def test_ingest_counts_its_logs(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    from autoloop.episodes import EpisodeStore
    from autoloop.fleet import ingest
    from tests.autoloop.test_fleet import _write_sensor_log

    for name in ("log-1", "log-2"):
        _write_sensor_log(tmp_path / "drop" / name)
    with caplog.at_level("INFO"):
        ingest([tmp_path / "drop"], EpisodeStore(tmp_path / "episodes"), tmp_path / "quarantine")
    assert [line.split(",")[0] for line in _lines(caplog, "ingest: ")][-1] == "ingest: 2/2 logs"


def _counts(caplog: pytest.LogCaptureFixture, what: str) -> list[str]:
    """The ``n/total unit`` part of each of ``what``'s lines, and checks that every line carries a rate."""
    counts = []
    for line in _lines(caplog, f"{what}: "):
        count, rate, _elapsed = line.rsplit(", ", 2)
        assert rate.endswith("/s") and float(rate.split()[0]) >= 0.0, line
        counts.append(count)
    return counts


def test_a_counted_loop_advances_as_each_item_ends(caplog: pytest.LogCaptureFixture) -> None:
    from autoloop.progress import counted

    with caplog.at_level("INFO"):
        seen = [(item, _counts(caplog, "loop")) for item in counted(["a", "b"], "loop", "items")]
    assert seen == [("a", []), ("b", ["loop: 1/2 items"])]
    assert _counts(caplog, "loop") == ["loop: 1/2 items", "loop: 2/2 items"]


def test_ppo_counts_its_environment_steps_in_whole_rollouts(caplog: pytest.LogCaptureFixture) -> None:
    from autoloop.config import PpoConfig, SimConfig
    from autoloop.training.ppo import train_ppo

    config = PpoConfig(timesteps=40, num_envs=2, n_steps=16, batch_size=16, n_epochs=1)  # 2 rollouts of 32 steps
    with caplog.at_level("INFO"):
        result = train_ppo(config, sim=SimConfig(bev_size_px=32, traffic_vehicles=2), width=4, hidden=16)
    assert result.timesteps == 64
    assert _counts(caplog, "ppo") == [f"ppo: {steps}/64 steps" for steps in range(2, 65, 2)]


def test_sac_counts_its_environment_steps(caplog: pytest.LogCaptureFixture) -> None:
    from autoloop.config import SacConfig, SimConfig
    from autoloop.training.sac import train_sac

    config = SacConfig(timesteps=30, num_envs=4, train_freq=2, buffer_size=64, learning_starts=8, batch_size=8)
    with caplog.at_level("INFO"):
        result = train_sac(config, sim=SimConfig(bev_size_px=32, traffic_vehicles=2), width=4, hidden=16)
    assert result.timesteps == 32  # whole rollouts of 2 vector steps of 4 envs
    assert _counts(caplog, "sac") == [f"sac: {steps}/32 steps" for steps in range(4, 33, 4)]


def test_dagger_counts_its_rounds_from_where_it_goes_on(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    from autoloop.config import DaggerConfig, TrainConfig
    from autoloop.episodes import EpisodeStore, create_snapshot
    from autoloop.rollout import RolloutOptions, expert_driver, rollout
    from autoloop.training import build_policy, load_trajectory_arrays
    from autoloop.training.dagger import dagger
    from tests.autoloop.test_training_dagger import SIM, _short

    store = EpisodeStore(tmp_path / "episodes")
    collected = rollout([_short(1)], sim=SIM, driver=expert_driver, policy_name="expert",
                        tags={"purpose": "collect"}, options=RolloutOptions(labels=True))
    store.write_many([episode for episode, _ in collected])
    base = create_snapshot(store, tmp_path / "datasets", [e.episode_id for e, _ in collected], {})
    config = TrainConfig(epochs=1, batch_size=64, threads=1, width=4, hidden=16,
                         dagger=DaggerConfig(iterations=2, episodes=1, epochs=1))
    data = load_trajectory_arrays(store, base)
    with caplog.at_level("INFO"):  # rounds 2 and 3 of 3 (round 1 ran in an earlier call)
        rounds = dagger(build_policy(config, data.bev_shape, data.state.shape[1]), base, config=config, sim=SIM,
                        store=store, datasets=tmp_path / "datasets", scenarios=lambda number: [_short(500 + number)],
                        first_round=2)
    assert [done.round for done in rounds] == [2, 3]
    assert _counts(caplog, "dagger") == ["dagger: 2/3 rounds", "dagger: 3/3 rounds"]


def test_a_collection_counts_its_episodes_against_its_plan(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    from autoloop.compute import IN_PROCESS
    from autoloop.config import load_config
    from autoloop.engine.ledger import Ledger
    from autoloop.engine.sourcing import source
    from autoloop.episodes import EpisodeStore

    config = load_config(profile="quick", overrides={
        "collect": {"episodes": 3, "source": "map"},
        "sim": {"batch_size": 2, "traffic_vehicles": 2, "bev_size_px": 32}})
    with caplog.at_level("INFO"):
        sourced = source(config, EpisodeStore(tmp_path / "episodes"), Ledger(tmp_path / "engine"), first_seed=0,
                         champion=None, tags={}, compute=IN_PROCESS, generate=lambda scenario, count, seed: [])
    assert len(sourced.results) == 3
    assert _counts(caplog, "collect")[-1] == "collect: 3/3 episodes"
    assert _counts(caplog, "drive")[-1] == "drive: 3/3 scenarios"


def _fleet_episode(episode_id: str) -> Episode:
    """A fleet log of an ego braking hard from 10 m/s (10 Hz)."""
    speed = np.concatenate([np.full(30, 10.0), np.maximum(10.0 - 0.6 * np.arange(1, 31), 0.0)])
    n = len(speed)
    steps = {"step": np.arange(n, dtype=np.int32), "time_s": np.arange(n, dtype=np.float32) * 0.1,
             "x_m": np.concatenate([[0.0], np.cumsum(speed[:-1] * 0.1)]), "y_m": np.zeros(n),
             "yaw_rad": np.zeros(n, dtype=np.float32), "speed_mps": speed.astype(np.float32),
             "accel_mps2": np.gradient(speed, 0.1).astype(np.float32)}
    return Episode(episode_id, "fleet", steps, {"map_name": "town-1", "dt_s": 0.1})


def test_mining_counts_the_episodes_it_mines(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    from autoloop.engine.ledger import Ledger
    from autoloop.engine.sourcing import fleet_moments
    from autoloop.episodes import EpisodeStore

    store = EpisodeStore(tmp_path / "episodes")
    store.write_many([_fleet_episode(f"fleet-{k}") for k in range(3)])
    with caplog.at_level("INFO"):
        fleet_moments(store, Ledger(tmp_path / "engine"), limit=1)
    assert sorted(path.stem for path in (store.root / "triggers").glob("*.parquet")) == [
        "fleet-0", "fleet-1", "fleet-2"]
    assert _counts(caplog, "mine")[-1] == "mine: 3/3 episodes"


def test_autoloop_mine_counts_the_stored_episodes(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from autoloop.cli import app
    from autoloop.episodes import EpisodeStore

    EpisodeStore(tmp_path / "home" / "episodes").write_many([_fleet_episode(f"fleet-{k}") for k in range(2)])
    with caplog.at_level("INFO"):
        mined = CliRunner().invoke(app, ["mine", "--home", str(tmp_path / "home")], terminal_width=200)
    assert mined.exit_code == 0, mined.output
    assert _counts(caplog, "mine") == ["mine: 1/2 episodes", "mine: 2/2 episodes"]


def test_the_sim_and_store_benchmarks_count_their_configurations_and_episodes(caplog: pytest.LogCaptureFixture,
                                                                              tmp_path: Path) -> None:
    from autoloop.bench import bench_sim, bench_store

    with caplog.at_level("INFO"):
        bench_sim(batch_sizes=[1, 2], vehicles=2, min_seconds=0.01, max_steps=1)
        bench_store(tmp_path, episodes=3, steps=10)
    assert _counts(caplog, "bench sim") == [f"bench sim: {n}/4 configurations" for n in (1, 2, 3, 4)]
    assert _counts(caplog, "bench store") == [f"bench store: {n}/3 episodes" for n in (1, 2, 3)]


def test_the_training_benchmark_counts_its_rl_steps(caplog: pytest.LogCaptureFixture) -> None:
    from autoloop.bench import bench_train

    with caplog.at_level("INFO"):
        result = bench_train(samples=64, batch_size=32, bev_size_px=32, ppo_envs=2, ppo_timesteps=16, sac_envs=2,
                             sac_timesteps=6)
    assert result.ppo_env_steps_per_s_native > 0
    # PPO: a warm-up rollout of 4 steps x 2 envs, then 16 steps on from there
    assert _counts(caplog, "bench train: ppo native")[-1] == "bench train: ppo native: 24/24 steps"
    assert _counts(caplog, "bench train: ppo sync vector")[-1] == "bench train: ppo sync vector: 24/24 steps"
    assert _counts(caplog, "bench train: sac native")[-1] == "bench train: sac native: 14/14 steps"


def test_the_scale_benchmark_counts_its_runs(caplog: pytest.LogCaptureFixture) -> None:
    from autoloop.bench_scale import bench_scale

    with caplog.at_level("INFO"):
        [in_process] = bench_scale(suite_name="smoke", workers=(), routes=2)
    assert in_process.routes == 2
    assert _counts(caplog, "bench scale") == ["bench scale: 1/1 runs"]
    assert _counts(caplog, "evaluate smoke")[-1] == "evaluate smoke: 2/2 routes"


def test_the_viewer_benchmark_counts_its_opens(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    from autoloop.viewer.bench import bench_viewer

    with caplog.at_level("INFO"):
        bench_viewer(tmp_path, av2_log=None, minutes=0.05, actors=2, repeats=2, index_episodes=4, browser=False)
    assert _counts(caplog, "bench viewer: sim 0.05 min, 2 actors") == [
        f"bench viewer: sim 0.05 min, 2 actors: {n}/3 opens" for n in (1, 2, 3)]
