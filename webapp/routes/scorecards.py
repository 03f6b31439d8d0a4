"""Managers' weekly scorecards (`webapp.scorecards`): GET /scorecards?week=&team= (the report's numbers for the
teams the user may see, with the automatic answers' agreement with QA beside them) and GET
/scorecards/operator?week=&agent=&criterion= (drill-down: the operator's deductions on that criterion, call by call,
with their evidence, or the complaints that counted)."""

from __future__ import annotations

import re

from fastapi import APIRouter, HTTPException, Request
from sqlalchemy import select

from webapp.models import CallIndex
from webapp.routes.common import app_state, current_user
from webapp.scope import can_see, require
from webapp.scorecards import find_operator, visible_sections

router = APIRouter()
_WEEK = re.compile(r"^\d{4}-W\d{2}$")


def _week(st, week: str) -> tuple[str | None, list[str]]:
    weeks = st.weekly.weeks()
    if week and _WEEK.match(week) and week in weeks:
        return week, weeks
    return (weeks[0] if weeks else None), weeks


@router.get("/scorecards")
def scorecards(request: Request, week: str = "", team: str = ""):
    st = app_state(request)
    user = current_user(request)
    require(user, "view_scorecards")
    week, weeks = _week(st, week)
    view = st.weekly.get(week) if week else None
    sections = visible_sections(view, user) if view else []
    shown = [t for t in sections if not team or t.name == team]
    return st.pages.render(request, "scorecards.html", week=week, weeks=weeks, view=view, sections=sections,
                           shown=shown, team=team, rescore_note=st.rescorer.describe())


@router.get("/scorecards/operator")
def operator(request: Request, week: str = "", agent: str = "", criterion: str = ""):
    st = app_state(request)
    user = current_user(request)
    require(user, "view_scorecards")
    week, _ = _week(st, week)
    view = st.weekly.get(week) if week else None
    found = find_operator(view, user, agent) if view else None
    if found is None:
        raise HTTPException(404, "No such operator this week (or not in your teams).")
    team, op = found
    deducted = []
    for call in op.deducted_calls:
        rows = [d for d in call.deductions if not criterion or d.criterion == criterion]
        if rows:
            deducted.append((call, rows))
    with st.db.read() as s:
        ids = [c.call_id for c, _ in deducted] + [c.call_id for c in team.complaints]
        index = {c.call_id: c for c in s.scalars(select(CallIndex).where(CallIndex.call_id.in_(ids)))} if ids else {}
    linkable = {cid for cid, c in index.items() if can_see(user, c.team, c.agent_id)}
    complaints = [c for c in team.complaints if c.agent_id == op.agent_id]
    return st.pages.render(request, "operator.html", week=week, team=team, op=op, criterion=criterion,
                           deducted=deducted, complaints=complaints, linkable=linkable,
                           agreement=view.agreement.get(team.name, ()), report=view.report)
