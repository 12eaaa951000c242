from pathlib import Path

import pytest

#: Real data for tests (Argoverse 2 logs, CARLA maps and routes), beside the project; never copied into it.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests that need it skip with the reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the shared reference data is not at {SHARED_DATA}")
    return SHARED_DATA
