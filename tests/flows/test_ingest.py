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
