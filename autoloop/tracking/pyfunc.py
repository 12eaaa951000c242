"""The MLflow pyfunc flavour of autoloop drivers, ``predict({"bev", "state"}) -> actions``: its signature here, the
model itself in :mod:`autoloop.tracking.model_code` (logged from code)."""

from __future__ import annotations

import numpy as np
from mlflow.models import ModelSignature
from mlflow.types import Schema, TensorSpec


def signature(bev_shape: tuple[int, ...], state_size: int) -> ModelSignature:
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.uint8), (-1, *bev_shape), "bev"),
                       TensorSpec(np.dtype(np.float32), (-1, state_size), "state")]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 2), "action")]),
    )
