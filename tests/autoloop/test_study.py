"""The driving-quality study (``autoloop bench drive``) at its smallest: every row is there, scored on validation
routes too, and a second run resumes from the work folder instead of training again."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoloop.config import TrainConfig
from autoloop.training.study import VALIDATION_SEED, StudyConfig, run_study


@pytest.mark.slow  # (minutes on 2 cores: it trains every kind of driver and scores each on its routes)
def test_the_study_scores_every_driver_and_resumes_from_its_folder(tmp_path: Path) -> None:
    study = StudyConfig(train_routes=2, eval_every=126, dagger_rounds=1, dagger_routes=1, ppo_timesteps=64,
                        sac_timesteps=16, start_perturbation=(0.5, 0.1), validation_routes=2,
                        train=TrainConfig(epochs=1, batch_size=64, threads=1, width=4, hidden=16,
                                          steering="waypoints"))
    table = run_study(tmp_path, study)
    assert table["routes"] == 2
    rows = {row["driver"]: row for row in table["rows"]}
    assert list(rows) == ["expert", "bc", "dagger-1", "dagger-1 route steering", "ppo", "sac"]
    assert rows["expert"]["driving_score"] > 50.0
    for row in rows.values():
        assert row["routes"] == 2 and 0.0 <= row["driving_score"] <= 100.0
        assert row["validation"]["routes"] == 2 and 0.0 <= row["validation"]["driving_score"] <= 100.0
    assert rows["expert"]["validation"]["driving_score"] > 50.0
    drivers = {name: (tmp_path / f"{name}.pt").stat().st_mtime_ns for name in ("bc", "dagger-1", "ppo", "sac")}
    again = run_study(tmp_path, study)
    assert [row["driving_score"] for row in again["rows"]] == [row["driving_score"] for row in table["rows"]]
    assert {name: (tmp_path / f"{name}.pt").stat().st_mtime_ns for name in drivers} == drivers, "nothing retrained"


def test_the_study_never_trains_on_its_validation_routes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dagger_rounds"):
        run_study(tmp_path, StudyConfig(dagger_rounds=VALIDATION_SEED, validation_routes=2))
