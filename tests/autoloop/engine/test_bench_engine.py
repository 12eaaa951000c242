"""``autoloop bench engine`` end to end on tiny budgets: two arms, two cycles each, curves, the final paired
difference, a plot, an MLflow run, the cycles shown as progress, and a second run that goes on from what is
there."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import yaml
from typer.testing import CliRunner

from autoloop import progress
from autoloop.cli import app

TINY = {"profile": "quick", "collect": {"episodes": 4, "dataset_episodes": None},
        "train": {"epochs": 1, "finetune_epochs": 1, "batch_size": 64, "width": 4, "hidden": 16, "threads": 1},
        "evaluate": {"episodes": 2, "report_clips": 0, "bootstrap_resamples": 100},
        "gate": {"min_driving_score": 0.0, "min_route_completion": 0.0, "max_collisions_per_km": 1000.0}}


@pytest.mark.timeout(1500)
def test_bench_engine_runs_both_arms_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # a local store: one model name for both arms
    monkeypatch.setattr(progress, "EVERY_S", 0.0)  # a progress line at every update
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    work = tmp_path / "bench"
    command = ["bench", "engine", "--dir", str(work), "--cycles", "2", "--config", str(config),
               "--curve-routes", "2"]
    with caplog.at_level("INFO"):
        result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    assert _progress(caplog) == [f"bench engine: {n}/4 cycles" for n in (1, 2, 3, 4)]
    report = json.loads(result.stdout[result.stdout.index("{"):])
    assert report["benchmark"] == "engine"
    points = report["points"]
    assert [(p["arm"], p["cycle"]) for p in points] == [("engine", 1), ("engine", 2), ("control", 1), ("control", 2)]
    for point in points:
        assert 0.0 <= point["driving_score_low"] <= point["driving_score"] <= point["driving_score_high"] <= 100.0
        assert point["episodes"] == 4 and point["steps"] > 0 and point["cycle_wall_s"] > 0
        assert point["champion"].startswith("models:/autoloop-driver/")
    final = report["final"]
    assert final["suite"] == "eval-slice-2" and final["routes"] == 2
    assert final["difference_low"] <= final["difference"] <= final["difference_high"]
    assert final["difference"] == pytest.approx(final["engine_driving_score"] - final["control_driving_score"])
    assert (work / "engine.png").stat().st_size > 0
    # the arms learned differently: the engine's second collection targeted what failed, the control's did not
    engine_plan = _collection(work / "engine", cycle=2)
    control_plan = _collection(work / "control", cycle=2)
    assert {e["part"] for e in control_plan} == {"breadth"}
    assert "targeted" in {e["part"] for e in engine_plan} or _nothing_failed(work / "engine")
    # the MLflow run holds both curves
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("autoloop-bench-engine")
    [run] = client.search_runs([experiment.experiment_id])
    history = client.get_metric_history(run.info.run_id, "engine_driving_score")
    assert sorted(m.step for m in history) == [1, 2]

    caplog.clear()
    with caplog.at_level("INFO"):
        again = CliRunner().invoke(app, command)  # (nothing left to run: the same points, read back)
    assert again.exit_code == 0, again.output
    assert _progress(caplog) == []  # (4/4 from the start: nothing done, no line)
    assert json.loads(again.stdout[again.stdout.index("{"):])["points"] == points


def _progress(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The counts of the bench's progress lines (each has a rate)."""
    lines = [r.getMessage() for r in caplog.records
             if r.name == "autoloop.progress" and r.getMessage().startswith("bench engine: ")]
    assert all(" cycles/s, " in line for line in lines), lines
    return [line.split(",")[0] for line in lines]


def _collection(home: Path, *, cycle: int) -> list[dict[str, object]]:
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("autoloop")
    runs = client.search_runs([experiment.experiment_id], "tags.`autoloop.stage` = 'collect'",
                              order_by=["attributes.start_time ASC"])
    path = client.download_artifacts(runs[cycle - 1].info.run_id, "collection.json", str(home / "downloads"))
    episodes: list[dict[str, object]] = json.loads(Path(path).read_text())["episodes"]
    return episodes


def _nothing_failed(home: Path) -> bool:
    findings = json.loads((home / "engine" / "findings.json").read_text())
    return not findings["failures"]
