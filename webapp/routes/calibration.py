"""Calibration sessions (`webapp.calibration`): GET /calibration (sessions; QA leads: the form), POST /calibration
(a new session: calls and raters), GET /calibration/{session_id} (progress; once closed, the agreement figures and
every rater's answers), POST /calibration/{session_id}/close. Raters judge each call on its call page in
calibration mode (`/calls/<id>?calibration=<session id>`): their own evaluation, blind."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from webapp.calibration import CalibrationError, close_session, create_session, may_view, results
from webapp.lifecycle import targets_of
from webapp.models import CalibrationMember, CalibrationSession, CallIndex, SampleCall, User
from webapp.routes.common import app_state, client_ip, current_user
from webapp.scope import can, require

router = APIRouter()


@router.get("/calibration")
def sessions(request: Request):
    st = app_state(request)
    user = current_user(request)
    if not (can(user, "calibrate") or can(user, "review")):
        raise PermissionError("calibration")
    with st.db.read() as s:
        stmt = select(CalibrationSession).order_by(CalibrationSession.created_at.desc(), CalibrationSession.id.desc())
        if not can(user, "calibrate"):
            stmt = stmt.join(CalibrationMember, CalibrationMember.session_id == CalibrationSession.id).where(
                CalibrationMember.user_id == user.id)
        rows = list(s.scalars(stmt.limit(200)))
        counts = {cs.id: (len(cs.calls), len(cs.members)) for cs in rows}
        reviewers = [u for u in s.scalars(select(User).where(User.disabled.is_(False)).order_by(User.username))
                     if can(u, "review")] if can(user, "calibrate") else []
    return st.pages.render(request, "calibration_list.html", rows=rows, counts=counts, reviewers=reviewers)


@router.post("/calibration")
async def new_session(request: Request):
    st = app_state(request)
    user = current_user(request)
    require(user, "calibrate")
    form = await request.form()
    name = form.get("name") if isinstance(form.get("name"), str) else ""
    calls = (form.get("calls") if isinstance(form.get("calls"), str) else "") or ""
    sample = form.get("sample") if isinstance(form.get("sample"), str) else ""
    raters = [int(v) for v in form.getlist("raters") if isinstance(v, str) and v.isdigit()]
    await form.close()

    def create():
        with st.db.write() as s:
            ids = calls.split()
            if sample.strip().isdigit():
                ids += list(s.scalars(select(SampleCall.call_id).where(SampleCall.sample_id == int(sample))
                                      .order_by(SampleCall.position)))
            cs = create_session(s, user, name=name, call_ids=ids, rater_ids=raters, ip=client_ip(request))
            return cs.id

    try:
        sid = await run_in_threadpool(create)
    except CalibrationError as e:
        raise HTTPException(422, str(e)) from e
    return RedirectResponse(f"/calibration/{sid}", 303)


def _groups(st, s, cs: CalibrationSession) -> dict:
    """(call_id, target_type, target_id) -> group, from the calls' pages (a flag's type is in the datasets)."""
    out = {}
    for cc in cs.calls:
        call = s.get(CallIndex, cc.call_id)
        if call is None:
            continue
        for t in targets_of(st.call_pages.get(call)).values():
            out[(call.call_id, t.target_type, t.target_id)] = t.group
    return out


@router.get("/calibration/{session_id}")
def session_view(request: Request, session_id: int):
    st = app_state(request)
    user = current_user(request)
    with st.db.read() as s:
        cs = s.get(CalibrationSession, session_id)
        if cs is None or not may_view(s, user, cs):
            raise HTTPException(404, "No such calibration session (or not one of yours).")
        calls = [s.get(CallIndex, c.call_id) for c in cs.calls]
        calls = [c for c in calls if c is not None]
        is_rater = s.get(CalibrationMember, (cs.id, user.id)) is not None
        res = results(s, cs, _groups(st, s, cs) if cs.state == "closed" else {})
        creator = s.get(User, cs.created_by)
    return st.pages.render(request, "calibration.html", cs=cs, calls=calls, res=res, is_rater=is_rater,
                           creator=creator.display_name if creator else "?")


@router.post("/calibration/{session_id}/close")
def session_close(request: Request, session_id: int):
    st = app_state(request)
    user = current_user(request)
    require(user, "calibrate")
    try:
        with st.db.write() as s:
            cs = s.get(CalibrationSession, session_id)
            if cs is None:
                raise HTTPException(404, "No such calibration session.")
            close_session(s, user, cs, ip=client_ip(request))
    except CalibrationError as e:
        raise HTTPException(409, str(e)) from e
    return RedirectResponse(f"/calibration/{session_id}", 303)
