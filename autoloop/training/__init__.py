"""Training driving policies: imitation (behaviour cloning, DAgger) and RL fine-tuning (SB3 PPO)."""

from autoloop.training.bc import TrainResult, build_policy, train_bc
from autoloop.training.data import TrajectoryArrays, load_trajectory_arrays
from autoloop.training.loop import EpochMetrics
from autoloop.training.warm import InitialPolicy, initial_policy

__all__ = ["EpochMetrics", "InitialPolicy", "TrainResult", "TrajectoryArrays", "build_policy", "initial_policy",
           "load_trajectory_arrays", "train_bc"]
