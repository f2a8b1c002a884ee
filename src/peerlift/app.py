"""The FastAPI application factory: routers, error shape, CSRF, security headers."""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from sqlalchemy.exc import DataError
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from peerlift import __version__
from peerlift.delivery.hub import SERVER_SEND, STREAM_PATH
from peerlift.errors import NotAuthenticated, PeerliftError
from peerlift.web.deps import ANON_CSRF_COOKIE, csrf_protect

log = logging.getLogger("peerlift")

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


class SecurityHeaders:
    """Pure ASGI middleware: security headers on every response, and the cookie of a freshly
    issued pre-sign-in CSRF token (cheaper than Starlette's BaseHTTPMiddleware)."""

    def __init__(self, app) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
        from peerlift.settings import get_settings

        self.hsts = get_settings().secure_cookies  # served over https: browsers remember to use it

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                present = {name for name, _ in message.get("headers", [])}
                headers = list(message.get("headers", []))
                headers += [(k, v) for k, v in self.headers if k not in present]
                if self.hsts and b"strict-transport-security" not in present:
                    headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
                token = state.get("new_anon_csrf")
                if token:
                    from peerlift.settings import get_settings

                    secure = "; Secure" if get_settings().secure_cookies else ""
                    headers.append((b"set-cookie", f"{ANON_CSRF_COOKIE}={token}; HttpOnly; Path=/; "
                                                   f"SameSite=strict{secure}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# Requests of one process inside the app at once (the rest wait their turn in RequestLimit). Below the
# database pool (20 + 20 connections, db.py) and the 40 worker threads, with room to spare for stream
# openings, the event dispatcher and the in-process scheduler.
REQUESTS_AT_ONCE = 30
UNLIMITED_PATHS = (STREAM_PATH,)  # open for hours, holding no connection once open


class RequestLimit:
    """Pure ASGI middleware: at most ``limit`` requests are inside the app at a time; the others queue.

    A request holds a pooled database connection from its first query to its end, and needs a worker
    thread for each synchronous step. With more requests inside than the pool has connections, every
    thread ends up waiting for a connection held by a request that waits for a thread, and nothing
    moves until the pool's 30 s timeout answers 500 (a saturated process would do that). Queued here,
    such a process answers late, but answers. Live streams and static files are not counted.
    """

    def __init__(self, app, limit: int = REQUESTS_AT_ONCE) -> None:
        self.app = app
        self.limit = limit
        self._slots: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # one semaphore per event loop

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        if scope["type"] != "http" or path in UNLIMITED_PATHS or path.startswith("/static/"):
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = self._slots[loop] = asyncio.Semaphore(self.limit)
        async with slots:
            await self.app(scope, receive, send)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error_page(request: Request, status: int, message: str):
    from peerlift.web.templating import page

    return page(request, "error.html", {"status": status, "message": message}, status_code=status)


def _field_of(loc: tuple) -> str | None:
    if loc and loc[0] in ("body", "query", "path", "header", "cookie", "form"):
        loc = loc[1:]
    return ".".join(str(p) for p in loc) or None


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PeerliftError)
    async def _peerlift_error(request: Request, exc: PeerliftError):
        if _is_api(request):
            return JSONResponse(exc.body(), status_code=exc.status_code)
        if isinstance(exc, NotAuthenticated):
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        if exc.code == "two_factor_required":
            return RedirectResponse("/profile/two-factor", status_code=303)
        return _error_page(request, exc.status_code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "Invalid request.", "type": ""}
        if first.get("type") == "json_invalid":
            body = {"error": {"code": "malformed_json", "message": "The request body is not valid JSON.",
                              "field": None}}
            status = 400
        else:
            field = _field_of(tuple(first.get("loc", ())))
            message = str(first.get("msg", "Invalid value."))
            if field:
                message = f"{field}: {message}"
            body = {"error": {"code": "invalid", "message": message, "field": field}}
            status = 422
        if _is_api(request):
            return JSONResponse(body, status_code=status)
        return _error_page(request, status, body["error"]["message"])

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        messages = {404: "Nothing here.", 405: "That method is not allowed here."}
        message = messages.get(exc.status_code, str(exc.detail))
        if _is_api(request) or exc.status_code == 405:
            code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
            return JSONResponse({"error": {"code": code, "message": message, "field": None}},
                                status_code=exc.status_code, headers=getattr(exc, "headers", None))
        return _error_page(request, exc.status_code, message)

    async def _out_of_range(request: Request, exc: Exception):
        """A number (an id in the path, a count) beyond what the database stores: bad input, not a
        server fault."""
        message = "A number in the request is out of range."
        if _is_api(request):
            return JSONResponse({"error": {"code": "out_of_range", "message": message, "field": None}},
                                status_code=422)
        return _error_page(request, 422, message)

    app.add_exception_handler(OverflowError, _out_of_range)
    app.add_exception_handler(DataError, _out_of_range)

    @app.exception_handler(Exception)
    async def _server_error(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": {"code": "server_error", "message": "Something went wrong on our side.",
                                       "field": None}}, status_code=500)


def iter_routes(app: FastAPI):
    """Every route of the app, looking through included routers."""
    stack = list(app.router.routes)
    while stack:
        route = stack.pop(0)
        inner = getattr(route, "original_router", None)
        if inner is not None:
            stack[:0] = list(inner.routes)
        else:
            yield route


def _warm_up() -> None:
    from peerlift import collector
    from peerlift.safety.triage import default_lexicon
    from peerlift.settings import get_settings

    try:
        default_lexicon()
    except Exception:  # noqa: BLE001 - the first post then reports the problem where it matters
        logging.getLogger("peerlift").exception("could not load the triage rules and model")
    if get_settings().gc_freeze:
        collector.install()


class PeerliftAPI(FastAPI):
    """The app, handing a live stream the server's own ``send`` (before any middleware wraps it), so
    the stream can write its frames to the socket itself (``delivery.stream.socket_writer``)."""

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope.get("path") == STREAM_PATH:
            scope[SERVER_SEND] = send
        await super().__call__(scope, receive, send)


def create_app() -> FastAPI:
    from peerlift.delivery import stream as stream_api
    from peerlift.notify import api as notify_api
    from peerlift.notify import pages as notify_pages
    from peerlift.cues import api as cues_api
    from peerlift.cues import pages as cues_pages
    from peerlift.protocols import api as protocol_api
    from peerlift.protocols import pages as protocol_pages
    from peerlift.safety import api as safety_api
    from peerlift.safety import pages as safety_pages
    from peerlift.community import api as community_api
    from peerlift.community import pages as community_pages
    from peerlift.identity import api as identity_api
    from peerlift.identity import pages as identity_pages
    from peerlift.tracking import api as tracking_api
    from peerlift.research import api as research_api
    from peerlift.research import pages as research_pages
    from peerlift.tracking import pages as tracking_pages
    from peerlift.research import analytics_api
    from peerlift.research import analytics_pages
    from peerlift.privacy import api as privacy_api
    from peerlift.privacy import pages as privacy_pages
    from peerlift.search import api as search_api
    from peerlift.search import pages as search_pages
    from peerlift.people import api as people_api
    from peerlift.people import pages as people_pages
    from peerlift.experience import api as experience_api
    from peerlift.experience import pages as experience_pages
    from peerlift.professionals import api as professionals_api
    from peerlift.professionals import pages as professionals_pages

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        from peerlift.delivery.dispatch import Dispatcher
        from peerlift.delivery.hub import hub
        from peerlift.settings import get_settings

        from peerlift.delivery.scheduler import start_in_thread

        settings = get_settings()
        # Rules and model take about a second to load: load them now, not in the first post's request.
        threading.Thread(target=_warm_up, daemon=True, name="peerlift-warm-up").start()
        dispatcher = Dispatcher(hub)
        dispatcher.start(settings.redis_url)
        _app.state.dispatcher = dispatcher
        worker = start_in_thread() if settings.run_worker else None
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            dispatcher.stop()

    app = PeerliftAPI(
        lifespan=lifespan,
        title="peerlift",
        version=__version__,
        description="Private peer circles for health: posts, comments, reactions, polls, direct messages.",
        dependencies=[Depends(csrf_protect)],
    )
    _install_error_handlers(app)

    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestLimit)

    app.mount("/static", StaticFiles(directory=str(Path(__file__).parent / "web" / "static")), name="static")
    # FastAPI tries the routes in this order, about 2 µs each (the search behind 255 others took 0.4 ms
    # longer to reach than the feeds): the busiest reads come first. Their paths are their own, so
    # the order changes no match.
    for module in (community_api, identity_api, stream_api, search_api, search_pages, notify_api, protocol_api,
                   safety_api, tracking_api, cues_api, identity_pages, community_pages, notify_pages, protocol_pages,
                   safety_pages, tracking_pages, cues_pages, research_api, research_pages, analytics_api,
                   analytics_pages, privacy_api, privacy_pages, people_api, people_pages,
                   experience_api, experience_pages, professionals_api, professionals_pages):
        app.include_router(module.router)
    _document_csrf(app)
    return app


def _document_csrf(app: FastAPI) -> None:
    """Every write through the API can answer 403 when its CSRF token is missing or stale (the
    check is one dependency of the whole app, so the routes do not list it themselves)."""
    from fastapi.routing import APIRoute

    from peerlift.errors import ErrorResponse

    for route in iter_routes(app):
        if isinstance(route, APIRoute) and route.path.startswith("/api/") and route.methods - {"GET", "HEAD"}:
            route.responses.setdefault(403, {"model": ErrorResponse, "content": {"application/json": {}}})
