"""The review app: `create_app(settings)` builds the FastAPI application.

At start (the lifespan): the database is migrated (`upgrade head`), the queue index is synced from the datasets,
the audio roots are settled (see `AppSettings.calls_roots`), and a background thread looks for changed datasets
every `sync_interval_s`. Everything the routes share lives in one `AppState` (`request.app.state.qa`); nothing
is kept in module globals, so two apps (tests) never share a database, a pool or a cache.

Routes live in `webapp/routes/` (one module per area; later steps add theirs to `ROUTERS` there). Every route is
behind `webapp.middleware.SessionGate` (login, CSRF) and `SecurityHeaders` (CSP); scoping goes through
`webapp.scope`."""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import FileResponse, PlainTextResponse

from qa_pipeline.render import TEMPLATES_DIR as RENDER_TEMPLATES_DIR
from webapp.callpage import CallPages, Datasets
from webapp.config import AppSettings
from webapp.db import Database
from webapp.media import PeaksCache, resolve_roots
from webapp.middleware import SecurityHeaders, SessionGate
from webapp.models import CallIndex
from webapp.queue import FilterOptions
from webapp.rescoring import Rescorer
from webapp.scope import NotVisible
from webapp.scorecards import WeeklyViews
from webapp.security import Passwords
from webapp.sync import Syncer
from webapp.templating import STATIC_DIR, Pages

log = logging.getLogger("webapp")


@dataclass
class AppState:
    settings: AppSettings
    db: Database
    datasets: Datasets
    syncer: Syncer
    peaks: PeaksCache
    pages: Pages
    passwords: Passwords
    options: FilterOptions
    call_pages: CallPages
    weekly: WeeklyViews
    rescorer: Rescorer
    calls_roots: tuple[Path, ...] = ()
    audio_note: str | None = None  # why audio is off, when it is
    stop: threading.Event = field(default_factory=threading.Event)
    _analysis: tuple | None = None  # (PipelineConfig, Resources) for "swap speakers", loaded on first use
    _analysis_lock: threading.Lock = field(default_factory=threading.Lock)
    swap_lock: threading.Lock = field(default_factory=threading.Lock)  # one "swap speakers" at a time

    def analysis(self):
        """The pipeline configuration and loaded analysis resources "swap speakers" re-analyses a call with:
        `--config`, else the demo's for the demo data, else the defaults (loaded once, on the first swap)."""
        with self._analysis_lock:
            if self._analysis is None:
                from qa_pipeline.config import load_config
                from qa_pipeline.pipeline.resources import ResourcePool

                path = self.settings.pipeline_config
                if path is None:
                    from qa_pipeline.cli import DEMO_CONFIG

                    demo = resolve_roots([demo_calls_dir()])
                    if demo and self.calls_roots == demo and DEMO_CONFIG.is_file():
                        path = DEMO_CONFIG
                config = load_config(str(path) if path else None)
                self._analysis = (config, ResourcePool().for_config(config))
            return self._analysis


def demo_calls_dir() -> Path:
    from qa_pipeline.cli import DEMO_CALLS

    return DEMO_CALLS


def settle_calls_roots(state: AppState) -> None:
    """`calls_roots` None: the demo calls folder when the indexed calls come from it, else none."""
    given = state.settings.calls_roots
    if given is not None:
        state.calls_roots = resolve_roots(given)
        missing = [str(p) for p in given if Path(p).resolve() not in state.calls_roots]
        if missing:
            log.warning("calls folder(s) not found, not served: %s", ", ".join(missing))
        state.audio_note = None if state.calls_roots else "audio is off: the server was started without --calls"
        return
    demo = resolve_roots([demo_calls_dir()])
    with state.db.read() as s:
        paths = list(s.scalars(CallIndex.__table__.select().with_only_columns(CallIndex.path).limit(20)))
    if demo and paths and all(Path(p).resolve().is_relative_to(demo[0]) for p in paths if "://" not in p):
        state.calls_roots = demo
        state.audio_note = None
    else:
        state.calls_roots = ()
        state.audio_note = "audio is off: start the server with --calls DIR (the folder of the recordings)"


def _sync_loop(state: AppState) -> None:
    interval = state.settings.sync_interval_s
    while not state.stop.wait(interval):
        try:
            state.syncer.sync()
        except Exception:  # a sync that fails is retried next time; the app keeps serving the old index
            log.exception("queue index sync failed")


def create_app(settings: AppSettings, *, passwords: Passwords | None = None) -> FastAPI:
    db = Database(settings.database_url)
    datasets = Datasets(settings.data_dir)
    options = FilterOptions()
    call_pages = CallPages(datasets)
    weekly = WeeklyViews(settings.data_dir, datasets, settings.rubric_path)

    def on_synced(*_args) -> None:  # the datasets changed: every cache built from them goes
        options.clear()
        call_pages.clear()
        weekly.clear()

    syncer = Syncer(db, settings.data_dir, on_synced=on_synced)

    def after_full_rescore() -> None:
        syncer.sync()
        call_pages.clear()

    rescorer = Rescorer(db, datasets.folder, mode=settings.rescore, rubric_path=settings.rubric_path,
                        call_rows=call_pages.flag_ids, on_changed=weekly.clear, after_full=after_full_rescore,
                        min_interval_s=settings.rescore_min_interval_s)
    state = AppState(settings=settings, db=db, datasets=datasets, syncer=syncer, options=options,
                     call_pages=call_pages, weekly=weekly, rescorer=rescorer,
                     peaks=PeaksCache(datasets.folder, settings), pages=Pages(),
                     passwords=passwords or Passwords(time_cost=settings.argon2_time_cost,
                                                      memory_kib=settings.argon2_memory_kib))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        db.upgrade()
        if settings.sync_on_start:
            state.syncer.sync()
        settle_calls_roots(state)
        with db.write() as s:
            from webapp.auth import prune_sessions

            prune_sessions(s)
        thread = None
        if settings.sync_interval_s > 0:
            thread = threading.Thread(target=_sync_loop, args=(state,), name="queue-sync", daemon=True)
            thread.start()
        rescorer.start()  # also exports what a previous process left pending
        try:
            yield
        finally:
            state.stop.set()
            rescorer.stop()
            if thread is not None:
                thread.join(timeout=5)
            datasets.close()
            db.dispose()

    app = FastAPI(title="QA review", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.qa = state

    from webapp.routes import ROUTERS

    @app.get("/static/report.css", include_in_schema=False)
    def report_css() -> FileResponse:
        """The weekly report's stylesheet (the render layer's), shared by the app's pages."""
        return FileResponse(RENDER_TEMPLATES_DIR / "report.css", media_type="text/css")

    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR, follow_symlink=False), name="static")

    @app.exception_handler(NotVisible)
    async def not_visible(request: Request, exc: NotVisible):
        return _error(request, 404, "No such call (or not one you may see).")

    @app.exception_handler(PermissionError)
    async def forbidden(request: Request, exc: PermissionError):
        return _error(request, 403, "Your account may not do this.")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return _error(request, exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    # the gate runs inside the headers middleware (the last added is the outermost)
    app.add_middleware(SessionGate, state=state)
    app.add_middleware(SecurityHeaders)
    return app


def _error(request: Request, status: int, message: str, *, headers: dict | None = None):
    accept = request.headers.get("accept", "")
    if "text/html" in accept and not request.headers.get("hx-request"):
        return request.app.state.qa.pages.render(request, "error.html", status=status, headers=headers,
                                                 status_code=status, message=message)
    return PlainTextResponse(message, status, headers=headers)
