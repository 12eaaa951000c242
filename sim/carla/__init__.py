"""Everything that needs the ``carla`` package: the OpenDRIVE importer (offline) and, later, the CARLA backend.

``carla`` is an optional extra, imported lazily; ``import sim.carla`` works without it.
"""

from __future__ import annotations

from types import ModuleType


def import_carla() -> ModuleType:
    """The ``carla`` module, or an error that says how to get it."""
    try:
        import carla
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "this needs the 'carla' package (CARLA's Python client): pip install 'autoloop[carla]' "
            "(wheels for Python 3.10-3.12 on Linux x86_64)"
        ) from error
    module: ModuleType = carla
    return module
