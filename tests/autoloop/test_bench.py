import json
from pathlib import Path

from typer.testing import CliRunner

from autoloop.bench import bench_sim
from autoloop.cli import app
from autoloop.episodes import EpisodeStore


def test_bench_sim_measures_both_modes() -> None:
    results = bench_sim(batch_sizes=[2], vehicles=3, min_seconds=0.05, max_steps=3)
    assert [(r.batch_size, r.bev) for r in results] == [(2, False), (2, True)]
    for result in results:
        assert 1 <= result.steps <= 3 and result.env_steps_per_s > 0 and result.peak_memory_mb > 0
        assert 0 < result.vehicle_steps_per_s <= 3 * result.env_steps_per_s + 1.0  # rates are rounded
    assert results[0].observations_per_s == 0.0 and results[1].observations_per_s == results[1].env_steps_per_s


def test_bench_command_prints_json() -> None:
    result = CliRunner().invoke(app, ["bench", "sim", "--batch", "1", "--vehicles", "2", "--seconds", "0.05"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{"):])
    assert report["benchmark"] == "sim" and len(report["results"]) == 2


def test_bench_expert_reports_every_scenario_type_of_the_suite() -> None:
    result = CliRunner().invoke(app, ["bench", "expert", "--suite", "smoke"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{"):])
    assert report["benchmark"] == "expert" and report["suite"] == "smoke" and len(report["suite_hash"]) == 16
    rows = {row["scenario_type"]: row for row in report["results"]}
    assert set(rows) == {"PedestrianCrossing", "HardBreakRoute", "OppositeVehicleTakingPriority", "ParkedObstacle",
                         "Route", "all"}
    assert rows["all"]["routes"] == 5
    for row in rows.values():
        assert 0.0 <= row["driving_score"] <= row["route_completion"] <= 100.0
        assert 0.0 <= row["comfort"] <= 1.0
    assert rows["all"]["route_completion"] == 100.0  # the expert finishes every smoke route


def test_bench_store_prints_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "store", "--episodes", "3", "--steps", "20", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{"):])
    assert report["benchmark"] == "store" and report["ego_steps"] == 60
    # the real format: autoloop's state vector and a 9-channel 64 x 64 BEV, bit-packed
    assert report["state_size"] == 38 and report["bev_shape"] == [9, 64, 64] and report["bev_bytes_per_step"] == 4608
    assert report["write_steps_per_s"] > 0 and report["read_steps_per_s"] > 0 and report["query_seconds"] > 0
    assert len(EpisodeStore(tmp_path / "episodes").episode_ids()) == 3


def test_bench_data_prints_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "data", "--episodes", "2", "--steps", "30", "--bev-size", "16",
                                      "--workers", "0", "--workers", "1", "--batch-size", "16", "--no-ddp",
                                      "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{"):])
    [row] = report["results"]
    assert report["benchmark"] == "data" and row["bev_shape"] == [9, 16, 16] and row["samples"] == 60
    assert set(row["loader_samples_per_s"]) == {"0", "1"} and all(r > 0 for r in row["loader_samples_per_s"].values())
    assert row["train_step_samples_per_s"] > 0 and row["peak_rss_mb"] > 0 and row["ddp"] is None
    ratio = row["loader_samples_per_s"]["1"] / row["train_step_samples_per_s"]  # (the loader with the most workers)
    assert abs(row["loader_over_train"] - ratio) <= 0.01 * ratio + 0.01
