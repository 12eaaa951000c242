import os
from pathlib import Path

import pytest

#: Real data for tests (Argoverse 2 logs, CARLA maps and routes): ``../shared/data`` beside the project, or
#: ``$AUTOLOOP_SHARED_DATA``; never copied into the project.
SHARED_DATA = Path(os.environ.get("AUTOLOOP_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests that need it skip with the reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the shared reference data is not at {SHARED_DATA}")
    return SHARED_DATA
