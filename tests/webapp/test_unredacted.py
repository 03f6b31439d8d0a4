"""The unredacted permission (`users add --unredacted`, `can_view_unredacted`) end to end in the review app: the
original text of a call (the restricted `_restricted/utterances_raw`, `?text=original` on the call page) and the
original recording go only to accounts holding it, within their team scope, each access audited; everyone else
gets the redacted text and the redacted copy of the audio, and no original at all while no copy exists. Planted
values (a card number, markup) sit in the restricted dataset only; the stored utterances hold their labels."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.webapp.conftest import CALL_DATE, PASSWORD, XSS, add_users, as_user, build_tiny_data, make_settings

CARD = "4111 1111 1111 1111"
NAME = "Mario Rossi"
# alpha-1's utterances as stored (redacted) and as said (kept in _restricted)
REDACTED = ["Good morning, Brightwave Energy, my name is [PERSON].", "My card is [CREDIT_CARD], I am [PERSON].",
            "Let me check that for you."]
ORIGINAL = ["Good morning, Brightwave Energy, my name is Ann.", f"My card is {CARD}, I am {NAME} {XSS}.",
            "Let me check that for you."]
# a holder of the permission whose teams do not include alpha
SCOPED_HOLDER = ("rev-beta-unredacted", "qa_reviewer", (f"beta{XSS}",), True)


def plant_original_text(tiny, name: str = "alpha-1") -> str:
    """alpha-1 as a call processed with privacy.keep_raw_text: its utterances (and the evidence quoting them)
    redacted, its original text in the restricted dataset."""
    from qa_pipeline.privacy.restricted import write_raw_utterances
    from qa_pipeline.store.folder import read_dataset, write_rows

    call_id = tiny.ids[name]
    utts = sorted((u for u in read_dataset(tiny.data, "utterances").to_pylist() if u["call_id"] == call_id),
                  key=lambda u: u["utterance_index"])
    rows = [{**{k: v for k, v in u.items() if k != "call_date"}, "text": REDACTED[u["utterance_index"]]}
            for u in utts]
    write_rows(tiny.data, "utterances", CALL_DATE, call_id, rows)
    write_raw_utterances(tiny.data, CALL_DATE, call_id, [
        dict(call_id=call_id, utterance_index=u["utterance_index"], speaker=u["speaker"], role=u["role"],
             start_s=u["start_s"], end_s=u["end_s"], text=ORIGINAL[u["utterance_index"]]) for u in utts])
    return call_id


def _audit(app, action: str) -> list:
    from webapp.models import AuditEntry

    with app.state.qa.db.read() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def _add_user(app, username, role, teams, unredacted) -> None:
    from webapp.users import NewUser, add_user

    st = app.state.qa
    with st.db.write() as s:
        add_user(s, NewUser(username=username, role=role, password=PASSWORD, teams=teams,
                            can_view_unredacted=unredacted), st.passwords, min_length=10)


def _no_original(html: str) -> None:
    """Nothing of the original text on a page: not the card (in any spacing), not the name, not the markup."""
    digits = re.sub(r"\D", "", html)
    assert CARD.replace(" ", "") not in digits and CARD not in html and NAME not in html
    assert "&lt;script&gt;" not in html and XSS not in html


# ---- the original text ----------------------------------------------------------------------------------------

@pytest.fixture
def raw_app(tmp_path):
    from fastapi.testclient import TestClient

    from webapp.app import create_app

    tiny = build_tiny_data(tmp_path)
    call_id = plant_original_text(tiny)
    app = create_app(make_settings(tiny))
    with TestClient(app) as c:
        add_users(app)
        _add_user(app, *SCOPED_HOLDER)
        yield c, app, tiny, call_id


def _check_original_text(c, app, tiny, call_id) -> None:
    # a reviewer of the call's team without the permission: the redacted text, no way to the original
    as_user(c, "rev-alpha")
    page = c.get(f"/calls/{call_id}")
    assert page.status_code == 200 and "[CREDIT_CARD]" in page.text
    _no_original(page.text)
    assert "text=original" not in page.text and "Show the original text" not in page.text
    for params in ({"text": "original"}, {"text": "original", "calibration": "1"}, {"text": "original", "sample": "1"}):
        refused = c.get(f"/calls/{call_id}", params=params)
        assert refused.status_code == 403, params
        _no_original(refused.text)
    # out of scope: 404 whatever the permission (ids cannot be probed), and nothing read
    for username in ("rev-beta", SCOPED_HOLDER[0]):
        as_user(c, username)
        for params in ({}, {"text": "original"}):
            r = c.get(f"/calls/{call_id}", params=params)
            assert r.status_code == 404, (username, params)
            _no_original(r.text)
    assert _audit(app, "raw_text_viewed") == []
    # each refused request for the original (in scope) is audited; an out-of-scope id is a plain 404, as elsewhere
    assert [(e.username, e.target_id, e.detail["what"]) for e in _audit(app, "raw_text_refused")] == [
        ("rev-alpha", call_id, "raw_text")] * 3
    # the holder: the redacted page by default (nothing audited as raw), a link to the original
    as_user(c, "admin")
    page = c.get(f"/calls/{call_id}")
    assert page.status_code == 200 and "Show the original text" in page.text
    _no_original(page.text)
    assert _audit(app, "raw_text_viewed") == []
    link = re.search(r'href="([^"]*text=original[^"]*)"', page.text).group(1).replace("&amp;", "&")
    original = c.get(link)
    assert original.status_code == 200
    assert CARD in original.text and NAME in original.text and "[CREDIT_CARD]" not in original.text
    # escaped by the shared render layer: the markup said in the call is text, never markup
    assert f"{NAME} &lt;script&gt;alert(1)&lt;/script&gt;." in original.text and XSS not in original.text
    assert original.headers["cache-control"] == "no-store"
    # the transcript line and the flag's quote of it (the complaint flag points at utterance 1) both show it
    assert original.text.count(CARD) >= 2
    (entry,) = _audit(app, "raw_text_viewed")
    assert entry.username == "admin" and entry.target_type == "call" and entry.target_id == call_id
    assert entry.detail["what"] == "raw_text" and entry.detail["utterances"] == 3 and entry.at is not None
    # the original page is never cached for the next user
    as_user(c, "rev-alpha")
    _no_original(c.get(f"/calls/{call_id}").text)
    # a call without kept originals: the holder is told so, the access is still audited
    as_user(c, "admin")
    other = tiny.ids["alpha-2"]
    assert "Show the original text" not in c.get(f"/calls/{other}").text
    r = c.get(f"/calls/{other}", params={"text": "original"})
    assert r.status_code == 200 and "No original text is kept for this call" in r.text
    assert [(e.target_id, e.detail["utterances"]) for e in _audit(app, "raw_text_viewed")] == [(call_id, 3),
                                                                                                (other, 0)]


def test_original_text_only_for_the_unredacted_permission_in_scope_and_audited(raw_app):
    _check_original_text(*raw_app)


def test_original_text_on_postgresql(postgres_url, tmp_path):  # noqa: F811
    from fastapi.testclient import TestClient

    from webapp.app import create_app

    tiny = build_tiny_data(tmp_path)
    call_id = plant_original_text(tiny)
    app = create_app(make_settings(tiny, db_url=postgres_url))
    with TestClient(app) as c:
        assert app.state.qa.db.dialect == "postgresql"
        add_users(app)
        _add_user(app, *SCOPED_HOLDER)
        _check_original_text(c, app, tiny, call_id)




# ---- the recording ----------------------------------------------------------------------------------------------

def _plant_finding(tiny, name: str) -> str:
    """A personal-data finding on the call (its recording has something to mute)."""
    from qa_pipeline.store.folder import write_rows

    call_id = tiny.ids[name]
    write_rows(tiny.data, "pii", CALL_DATE, call_id, [dict(
        call_id=call_id, utterance_index=1, entity_type="CREDIT_CARD", start_s=1.6, end_s=2.6, char_start=11,
        char_end=30, confidence=0.99, detector="t")])
    return call_id


def _plant_copy(tiny, call_id: str) -> bytes:
    from qa_pipeline.audio.decode import load_audio
    from qa_pipeline.privacy.audio import encode, redact
    from qa_pipeline.store.folder import DataFolder
    from qa_pipeline.store.keys import file_key

    name = next(n for n, i in tiny.ids.items() if i == call_id)
    audio = load_audio(tiny.calls / f"{name}.wav")
    red = redact(audio.samples, 16000, [dict(start_s=1.6, end_s=2.6, entity_type="CREDIT_CARD")], [])
    data = encode(red.samples, 16000, "wav")
    DataFolder(tiny.data).write_bytes(f"redacted_audio/{CALL_DATE}/{file_key(call_id)}.wav", data)
    return data


def _listen(c, call_id: str):
    """Open the call page and request its audio and peaks as the player would: (page, audio response or None,
    peaks status)."""
    page = c.get(f"/calls/{call_id}")
    assert page.status_code == 200
    m = re.search(r'src="(/audio/[^"]+)"', page.text)
    audio = c.get(m.group(1).replace("&amp;", "&")) if m else None
    return page, audio, c.get(f"/calls/{call_id}/peaks.json").status_code


def _last_view(app, username: str, call_id: str) -> str:
    from webapp.models import CallView, User

    with app.state.qa.db.read() as s:
        return s.scalar(select(CallView.id).join(User, User.id == CallView.user_id)
                        .where(User.username == username, CallView.call_id == call_id)
                        .order_by(CallView.created_at.desc()).limit(1))


def test_no_redacted_copy_means_no_recording_without_the_permission(tmp_path):
    """The safe default (`require_redacted_audio`): a call with personal data and no redacted copy is not played
    to a user without the permission (a message on the page, 403 on the audio and peaks URLs, even with a valid
    view id); its holder gets the original, audited. Once the copy exists the user gets the copy; a call found
    clean plays its original to everyone, saying why."""
    from fastapi.testclient import TestClient

    from webapp.app import create_app
    from webapp.media import NO_REDACTED_COPY

    tiny = build_tiny_data(tmp_path)
    call_id = _plant_finding(tiny, "alpha-1")
    clean = tiny.ids["alpha-2"]
    original_bytes = (tiny.calls / "alpha-1.wav").read_bytes()
    app = create_app(make_settings(tiny))
    assert app.state.qa.settings.require_redacted_audio  # the default
    with TestClient(app) as c:
        add_users(app)
        as_user(c, "rev-alpha")
        page, audio, peaks = _listen(c, call_id)
        assert audio is None and peaks == 403 and "/audio/" not in page.text
        assert "has no redacted copy" in page.text and "not played" in page.text
        forced = c.get(f"/audio/{call_id}", params={"view": _last_view(app, "rev-alpha", call_id)})
        assert forced.status_code == 403 and forced.content != original_bytes
        assert NO_REDACTED_COPY.split(":")[0] in forced.text
        # a call searched and found clean: its original, with the reason on the page
        page, audio, peaks = _listen(c, clean)
        assert audio.status_code == 200 and peaks == 200
        assert audio.content == (tiny.calls / "alpha-2.wav").read_bytes()
        assert "No personal data was found in this call" in page.text
        # the holder: the original, audited as such
        as_user(c, "admin")
        page, audio, peaks = _listen(c, call_id)
        assert audio.status_code == 200 and audio.content == original_bytes and peaks == 200
        assert "Original recording" in page.text
        # the copy appears: the reviewer gets it, never the original
        copy = _plant_copy(tiny, call_id)
        as_user(c, "rev-alpha")
        page, audio, peaks = _listen(c, call_id)
        assert audio.status_code == 200 and audio.content == copy != original_bytes and peaks == 200
        assert "Redacted recording" in page.text
        # never searched (processed with privacy off, or before it existed): refused all the same
        from qa_pipeline.store.folder import remove_key

        remove_key(tiny.data, "pii", clean)
        page, audio, peaks = _listen(c, clean)
        assert audio is None and peaks == 403 and "has no redacted copy" in page.text
    played = [(e.username, e.target_id, e.detail["variant"], e.detail["note"]) for e in _audit(app, "played")]
    assert played == [("rev-alpha", clean, "original", "no personal data found"),
                      ("admin", call_id, "original", None), ("rev-alpha", call_id, "redacted", None)]


def test_allow_original_audio_plays_it_with_a_note_and_an_audit(tmp_path, monkeypatch):
    """`serve --allow-original-audio` (require_redacted_audio off) restores the original for a call without a
    copy, said on the page and in the audit log; without the flag the server refuses it."""
    import uvicorn
    from fastapi.testclient import TestClient

    from flows.cli import main as qa_pipeline
    from webapp.app import create_app

    tiny = build_tiny_data(tmp_path)
    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.setdefault("apps", []).append(app))
    for extra in ([], ["--allow-original-audio"]):
        assert qa_pipeline(["serve", "--data", str(tiny.data), "--calls", str(tiny.calls), *extra]) == 0
    assert [a.state.qa.settings.require_redacted_audio for a in seen["apps"]] == [True, False]
    call_id = _plant_finding(tiny, "alpha-1")
    app = create_app(make_settings(tiny, require_redacted_audio=False))
    with TestClient(app) as c:
        add_users(app)
        as_user(c, "rev-alpha")
        page, audio, _ = _listen(c, call_id)
        assert audio.status_code == 200 and audio.content == (tiny.calls / "alpha-1.wav").read_bytes()
        assert "No redacted copy exists yet" in page.text and "--allow-original-audio" in page.text
    assert [(e.username, e.detail["variant"], e.detail["note"]) for e in _audit(app, "played")] == [
        ("rev-alpha", "original", "no redacted copy yet")]


from tests.webapp.test_db import postgres_url  # noqa: E402,F401  (the module's own PostgreSQL server)
