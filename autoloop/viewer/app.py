"""The replay viewer's web app: a JSON API over an episode store and the static page that draws it.

Routes (all ``GET``):

=================================  =====================================================================
``/``                              the page (``static/index.html``); views live in the URL's hash
``/static/<file>``                 the page's script and style
``/api/episodes``                  one page of the filtered, sorted episode list: query parameters are
                                   the filters of :data:`autoloop.viewer.index.FILTERS`, ``q`` (id
                                   substring), ``sort``, ``order`` (``asc``/``desc``), ``page``,
                                   ``page_size``; answers ``{"total", "page", "page_size", "rows"}``
``/api/facets``                    filter name -> values it can take
``/api/info``                      the store's folder and its number of episodes
``/api/episodes/<episode_id>``     one episode (:func:`autoloop.viewer.payload.episode_payload`)
``/api/maps/<map_id>``             one map (:func:`autoloop.viewer.payload.map_payload`)
=================================  =====================================================================

Errors answer ``{"error": message}`` with 400 (malformed id or query), 403 (a path out of the store), 404, 422 (an
episode file that is unreadable or lacks a column: the message names the file) or 500 (logged).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from autoloop.episodes.schema import SchemaError
from autoloop.episodes.store import EpisodeStore
from autoloop.viewer.index import FILTERS, EpisodeIndex, FilterError
from autoloop.viewer.payload import BadRequest, NotFound, OutsideStore, episode_payload, load_map, map_payload

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
#: The page runs no inline or third-party script, and loads nothing from elsewhere.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


class _JSON(Response):
    """A JSON response of text already serialized."""

    media_type = "application/json"


def create_app(store_root: Path, *, map_cache_size: int = 16) -> Starlette:
    """The viewer over the episode store at ``store_root`` (which need not exist yet).

    :param map_cache_size: serialized maps kept in memory.
    """
    store = EpisodeStore(Path(store_root))
    index = EpisodeIndex(store)
    maps: OrderedDict[str, bytes] = OrderedDict()
    maps_lock = threading.Lock()

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers=_PAGE_HEADERS)

    async def list_episodes(request: Request) -> Response:
        params = request.query_params
        filters = {name: value for name, value in params.items() if name in FILTERS and value != ""}
        unknown = sorted(set(params) - set(FILTERS) - {"q", "sort", "order", "page", "page_size"})
        if unknown:
            raise HTTPException(400, f"unknown query parameter(s) {unknown}")
        if params.get("order", "asc") not in ("asc", "desc"):
            raise HTTPException(400, f"order: expected 'asc' or 'desc', got {params['order']!r}")
        try:
            number, size = int(params.get("page", "1")), int(params.get("page_size", "50"))
        except ValueError:
            raise HTTPException(400, "page and page_size must be integers") from None
        result = await _threaded(index.page, filters, sort=params.get("sort", "episode_id"),
                                 descending=params.get("order") == "desc", page=number, page_size=size,
                                 text=params.get("q", ""))
        return JSONResponse({"total": result.total, "page": number, "page_size": size, "rows": result.rows},
                            headers=_HEADERS)

    async def facets(request: Request) -> Response:
        return JSONResponse(await _threaded(index.facets), headers=_HEADERS)

    async def info(request: Request) -> Response:
        listed = await _threaded(index.page, {}, page_size=1)
        return JSONResponse({"store": str(store.root), "episodes": listed.total}, headers=_HEADERS)

    async def episode(request: Request) -> Response:
        episode_id = request.path_params["episode_id"]
        text = await _threaded(lambda: json.dumps(episode_payload(store, episode_id), separators=(",", ":")))
        return _JSON(text, headers=_HEADERS)

    async def map_(request: Request) -> Response:
        map_id = request.path_params["map_id"]
        with maps_lock:
            cached = maps.get(map_id)
        if cached is None:
            cached = await _threaded(lambda: json.dumps(map_payload(load_map(store, map_id)),
                                                        separators=(",", ":")).encode())
            with maps_lock:
                maps[map_id] = cached
                while len(maps) > map_cache_size:
                    maps.popitem(last=False)
        else:
            with maps_lock:
                maps.move_to_end(map_id)
        return _JSON(cached, headers=_HEADERS)

    def error(status: int) -> Any:
        async def handle(request: Request, exc: Exception) -> Response:
            message = exc.detail if isinstance(exc, HTTPException) else str(exc)
            if isinstance(exc, NotFound):
                message = str(exc.args[0]) if exc.args else "not found"
            code = exc.status_code if isinstance(exc, HTTPException) else status
            if code >= 500:
                log.exception("%s %s", request.method, request.url.path, exc_info=exc)
                message = f"{type(exc).__name__}: {message} (see the viewer's log)"
            return JSONResponse({"error": message}, status_code=code, headers=_HEADERS)
        return handle

    routes = [
        Route("/", page),
        Route("/api/episodes", list_episodes),
        Route("/api/facets", facets),
        Route("/api/info", info),
        Route("/api/episodes/{episode_id}", episode),
        Route("/api/maps/{map_id}", map_),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    handlers: dict[Any, Any] = {
        HTTPException: error(500), BadRequest: error(400), FilterError: error(400), OutsideStore: error(403),
        NotFound: error(404), SchemaError: error(422), Exception: error(500),
    }
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.state.index = index
    return app


@contextlib.contextmanager
def serving(app: Starlette, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a background thread (on a free port by default); yields its base URL and
    stops the server on exit. For tests and benchmarks; ``autoloop replay`` runs uvicorn in the foreground."""
    import socket

    import uvicorn

    listener = socket.create_server((host, port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        while not server.started and thread.is_alive():
            time.sleep(0.01)
        yield f"http://{host}:{listener.getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()


async def _threaded(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run blocking work (file reads, DuckDB) off the event loop."""
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(functools.partial(function, *args, **kwargs))
