"""Episodes: the store of fleet logs and simulator episodes, and dataset snapshots over it."""

from autoloop.episodes.dataset import (
    DatasetSnapshot,
    SnapshotPart,
    TrainingArrays,
    create_snapshot,
    load_snapshot,
    load_training_arrays,
    read_snapshot_columns,
)
from autoloop.episodes.schema import SCHEMA_VERSION, SchemaError
from autoloop.episodes.store import Episode, EpisodeStore, new_episode_id

__all__ = [
    "SCHEMA_VERSION",
    "DatasetSnapshot",
    "Episode",
    "EpisodeStore",
    "SchemaError",
    "SnapshotPart",
    "TrainingArrays",
    "create_snapshot",
    "load_snapshot",
    "load_training_arrays",
    "new_episode_id",
    "read_snapshot_columns",
]
