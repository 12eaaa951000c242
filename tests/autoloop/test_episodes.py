import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from autoloop.episodes import Episode, EpisodeStore, create_snapshot, load_snapshot, load_training_arrays


def _episode(episode_id: str, steps: int = 5, seed: int = 0) -> Episode:
    rng = np.random.default_rng(seed)
    bev = rng.integers(0, 2, (steps, 2, 8, 8), dtype=np.uint8)
    return Episode(
        episode_id=episode_id,
        source="sim",
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


def test_write_read_round_trip(tmp_path: Path) -> None:
    store = EpisodeStore(tmp_path)
    original = _episode("ep-1")
    path = store.write(original)
    assert path == tmp_path / "sim" / "ep-1.parquet"
    loaded = store.read("ep-1")
    assert loaded.metadata == original.metadata
    for name, values in original.steps.items():
        np.testing.assert_array_equal(loaded.steps[name], values)
    assert store.episode_ids() == ["ep-1"]
    assert store.metadata()["ep-1"]["tags"] == {"purpose": "collect"}
    with pytest.raises(FileExistsError):
        store.write(original)


def test_failed_write_leaves_nothing_visible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = EpisodeStore(tmp_path)

    def half_write(table: object, handle: object, **kwargs: object) -> None:
        handle.write(b"PAR1 half a file")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", half_write)
    with pytest.raises(OSError, match="disk full"):
        store.write(_episode("ep-1"))
    assert store.episode_ids() == []
    assert list((tmp_path / "sim").iterdir()) == []


def test_killed_writer_leaves_no_visible_episode(tmp_path: Path) -> None:
    """A process killed in the middle of a write (after bytes hit the disk) never exposes the episode."""
    script = textwrap.dedent(f"""
        import os, sys
        import pyarrow.parquet as pq
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_episodes import _episode
        from autoloop.episodes import EpisodeStore

        real = pq.write_table
        def write_then_die(table, handle, **kwargs):
            real(table, handle, **kwargs)
            handle.flush()
            os._exit(9)
        pq.write_table = write_then_die
        EpisodeStore({str(tmp_path)!r}).write(_episode("ep-killed"))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 9, result.stderr
    leftovers = list((tmp_path / "sim").iterdir())
    assert leftovers and all(p.name.startswith(".") for p in leftovers)  # only the hidden temporary file
    assert EpisodeStore(tmp_path).episode_ids() == []


def test_bad_ids_and_sources_are_rejected(tmp_path: Path) -> None:
    store = EpisodeStore(tmp_path)
    with pytest.raises(ValueError, match="invalid episode id"):
        store.write(_episode("../escape"))
    with pytest.raises(ValueError, match="unknown episode source"):
        store.path("robot", "ep-1")
    with pytest.raises(KeyError, match="no episode 'nope'"):
        store.read("nope")


def test_snapshot_is_content_addressed_and_detects_changes(tmp_path: Path) -> None:
    store = EpisodeStore(tmp_path / "episodes")
    for index in range(3):
        store.write(_episode(f"ep-{index}", steps=4 + index, seed=index))
    first = create_snapshot(store, tmp_path / "datasets", ["ep-2", "ep-0"], {"purpose": "test"})
    again = create_snapshot(store, tmp_path / "datasets", ["ep-0", "ep-2"], {"purpose": "test"})
    other = create_snapshot(store, tmp_path / "datasets", ["ep-0", "ep-1"], {"purpose": "test"})
    assert first.digest == again.digest != other.digest
    assert first.episode_ids == ("ep-0", "ep-2") and first.num_steps == 4 + 6
    assert load_snapshot(first.path) == first

    data = load_training_arrays(store, first)
    assert len(data) == 10 and data.bev_shape == (2, 8, 8)
    expected = np.unpackbits(store.read("ep-0").steps["obs_bev"], axis=1, count=128).reshape(4, 2, 8, 8)
    np.testing.assert_array_equal(data.bev(np.arange(4)), expected)

    # replacing an episode file behind the snapshot's back is detected
    path = store.file("ep-2")
    path.unlink()
    store.write(_episode("ep-2", steps=6, seed=99))
    with pytest.raises(ValueError, match=r"ep-2 .* changed since snapshot"):
        load_training_arrays(store, first)
    # and so is an edited manifest
    manifest = json.loads(first.path.read_text())
    manifest["filters"] = {"purpose": "edited"}
    first.path.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="does not match its name"):
        load_snapshot(first.path)
