"""Links into the replay viewer, for reports and logs (e.g. the evaluation report's regressed routes)."""

from __future__ import annotations

import os
from urllib.parse import quote

#: Where ``autoloop replay`` serves by default.
DEFAULT_BASE = "http://127.0.0.1:8765/"
#: The environment variable that says where the viewer runs, for links written into reports.
BASE_VARIABLE = "AUTOLOOP_VIEWER_URL"


def replay_url(episode_id: str, *, compare_with: str | None = None, frame: int | None = None,
               base: str | None = None) -> str:
    """The viewer's URL of one episode, or of two side by side (``episode_id`` as A, ``compare_with`` as B), at
    ``frame`` (of A) when given; ``base`` defaults to ``$AUTOLOOP_VIEWER_URL``, else where ``autoloop replay``
    serves by default."""
    base = base or os.environ.get(BASE_VARIABLE) or DEFAULT_BASE
    ids = [episode_id] if compare_with is None else [episode_id, compare_with]
    view = "episode" if compare_with is None else "compare"
    path = "/".join(quote(i, safe="") for i in ids)
    return f"{base.rstrip('/')}/#/{view}/{path}" + (f"?f={int(frame)}" if frame is not None else "")
