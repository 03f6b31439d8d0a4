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


from tests.webapp.test_db import postgres_url  # noqa: E402,F401  (the module's own PostgreSQL server)
