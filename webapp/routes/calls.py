"""A call: GET /calls/{call_id} (the page, with its evaluation panel: `?calibration=<session>` for a rater's blind
calibration evaluation, `?sample=<id>` when opened from a sample, `?text=original` for the original text),
/calls/{call_id}/peaks.json (the waveform), /audio/{call_id} (the recording, with HTTP Range for seeking). All three
check the call against the user's scope first (`webapp.scope.require_call`: 404 when out of scope), and the audio
against the allowed roots (`webapp.media`).

Audit: each page view writes "viewed" and creates a call view whose id is in the page's audio URL; the first
audio request of that view writes "played" (a player's many range requests are one play). Audio without a valid
view id of this user and call is refused: open the call page first.

**Original text** (`?text=original`): the transcript and the evidence quotes with each utterance's original text,
read from the restricted dataset (`qa_pipeline.privacy.restricted.read_raw_utterances`, kept only with
`privacy.keep_raw_text`). Only for an account with `can_view_unredacted` (403 for anyone else, after the scope
check: a call outside the user's scope is 404 as always); each such page writes a "raw_text_viewed" audit entry
(who, which call, when, how many original texts were shown) in the same transaction as its "viewed". The page is
built for that request only, never cached (`CallPages` is shared by every user); pages are `no-store`."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse
from sqlalchemy import select, update

from qa_pipeline.pipeline.swap import SWAP_METHOD
from qa_pipeline.privacy.restricted import has_raw_utterances, read_raw_utterances
from webapp import audit
from webapp.callpage import build_call_page, with_original_text
from webapp.lifecycle import LifecycleError, build_panel, targets_of
from webapp.media import AudioUnavailable, audio_for
from webapp.models import ROOT_CAUSES, CallView, RoleSwap, User, utcnow
from webapp.routes.coaching import marks_of_call
from webapp.routes.common import app_state, client_ip, current_user
from webapp.routes.evaluations import mode_of
from webapp.scope import can, require_call

router = APIRouter()


TEXT_ORIGINAL = "original"


def _with_text(request: Request, value: str | None) -> str:
    """This page's path and query with `text=value` (None: without it)."""
    url = request.url.remove_query_params("text")
    if value is not None:
        url = url.include_query_params(text=value)
    return f"{url.path}?{url.query}" if url.query else url.path


@router.get("/calls/{call_id}")
def call_view(request: Request, call_id: str, calibration: str = "", sample: str = "", text: str = ""):
    st = app_state(request)
    user = current_user(request)
    with st.db.read() as s:
        call = require_call(s, user, call_id)
    original = text == TEXT_ORIGINAL
    if original and not user.can_view_unredacted:
        with st.db.write() as s:  # a refused request for customers' data is itself worth an audit entry
            audit.record(s, "raw_text_refused", user=user, target_type="call", target_id=call.call_id,
                         ip=client_ip(request), detail={"what": "raw_text"})
        raise HTTPException(403, "The original (unredacted) text needs the unredacted permission, which your "
                                 "account does not hold.")
    page = st.call_pages.get(call)
    targets = targets_of(page)  # from the stored (redacted) page: the evaluation never carries original text
    raw = read_raw_utterances(st.datasets.folder, call.call_id) if original else []
    if raw:
        page = build_call_page(call, with_original_text(st.datasets.call_rows(call), raw))
    raw_kept = bool(raw) or (user.can_view_unredacted and not original
                             and has_raw_utterances(st.datasets.folder, call.call_id))
    mode = mode_of(calibration)
    sample_id = int(sample) if sample.isdigit() else None
    with st.db.read() as s:
        try:
            panel = build_panel(s, user, call, page, targets, mode, sample_id=sample_id)
        except LifecycleError as e:
            raise HTTPException(e.status, e.message) from e
        swaps = list(s.execute(select(RoleSwap, User.display_name).join(User, User.id == RoleSwap.by_user_id)
                               .where(RoleSwap.call_id == call.call_id).order_by(RoleSwap.at, RoleSwap.id)))
        marks = marks_of_call(s, call.call_id) if can(user, "coach") else []
    audio_url = audio_message = variant = audio_note = None
    try:
        source = audio_for(call, user, st.settings, st.calls_roots)
        variant, audio_note = source.variant, source.note
    except AudioUnavailable as e:
        audio_message = st.audio_note if not st.calls_roots and call.mode != "transcript" else e.message
    view_id = secrets.token_urlsafe(16)
    with st.db.write() as s:
        s.add(CallView(id=view_id, user_id=user.id, call_id=call.call_id))
        audit.record(s, "viewed", user=user, target_type="call", target_id=call.call_id, ip=client_ip(request),
                     detail={"view": view_id})
        if original:
            audit.record(s, "raw_text_viewed", user=user, target_type="call", target_id=call.call_id,
                         ip=client_ip(request), detail={"view": view_id, "what": "raw_text", "utterances": len(raw)})
    if audio_message is None:
        audio_url = f"/audio/{call.call_id}?view={view_id}"
    return st.pages.render(request, "call.html", page=page, audio_url=audio_url, audio_message=audio_message,
                           audio_variant=variant, audio_note=audio_note,
                           peaks_url=f"/calls/{call.call_id}/peaks.json", panel=panel,
                           audio=audio_url is not None, root_causes=ROOT_CAUSES, swaps=swaps,
                           text_original=original, raw_kept=raw_kept,
                           original_url=_with_text(request, TEXT_ORIGINAL), redacted_url=_with_text(request, None),
                           swapped_now=page.row.get("role_method") == SWAP_METHOD, marks=marks,
                           criteria=sorted({t.criterion for t in targets.values() if t.criterion}
                                           | {t.target_id for t in targets.values() if t.target_type == "item"}))


@router.get("/calls/{call_id}/peaks.json")
def call_peaks(request: Request, call_id: str):
    st = app_state(request)
    user = current_user(request)
    with st.db.read() as s:
        call = require_call(s, user, call_id)
    try:
        source = audio_for(call, user, st.settings, st.calls_roots)
    except AudioUnavailable as e:
        raise HTTPException(e.status, e.message) from e
    return Response(st.peaks.get(call.call_id, source), media_type="application/json",
                    headers={"Cache-Control": "private, max-age=3600"})


@router.get("/audio/{call_id}")
def call_audio(request: Request, call_id: str, view: str = ""):
    st = app_state(request)
    user = current_user(request)
    with st.db.read() as s:
        call = require_call(s, user, call_id)
        known = s.get(CallView, view) if view and len(view) <= 64 else None
    if known is None or known.user_id != user.id or known.call_id != call.call_id:
        raise HTTPException(403, "open the call page to play its recording")
    try:
        source = audio_for(call, user, st.settings, st.calls_roots)
    except AudioUnavailable as e:
        raise HTTPException(e.status, e.message) from e
    with st.db.write() as s:
        first = s.execute(update(CallView).where(CallView.id == view, CallView.played_at.is_(None))
                          .values(played_at=utcnow())).rowcount
        if first:
            audit.record(s, "played", user=user, target_type="call", target_id=call.call_id, ip=client_ip(request),
                         detail={"view": view, "variant": source.variant, "note": source.note})
    return FileResponse(source.path, media_type=source.media_type,
                        headers={"Cache-Control": "private, max-age=0, must-revalidate"})
