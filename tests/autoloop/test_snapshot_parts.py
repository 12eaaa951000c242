"""Snapshots made of parts: the parts (reasons, weights) in the content-hashed manifest, their checks, each sample
weighing its part's weight, and the epoch's rows repeated by the weights (all 1: the rows as without parts)."""

import json
from pathlib import Path

import numpy as np
import pytest

from autoloop.episodes import Episode, EpisodeStore, SnapshotPart, create_snapshot, load_snapshot
from autoloop.training import TrajectoryArrays, load_trajectory_arrays
from autoloop.training.balance import epoch_rows, repeat_factors, repeated_rows
from sim.scene.observation import STATE_SIZE, Feature

BEV = (2, 16, 16)


def _episode(episode_id: str, steps: int, seed: int) -> Episode:
    """An expert driving straight along x at 5 m/s."""
    rng = np.random.default_rng(seed)
    bev = rng.integers(0, 2, (steps, *BEV), dtype=np.uint8)
    t = np.arange(steps) * 0.05
    columns = {"step": np.arange(steps, dtype=np.int32), "time_s": t.astype(np.float32), "x_m": 5.0 * t,
               "y_m": np.zeros(steps), "yaw_rad": np.zeros(steps, dtype=np.float32),
               "speed_mps": np.full(steps, 5.0, dtype=np.float32),
               "label": rng.uniform(-1, 1, (steps, 2)).astype(np.float32),
               "obs_state": rng.standard_normal((steps, 3)).astype(np.float32),
               "obs_bev": np.packbits(bev.reshape(steps, -1), axis=1)}
    return Episode(episode_id, "sim", columns, {"policy": "expert", "dt_s": 0.05, "bev_shape": list(BEV),
                                                "tags": {"purpose": "collect"}})


@pytest.fixture
def store(tmp_path: Path) -> EpisodeStore:
    store = EpisodeStore(tmp_path / "episodes")
    store.write_many([_episode(f"ep-{index}", steps=40 + 10 * index, seed=index) for index in range(3)])
    return store


def _arrays(n: int, weight: np.ndarray | None) -> TrajectoryArrays:
    """``n`` samples at 8 m/s on open road, every fourth braking for a curbside stop (a repeat factor > 1)."""
    curbside = np.arange(n) % 4 == 0
    state = np.zeros((n, STATE_SIZE), dtype=np.float32)
    state[:, [Feature.STOP_LINE_AHEAD, Feature.LEADER_GAP, Feature.CURB_STOP_AHEAD, Feature.JUNCTION_AHEAD]] = 1.0
    state[:, Feature.SPEED] = 0.8
    state[np.ix_(curbside, [Feature.CURB_STOP_AHEAD, Feature.CURB_DWELL])] = 0.2, 0.5
    speed = np.where(curbside, 2.0, 8.0).astype(np.float32)
    return TrajectoryArrays(bev_packed=np.zeros((n, 64), dtype=np.uint8), bev_shape=BEV, state=state,
                            action=np.zeros((n, 2), dtype=np.float32), waypoints=np.zeros((n, 4, 2), dtype=np.float32),
                            speed=speed, has_trajectory=np.ones(n, dtype=bool), has_action=np.ones(n, dtype=bool),
                            weight=weight)


def test_parts_are_in_the_manifest_and_its_digest(store: EpisodeStore, tmp_path: Path) -> None:
    folder = tmp_path / "datasets"
    ids = ["ep-0", "ep-1", "ep-2"]
    plain = create_snapshot(store, folder, ids, {})
    assert plain.parts == () and plain.weights() == dict.fromkeys(ids, 1.0)
    assert "parts" not in json.loads(plain.path.read_text())  # (a snapshot without parts keeps its digest)

    failures = SnapshotPart(name="failures", reason="collisions of cycle 3", episode_ids=("ep-2",), weight=3.0)
    parted = create_snapshot(store, folder, ids, {}, parts=[failures])
    assert parted.digest != plain.digest
    assert parted.parts == (SnapshotPart(name="base", reason="", episode_ids=("ep-0", "ep-1"), weight=1.0),
                            failures)
    assert parted.weights() == {"ep-0": 1.0, "ep-1": 1.0, "ep-2": 3.0}
    assert json.loads(parted.path.read_text())["parts"] == [
        {"name": "base", "reason": "", "weight": 1.0, "episode_ids": ["ep-0", "ep-1"]},
        {"name": "failures", "reason": "collisions of cycle 3", "weight": 3.0, "episode_ids": ["ep-2"]}]
    assert load_snapshot(parted.path) == parted
    # the same content is the same snapshot; another reason or weight is another one
    assert create_snapshot(store, folder, ids[::-1], {}, parts=[failures]).digest == parted.digest
    reasons = {create_snapshot(store, folder, ids, {}, parts=[part]).digest for part in (
        SnapshotPart(name="failures", reason="collisions of cycle 4", episode_ids=("ep-2",), weight=3.0),
        SnapshotPart(name="failures", reason="collisions of cycle 3", episode_ids=("ep-2",), weight=2.0))}
    assert len(reasons) == 2 and parted.digest not in reasons


def test_parts_that_do_not_partition_the_episodes_are_refused(store: EpisodeStore, tmp_path: Path) -> None:
    folder = tmp_path / "datasets"
    ids = ["ep-0", "ep-1", "ep-2"]
    with pytest.raises(ValueError, match="episode 'ep-1' is in two snapshot parts, 'a' and 'b'"):
        create_snapshot(store, folder, ids, {}, parts=[SnapshotPart("a", "", ("ep-0", "ep-1")),
                                                       SnapshotPart("b", "", ("ep-1",))])
    with pytest.raises(ValueError, match="episode 'ep-9' of snapshot part 'a' is not among"):
        create_snapshot(store, folder, ids, {}, parts=[SnapshotPart("a", "", ("ep-9",))])
    with pytest.raises(ValueError, match="two snapshot parts are named 'a'"):
        create_snapshot(store, folder, ids, {}, parts=[SnapshotPart("a", "", ("ep-0",)),
                                                       SnapshotPart("a", "", ("ep-1",))])
    with pytest.raises(ValueError, match="episode 'ep-2' is in no snapshot part"):
        create_snapshot(store, folder, ids, {}, parts=[SnapshotPart("base", "", ("ep-0", "ep-1"))])
    with pytest.raises(ValueError, match=r"weight 0\.0"):
        SnapshotPart("a", "", ("ep-0",), weight=0.0)
    assert not folder.exists() or not list(folder.iterdir())  # nothing written


def test_each_sample_weighs_its_part(store: EpisodeStore, tmp_path: Path) -> None:
    snapshot = create_snapshot(store, tmp_path / "datasets", ["ep-0", "ep-1", "ep-2"], {},
                               parts=[SnapshotPart("failures", "", ("ep-1",), weight=3.0)])
    data = load_trajectory_arrays(store, snapshot)
    assert data.weight is not None and data.weight.dtype == np.float32
    np.testing.assert_array_equal(data.weight, np.repeat([1.0, 3.0, 1.0], [40, 50, 60]))
    plain = load_trajectory_arrays(store, create_snapshot(store, tmp_path / "datasets", ["ep-0", "ep-1"], {}))
    np.testing.assert_array_equal(plain.weight, np.ones(90))


@pytest.mark.parametrize("threshold", [0.0, 0.8])
def test_weights_of_1_leave_the_epoch_rows_as_they_were(threshold: float) -> None:
    rows = np.arange(5, 200, dtype=np.intp)
    unweighted = epoch_rows(_arrays(200, None), rows, threshold=threshold, seed=4)
    weighted = epoch_rows(_arrays(200, np.ones(200, dtype=np.float32)), rows, threshold=threshold, seed=4)
    np.testing.assert_array_equal(weighted, unweighted)
    if threshold == 0.0:  # (no repeat-factor sampling: the rows themselves)
        np.testing.assert_array_equal(weighted, rows)
    else:  # (what the training loop drew before weights)
        data = _arrays(200, None)
        np.testing.assert_array_equal(weighted, repeated_rows(rows, repeat_factors(data, rows, threshold), 4))
        assert len(weighted) > len(rows)


def test_a_weight_of_3_repeats_a_parts_rows_3_times() -> None:
    weight = np.ones(400, dtype=np.float32)
    weight[200:] = 3.0
    rows = np.arange(0, 400, 2, dtype=np.intp)
    repeated = epoch_rows(_arrays(400, weight), rows, threshold=0.0, seed=1)
    counts = np.bincount(repeated, minlength=400)[rows]
    np.testing.assert_array_equal(counts, np.where(rows >= 200, 3, 1))
    np.testing.assert_array_equal(epoch_rows(_arrays(400, weight), rows, threshold=0.0, seed=1), repeated)

    # with repeat factors, the weight multiplies them: a fractional product is drawn, about as often on average
    weight[200:] = 2.5
    data = _arrays(400, weight)
    rows = np.arange(400, dtype=np.intp)
    factors = repeat_factors(data, rows, 0.8)
    assert factors.max() > 1.5
    repeated = epoch_rows(data, rows, threshold=0.8, seed=1)
    counts = np.bincount(repeated, minlength=400)[rows]
    expected = factors * weight[rows]
    assert np.all((counts == np.floor(expected)) | (counts == np.floor(expected) + 1))
    heavy = rows >= 200
    assert counts[heavy].mean() == pytest.approx(2.5 * counts[~heavy].mean(), rel=0.1)
