"""Fleet logs: the Argoverse 2 importers on every shared log (physical sanity), idempotent ingest, and a fuzz test
of the quarantine on mutated copies of the real files."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from autoloop.cli import app
from autoloop.episodes import EpisodeStore
from autoloop.fleet import FleetLogError, ingest, read_log, read_map, read_sensor_log
from autoloop.fleet.av2 import dataset_of, log_files, yaw_from_quaternion
from tests.autoloop.av2_logs import logs

KINDS = {"vehicle", "pedestrian", "cyclist", "static", "other"}
STEP_TYPES = {"step": np.int32, "time_s": np.float32, "x_m": np.float64, "y_m": np.float64, "yaw_rad": np.float32,
              "speed_mps": np.float32, "accel_mps2": np.float32, "yaw_rate_radps": np.float32, "intervention": bool}
ACTOR_TYPES = {"step": np.int32, "actor_id": object, "kind": object, "x_m": np.float64, "y_m": np.float64,
               "yaw_rad": np.float32, "length_m": np.float32, "width_m": np.float32, "speed_mps": np.float32,
               "observed": bool}
#: Plausible median (length, width) ranges in metres per actor kind.
SIZES_M = {"vehicle": ((3.5, 8.0), (1.6, 2.6)), "pedestrian": ((0.3, 1.2), (0.3, 1.2)),
           "cyclist": ((1.0, 2.5), (0.3, 1.2)), "static": ((0.1, 2.0), (0.1, 2.0))}


def _logs(shared_data: Path) -> list[Path]:
    found = logs(shared_data)
    assert len(found) == 3
    return found


def _episode_id(log: Path) -> str:
    return f"av2{'s' if log.parent.name == 'sensor' else 'f'}-{log.name}"


def test_every_log_is_a_physically_sane_episode(shared_data: Path) -> None:
    for log in _logs(shared_data):
        episode = read_log(log)
        steps, actors = episode.steps, episode.actors
        assert actors is not None
        assert episode.episode_id == _episode_id(log) and episode.source == "fleet"
        assert {name: steps[name].dtype for name in STEP_TYPES} == {k: np.dtype(v) for k, v in STEP_TYPES.items()}
        assert {name: actors[name].dtype for name in ACTOR_TYPES} == {k: np.dtype(v) for k, v in ACTOR_TYPES.items()}
        meta = episode.metadata
        assert meta["map_name"] == f"av2:{log.name}" and meta["dt_s"] == 0.1 and meta["synthetic"] is False
        assert meta["dataset"] == ("av2-sensor" if log.parent.name == "sensor" else "av2-forecasting")
        assert meta["duration_s"] == pytest.approx(0.1 * (episode.num_steps - 1))
        # 10 Hz over the whole log (sensor logs ≈ 16 s, scenarios 11 s)
        np.testing.assert_allclose(np.diff(steps["time_s"]), 0.1, atol=1e-5)
        assert episode.num_steps >= (150 if log.parent.name == "sensor" else 110)
        np.testing.assert_array_equal(steps["step"], np.arange(episode.num_steps))
        assert not steps["intervention"].any()
        # kinematics of a car in city traffic
        assert steps["speed_mps"].min() >= 0 and steps["speed_mps"].max() <= 40
        assert steps["speed_mps"].max() > 3  # every sample log drives somewhere
        assert np.mean(np.abs(steps["accel_mps2"]) < 8) >= 0.99
        assert np.abs(steps["yaw_rate_radps"]).max() < 1.5
        heading = np.arctan2(np.gradient(steps["y_m"]), np.gradient(steps["x_m"]))
        moving = steps["speed_mps"] > 2
        assert np.abs(np.angle(np.exp(1j * (heading - steps["yaw_rad"])))[moving]).max() < 0.3  # drives forwards
        # the ego drives on the lanes of its own map
        graph = read_map(log)
        assert graph.name == meta["map_name"]
        where = graph.locate(np.stack([steps["x_m"], steps["y_m"]], axis=1), steps["yaw_rad"].astype(np.float64))
        drivable = np.isin([graph.lanes[i].lane_type for i in where.lane], ("vehicle", "bus"))
        on_lane = (np.abs(where.lateral_m) < 2.0) & drivable
        assert on_lane.mean() >= 0.9
        # actors: known kinds, plausible sizes, one row per (step, actor), in the map frame
        assert set(actors["kind"]) <= KINDS and "AV" not in set(actors["actor_id"])
        assert (actors["step"] >= 0).all() and (actors["step"] < episode.num_steps).all()
        keys = {(s, a) for s, a in zip(actors["step"].tolist(), actors["actor_id"].tolist(), strict=True)}
        assert len(keys) == len(actors["step"])
        assert len(set(actors["actor_id"])) >= 20
        for kind, ((low_l, high_l), (low_w, high_w)) in SIZES_M.items():
            mine = actors["kind"] == kind
            if mine.any():
                assert low_l <= np.median(actors["length_m"][mine]) <= high_l, (log.name, kind)
                assert low_w <= np.median(actors["width_m"][mine]) <= high_w, (log.name, kind)
        assert np.isfinite(actors["speed_mps"]).all() and (actors["speed_mps"] >= 0).all()
        assert np.median(actors["speed_mps"][actors["kind"] == "static"]) < 0.5
        if log.parent.name == "sensor":  # cuboids moved from the ego frame: moving cars are on lanes too
            car = (actors["kind"] == "vehicle") & (actors["speed_mps"] > 3)
            cars = graph.locate(np.stack([actors["x_m"][car], actors["y_m"][car]], axis=1),
                                actors["yaw_rad"][car].astype(np.float64), max_heading_error_rad=0.5)
            assert np.mean(np.abs(cars.lateral_m) < 2.0) >= 0.8
            assert actors["observed"].all()
        else:
            assert actors["observed"].any() and not actors["observed"].all()


def test_yaw_from_quaternion() -> None:
    yaw = np.array([-3.0, -1.0, 0.0, 0.5, 3.0])
    zero = np.zeros_like(yaw)
    np.testing.assert_allclose(yaw_from_quaternion(np.cos(yaw / 2), zero, zero, np.sin(yaw / 2)), yaw)


def _write_sensor_log(folder: Path, *, ego_yaw_rad: float = np.pi / 2, annotations: str = "annotations.feather",
                      ego_box: bool = False) -> Path:
    """A 2 s log: the ego drives at 10 m/s along its heading from (100, 50) with poses at 100 Hz; one car sits 5 m
    ahead of it in the ego frame, facing left of the ego (+90°), at every 10 Hz sweep. With ``ego_box``, the ego's
    own cuboid (category EGO_VEHICLE, at the ego frame's origin) is annotated at every sweep too."""
    folder.mkdir(parents=True)
    time_ns = 1_000_000_000 + np.arange(201, dtype=np.int64) * 10_000_000
    travelled = 10.0 * (time_ns - time_ns[0]) / 1e9
    half = np.full(len(time_ns), ego_yaw_rad / 2)
    zero = np.zeros(len(time_ns))
    feather.write_feather(pa.table({
        "timestamp_ns": time_ns, "qw": np.cos(half), "qx": zero, "qy": zero, "qz": np.sin(half),
        "tx_m": 100 + travelled * np.cos(ego_yaw_rad), "ty_m": 50 + travelled * np.sin(ego_yaw_rad), "tz_m": zero,
    }), folder / "city_SE3_egovehicle.feather")
    sweeps = time_ns[5::10]
    ones = np.ones(len(sweeps))
    table = pa.table({
        "timestamp_ns": sweeps, "track_uuid": ["car"] * len(sweeps), "category": ["REGULAR_VEHICLE"] * len(sweeps),
        "length_m": 4.5 * ones, "width_m": 1.9 * ones, "height_m": 1.5 * ones,
        "qw": np.cos(np.pi / 4) * ones, "qx": 0 * ones, "qy": 0 * ones, "qz": np.sin(np.pi / 4) * ones,
        "tx_m": 5 * ones, "ty_m": 0 * ones, "tz_m": 0 * ones, "num_interior_pts": np.full(len(sweeps), 100),
    })
    if ego_box:
        ego = pa.table({
            "timestamp_ns": sweeps, "track_uuid": ["ego"] * len(sweeps), "category": ["EGO_VEHICLE"] * len(sweeps),
            "length_m": 4.9 * ones, "width_m": 2.0 * ones, "height_m": 1.7 * ones,
            "qw": ones, "qx": 0 * ones, "qy": 0 * ones, "qz": 0 * ones,
            "tx_m": 0.001 * ones, "ty_m": 0 * ones, "tz_m": 0 * ones, "num_interior_pts": np.full(len(sweeps), 0),
        })
        table = pa.concat_tables([table, ego]).sort_by([("timestamp_ns", "ascending")])
    feather.write_feather(table, folder / annotations)
    return folder


def test_sensor_log_resampling_and_frames_worked_out_by_hand(tmp_path: Path) -> None:
    episode = read_sensor_log(_write_sensor_log(tmp_path / "log-1"))
    steps, actors = episode.steps, episode.actors
    assert actors is not None
    # the grid starts on the first sweep (50 ms after the first pose) and spans the poses: 1.95 s -> 20 steps
    assert episode.episode_id == "av2s-log-1" and episode.num_steps == 20
    np.testing.assert_allclose(steps["x_m"], 100.0, atol=1e-9)
    np.testing.assert_allclose(steps["y_m"], 50 + 0.5 + np.arange(20), atol=1e-9)
    np.testing.assert_allclose(steps["speed_mps"], 10.0, atol=1e-4)
    np.testing.assert_allclose(steps["accel_mps2"], 0.0, atol=1e-3)
    np.testing.assert_allclose(steps["yaw_rad"], np.pi / 2, atol=1e-6)
    np.testing.assert_allclose(steps["yaw_rate_radps"], 0.0, atol=1e-6)
    # 5 m ahead of an ego heading +y: 5 m further up in the city frame, facing -x (90° + 90°)
    assert len(actors["step"]) == 20 and list(actors["step"]) == list(range(20))
    np.testing.assert_allclose(actors["x_m"], 100.0, atol=1e-9)
    np.testing.assert_allclose(actors["y_m"], steps["y_m"] + 5, atol=1e-9)
    np.testing.assert_allclose(np.abs(actors["yaw_rad"]), np.pi, atol=1e-6)
    np.testing.assert_allclose(actors["speed_mps"], 10.0, atol=1e-4)  # it moves with the ego
    assert set(actors["kind"]) == {"vehicle"} and actors["length_m"][0] == pytest.approx(4.5)


@pytest.mark.parametrize("annotations", ["annotations.feather", "annotations_with_ego.feather"])
def test_the_egos_own_cuboid_is_never_an_actor(tmp_path: Path, annotations: str) -> None:
    log = _write_sensor_log(tmp_path / "log-1", annotations=annotations, ego_box=True)
    assert dataset_of(log) == "av2-sensor" and log / annotations in log_files(log)
    episode = read_sensor_log(log)
    actors = episode.actors
    assert actors is not None and set(actors["actor_id"]) == {"car"} and len(actors["step"]) == 20
    nearest_m = np.min(np.hypot(actors["x_m"] - episode.steps["x_m"], actors["y_m"] - episode.steps["y_m"]))
    assert nearest_m == pytest.approx(5.0, abs=1e-6)  # the car ahead, not the ego's own box at 0.001 m


def test_bad_files_raise_naming_file_and_field(tmp_path: Path) -> None:
    log = _write_sensor_log(tmp_path / "log-1")
    pose = feather.read_table(log / "city_SE3_egovehicle.feather")
    feather.write_feather(pose.set_column(5, "tx_m", pa.array(np.r_[np.nan, pose["tx_m"].to_numpy()[1:]])),
                        log / "city_SE3_egovehicle.feather")
    with pytest.raises(FleetLogError, match=r"city_SE3_egovehicle\.feather: tx_m: 1 non-finite values") as caught:
        read_sensor_log(log)
    assert caught.value.field == "tx_m" and caught.value.path == log / "city_SE3_egovehicle.feather"
    (log / "annotations.feather").unlink()
    feather.write_feather(pose, log / "city_SE3_egovehicle.feather")
    with pytest.raises(FleetLogError, match=r"annotations\.feather: \(file\): the file is missing"):
        read_sensor_log(log)
    with pytest.raises(FleetLogError, match=r"map: \(file\): expected one log_map_archive_\*\.json, found 0"):
        read_map(log)


def test_ingest_twice_lands_each_log_once(shared_data: Path, tmp_path: Path) -> None:
    store = EpisodeStore(tmp_path / "episodes")
    first = ingest([shared_data / "av2"], store, tmp_path / "quarantine")
    expected = sorted(_episode_id(log) for log in _logs(shared_data))
    assert sorted(first.landed) == expected and not first.skipped and not first.quarantined
    second = ingest([shared_data / "av2" / "sensor", shared_data / "av2"], store, tmp_path / "quarantine")
    assert not second.landed and sorted(second.skipped) == sorted(expected + expected[1:])
    assert store.episode_ids() == expected and not (tmp_path / "quarantine").exists()
    metadata = store.metadata("fleet")
    assert len({meta["origin_sha256"] for meta in metadata.values()}) == 3
    stored = store.read(expected[0])
    assert stored.num_steps == read_log(_logs(shared_data)[-1]).num_steps
    assert stored.metadata["map_name"] == f"av2:{_logs(shared_data)[-1].name}"


@pytest.mark.skipif(not hasattr(EpisodeStore, "put_map"), reason="the store keeps maps from store v2 on")
def test_ingest_stores_the_map_and_actors(shared_data: Path, tmp_path: Path) -> None:
    store = EpisodeStore(tmp_path / "episodes")
    log = _logs(shared_data)[0]
    ingest([log], store, tmp_path / "quarantine")
    episode = store.read(_episode_id(log))
    assert episode.actors is not None
    assert len(episode.actors["step"]) == len(read_log(log).actors["step"])  # type: ignore[index]
    assert len(store.get_map(f"av2:{log.name}").lanes) == len(read_map(log).lanes)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------------- fuzz
_REQUIRED = {
    "city_SE3_egovehicle.feather": ("timestamp_ns", "qw", "qx", "qy", "qz", "tx_m", "ty_m"),
    "annotations.feather": ("timestamp_ns", "track_uuid", "category", "length_m", "width_m", "qw", "qx", "qy",
                            "qz", "tx_m", "ty_m", "tz_m"),
    "scenario": ("track_id", "object_type", "timestep", "observed", "position_x", "position_y", "heading",
                 "velocity_x", "velocity_y"),
}


def _read(path: Path) -> pa.Table:
    return pq.read_table(path) if path.suffix == ".parquet" else feather.read_table(path)


def _write(table: pa.Table, path: Path) -> None:
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    else:
        feather.write_feather(table, path)


def _mutate(log: Path, mutation: str, rng: np.random.Generator) -> tuple[Path, str]:
    """Break one file of the log in place; returns the file and the field a reason must name."""
    sensor = (log / "annotations.feather").exists()
    tables = [log / "city_SE3_egovehicle.feather", log / "annotations.feather"] if sensor else \
        sorted(log.glob("scenario_*.parquet"))
    path = tables[rng.integers(len(tables))]
    required = _REQUIRED.get(path.name, _REQUIRED["scenario"])
    if mutation == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[: rng.integers(len(data))])
        return path, "(file)"
    if mutation == "map":
        path = next(log.rglob("log_map_archive_*.json"))
        if rng.random() < 0.5:
            text = path.read_text()
            path.write_text(text[: rng.integers(len(text.rstrip()) - 1)])  # never only trailing whitespace
            return path, "(file)"
        data = json.loads(path.read_text())
        del data["lane_segments"]
        path.write_text(json.dumps(data))
        return path, "lane_segments"
    table = _read(path)
    if mutation == "drop":
        field = required[rng.integers(len(required))]
        table = table.drop_columns([field])
    else:
        field = {"nan": "position_x" if not sensor else "tx_m", "shuffle": "timestep" if not sensor else "timestamp_ns"
                 }[mutation]
        values = table[field].to_numpy().copy()
        if mutation == "nan":
            values[rng.integers(len(values))] = np.nan
        else:
            rng.shuffle(values)
        table = table.set_column(table.column_names.index(field), field, pa.array(values))
    _write(table, path)
    return path, field


def test_fuzz_bad_copies_are_quarantined_and_good_ones_land(shared_data: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    batch = tmp_path / "batch"
    good = []
    for log in _logs(shared_data):
        good.append(Path(shutil.copytree(log, batch / log.parent.name / log.name)))
    bad: dict[Path, tuple[Path, str]] = {}
    mutations = ["truncate", "drop", "nan", "shuffle", "map"] * 3
    for k, mutation in enumerate(mutations):
        source = good[k % len(good)]
        copy = Path(shutil.copytree(source, source.parent / f"{source.name}-bad{k}"))
        bad[copy] = _mutate(copy, mutation, rng)
    store, quarantine_dir = EpisodeStore(tmp_path / "home" / "episodes"), tmp_path / "home" / "quarantine"

    report = ingest([batch], store, quarantine_dir)

    good_ids = sorted(f"av2{'s' if log.parent.name == 'sensor' else 'f'}-{log.name}" for log in good)
    assert sorted(report.landed) == good_ids and not report.skipped
    assert store.episode_ids() == good_ids
    assert not [p for p in store.root.rglob("*") if p.name.startswith(".")]  # nothing half-written
    assert {q.log for q in report.quarantined} == set(bad)
    for record in report.quarantined:
        path, field = bad[record.log]
        assert (record.file, record.field) == (str(path), field), record.problem
        reason = json.loads((record.folder / "reason.json").read_text())
        assert (reason["file"], reason["field"], reason["problem"]) == (str(path), field, record.problem)
        assert reason["dataset"] in ("av2-sensor", "av2-forecasting") and reason["time"]
        assert (record.folder / path.relative_to(record.log)).read_bytes() == path.read_bytes()
    assert len(list(quarantine_dir.iterdir())) == len(bad)
    # a second pass changes nothing: good logs are skipped, bad ones stay quarantined
    again = ingest([batch], store, quarantine_dir)
    assert sorted(again.skipped) == good_ids and len(again.quarantined) == len(bad)
    assert store.episode_ids() == good_ids and len(list(quarantine_dir.iterdir())) == len(bad)


def test_cli_ingest(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOLOOP_HOME", str(tmp_path))  # restored afterwards (--home sets it for the run)
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", str(shared_data / "av2"), "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "3 landed, 0 skipped, 0 quarantined" in result.output
    result = runner.invoke(app, ["ingest", str(tmp_path / "nothing-here"), "--home", str(tmp_path)])
    assert result.exit_code == 1
    assert "0 landed, 0 skipped, 0 quarantined, 1 paths without logs" in result.output


def test_links_to_folders_are_not_followed_so_a_link_loop_cannot_hang_the_search(tmp_path: Path) -> None:
    import subprocess
    import sys

    batch = tmp_path / "batch"
    _write_sensor_log(batch / "log-1")
    (batch / "s1").symlink_to(".")
    (batch / "s2").symlink_to(".")
    (batch / "log-1" / "back").symlink_to("..")
    code = ("from pathlib import Path; from autoloop.fleet.ingest import find_logs; "
            f"print(find_logs(Path({str(batch)!r})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    assert done.returncode == 0 and done.stdout.strip() == f"[PosixPath('{batch / 'log-1'}')]", done.stderr
    report = ingest([batch], EpisodeStore(tmp_path / "episodes"), tmp_path / "quarantine")
    [found] = report.quarantined  # (the test's log has no map)
    assert found.log == batch / "log-1" and "log_map_archive" in found.problem


def test_a_file_linked_outside_the_given_folders_is_quarantined_unread(tmp_path: Path) -> None:
    secret = tmp_path / "elsewhere" / "secret.feather"
    secret.parent.mkdir()
    log = _write_sensor_log(tmp_path / "batch" / "log-1")
    (log / "city_SE3_egovehicle.feather").rename(secret)
    (log / "city_SE3_egovehicle.feather").symlink_to(secret)
    report = ingest([tmp_path / "batch"], EpisodeStore(tmp_path / "episodes"), tmp_path / "quarantine")
    [found] = report.quarantined
    assert not report.landed and found.problem == f"a link to {secret}, outside the folders given to ingest (not read)"
    copied = {path.name for path in found.folder.rglob("*") if path.is_file()}
    assert copied == {"annotations.feather", "reason.json"}
    # the same link into a folder that is given too is read like any file (the test's log has no map)
    report = ingest([tmp_path / "batch", tmp_path / "elsewhere"], EpisodeStore(tmp_path / "episodes"),
                    tmp_path / "quarantine")
    [found] = report.quarantined
    assert "log_map_archive" in found.problem
