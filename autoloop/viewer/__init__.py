"""The replay viewer: a local web app over the episode store (``autoloop replay``).

:func:`create_app` builds the ASGI app (:mod:`autoloop.viewer.app`); :mod:`autoloop.viewer.index` lists and
filters episodes with DuckDB; :mod:`autoloop.viewer.payload` turns an episode or a map into the compact columns the
page draws (``static/``).
"""

from autoloop.viewer.app import create_app

__all__ = ["create_app"]
