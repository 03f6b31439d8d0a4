"""Coaching marks: a trainer marks an evidence span (or any stretch of the waveform) of a call as a coaching
example (done well) or a miss (to improve), with a criterion and a note; the coaching-pack work builds on these.

    POST /calls/{call_id}/coaching     a new mark (capability "coach", the call in scope)
    GET  /coaching                      the trainer's marks (QA leads and admins: ?all=1, every mark in scope)
    POST /coaching/pack                 build a coaching pack (webapp.packs over qa_pipeline.render.coaching) for
                                        an agent or a team in the trainer's scope, with every mark in scope, and
                                        download it as a zip (audited "pack_built")"""

from __future__ import annotations

import math
from pathlib import Path

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from webapp import audit
from webapp.models import CallIndex, CoachingMark, User
from webapp.routes.common import app_state, client_ip, current_user
from webapp.routes.evaluations import call_url, mode_of
from webapp.scope import require, require_call, scope_of, scoped

router = APIRouter()
KINDS = ("example", "miss")


def marks_of_call(s, call_id: str) -> list[tuple[CoachingMark, str]]:
    return list(s.execute(select(CoachingMark, User.display_name).join(User, User.id == CoachingMark.trainer_id)
                          .where(CoachingMark.call_id == call_id).order_by(CoachingMark.start_s, CoachingMark.id)))


@router.post("/calls/{call_id}/coaching")
def add_mark(request: Request, call_id: str, start_s: str = Form(""), end_s: str = Form(""),
             criterion: str = Form("", max_length=200), kind: str = Form("example", max_length=20),
             note: str = Form("", max_length=4000), utterance_index: str = Form(""), calibration: str = Form("")):
    st = app_state(request)
    user = current_user(request)
    with st.db.read() as s:
        call = require_call(s, user, call_id)
    require(user, "coach")
    try:
        start, end = float(start_s), float(end_s)
    except ValueError:
        raise HTTPException(422, "Give the span's start and end in seconds (select a stretch of the waveform, or "
                                 "use an evidence span).") from None
    if not (math.isfinite(start) and math.isfinite(end)) or not 0 <= start < end <= call.duration_s + 1.0:
        raise HTTPException(422, f"The span {start:g}-{end:g} s is not inside the call (0-{call.duration_s:g} s).")
    if kind not in KINDS:
        raise HTTPException(422, f"The kind is one of {', '.join(KINDS)}.")
    index = int(utterance_index) if utterance_index.strip().isdigit() else None
    with st.db.write() as s:
        mark = CoachingMark(trainer_id=user.id, call_id=call.call_id, agent_id=call.agent_id,
                            start_s=round(start, 2), end_s=round(end, 2), utterance_index=index,
                            criterion=criterion.strip() or None, kind=kind, note=note.strip() or None)
        s.add(mark)
        s.flush()
        audit.record(s, "coaching_marked", user=user, target_type="call", target_id=call.call_id,
                     ip=client_ip(request), detail={"mark": mark.id, "span": [mark.start_s, mark.end_s],
                                                    "criterion": mark.criterion, "kind": kind, "note": mark.note})
    if request.headers.get("hx-request"):
        with st.db.read() as s:
            marks = marks_of_call(s, call.call_id)
        return st.pages.render(request, "app_partials/coaching_marks.html", marks=marks, call=call)
    return RedirectResponse(call_url(call.call_id, mode_of(calibration), None) + "#coaching", 303)


@router.get("/coaching")
def my_marks(request: Request, all: str = ""):
    st = app_state(request)
    user = current_user(request)
    require(user, "coach")
    everyone = bool(all) and user.role in ("admin", "qa_lead")
    stmt = scoped(select(CoachingMark, CallIndex, User.display_name)
                  .join(CallIndex, CallIndex.call_id == CoachingMark.call_id)
                  .join(User, User.id == CoachingMark.trainer_id), user, CallIndex)
    if not everyone:
        stmt = stmt.where(CoachingMark.trainer_id == user.id)
    with st.db.read() as s:
        rows = list(s.execute(stmt.order_by(CoachingMark.created_at.desc(), CoachingMark.id.desc()).limit(500)))
    return st.pages.render(request, "coaching.html", rows=rows, everyone=everyone)


@router.post("/coaching/pack")
def build_pack_action(request: Request, agent: str = Form("", max_length=200), team: str = Form("", max_length=200),
                      criterion: str = Form("", max_length=200), week: str = Form("", max_length=10)):
    import datetime as dt
    import re

    from qa_pipeline.errors import QAPipelineError
    from qa_pipeline.store.folder import is_uri
    from webapp.packs import build, zipped

    st = app_state(request)
    user = current_user(request)
    require(user, "coach")
    agent, team, criterion, week = agent.strip(), team.strip(), criterion.strip(), week.strip()
    if not agent and not team:
        raise HTTPException(422, "Name the agent or the team the pack is for.")
    if is_uri(st.settings.data_dir):
        raise HTTPException(422, "Packs are built from a local data folder only.")
    scope = scope_of(user)
    with st.db.read() as s:
        calls = {c.call_id: c for c in s.scalars(scoped(select(CallIndex), user, CallIndex))}
        marks = [dict(call_id=m.call_id, agent_id=m.agent_id, start_s=m.start_s, end_s=m.end_s,
                      criterion=m.criterion, kind=m.kind, note=m.note, trainer=name)
                 for m, name in s.execute(select(CoachingMark, User.display_name)
                                          .join(User, User.id == CoachingMark.trainer_id)) if m.call_id in calls]
    if team and not scope.allows(team, None) or agent and not any(c.agent_id == agent for c in calls.values()):
        raise HTTPException(404, "No calls of that agent or team are in your scope.")
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    out = Path(st.settings.data_dir) / "_app" / "packs" / f"{re.sub(r'[^A-Za-z0-9_-]', '_', user.username)}-{stamp}"
    try:
        build(st.settings.data_dir, out, marks=marks, agent=agent or None, team=team or None,
              criterion=criterion or None, week=week or None, rubric=st.settings.rubric_path)
    except QAPipelineError as e:
        raise HTTPException(404, str(e)) from e
    with st.db.write() as s:
        audit.record(s, "pack_built", user=user, target_type="pack", target_id=out.name, ip=client_ip(request),
                     detail={"agent": agent or None, "team": team or None, "criterion": criterion or None,
                             "week": week or None})
    return Response(zipped(out), media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="coaching-pack-{stamp}.zip"'})
