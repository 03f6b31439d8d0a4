"""The evaluation lifecycle over HTTP (the logic is `webapp.lifecycle`'s):

    POST /calls/{call_id}/evaluation/verdicts      confirm or override one target (reviewer; calibration rater)
    POST /calls/{call_id}/evaluation/comments      a comment on a line, a target or the call
    POST /calls/{call_id}/evaluation/submit        the evaluation is done
    POST /calls/{call_id}/evaluation/acknowledge   the agent (or their manager) accepts it, within the window
    POST /calls/{call_id}/evaluation/dispute       ... or disputes it (or one verdict), with a reason
    POST /calls/{call_id}/evaluation/resolve       a QA lead resolves the dispute: root cause, note, verdicts
    GET  /evaluations                              the evaluations the user may see (agents: their own)

Every form carries the CSRF token (checked by the session gate before any of this runs) and the version of the
evaluation it was drawn from; `calibration=<session id>` selects the rater's calibration evaluation, `sample=<id>`
records the sample the call was opened from. With htmx (HX-Request) the answer is the re-rendered evaluation panel,
or, when refused, the message alone (retargeted to the panel's alert box, status 403 / 409 / 422); a plain form post
is answered with a redirect to the call page (or the error page when refused). Submissions and resolutions ask
the rescorer to export the verdicts and rescore (`webapp.rescoring`)."""

from __future__ import annotations

from typing import Callable

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from webapp import lifecycle
from webapp.lifecycle import LifecycleError, Mode, build_panel, targets_of
from webapp.models import EVALUATION_STATES, ROOT_CAUSES
from webapp.routes.common import app_state, current_user
from webapp.scope import require, require_call

router = APIRouter()


def form_int(form, name: str) -> int | None:
    value = (form.get(name) or "").strip() if isinstance(form.get(name), str) else ""
    try:
        return int(value) if value else None
    except ValueError:
        return None


def form_float(form, name: str) -> float | None:
    value = (form.get(name) or "").strip() if isinstance(form.get(name), str) else ""
    if not value:
        return None
    return float(value.replace(",", "."))  # ValueError: not a number


def form_text(form, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def mode_of(value) -> Mode:
    try:
        sid = int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        sid = None
    return Mode("calibration", sid) if sid else Mode()


def call_url(call_id: str, mode: Mode, sample_id: int | None) -> str:
    from urllib.parse import quote, urlencode

    params = {}
    if mode.calibration:
        params["calibration"] = mode.session_id
    if sample_id:
        params["sample"] = sample_id
    return f"/calls/{quote(call_id, safe='')}" + (f"?{urlencode(params)}" if params else "")


def render_panel(request: Request, st, user, call, page, targets, mode: Mode, sample_id: int | None, *,
                 status: int = 200, alert: str | None = None):
    with st.db.read() as s:
        panel = build_panel(s, user, call, page, targets, mode, sample_id=sample_id)
    return st.pages.render(request, "app_partials/evaluation.html", status=status, panel=panel, alert=alert,
                           audio=True, root_causes=ROOT_CAUSES)


def refusal(request: Request, st, e: LifecycleError):
    if request.headers.get("hx-request"):
        return st.pages.render(request, "app_partials/alert.html", status=e.status, message=e.message,
                               headers={"HX-Retarget": "#eval-alert", "HX-Reswap": "innerHTML"})
    raise HTTPException(e.status, e.message)


def _handle(request: Request, call_id: str, form, change: Callable, *, export: bool = False):
    """Load the call (404 outside the scope), run `change(s, user, call, targets, mode, sample_id)` in one write
    transaction, answer with the panel (htmx) or a redirect."""
    st = app_state(request)
    user = current_user(request)
    with st.db.read() as s:
        call = require_call(s, user, call_id)
    page = st.call_pages.get(call)
    targets = targets_of(page)
    mode = mode_of(form.get("calibration"))
    sample_id = form_int(form, "sample")
    try:
        with st.db.write() as s:
            change(s, user, call, targets, mode, sample_id, page)
    except LifecycleError as e:
        return refusal(request, st, e)
    if export and not mode.calibration:
        st.rescorer.request()
    if request.headers.get("hx-request"):
        return render_panel(request, st, user, call, page, targets, mode, sample_id)
    return RedirectResponse(call_url(call.call_id, mode, sample_id) + "#evaluation", 303)


async def _post(request: Request, call_id: str, change: Callable, *, export: bool = False):
    form = await request.form()
    try:
        return await run_in_threadpool(_handle, request, call_id, form, lambda *a: change(form, *a), export=export)
    finally:
        await form.close()


@router.post("/calls/{call_id}/evaluation/verdicts")
async def judge(request: Request, call_id: str):
    def change(form, s: Session, user, call, targets, mode, sample_id, page):
        try:
            span = (form_float(form, "span_start"), form_float(form, "span_end"))
        except ValueError:
            raise lifecycle.Invalid("The pinned span must be numbers of seconds.") from None
        lifecycle.judge(s, user, call, targets, mode, target_type=form_text(form, "target_type") or "",
                        target_id=form_text(form, "target_id") or "", action=form_text(form, "action"),
                        answer=form_text(form, "answer"), comment=form_text(form, "comment"), span=span,
                        version=form_int(form, "version"), sample_id=sample_id)

    return await _post(request, call_id, change)


@router.post("/calls/{call_id}/evaluation/comments")
async def comment(request: Request, call_id: str):
    def change(form, s, user, call, targets, mode, sample_id, page):
        lifecycle.add_comment(s, user, call, targets, mode, body=form_text(form, "body"),
                              anchor=form_text(form, "anchor"), utterances={ln.index for ln in page.lines},
                              version=form_int(form, "version"), sample_id=sample_id)

    return await _post(request, call_id, change)


@router.post("/calls/{call_id}/evaluation/submit")
async def submit(request: Request, call_id: str):
    window = app_state(request).settings.dispute_window_days

    def change(form, s, user, call, targets, mode, sample_id, page):
        lifecycle.submit(s, user, call, mode, version=form_int(form, "version"), window_days=window)

    return await _post(request, call_id, change, export=True)


@router.post("/calls/{call_id}/evaluation/acknowledge")
async def acknowledge(request: Request, call_id: str):
    def change(form, s, user, call, targets, mode, sample_id, page):
        lifecycle.acknowledge(s, user, call, version=form_int(form, "version"))

    return await _post(request, call_id, change)


@router.post("/calls/{call_id}/evaluation/dispute")
async def dispute(request: Request, call_id: str):
    def change(form, s, user, call, targets, mode, sample_id, page):
        lifecycle.dispute(s, user, call, version=form_int(form, "version"), reason=form_text(form, "reason"),
                          verdict_id=form_int(form, "verdict"))

    return await _post(request, call_id, change)


@router.post("/calls/{call_id}/evaluation/resolve")
async def resolve(request: Request, call_id: str):
    def change(form, s, user, call, targets, mode, sample_id, page):
        changes = {}
        for name in form.keys():
            if name.startswith("answer_") and name[7:].isdigit():
                value = form_text(form, name)
                if value:
                    changes[int(name[7:])] = value
        lifecycle.resolve(s, user, call, targets, version=form_int(form, "version"),
                          root_cause=form_text(form, "root_cause"), note=form_text(form, "note"), changes=changes)

    return await _post(request, call_id, change, export=True)


@router.get("/evaluations")
def evaluations(request: Request, state: str = ""):
    st = app_state(request)
    user = current_user(request)
    require(user, "view_evaluations")
    state = state if state in EVALUATION_STATES else ""
    with st.db.read() as s:
        rows = lifecycle.evaluations_visible(s, user, state=state or None)
    return st.pages.render(request, "evaluations.html", rows=rows, state=state, states=EVALUATION_STATES)
