import numpy as np
import torch

from autoloop.config import TrainConfig
from autoloop.episodes import TrainingArrays
from autoloop.training import train_bc


def _data(samples: int = 256) -> TrainingArrays:
    """The label is a simple function of the inputs: steer = state[0], accel = fraction of lit BEV pixels - 0.5."""
    rng = np.random.default_rng(0)
    bev = (rng.uniform(size=(samples, 2, 16, 16)) < rng.uniform(size=(samples, 1, 1, 1))).astype(np.uint8)
    state = rng.uniform(-0.9, 0.9, (samples, 3)).astype(np.float32)
    label = np.stack([state[:, 0], bev.mean(axis=(1, 2, 3)) - 0.5], axis=1).astype(np.float32)
    return TrainingArrays(np.packbits(bev.reshape(samples, -1), axis=1), (2, 16, 16), state, label)


def test_training_learns_and_is_reproducible() -> None:
    config = TrainConfig(epochs=8, batch_size=32, learning_rate=3e-3, seed=3, threads=1)
    seen = []
    first = train_bc(_data(), config, on_epoch=seen.append)
    second = train_bc(_data(), config)
    assert [m.epoch for m in seen] == list(range(1, 9))
    assert seen[-1].train_loss < seen[0].train_loss / 4
    assert seen[-1].val_loss < 0.01
    for a, b in zip(first.policy.net.state_dict().values(), second.policy.net.state_dict().values(), strict=True):
        assert torch.equal(a, b)
