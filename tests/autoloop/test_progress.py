"""Long work says how far it is against its total: log lines (the console without a terminal, and the Prefect
run's log) and, on a terminal, a rich bar."""

from pathlib import Path

import pytest

from autoloop import progress
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
