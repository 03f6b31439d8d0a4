"""POST /calls/{call_id}/swap-speakers: the call's agent and customer came out the wrong way round.

The swap is done on the datasets through the library (`qa_pipeline.pipeline.swap.swap_roles`: the call's
utterances, words, metrics and calls rows rewritten, its analysis run again), so they stay the single source of
truth; the database records the decision (`role_swaps`: who, when, why, the roles before and after) and the audit
log the change. Then the queue index is refreshed for the call and a full rescore is asked for (its item scores
depend on the roles). The form carries the number of swaps it saw: a second swap by someone who had not seen the
first (which would swap the roles back) is refused."""

from __future__ import annotations

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import func, select

from qa_pipeline.pipeline.swap import SwapError, swap_roles
from webapp import audit
from webapp.models import RoleSwap
from webapp.routes.common import app_state, client_ip, current_user
from webapp.routes.evaluations import call_url, mode_of
from webapp.scope import require, require_call

router = APIRouter()


@router.post("/calls/{call_id}/swap-speakers")
def swap_speakers(request: Request, call_id: str, reason: str = Form("", max_length=2000),
                  swaps: int = Form(-1), calibration: str = Form("")):
    st = app_state(request)
    user = current_user(request)
    with st.db.read() as s:
        call = require_call(s, user, call_id)
    require(user, "swap_speakers")
    config, resources = st.analysis()
    with st.swap_lock:  # one swap at a time (each is seconds of re-analysis)
        with st.db.read() as s:
            done = s.scalar(select(func.count()).select_from(RoleSwap).where(RoleSwap.call_id == call.call_id))
        if swaps != done:
            raise HTTPException(409, "Someone swapped this call's speakers since you opened the page: reload it and "
                                     "check the roles before swapping again.")
        try:
            result = swap_roles(st.datasets.folder, call.call_id, call.call_date, config, resources,
                                by=user.username, reason=reason.strip() or None)
        except SwapError as e:
            raise HTTPException(409, str(e)) from e
        with st.db.write() as s:
            s.add(RoleSwap(call_id=call.call_id, by_user_id=user.id, reason=reason.strip() or None,
                           before=result["before"], after=result["after"]))
            audit.record(s, "roles_swapped", user=user, target_type="call", target_id=call.call_id,
                         ip=client_ip(request), detail={**result, "reason": reason.strip() or None})
    st.call_pages.forget(call.call_id)
    st.syncer.sync()  # the call's flags and utterances changed: the queue and its page follow now
    st.rescorer.request(full=True)  # its item scores depend on the roles
    return RedirectResponse(call_url(call.call_id, mode_of(calibration), None), 303)
