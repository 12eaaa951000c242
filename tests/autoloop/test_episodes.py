import json
import multiprocessing
import re
import shutil
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from autoloop.episodes import (
    Episode,
    EpisodeStore,
    SchemaError,
    create_snapshot,
    load_snapshot,
    load_training_arrays,
    read_snapshot_columns,
)
from sim.scene.observation import OBSERVATION_FORMAT, ObservationFormatError


def _episode(episode_id: str, steps: int = 5, seed: int = 0, *, source: str = "sim") -> Episode:
    rng = np.random.default_rng(seed)
    bev = rng.integers(0, 2, (steps, 2, 8, 8), dtype=np.uint8)
    return Episode(
        episode_id=episode_id,
        source=source,
        steps={
            "step": np.arange(steps, dtype=np.int32),
            "x_m": rng.standard_normal(steps),
            "action": rng.uniform(-1, 1, (steps, 2)).astype(np.float32),
            "label": rng.uniform(-1, 1, (steps, 2)).astype(np.float32),
            "obs_state": rng.standard_normal((steps, 3)).astype(np.float32),
            "obs_bev": np.packbits(bev.reshape(steps, -1), axis=1),
        },
        metadata={"bev_shape": [2, 8, 8], "tags": {"purpose": "collect"}, "scenario": {"traffic_seed": seed}},
    )


def _fleet_episode(episode_id: str) -> Episode:
    """A fleet log with all three tables (the contract's columns)."""
    steps = 4
    return Episode(
        episode_id=episode_id,
        source="fleet",
        steps={
            "step": np.arange(steps, dtype=np.int32),
            "time_s": np.arange(steps, dtype=np.float32) * 0.1,
            "x_m": np.array([0.0, 1.0, 2.0, 3.0]),
            "y_m": np.zeros(steps),
            "yaw_rad": np.zeros(steps, dtype=np.float32),
            "speed_mps": np.full(steps, 10.0, dtype=np.float32),
            "accel_mps2": np.zeros(steps, dtype=np.float32),
            "yaw_rate_radps": np.zeros(steps, dtype=np.float32),
            "intervention": np.array([False, False, True, False]),
        },
        metadata={"map_name": "av2:log-1", "origin": "/data/log-1", "dataset": "av2-sensor", "dt_s": 0.1,
                  "duration_s": 0.4, "tags": ["hard_brake"], "synthetic": False},
        actors={
            "step": np.array([0, 0, 1], dtype=np.int32),
            "actor_id": np.array(["a", "b", "a"], dtype=object),
            "kind": np.array(["vehicle", "pedestrian", "vehicle"], dtype=object),
            "x_m": np.array([5.0, 6.0, 5.5]),
            "y_m": np.array([1.0, -2.0, 1.0]),
            "yaw_rad": np.zeros(3, dtype=np.float32),
            "length_m": np.array([4.5, 0.5, 4.5], dtype=np.float32),
            "width_m": np.array([1.8, 0.5, 1.8], dtype=np.float32),
            "speed_mps": np.array([3.0, 1.0, 3.0], dtype=np.float32),
            "observed": np.array([True, True, False]),
        },
        events={
            "time_s": np.array([0.2], dtype=np.float32),
            "kind": np.array(["intervention"], dtype=object),
            "x_m": np.array([2.0]),
            "y_m": np.array([0.0]),
            "actor_id": np.array([""], dtype=object),
            "detail": np.array(['{"by": "safety driver"}'], dtype=object),
        },
    )


def _assert_columns_equal(loaded: dict[str, np.ndarray] | None, original: dict[str, np.ndarray] | None) -> None:
    assert loaded is not None and original is not None
    assert set(loaded) == set(original)
    for name, values in original.items():
        np.testing.assert_array_equal(loaded[name], values)
        assert loaded[name].dtype == values.dtype, name


def test_write_read_round_trip(tmp_path: Path) -> None:
    store = EpisodeStore(tmp_path)
    original = _episode("ep-1")
    folder = store.write(original)
    loaded = store.read("ep-1")
    assert loaded.metadata == original.metadata and loaded.source == "sim"
    _assert_columns_equal(loaded.steps, original.steps)
    assert loaded.actors is None and loaded.events is None
    assert store.episode_ids() == ["ep-1"] and store.num_steps("ep-1") == 5
    assert store.metadata()["ep-1"]["tags"] == {"purpose": "collect"}
    assert store.file("ep-1") == folder / "episode.json" and set(store.files("ep-1")) == {"ego"}
    with pytest.raises(FileExistsError):
        store.write(original)
    with pytest.raises(FileExistsError):  # the id is taken whatever the source
        store.write(_episode("ep-1", source="fleet"))


def test_all_three_tables_round_trip_in_a_dated_partition(tmp_path: Path) -> None:
    store = EpisodeStore(tmp_path)
    original = _fleet_episode("log-1")
    folder = store.write(original)
    today = datetime.now(UTC).date().isoformat()
    assert folder == tmp_path / "fleet" / f"date={today}" / "log-1"
    assert sorted(p.name for p in folder.iterdir()) == ["actors.parquet", "ego.parquet", "episode.json",
                                                       "events.parquet"]
    for path in store.files("log-1").values():
        assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"
    manifest = json.loads((folder / "episode.json").read_text())
    assert manifest["schema_version"] == 2 and manifest["date"] == today and manifest["num_steps"] == 4
    assert manifest["tables"]["actors"]["rows"] == 3
    loaded = store.read("log-1")
    _assert_columns_equal(loaded.steps, original.steps)
    _assert_columns_equal(loaded.actors, original.actors)
    _assert_columns_equal(loaded.events, original.events)
    assert loaded.metadata == original.metadata
    assert store.episode_ids("fleet") == ["log-1"] and store.episode_ids("sim") == []
    only = store.read("log-1", columns=["speed_mps"])
    assert list(only.steps) == ["speed_mps"] and only.actors is None


def test_tables_missing_a_required_column_are_refused(tmp_path: Path) -> None:
    episode = _fleet_episode("log-1")
    assert episode.actors is not None
    del episode.actors["actor_id"]
    with pytest.raises(SchemaError, match=r"log-1: the actors table lacks column\(s\) \['actor_id'\]"):
        EpisodeStore(tmp_path).write(episode)
    episode = _fleet_episode("log-1")
    assert episode.actors is not None and episode.events is not None
    episode.actors["kind"] = np.array(["vehicle", "truck", "vehicle"], dtype=object)
    with pytest.raises(SchemaError, match=r"unknown actors kind\(s\) \['truck'\]; expected one of"):
        EpisodeStore(tmp_path).write(episode)
    episode = _fleet_episode("log-1")
    assert episode.events is not None
    episode.events["kind"] = np.array(["hard_brake"], dtype=object)
    with pytest.raises(SchemaError, match=r"unknown events kind\(s\) \['hard_brake'\].*'trigger:<name>'"):
        EpisodeStore(tmp_path).write(episode)
    episode.events["kind"] = np.array(["trigger:hard_brake"], dtype=object)
    EpisodeStore(tmp_path).write(episode)
    assert EpisodeStore(tmp_path).episode_ids() == ["log-1"]


def test_failed_write_leaves_nothing_visible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = EpisodeStore(tmp_path)

    def half_write(table: object, sink: object, **kwargs: object) -> None:
        sink.write(b"PAR1 half a file")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", half_write)
    with pytest.raises(OSError, match="disk full"):
        store.write(_episode("ep-1"))
    assert store.episode_ids() == []
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_killed_writer_leaves_no_visible_episode(tmp_path: Path) -> None:
    """A process that dies after writing the data files but before the commit never exposes the episode."""
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_episodes import _fleet_episode
        from autoloop.episodes import EpisodeStore, store

        real = store._write_durably
        def write_then_die(path, data):
            if path.name == "episode.json":  # the data files are on disk; die before the marker
                os._exit(9)
            real(path, data)
        store._write_durably = write_then_die
        EpisodeStore({str(tmp_path)!r}).write(_fleet_episode("log-killed"))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 9, result.stderr
    leftovers = [p for p in tmp_path.rglob("*.parquet")]
    assert len(leftovers) == 3 and all(p.parent.name.startswith(".") for p in leftovers)  # the hidden staging
    store = EpisodeStore(tmp_path)
    assert store.episode_ids() == [] and store.query("SELECT count(*) AS n FROM ego")["n"].to_pylist() == [0]
    store.write(_fleet_episode("log-killed"))  # the id is still free
    assert store.episode_ids() == ["log-killed"]


def _write_one(root: str, episode_id: str, seed: int) -> str:
    try:
        EpisodeStore(Path(root)).write(_episode(episode_id, steps=200, seed=seed))
    except FileExistsError:
        return "exists"
    return "written"


def test_concurrent_writers_in_several_processes(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        distinct = pool.starmap(_write_one, [(str(tmp_path), f"ep-{i}", i) for i in range(8)])
        same = pool.starmap(_write_one, [(str(tmp_path), "ep-same", i) for i in range(8)])
    assert distinct == ["written"] * 8
    assert sorted(same) == ["exists"] * 7 + ["written"]
    store = EpisodeStore(tmp_path)
    assert store.episode_ids() == sorted([f"ep-{i}" for i in range(8)] + ["ep-same"])
    winner = same.index("written")
    np.testing.assert_array_equal(store.read("ep-same").steps["x_m"], _episode("x", 200, winner).steps["x_m"])
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]  # losers cleaned up after themselves


def test_bad_ids_and_sources_are_rejected(tmp_path: Path) -> None:
    store = EpisodeStore(tmp_path)
    with pytest.raises(ValueError, match="invalid episode id"):
        store.write(_episode("../escape"))
    with pytest.raises(ValueError, match="unknown episode source"):
        store.write(_episode("ep-1", source="robot"))
    with pytest.raises(KeyError, match="no episode 'nope'"):
        store.read("nope")


def test_schema_1_files_give_a_clear_error_and_migrate(tmp_path: Path) -> None:
    old = tmp_path / "sim" / "ep-old.parquet"
    old.parent.mkdir()
    v1 = _episode("ep-old")
    _v1_file(old, v1)
    store = EpisodeStore(tmp_path)
    with pytest.raises(SchemaError, match=r"ep-old\.parquet: an episode file of schema version 1 .*episodes migrate"):
        store.episode_ids()
    assert store.migrate_v1() == ["ep-old"]
    assert not old.exists() and store.episode_ids() == ["ep-old"]
    loaded = store.read("ep-old")
    assert loaded.metadata == v1.metadata
    _assert_columns_equal(loaded.steps, v1.steps)


def _v1_file(path: Path, episode: Episode) -> Path:
    """An episode file as schema 1 wrote it (obs_bev as variable-length binary, metadata in the file)."""
    import pyarrow as pa

    columns = {}
    for name, values in episode.steps.items():
        if name == "obs_bev":
            columns[name] = pa.array([row.tobytes() for row in values], type=pa.binary())
        elif values.ndim == 2:
            columns[name] = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])
        else:
            columns[name] = pa.array(values)
    metadata = {"schema_version": 1, "episode_id": episode.episode_id, "source": episode.source, **episode.metadata}
    pq.write_table(pa.table(columns).replace_schema_metadata({b"autoloop": json.dumps(metadata).encode()}), path)
    return path


@pytest.mark.parametrize("recorded", [OBSERVATION_FORMAT + 1, None])
def test_observations_of_another_format_are_refused_for_training_naming_the_episode(tmp_path: Path,
                                                                                    recorded: int | None) -> None:
    store = EpisodeStore(tmp_path / "episodes")
    store.write(_episode("ep-0"))
    store.write(_fleet_episode("fleet-0"))
    assert store.manifest("ep-0")["observation_format"] == OBSERVATION_FORMAT
    assert "observation_format" not in store.manifest("fleet-0"), "no observations, no format"
    # ep-1 as written by a code of another observation format (or by one that recorded none)
    manifest_path = store.write(_episode("ep-1", seed=1)) / "episode.json"
    manifest = json.loads(manifest_path.read_text())
    if recorded is None:
        del manifest["observation_format"]
    else:
        manifest["observation_format"] = recorded
    manifest_path.write_text(json.dumps(manifest))
    snapshot = create_snapshot(store, tmp_path / "datasets", ["ep-0", "ep-1", "fleet-0"], {})
    with pytest.raises(ObservationFormatError) as refused:
        load_training_arrays(store, snapshot)
    has = "records no observation format" if recorded is None else f"has observation format {recorded}"
    assert str(refused.value) == (f"episode ep-1 ({store.folder('ep-1')}) {has}, this autoloop reads observation "
                                  f"format {OBSERVATION_FORMAT}: collect a new dataset (`autoloop collect`) and "
                                  "train on it")
    # its other columns read as ever
    assert len(read_snapshot_columns(store, snapshot, ["x_m", "label"])) == 3


def test_snapshot_is_content_addressed_and_detects_changes(tmp_path: Path) -> None:
    store = EpisodeStore(tmp_path / "episodes")
    for index in range(3):
        store.write(_episode(f"ep-{index}", steps=4 + index, seed=index))
    first = create_snapshot(store, tmp_path / "datasets", ["ep-2", "ep-0"], {"purpose": "test"})
    again = create_snapshot(store, tmp_path / "datasets", ["ep-0", "ep-2"], {"purpose": "test"})
    other = create_snapshot(store, tmp_path / "datasets", ["ep-0", "ep-1"], {"purpose": "test"})
    assert first.digest == again.digest != other.digest
    assert first.episode_ids == ("ep-0", "ep-2") and first.num_steps == 4 + 6
    assert first.filters == {"purpose": "test"}
    assert load_snapshot(first.path) == first

    data = load_training_arrays(store, first)
    assert len(data) == 10 and data.bev_shape == (2, 8, 8)
    expected = np.unpackbits(store.read("ep-0").steps["obs_bev"], axis=1, count=128).reshape(4, 2, 8, 8)
    np.testing.assert_array_equal(data.bev(np.arange(4)), expected)
    np.testing.assert_array_equal(data.label[4:], _episode("ep-2", steps=6, seed=2).steps["label"])

    # an edited data file is detected
    ego = store.files("ep-0")["ego"]
    content = ego.read_bytes()
    ego.write_bytes(content[:-1] + b"!")
    with pytest.raises(ValueError, match=r"ep-0: .*ego\.parquet changed since it was written"):
        load_training_arrays(store, first)
    ego.write_bytes(content)
    # replacing an episode behind the snapshot's back is detected
    store.delete("ep-2")
    assert store.episode_ids() == ["ep-0", "ep-1"]
    store.write(_episode("ep-2", steps=6, seed=99))
    with pytest.raises(ValueError, match=r"ep-2 .* changed since snapshot"):
        load_training_arrays(store, first)
    shutil.rmtree(store.folder("ep-2"))
    with pytest.raises(KeyError, match="episode 'ep-2' of snapshot"):
        load_training_arrays(store, first)
    # and so is an edited manifest
    manifest = json.loads(first.path.read_text())
    manifest["filters"] = {"purpose": "edited"}
    first.path.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="does not match its name"):
        load_snapshot(first.path)


@pytest.mark.parametrize("damage", [b'{"schema_version": 2, "episode_id": ', b"[]", b"\xff\xfe",
                                    b'{"schema_version": 2}'])
def test_a_damaged_manifest_is_skipped_and_named_not_fatal(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                             damage: bytes) -> None:
    store = EpisodeStore(tmp_path)
    for name in ("sim-good", "sim-bad"):
        store.write(_episode(name))
    bad = store.file("sim-bad")
    bad.write_bytes(damage)
    with caplog.at_level("WARNING", logger="autoloop.episodes.store"):
        assert list(store.manifests()) == ["sim-good"] and list(store.metadata("sim")) == ["sim-good"]
    assert str(bad) in caplog.text
    assert store.query("SELECT episode_id FROM episodes").to_pylist() == [{"episode_id": "sim-good"}]
    with pytest.raises(SchemaError, match=re.escape(str(bad))):
        store.read("sim-bad")
