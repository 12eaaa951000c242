"""Maps named by file (``opendrive:<path>``, ``av2:<path>``), resolved against the data root."""

from pathlib import Path

import pytest

from sim.maps import data_root, get_map


def test_the_data_root_is_the_environment_or_shared_data_beside_the_repository(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AUTOLOOP_DATA", raising=False)
    assert data_root() == Path(__file__).resolve().parents[4] / "shared" / "data"
    monkeypatch.setenv("AUTOLOOP_DATA", str(tmp_path))
    assert data_root() == tmp_path


def test_av2_and_opendrive_files_load_once_under_their_name(shared_data: Path) -> None:
    archive = next((shared_data / "av2" / "forecasting").rglob("log_map_archive_*.json"))
    name = f"av2:{archive.relative_to(shared_data)}"
    graph = get_map(name)
    assert graph.name == name and len(graph.lanes) > 10
    assert get_map(name) is graph
    pytest.importorskip("carla", reason="the OpenDRIVE importer needs the carla package (autoloop[carla])")
    town = get_map("opendrive:carla/maps/Town01.xodr")
    assert town.name == "opendrive:carla/maps/Town01.xodr" and town.light_groups > 0
    absolute = get_map(f"opendrive:{shared_data / 'carla' / 'maps' / 'Town01.xodr'}")
    assert [lane.length_m for lane in absolute.lanes] == [lane.length_m for lane in town.lanes]


def test_missing_or_broken_map_files_name_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AUTOLOOP_DATA", str(tmp_path))
    with pytest.raises(ValueError, match=rf"map 'opendrive:maps/Town99\.xodr': no file at {tmp_path}/maps/Town99"):
        get_map("opendrive:maps/Town99.xodr")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match=rf"{tmp_path}/broken\.json: not a readable AV2 map archive"):
        get_map("av2:broken.json")
    with pytest.raises(ValueError, match=r"unknown map 'csv:x'.*'opendrive:<file\.xodr>'"):
        get_map("csv:x")
