"""The viewer's ASGI application (Starlette, Jinja2 templates with autoescape, files from the package).

Routes: ``/`` events list (filters, keyset pages, live mode), ``/events/{id}`` one event (conversation, usage,
lineage, scores; ``POST /events/{id}/scores`` is the one write), ``/stats`` charts, ``/export.jsonl`` the filtered
list as JSON lines (each event's stored record plus its ``scores``), ``/live`` rows stored since a watermark (for
``static/live.js``), ``/login``, ``/healthz``, ``/static/...``. Every page works without JavaScript.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from leanllm_otel.feedback import ScoreRecorder
from leanllm_otel.scores import parse_value
from leanllm_otel.store.queries import StoreError
from leanllm_otel.ui import views
from leanllm_otel.ui.forms import FilterForm, parse_filters
from leanllm_otel.ui.overview import WINDOW_NAMES, build_overview, overview_window
from leanllm_otel.ui.queries import Cursor, ViewerQueries
from leanllm_otel.ui.security import COOKIE_NAME, Guard

__all__ = ["FEEDBACK_SCORE", "create_app"]

FEEDBACK_SCORE = "user_feedback"  # the name the thumbs up / down buttons score under
LIVE_OVERLAP = timedelta(seconds=5)  # rows committed slightly after their recorded_at, clock skew
_MAX_FORM_BYTES = 64 * 1024
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_SECURITY_HEADERS = {
    "content-security-policy": _CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",  # no-referrer would make browsers send "Origin: null" on our own forms
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("leanllm_otel.ui", "templates"), autoescape=True, undefined=StrictUndefined)
    env.filters.update(ms=views.ms, cost=views.cost, tokens=views.tokens, utc=views.utc)
    env.globals.update(mode_note=views.mode_note, feedback_score=FEEDBACK_SCORE)
    return env


class Viewer:
    """The app's state: queries, the score recorder (writes), the guard, the templates."""

    def __init__(self, queries: ViewerQueries, recorder: ScoreRecorder, guard: Guard, masked_url: str) -> None:
        self.queries = queries
        self.recorder = recorder
        self.guard = guard
        self.masked_url = masked_url
        self.templates = _environment()

    def page(self, request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        template = self.templates.get_template(name)
        html = template.render(request=request, guard=self.guard, store_url=self.masked_url, **context)
        return HTMLResponse(html, status_code=status)

    def error(self, request: Request, status: int, message: str) -> HTMLResponse:
        return self.page(request, "error.html", status, title=f"{status}", message=message)


def _form(request: Request) -> FilterForm:
    return parse_filters(request.query_params, request.query_params.getlist("label"))


def _cursor(request: Request, name: str, form: FilterForm) -> Cursor | None:
    text = request.query_params.get(name)
    if not text:
        return None
    try:
        return Cursor.decode(text)
    except ValueError as exc:
        form.errors[name] = str(exc)
        return None


async def events_list(request: Request) -> Response:
    viewer: Viewer = request.app.state.viewer
    form = _form(request)
    before, after = _cursor(request, "before", form), _cursor(request, "after", form)
    live = request.query_params.get("live") == "1" and before is None and after is None
    choices = await viewer.queries.choices()
    if form.errors:
        return viewer.page(request, "events.html", 400, form=form, page=None, choices=choices, live=False, seen=[])
    page = await viewer.queries.page(form.event_filter, limit=form.limit, before=before, after=after)
    seen: list[str] = []
    if live:  # rows of the overlap window are not new, whether this page shows them or not
        recent = await viewer.queries.recorded_after(form.event_filter, page.watermark - LIVE_OVERLAP, limit=2000)
        seen = [row.event_id for row in recent]
    return viewer.page(request, "events.html", form=form, page=page, choices=choices, live=live, seen=seen)


async def live_rows(request: Request) -> Response:
    viewer: Viewer = request.app.state.viewer
    form = _form(request)
    try:
        since = datetime.fromisoformat(request.query_params.get("recorded_after", ""))
    except ValueError:
        form.errors["recorded_after"] = "recorded_after: expected an ISO 8601 time"
    if form.errors:
        return JSONResponse({"errors": form.errors}, status_code=400)
    rows = await viewer.queries.recorded_after(form.event_filter, since - LIVE_OVERLAP)
    watermark = max([since, *(row.recorded_at for row in rows if row.recorded_at is not None)])
    html = viewer.templates.get_template("rows.html").render(rows=rows, form=form)
    return JSONResponse({"rows": html, "ids": [row.event_id for row in rows], "watermark": watermark.isoformat()})


async def event_page(request: Request) -> Response:
    viewer: Viewer = request.app.state.viewer
    event_id = request.path_params["event_id"]
    found = await viewer.queries.event(event_id)
    if found is None:
        return viewer.error(request, 404, f"No event with id {event_id!r} in this store.")
    event, scores, lineage = found
    features = await viewer.queries.features()
    return viewer.page(
        request,
        "event.html",
        event=event,
        scores=scores,
        lineage=lineage,
        timeline=views.timeline(lineage.trace, event.event_id),
        conversation=views.conversation(event),
        replay=views.replay_command(event.event_id, viewer.masked_url),
        scores_available=features.scores,
        csrf=viewer.guard.csrf_token(request, f"score:{event.event_id}"),
        payload=json.dumps(event.to_payload(), indent=2, ensure_ascii=False, default=str),
    )


async def add_score(request: Request) -> Response:
    viewer: Viewer = request.app.state.viewer
    event_id = request.path_params["event_id"]
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        return viewer.error(request, 413, "The form is too large.")
    fields = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    if not viewer.guard.csrf_ok(request, f"score:{event_id}", fields.get("csrf", "")):
        return viewer.error(request, 403, "This form expired or came from another site; reload the page and retry.")
    if await viewer.queries.event(event_id) is None:
        return viewer.error(request, 404, f"No event with id {event_id!r} in this store.")
    name = fields.get("name", "").strip() or FEEDBACK_SCORE
    value = parse_value(fields.get("value", ""))
    comment = fields.get("comment") or None
    try:
        await run_in_threadpool(viewer.recorder.record, event_id, name, value, comment, source="ui")
    except ValueError as exc:
        return viewer.error(request, 400, str(exc))
    except Exception as exc:
        return viewer.error(request, 503, f"The score was not stored: {str(exc).splitlines()[0][:300]}")
    return RedirectResponse(f"/events/{event_id}#scores", status_code=303)


async def stats_page(request: Request) -> Response:
    viewer: Viewer = request.app.state.viewer
    form = _form(request)
    window = overview_window(form, request.query_params.get("window"))
    choices = await viewer.queries.choices()
    context: dict[str, Any] = {"form": form, "choices": choices, "window": window, "windows": WINDOW_NAMES}
    if form.errors:
        return viewer.page(request, "stats.html", 400, overview=None, **context)
    stats = await viewer.queries.overview(form.event_filter)
    return viewer.page(request, "stats.html", overview=build_overview(stats, window), **context)


async def export_jsonl(request: Request) -> Response:
    viewer: Viewer = request.app.state.viewer
    form = _form(request)
    if form.errors:
        return PlainTextResponse("\n".join(form.errors.values()) + "\n", status_code=400)

    async def lines() -> AsyncIterator[bytes]:
        async for event, scores in viewer.queries.export(form.event_filter):
            line = {**event.to_payload(), "scores": [score.to_payload() for score in scores]}
            yield (json.dumps(line, ensure_ascii=False, default=str) + "\n").encode("utf-8")

    headers = {"content-disposition": 'attachment; filename="leanllm-events.jsonl"'}
    return StreamingResponse(lines(), media_type="application/x-ndjson", headers=headers)


async def login(request: Request) -> Response:
    viewer: Viewer = request.app.state.viewer
    if not viewer.guard.required:
        return RedirectResponse("/", status_code=303)
    if request.method == "GET":
        return viewer.page(request, "login.html", 401 if not viewer.guard.authorized(request) else 200, failed=False)
    body = (await request.body())[:_MAX_FORM_BYTES]
    fields = dict(parse_qsl(body.decode("utf-8", "replace")))
    if not viewer.guard.same_origin(request) or not viewer.guard.token_matches(fields.get("token", "")):
        return viewer.page(request, "login.html", 401, failed=True)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(COOKIE_NAME, viewer.guard.session_value(), httponly=True, samesite="strict", path="/")
    return response


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok\n")


Dispatch = Callable[[Request], Awaitable[Response]]
_OPEN_PATHS = ("/login", "/healthz", "/static/")


async def _guard(request: Request, call_next: Dispatch) -> Response:
    viewer: Viewer = request.app.state.viewer
    if not viewer.guard.host_allowed(request):
        response: Response = PlainTextResponse("unknown host\n", status_code=421)
    elif not request.url.path.startswith(_OPEN_PATHS) and not viewer.guard.authorized(request):
        if "text/html" in request.headers.get("accept", ""):
            response = viewer.page(request, "login.html", 401, failed=False)
        else:
            response = PlainTextResponse("authentication required\n", status_code=401)
    else:
        try:
            response = await call_next(request)
        except StoreError as exc:
            response = viewer.error(request, 503, str(exc))
    response.headers.update(_SECURITY_HEADERS)
    return response


def create_app(queries: ViewerQueries, recorder: ScoreRecorder, guard: Guard, masked_url: str) -> Starlette:
    """The viewer over ``queries`` (closed when the app's lifespan ends)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await queries.close()

    app = Starlette(
        routes=[
            Route("/", events_list),
            Route("/live", live_rows),
            Route("/events/{event_id}/scores", add_score, methods=["POST"]),
            Route("/events/{event_id}", event_page),
            Route("/stats", stats_page),
            Route("/export.jsonl", export_jsonl),
            Route("/login", login, methods=["GET", "POST"]),
            Route("/healthz", healthz),
            Mount("/static", StaticFiles(packages=[("leanllm_otel.ui", "static")]), name="static"),
        ],
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=_guard)],
        lifespan=lifespan,
    )
    app.state.viewer = Viewer(queries, recorder, guard, masked_url)
    return app
