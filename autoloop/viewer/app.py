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
``/api/episodes/<episode_id>/bev`` the policy's input of steps ``start`` .. ``start + count - 1``
                                   (:func:`autoloop.viewer.payload.bev_frames`; ``count`` at most
                                   :data:`~autoloop.viewer.payload.MAX_BEV_FRAMES`)
``/api/maps/<map_id>``             one map (:func:`autoloop.viewer.payload.map_payload`)
=================================  =====================================================================

Errors answer ``{"error": message}`` with 400 (malformed id or query), 403 (a path out of the store), 404, 422 (an
episode file that is unreadable or lacks a column: the message names the file) or 500 (logged). A map is served
only when some episode in the store drives on it.

Every response carries the page's Content-Security-Policy and ``X-Content-Type-Options: nosniff``; a request whose
``Host`` header names none of the app's allowed hosts (by default the loopback names) is refused with 400, so that
a web page the user visits cannot reach the viewer by rebinding its own domain name to 127.0.0.1.
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
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from autoloop.episodes.schema import SchemaError
from autoloop.episodes.store import EpisodeStore
from autoloop.viewer.index import FILTERS, EpisodeIndex, FilterError
from autoloop.viewer.payload import (
    MAP_ID,
    BadRequest,
    NotFound,
    OutsideStore,
    bev_frames,
    episode_payload,
    load_map,
    map_payload,
)

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
_HEADERS = {"Cache-Control": "no-store"}
#: The page runs no inline or third-party script, and loads nothing from elsewhere; no response is sniffed.
_SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
}
#: The names a viewer bound to a loopback address answers to.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def host_name(header: str) -> str:
    """The host of a ``Host`` header value, without its port (``[::1]:8765`` -> ``::1``), lower case."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class _Guard:
    """Refuses requests for hosts the viewer does not serve, and adds the security headers to every response."""

    def __init__(self, app: ASGIApp, allowed_hosts: tuple[str, ...]) -> None:
        self.app, self.allowed = app, {host.lower().strip("[]") for host in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        host = host_name(headers.get(b"host", b"").decode("latin-1"))
        if "*" not in self.allowed and host not in self.allowed:
            response = JSONResponse({"error": f"host {host[:100]!r} is not served here"}, status_code=400,
                                    headers={**_HEADERS, **_SECURITY_HEADERS})
            await response(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *((name.encode(), value.encode()) for name, value in _SECURITY_HEADERS.items()
                                        if name.encode() not in present)]
            await send(message)

        await self.app(scope, receive, send_secured)


class _JSON(Response):
    """A JSON response of text already serialized."""

    media_type = "application/json"


def create_app(store_root: Path, *, map_cache_size: int = 16,
               allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS) -> Starlette:
    """The viewer over the episode store at ``store_root`` (which need not exist yet).

    :param map_cache_size: serialized maps kept in memory.
    :param allowed_hosts: the host names (``Host`` header, port aside) it answers; ``"*"``: any.
    """
    store = EpisodeStore(Path(store_root))
    index = EpisodeIndex(store)
    maps: OrderedDict[str, bytes] = OrderedDict()
    maps_lock = threading.Lock()

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

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

    async def bev(request: Request) -> Response:
        episode_id, params = request.path_params["episode_id"], request.query_params
        unknown = sorted(set(params) - {"start", "count"})
        if unknown:
            raise HTTPException(400, f"unknown query parameter(s) {unknown}")
        try:
            start, count = int(params.get("start", "0")), int(params.get("count", "1"))
        except ValueError:
            raise HTTPException(400, "start and count must be integers") from None
        text = await _threaded(lambda: json.dumps(bev_frames(store, episode_id, start=start, count=count),
                                                  separators=(",", ":")))
        return _JSON(text, headers=_HEADERS)

    async def map_(request: Request) -> Response:
        map_id = request.path_params["map_id"]
        with maps_lock:
            cached = maps.get(map_id)
        if cached is None:
            await _threaded(servable, map_id)
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

    def servable(map_id: str) -> None:
        """A map stored in the store, or a built-in one that some episode drives on (built-in maps are built on
        request: any other name would cost memory for nothing)."""
        if not MAP_ID.fullmatch(map_id):
            raise BadRequest(f"invalid map id {map_id[:200]!r}: expected letters, digits and '_.:-'")
        stored = store.root / "maps" / f"{map_id}.json"
        if not (stored.is_file() or stored.is_symlink()) and not index.uses_map(map_id):
            raise NotFound(f"no episode in the store drives on map {map_id!r}")

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
        Route("/api/episodes/{episode_id}/bev", bev),
        Route("/api/maps/{map_id}", map_),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    handlers: dict[Any, Any] = {
        HTTPException: error(500), BadRequest: error(400), FilterError: error(400), OutsideStore: error(403),
        NotFound: error(404), SchemaError: error(422), Exception: error(500),
    }
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.add_middleware(_Guard, allowed_hosts=tuple(allowed_hosts))
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
