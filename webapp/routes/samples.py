"""Review samples (`webapp.sampling`): GET /samples (the list and, for QA leads, the form), POST /samples (draw one),
GET /samples/{sample_id} (its calls in the user's scope, each with its evaluation's state and a link that records the
sample on the evaluation)."""

from __future__ import annotations

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import func, select

from webapp.models import CallIndex, Evaluation, Sample, SampleCall, User
from webapp.queue import filter_options
from webapp.routes.common import app_state, client_ip, current_user
from webapp.sampling import METHODS, STRATA, SampleError, create_sample
from webapp.scope import can, require, scoped

router = APIRouter()


def _can_list(user) -> None:
    if not (can(user, "review") or can(user, "sample")):
        raise PermissionError("samples")


@router.get("/samples")
def samples(request: Request, error: str = ""):
    st = app_state(request)
    user = current_user(request)
    _can_list(user)
    with st.db.read() as s:
        rows = list(s.execute(select(Sample, User.display_name, func.count(SampleCall.call_id))
                              .join(User, User.id == Sample.created_by)
                              .outerjoin(SampleCall, SampleCall.sample_id == Sample.id)
                              .group_by(Sample.id, User.display_name)
                              .order_by(Sample.created_at.desc(), Sample.id.desc()).limit(200)))
        options = filter_options(s, user) if can(user, "sample") else None
    return st.pages.render(request, "samples.html", rows=rows, options=options, methods=METHODS, strata=STRATA,
                           error=error[:300] or None)


@router.post("/samples")
def new_sample(request: Request, name: str = Form("", max_length=200), method: str = Form("random"),
               per_agent: int = Form(5), team: str = Form("", max_length=200), week: str = Form("", max_length=8),
               language: str = Form("", max_length=16), call_type: str = Form("", max_length=40),
               stratum: str = Form("call_type"), seed: str = Form("", max_length=12)):
    st = app_state(request)
    user = current_user(request)
    require(user, "sample")
    try:
        seed_value = int(seed) if seed.strip() else None
    except ValueError:
        raise HTTPException(422, "The seed is a whole number (or empty: one is drawn).") from None
    try:
        with st.db.write() as s:
            sample = create_sample(s, user, name=name, method=method, per_agent=per_agent, team=team or None,
                                   week=week or None, language=language or None, call_type=call_type or None,
                                   stratum=stratum, seed=seed_value, ip=client_ip(request))
            sid = sample.id
    except SampleError as e:
        raise HTTPException(422, str(e)) from e
    return RedirectResponse(f"/samples/{sid}", 303)


@router.get("/samples/{sample_id}")
def sample_view(request: Request, sample_id: int):
    st = app_state(request)
    user = current_user(request)
    _can_list(user)
    with st.db.read() as s:
        sample = s.get(Sample, sample_id)
        if sample is None:
            raise HTTPException(404, "No such sample.")
        stmt = scoped(select(SampleCall, CallIndex, Evaluation.state)
                      .join(CallIndex, CallIndex.call_id == SampleCall.call_id)
                      .outerjoin(Evaluation, (Evaluation.call_id == SampleCall.call_id)
                                 & (Evaluation.kind == "standard"))
                      .where(SampleCall.sample_id == sample_id), user, CallIndex)
        rows = list(s.execute(stmt.order_by(SampleCall.position)))
        total = s.scalar(select(func.count()).select_from(SampleCall).where(SampleCall.sample_id == sample_id))
        by = s.get(User, sample.created_by)
        from_sample = s.scalar(select(func.count()).select_from(Evaluation).where(Evaluation.sample_id == sample_id))
    return st.pages.render(request, "sample.html", sample=sample, rows=rows, total=total,
                           creator=by.display_name if by else "?", from_sample=from_sample)
