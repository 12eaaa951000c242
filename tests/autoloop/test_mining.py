"""Trigger mining and log replay: triggers where the log has them (and none where it has not), and every real
fleet log replayed closed-loop in the embedded simulator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from autoloop.episodes import Episode
from autoloop.fleet.av2 import read_log
from autoloop.fleet.mining import (
    HARD_BRAKE_MPS2,
    NEAR_MISS_TTC_S,
    mine,
    replay_scenario,
    stored_map,
    trigger_events,
)
from policies.expert import ExpertDriver
from sim.embedded.world import World
from sim.scenarios import Scenario
from sim.scenarios.events import LogReplay
from sim.scenarios.suites import scenario_slots
from tests.autoloop.av2_logs import log_map, logs


def _drive_straight(speed: np.ndarray, *, lead_x: float | None = None) -> Episode:
    """An ego driving along +x at the given speeds (10 Hz); optionally a car standing at ``lead_x``."""
    n = len(speed)
    time = np.arange(n, dtype=np.float32) * 0.1
    x = np.concatenate([[0.0], np.cumsum(speed[:-1] * 0.1)])
    steps = {"step": np.arange(n, dtype=np.int32), "time_s": time, "x_m": x, "y_m": np.zeros(n),
             "yaw_rad": np.zeros(n, dtype=np.float32), "speed_mps": speed.astype(np.float32),
             "accel_mps2": np.gradient(speed, 0.1).astype(np.float32), "intervention": np.zeros(n, dtype=bool)}
    actors = None
    if lead_x is not None:
        actors = {"step": np.arange(n, dtype=np.int32), "actor_id": np.array(["lead"] * n, dtype=object),
                  "kind": np.array(["vehicle"] * n, dtype=object), "x_m": np.full(n, lead_x), "y_m": np.zeros(n),
                  "yaw_rad": np.zeros(n, dtype=np.float32), "length_m": np.full(n, 4.5, dtype=np.float32),
                  "width_m": np.full(n, 1.9, dtype=np.float32), "speed_mps": np.zeros(n, dtype=np.float32),
                  "observed": np.ones(n, dtype=bool)}
    return Episode("synthetic-1", "fleet", steps, {"synthetic": True}, actors=actors)


def test_a_hard_brake_before_a_standing_car_is_mined_and_steady_driving_is_not() -> None:
    steady = _drive_straight(np.full(100, 8.0))
    assert mine(steady) == []
    speed = np.concatenate([np.full(30, 10.0), np.maximum(10.0 - 6.0 * 0.1 * np.arange(1, 31), 0.0), np.zeros(40)])
    braking = _drive_straight(speed, lead_x=47.0)
    triggers = mine(braking)
    kinds = {t.kind for t in triggers}
    assert {"hard_brake", "near_miss"} <= kinds, triggers
    brake = next(t for t in triggers if t.kind == "hard_brake")
    assert 28 <= brake.step <= 32 and brake.value < HARD_BRAKE_MPS2
    near = next(t for t in triggers if t.kind == "near_miss")
    assert near.actor_id == "lead" and near.value < NEAR_MISS_TTC_S
    events = trigger_events(triggers)
    assert list(events["kind"]) == [f"trigger:{t.kind}" for t in triggers]
    assert len(events["time_s"]) == len(triggers)


def test_every_fleet_log_mines_and_replays_closed_loop_in_the_embedded_simulator(shared_data: Path) -> None:
    mined = {}
    for log_dir in logs(shared_data):
        episode = read_log(log_dir)
        triggers = mine(episode)
        mined[episode.episode_id] = [t.kind for t in triggers]
        graph = log_map(log_dir)
        start = max(triggers[0].step - 30, 0) if triggers else 0
        scenario = replay_scenario(episode, map_name=graph.name, start_step=start)
        assert Scenario.from_yaml(scenario.to_yaml()) == scenario
        replayed = scenario.events[0]
        assert len(replayed.actors) > 5  # type: ignore[union-attr]
        world = World(graph, 1, scenario_slots([scenario]))
        world.reset([scenario])
        assert int(world.scene.actors.valid[0].sum()) == len(replayed.actors)  # type: ignore[union-attr]
        assert world.ego.speed_mps[0] == pytest.approx(float(episode.steps["speed_mps"][start]), abs=1e-3)
        expert = ExpertDriver(world)
        while world.running[0]:
            world.step(expert.act())
        record = world.route_record(0)
        assert record.route_completion > 0.9, (episode.episode_id, record)
    # the forecasting scenario brakes hard (-4.6 m/s²); the first sensor log follows a car closely
    assert "hard_brake" in mined["av2f-0a1e6f0a-1817-4a98-b02e-db8c9327d151"]
    assert any(mined.values())


def test_the_synthetic_fleet_is_labelled_and_its_interventions_are_mined() -> None:
    from autoloop.fleet.synthetic import synthetic_fleet

    episodes = synthetic_fleet(4, seed=1)
    assert len(episodes) == 4
    interventions = 0
    for episode in episodes:
        assert episode.metadata["synthetic"] is True and episode.metadata["dataset"] == "synthetic-fleet"
        assert episode.source == "fleet" and episode.actors is not None and len(episode.actors["step"]) > 0
        assert np.allclose(np.diff(episode.steps["time_s"]), 0.1, atol=1e-3)
        flags = episode.steps["intervention"].astype(bool)
        starts = np.flatnonzero(np.diff(np.concatenate([[False], flags])) > 0)
        assert episode.metadata["interventions"] == len(starts)
        mined = [t.step for t in mine(episode) if t.kind == "intervention"]
        assert set(mined) <= set(starts.tolist()) and (len(mined) > 0) == (len(starts) > 0)
        interventions += len(starts)
    assert interventions > 0, "the safety driver took over somewhere"


def test_infractions_in_a_sim_episodes_events_table_are_triggers() -> None:
    episode = _drive_straight(np.full(50, 8.0))
    episode.events = {"time_s": np.array([2.0, 3.0], dtype=np.float32),
                      "kind": np.array(["collision_vehicle", "trigger:hard_brake"], dtype=object),
                      "x_m": np.array([16.0, 24.0]), "y_m": np.zeros(2),
                      "actor_id": np.array(["7", ""], dtype=object), "detail": np.array(["", ""], dtype=object)}
    triggers = mine(episode)
    assert [(t.kind, t.step, t.actor_id) for t in triggers] == [("infraction", 20, "7")]


def test_autoloop_mine_exports_replays_of_the_ingested_logs_and_scores_them(shared_data: Path,
                                                                           tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from autoloop.cli import app
    from autoloop.episodes import EpisodeStore

    runner = CliRunner()
    home = tmp_path / "home"
    ingested = runner.invoke(app, ["ingest", str(shared_data / "av2"), "--home", str(home)])
    assert ingested.exit_code == 0, ingested.output
    mined = runner.invoke(app, ["mine", "--replay", "--home", str(home)], terminal_width=200)
    assert mined.exit_code == 0, mined.output
    exported = sorted((home / "replays").glob("*.yaml"))
    assert any("av2f-0a1e6f0a" in p.name and "hard_brake" in p.name for p in exported), mined.output
    store = EpisodeStore(home / "episodes")
    tagged = store.query("SELECT episode_id, kind, replay FROM triggers ORDER BY episode_id").to_pylist()
    assert {"episode_id": "av2f-0a1e6f0a-1817-4a98-b02e-db8c9327d151", "kind": "hard_brake",
            "replay": "replays/av2f-0a1e6f0a-1817-4a98-b02e-db8c9327d151-hard_brake-22.yaml"} in tagged
    assert len(tagged) == len(exported)
    for path in exported:  # each replay reads back on its map from the store
        text = path.read_text()
        scenario_map = next(line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("map_name:"))
        stored_map(store, scenario_map)
        assert Scenario.from_yaml(text, source=path).map_name == scenario_map
    logged = runner.invoke(app, ["mine", "--non-reactive", "--home", str(home)], terminal_width=200)
    assert logged.exit_code == 0, logged.output
    as_recorded = sorted((home / "replays").glob("*-log.yaml"))
    assert len(as_recorded) == len(exported)
    for path in as_recorded:
        replay = Scenario.from_yaml(path.read_text(), source=path).events[0]
        assert isinstance(replay, LogReplay) and not replay.reactive and any(a.track for a in replay.actors)


def test_every_fleet_log_replays_non_reactively_along_its_recorded_tracks(shared_data: Path) -> None:
    for log_dir in logs(shared_data):
        episode = read_log(log_dir)
        graph = log_map(log_dir)
        scenario = replay_scenario(episode, map_name=graph.name, start_step=10, reactive=False)
        assert Scenario.from_yaml(scenario.to_yaml()) == scenario
        replay = scenario.events[0]
        assert isinstance(replay, LogReplay) and not replay.reactive
        tracked = [actor for actor in replay.actors if len(actor.track) > 20]
        assert tracked, episode.episode_id
        # each track is the log's: the actor's rows of the actors table, from the replay's start
        actor = tracked[0]
        table = episode.actors
        assert table is not None
        rows = np.flatnonzero((table["actor_id"] == actor.actor_id.split("#")[0]) & (table["step"] >= 10))
        first = rows[np.argmin(table["step"][rows])]
        assert (actor.track[0][1], actor.track[0][2]) == pytest.approx((table["x_m"][first], table["y_m"][first]),
                                                                       abs=1e-3)
        config = scenario_slots([scenario])
        world = World(graph, 1, config)
        world.reset([scenario])
        first_slot = config.max_vehicles + config.max_pedestrians  # events take the slots after the background's
        expert = ExpertDriver(world)
        steps = 0
        while world.running[0]:
            world.step(expert.act())
            steps += 1
            if steps % 25:
                continue
            t = float(world.time_s[0])  # every actor is where its record has it, whatever the ego did
            for k, replayed in enumerate(replay.actors):
                track, slot = np.array(replayed.track), first_slot + k
                seen = track[0, 0] - 1e-9 <= t <= track[-1, 0] + 1e-9
                assert bool(world.scene.actors.valid[0, slot]) == seen
                if seen:
                    assert world.scene.actors.x_m[0, slot] == pytest.approx(np.interp(t, track[:, 0], track[:, 1]),
                                                                       abs=1e-6)
        record = world.route_record(0)
        assert record.route_completion > 0.8, (episode.episode_id, record)
