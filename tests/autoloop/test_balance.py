"""Repeat-factor sampling: categories read off the state and the expert's target speed, factors from their
frequencies, repeated rows drawn once, and the training loop's epochs over the repeated rows."""

import numpy as np
import pytest

from autoloop.config import TrainConfig
from autoloop.training import TrajectoryArrays, train_bc
from autoloop.training.balance import DECISIONS, SITUATIONS, categories, repeat_factors, repeated_rows
from sim.scene.observation import STATE_SIZE, Feature

BEV = (2, 16, 16)


def _state(speed_mps: float, **features: float) -> np.ndarray:
    """A state with nothing near (no stop line, leader, curbside stop or siren) at ``speed_mps``, with
    ``features`` (``f27=0.2``: feature 27) set."""
    state = np.zeros(STATE_SIZE, dtype=np.float32)
    state[[Feature.STOP_LINE_AHEAD, Feature.LEADER_GAP, Feature.CURB_STOP_AHEAD, Feature.JUNCTION_AHEAD]] = 1.0
    state[0] = speed_mps / 10.0
    for name, value in features.items():
        state[int(name[1:])] = value
    return state


def _arrays(states: list[np.ndarray], targets: list[float]) -> TrajectoryArrays:
    n = len(states)
    rng = np.random.default_rng(0)
    bev = (rng.uniform(size=(n, *BEV)) < 0.3).astype(np.uint8)
    state = np.stack(states).astype(np.float32)
    speed = np.asarray(targets, dtype=np.float32)
    ahead = np.arange(1, 5)[None, :] * 0.5 * speed[:, None]
    waypoints = np.stack([ahead, np.zeros_like(ahead)], axis=-1)
    return TrajectoryArrays(bev_packed=np.packbits(bev.reshape(n, -1), axis=1), bev_shape=BEV, state=state,
                            action=np.zeros((n, 2), dtype=np.float32), waypoints=waypoints.astype(np.float32),
                            speed=speed, has_trajectory=np.ones(n, dtype=bool), has_action=np.ones(n, dtype=bool))


def _category(situation: str, decision: str) -> tuple[int, int]:
    return SITUATIONS.index(situation), DECISIONS.index(decision)


def test_categories_are_read_off_the_state_and_the_target_speed() -> None:
    states = np.stack([
        _state(5.0, f27=0.2, f28=-0.15, f29=0.5),  # 10 m before a curbside stop with 5 s to dwell ...
        _state(8.0),                                # open road
        _state(0.0, f16=0.1, f17=1.0, f20=1.0, f25=0.1),  # at a red light behind a car
        _state(6.0, f30=1.0, f31=-0.4),             # a siren behind
        _state(4.0, f27=0.2, f29=0.0),              # a curbside stop already stood out: not one to brake for
        _state(0.0, f33=-0.8, f34=-0.8, f35=1.0),   # at the curb, waiting to pull in
        _state(3.0, f36=1.0, f37=0.05),             # giving way at a junction where no line is shown
    ])
    member = categories(states, np.array([2.0, 8.5, 0.0, 7.5, 4.0, 0.0, 0.0], dtype=np.float32),
                        np.ones(7, dtype=bool))
    assert member.shape == (7, len(SITUATIONS), len(DECISIONS))
    assert {tuple(c) for c in np.argwhere(member[0])} == {_category("curbside stop", "brake")}
    assert {tuple(c) for c in np.argwhere(member[1])} == {_category("open road", "keep")}
    assert {tuple(c) for c in np.argwhere(member[2])} == {_category("stop line or give way", "stand"),
                                                          _category("leader", "stand")}
    assert {tuple(c) for c in np.argwhere(member[3])} == {_category("siren", "accelerate")}
    assert {tuple(c) for c in np.argwhere(member[4])} == {_category("open road", "keep")}
    assert {tuple(c) for c in np.argwhere(member[5])} == {_category("path offset", "stand"),
                                                          _category("pull-in wait", "stand")}
    assert {tuple(c) for c in np.argwhere(member[6])} == {_category("stop line or give way", "brake")}
    # a sample without a trajectory target keeps its speed
    assert categories(states[:1], np.zeros(1, dtype=np.float32), np.zeros(1, dtype=bool))[0][
        _category("curbside stop", "keep")]
    with pytest.raises(ValueError, match="25 features"):
        categories(states[:, :25], np.zeros(7, dtype=np.float32), np.ones(7, dtype=bool))


def test_rare_categories_get_the_square_root_factor() -> None:
    # 10 of 1000 samples brake for a curbside stop: frequency 1 %, so threshold 4 % repeats them 2x
    states = [_state(5.0, f27=0.2, f29=0.5)] * 10 + [_state(8.0)] * 990
    data = _arrays(states, [2.0] * 10 + [8.0] * 990)
    rows = np.arange(1000)
    factors = repeat_factors(data, rows, 0.04)
    np.testing.assert_allclose(factors[:10], 2.0)
    np.testing.assert_allclose(factors[10:], 1.0)
    np.testing.assert_allclose(repeat_factors(data, rows, 0.0), 1.0)
    # frequencies are those of the rows asked about
    np.testing.assert_allclose(repeat_factors(data, np.arange(5, 15), 0.04), 1.0)
    # states that are not autoloop's vector: no situations to read, every sample once
    other = _arrays(states, [2.0] * 10 + [8.0] * 990)
    other = TrajectoryArrays(**{**other.__dict__, "state": other.state[:, :3]})
    np.testing.assert_allclose(repeat_factors(other, rows, 0.04), 1.0)


def test_repeated_rows_round_each_factor_once() -> None:
    rows = np.arange(100, 4100)
    factors = np.r_[np.ones(1000), np.full(1000, 2.0), np.full(2000, 1.5)]
    repeated = repeated_rows(rows, factors, seed=3)
    counts = np.bincount(repeated - 100, minlength=4000)
    assert (counts[:1000] == 1).all() and (counts[1000:2000] == 2).all()
    assert set(np.unique(counts[2000:])) == {1, 2} and abs(counts[2000:].mean() - 1.5) < 0.05
    np.testing.assert_array_equal(repeated_rows(rows, factors, seed=3), repeated)
    assert not np.array_equal(repeated_rows(rows, factors, seed=4), repeated)


def test_training_epochs_cover_the_repeated_rows() -> None:
    # 20 % of the samples brake for a curbside stop; threshold 0.8 repeats them sqrt(0.8 / 0.2) = 2x
    states = [_state(5.0, f27=0.2, f29=0.5)] * 40 + [_state(8.0)] * 160
    data = _arrays(states, [2.0] * 40 + [8.0] * 160)
    config = TrainConfig(epochs=2, batch_size=10, threads=1, width=4, hidden=16, seed=1, repeat_threshold=0.0)
    steps: list[int] = []
    train_bc(data, config, on_step=lambda step, losses: steps.append(step))
    # 180 training rows (20 held out), 18 batches an epoch; with the 30 to 40 curbside samples among them
    # repeated, 210 to 220 rows: 21 or 22 batches
    assert len(steps) == 2 * 18
    steps.clear()
    train_bc(data, config.model_copy(update={"repeat_threshold": 0.8}), on_step=lambda step, losses: steps.append(step))
    assert len(steps) in (2 * 21, 2 * 22)
