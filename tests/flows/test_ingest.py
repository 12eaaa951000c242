"""The ingest flow through the real Prefect engine: real AV2 logs land, a broken copy is quarantined."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from autoloop.episodes import EpisodeStore
from flows.ingest import ingest_flow


@pytest.mark.usefixtures("prefect_harness")
def test_the_ingest_flow_lands_good_logs_and_quarantines_a_broken_one(shared_data: Path, tmp_path: Path) -> None:
    logs = tmp_path / "drop"
    good = logs / "7fab2350-7eaf-3b7e-a39d-6937a4c1bede"
    shutil.copytree(shared_data / "av2" / "sensor" / good.name, good)
    broken = logs / "0a1e6f0a-1817-4a98-b02e-db8c9327d151"
    shutil.copytree(shared_data / "av2" / "forecasting" / broken.name, broken)
    archive = next(broken.glob("log_map_archive_*.json"))
    archive.write_text(archive.read_text()[:100])  # a truncated map
    home = tmp_path / "home"
    result = ingest_flow([str(logs)], home=str(home))
    assert result["landed"] == ["av2s-7fab2350-7eaf-3b7e-a39d-6937a4c1bede"]
    assert len(result["quarantined"]) == 1 and result["quarantined"][0]["file"].endswith(archive.name)
    assert EpisodeStore(home / "episodes").episode_ids() == result["landed"]
    again = ingest_flow([str(good)], home=str(home))
    assert again["landed"] == [] and again["skipped"] == result["landed"]


@pytest.mark.usefixtures("prefect_harness")
def test_autoloops_log_lines_reach_the_flow_run_and_the_run_says_what_it_did(shared_data: Path,
                                                                            tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    broken = tmp_path / "drop" / "0a1e6f0a-1817-4a98-b02e-db8c9327d151"
    shutil.copytree(shared_data / "av2" / "forecasting" / broken.name, broken)
    next(broken.glob("log_map_archive_*.json")).write_text("{}")
    state = ingest_flow([str(tmp_path / "drop")], home=str(tmp_path / "home"), return_state=True)
    APILogWorker.drain_all(timeout=30)
    run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
    assert run.name == f"ingest {tmp_path / 'drop'}"
    ours = [log for log in logs if log.name.startswith("autoloop.")]
    assert any(log.name == "autoloop.fleet.ingest" and "quarantined" in log.message for log in ours), \
        [(log.name, log.message[:80]) for log in logs]
