from pathlib import Path

import numpy as np

from autoloop.config import SimConfig
from autoloop.rollout import RolloutOptions, RouteRecorder, drive, expert_driver, rollout, store_file_maps
from sim.metrics import Infraction, RouteStatus
from sim.scenarios import sample_scenario
from sim.scene.bev import Channel
from sim.scene.observation import STATE_SIZE


def test_noisy_expert_rollouts_are_reproducible_and_labelled() -> None:
    scenarios = [sample_scenario(seed, traffic_vehicles=4) for seed in (12, 3, 7)]
    sim = SimConfig(traffic_vehicles=4, batch_size=2)  # two batches
    options = RolloutOptions(labels=True, action_noise=0.2, noise_seed=5)
    runs = [rollout(scenarios, sim=sim, driver=expert_driver, policy_name="expert", tags={"purpose": "collect"},
                    options=options) for _ in range(2)]
    for (first, record), (second, _), scenario in zip(runs[0], runs[1], scenarios, strict=True):
        assert first.episode_id.startswith(f"collect-{scenario.traffic_seed:08d}-")
        assert first.episode_id != second.episode_id
        assert first.steps.keys() == second.steps.keys()
        for name in first.steps:
            np.testing.assert_array_equal(first.steps[name], second.steps[name])
        steps = first.num_steps
        assert record.status is RouteStatus.COMPLETED
        assert first.steps["obs_bev"].shape == (steps, len(Channel) * 64 * 64 // 8)
        assert first.steps["obs_state"].shape == (steps, STATE_SIZE)
        # the executed actions are the expert's labels plus noise
        noise = first.steps["action"] - first.steps["label"]
        assert 0.02 < float(np.abs(noise).mean()) < 0.3
        assert first.metadata["scenario"] == scenario.model_dump(mode="json")
        assert first.metadata["record"]["status"] == "completed"
        # infractions go to the events table (the route's end is in the record)
        assert first.events is not None and set(first.events) == {"time_s", "kind", "x_m", "y_m", "actor_id",
                                                                   "detail"}
        assert set(first.events["kind"]) <= {kind.value for kind in Infraction}
        assert set(first.events["kind"]) <= {kind.value for kind, count in record.infractions.items() if count}
        # every actor around, every step (the store's actors table)
        actors = first.actors
        assert actors is not None and actors["step"].max() == steps - 1
        assert set(actors["kind"]) <= {"vehicle", "pedestrian", "static", "other"} and "vehicle" in set(actors["kind"])
        assert (actors["length_m"] > 0).all() and np.isfinite(actors["x_m"]).all()
        np.testing.assert_array_equal(actors["x_m"], second.actors["x_m"])  # type: ignore[index]


def test_a_route_drives_the_same_in_any_batch_whatever_the_recorder_keeps() -> None:
    scenarios = [sample_scenario(seed, traffic_vehicles=4) for seed in (12, 3, 7)]
    sim = SimConfig(traffic_vehicles=4)
    alone = drive(scenarios, driver=expert_driver, recorder=RouteRecorder(), world=sim.world_config(), batch_size=1)
    together = drive(scenarios, driver=expert_driver, recorder=RouteRecorder(), world=sim.world_config(),
                     batch_size=3)
    episodes = rollout(scenarios, sim=sim, driver=expert_driver, policy_name="expert", tags={"purpose": "eval"})
    assert alone == together
    assert [route.record for route in alone] == [record for _, record in episodes]
    assert all(0.0 < route.comfort <= 1.0 for route in alone)


def test_the_file_maps_episodes_ran_on_are_kept_in_the_store(shared_data: Path, tmp_path: Path) -> None:
    from autoloop.episodes import EpisodeStore
    from autoloop.fleet.av2 import read_map
    from sim.maps import get_map, register_map

    log_dir = sorted((shared_data / "av2" / "forecasting").iterdir())[0]
    graph = read_map(log_dir)
    try:
        graph = get_map(graph.name)
    except (ValueError, OSError):
        graph = register_map(graph)
    store = EpisodeStore(tmp_path / "store")
    store_file_maps(store, [graph.name, "junction4-60", graph.name])
    assert store.get_map(graph.name).to_dict() == graph.to_dict()
    assert [p.name for p in (tmp_path / "store" / "maps").iterdir()] == [f"{graph.name}.json"]  # not procedural


def test_perturbed_starts_shift_and_turn_the_ego_and_the_expert_finds_its_way_back() -> None:
    from sim.geometry import to_local_frame, wrap_angle

    scenarios = [sample_scenario(seed, traffic_vehicles=2) for seed in (4, 9, 21)]
    sim = SimConfig(traffic_vehicles=2)
    plain = rollout(scenarios, sim=sim, driver=expert_driver, policy_name="expert", tags={"purpose": "collect"},
                    options=RolloutOptions(labels=True, noise_seed=3))
    shifted = rollout(scenarios, sim=sim, driver=expert_driver, policy_name="expert", tags={"purpose": "collect"},
                      options=RolloutOptions(labels=True, noise_seed=3, start_perturbation=(1.0, 0.2)))
    moved = 0
    for (before, _), (after, record), scenario in zip(plain, shifted, scenarios, strict=True):
        assert "start_perturbation" not in before.metadata
        perturbation = after.metadata["start_perturbation"]
        lateral, yaw = perturbation["lateral_m"], perturbation["yaw_rad"]
        assert abs(lateral) <= 1.0 and abs(yaw) <= 0.2
        moved += abs(lateral) > 0.2
        start = np.array([[before.steps["x_m"][0], before.steps["y_m"][0]]])
        where = np.array([[after.steps["x_m"][0], after.steps["y_m"][0]]])
        local = to_local_frame(where, start, np.array([before.steps["yaw_rad"][0]]))[0]
        np.testing.assert_allclose(local, [0.0, lateral], atol=1e-4)
        assert abs(wrap_angle(float(after.steps["yaw_rad"][0]) - float(before.steps["yaw_rad"][0])) - yaw) < 1e-5
        # the first observation is the perturbed one: the route ahead lies to the other side
        route_left = after.steps["obs_state"][0, 4] * 20.0  # the route 2 m ahead, left of the ego
        assert np.sign(route_left) == -np.sign(lateral) or abs(lateral) < 0.2
        # the expert steers back onto its route and completes it without infractions (min_speed aside: the
        # unperturbed expert has those too)
        assert record.status is RouteStatus.COMPLETED
        assert {kind for kind, count in record.infractions.items() if count} <= {Infraction.MIN_SPEED}
        xy = np.stack([after.steps["x_m"], after.steps["y_m"]], axis=-1)
        later = int(np.searchsorted(after.steps["time_s"], 8.0))
        route = np.stack([before.steps["x_m"], before.steps["y_m"]], axis=-1)
        distance = np.linalg.norm(route[None, :, :] - xy[later][None, None, :], axis=-1).min()
        assert distance < 0.3, f"{scenario.traffic_seed}: {distance:.2f} m off the expert's unperturbed path at 8 s"
    assert moved >= 1


class _Standing:
    """A learner that never drives off: it brakes whatever it sees."""

    def act(self, observation: dict) -> np.ndarray:
        return np.tile(np.float32([0.0, -1.0]), (len(observation["state"]), 1))

    def reset(self, done: np.ndarray) -> None:
        pass


def test_the_expert_takes_over_a_learner_that_stands_where_it_would_drive() -> None:
    scenarios = [sample_scenario(seed) for seed in (12, 3)]
    sim = SimConfig(traffic_vehicles=0, pedestrians=0)
    [(alone, _), _] = rollout(scenarios, sim=sim, driver=lambda world: _Standing(), policy_name="standing",
                              tags={"purpose": "dagger"}, options=RolloutOptions(labels=True))
    assert "expert_drives" not in alone.steps and "takeovers" not in alone.metadata
    assert alone.steps["route_progress_m"].max() - alone.steps["route_progress_m"][0] < 0.5, "it never moved"
    [(helped, _), (other, _)] = rollout(scenarios, sim=sim, driver=lambda world: _Standing(),
                                        policy_name="standing", tags={"purpose": "dagger"},
                                        options=RolloutOptions(labels=True, takeover_s=2.0))
    for episode in (helped, other):
        drives = episode.steps["expert_drives"]
        dt = episode.metadata["dt_s"]
        first = int(np.argmax(drives))
        # it stood 2 s (the expert wanting to go all along), then the expert drove it until it was under way
        assert drives.any() and abs(first * dt - 2.0) <= 2 * dt
        assert episode.metadata["takeovers"] >= 2, "the learner stopped it again, and it was taken over again"
        speed = episode.steps["speed_mps"]
        assert speed[drives].max() <= 3.0 + 1.0 and speed.max() > 2.0
        # what drove was the expert's label; the learner's steps are its own braking
        np.testing.assert_allclose(episode.steps["action"][drives], episode.steps["label"][drives], atol=1e-6)
        np.testing.assert_array_equal(episode.steps["action"][~drives][:, 1], -1.0)
        assert episode.steps["route_progress_m"].max() - episode.steps["route_progress_m"][0] > 10.0


def test_a_driver_that_plans_keeps_its_waypoints_in_the_map_frame_with_each_step() -> None:
    import torch

    from autoloop.episodes.dataset import unpack_bev
    from autoloop.rollout import PolicyDriver
    from policies.waypoints import WaypointNet, WaypointNetConfig, WaypointPolicy
    from sim.geometry import to_map_frame

    torch.manual_seed(0)
    sim = SimConfig(traffic_vehicles=2, pedestrians=0, batch_size=2)
    bev = sim.bev()
    learner = WaypointPolicy(WaypointNet(WaypointNetConfig(len(Channel), bev.size_px, STATE_SIZE, width=4, hidden=16)))
    scenarios = [sample_scenario(seed, traffic_vehicles=2).model_copy(update={"timeout_s": 3.0}) for seed in (12, 3)]
    options = RolloutOptions(labels=True)
    for (episode, _) in rollout(scenarios, sim=sim, driver=PolicyDriver.of(learner), policy_name="waypoints",
                                tags={"purpose": "eval"}, options=options):
        steps = episode.num_steps
        plan = episode.steps["plan_xy"].reshape(steps, 4, 2)
        # what the network predicts from the observations it acted on, put in the map frame at each step
        learner.act({"bev": unpack_bev(episode.steps["obs_bev"], np.arange(steps), (len(Channel), bev.size_px,
                                                                                     bev.size_px)),
                     "state": episode.steps["obs_state"]})
        ego = np.stack([episode.steps["x_m"], episode.steps["y_m"]], axis=-1)[:, None]
        expected = to_map_frame(learner.plan_xy, ego, episode.steps["yaw_rad"].astype(np.float64)[:, None])
        np.testing.assert_allclose(plan, expected, atol=2e-3)
        assert np.abs(learner.plan_xy).max() > 0.01, "an untrained network still predicts some waypoints"
    # the expert plans too: its stored plan is its label trajectory, in the map frame
    [(expert, _)] = rollout(scenarios[:1], sim=sim, driver=expert_driver, policy_name="expert",
                            tags={"purpose": "collect"}, options=options)
    ego = np.stack([expert.steps["x_m"], expert.steps["y_m"]], axis=-1)[:, None]
    labelled = to_map_frame(expert.steps["label_plan_xy"].reshape(expert.num_steps, -1, 2).astype(np.float64), ego,
                            expert.steps["yaw_rad"].astype(np.float64)[:, None])
    np.testing.assert_allclose(expert.steps["plan_xy"].reshape(labelled.shape), labelled, atol=2e-3)
    # a driver that does not plan stores none
    [(standing, _)] = rollout(scenarios[:1], sim=sim, driver=lambda world: _Standing(), policy_name="standing",
                              tags={"purpose": "eval"})
    assert "plan_xy" not in standing.steps
