"""Training driving policies."""

from autoloop.training.bc import EpochMetrics, TrainResult, train_bc

__all__ = ["EpochMetrics", "TrainResult", "train_bc"]
