"""The replay viewer: a local web app over the episode store (``autoloop replay``).

:func:`create_app` builds the ASGI app (:mod:`autoloop.viewer.app`); :mod:`autoloop.viewer.index` lists and
filters episodes with DuckDB; :mod:`autoloop.viewer.payload` turns an episode or a map into the compact columns the
page draws (``static/``); :func:`replay_url` links to an episode or a comparison (no web stack imported for it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autoloop.viewer.links import replay_url

if TYPE_CHECKING:
    from autoloop.viewer.app import create_app

__all__ = ["create_app", "replay_url"]


def __getattr__(name: str) -> Any:
    if name == "create_app":  # the web stack (starlette, duckdb) loads only when an app is built
        from autoloop.viewer.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
