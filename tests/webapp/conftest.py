"""A tiny data folder (three calls in two teams, one of them with markup in every field a user can see) and a
review app on it, with one account per role. No models: the rows are written directly with the datasets'
schemas (`qa_pipeline.store.folder.write_rows`)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import write_wav

CALL_DATE = "2026-11-24"
STARTED = dt.datetime(2026, 11, 24, 9, 30, tzinfo=dt.timezone.utc)
XSS = "<script>alert(1)</script>"
PASSWORD = "correct horse battery"


def cid(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


# name -> (agent, team, utterances [(role, start, end, text)])
CALLS = {
    "alpha-1": ("a1", "alpha", [("agent", 0.2, 1.4, "Good morning, Brightwave Energy, my name is Ann."),
                                ("customer", 1.6, 2.6, "I want to complain about my bill."),
                                ("agent", 2.7, 3.8, "Let me check that for you.")]),
    "alpha-2": ("a2", "alpha", [("agent", 0.1, 1.0, "Hello."), ("customer", 1.2, 2.5, "Hi, a question.")]),
    "beta-1": (f"b1{XSS}", f"beta{XSS}", [("agent", 0.3, 1.5, f"Hello {XSS} how can I help?"),
                                          ("customer", 1.7, 2.9, "<b>not bold</b> & fine")]),
}


@dataclass
class Tiny:
    data: Path
    calls: Path
    ids: dict[str, str]  # call name -> call_id
    outside: Path  # a recording outside the calls folder


def build_tiny_data(root: Path, *, searched: bool = True) -> Tiny:
    """searched: each call has its (empty) `pii` file, as the pipeline writes it with privacy on: searched for
    personal data, none found, so its original recording plays to everyone; False: calls processed before privacy
    existed (never searched: no recording for users without the unredacted permission, no coaching clip)."""
    from qa_pipeline.store.folder import write_rows

    data, calls = root / "data", root / "calls"
    calls.mkdir(parents=True)
    outside = write_wav(root / "outside.wav", np.zeros((2, 8000), dtype=np.float32))
    ids = {}
    rng = np.random.default_rng(0)
    for n, (name, (agent, team, utts)) in enumerate(CALLS.items()):
        call_id = cid(name)
        ids[name] = call_id
        audio = write_wav(calls / f"{name}.wav", rng.uniform(-0.3, 0.3, (2, 16000 * 4)).astype(np.float32))
        write_rows(data, "utterances", CALL_DATE, call_id, [
            dict(call_id=call_id, utterance_index=i, speaker="left" if role == "agent" else "right", role=role,
                 start_s=s, end_s=e, text=text, mean_probability=0.9, n_words=len(text.split()),
                 sentiment=-0.5 if "complain" in text else 0.0,
                 sentiment_label="negative" if "complain" in text else "neutral")
            for i, (role, s, e, text) in enumerate(utts)])
        words = []
        for i, (role, s, e, text) in enumerate(utts):
            toks = text.split()
            step = (e - s) / len(toks)
            for k, tok in enumerate(toks):
                prob = 0.3 if (name == "alpha-1" and i == 1) else 0.95  # the complaint is badly transcribed
                words.append(dict(call_id=call_id, word_index=len(words), utterance_index=i,
                                  speaker="left" if role == "agent" else "right", role=role,
                                  start_s=s + k * step, end_s=s + (k + 1) * step, text=tok, probability=prob))
        write_rows(data, "words", CALL_DATE, call_id, words)
        flags = [dict(call_id=call_id, flag_id=f"{call_id[:8]}-f1", flag_type="customer_complaint",
                      severity="high", reason=f"complaint raised {XSS if team != 'alpha' else ''}".strip(),
                      rule_id=None, utterance_index=1, start_s=utts[1][1], end_s=utts[1][2])]
        if name == "alpha-2":
            flags = [dict(call_id=call_id, flag_id=f"{call_id[:8]}-f2", flag_type="script_deviation",
                          severity="medium", reason="opening.agent_name: not said", rule_id="opening.agent_name",
                          utterance_index=None, start_s=None, end_s=None)]
        write_rows(data, "flags", CALL_DATE, call_id, flags)
        write_rows(data, "compliance", CALL_DATE, call_id, [
            dict(call_id=call_id, script_id="en", script_version="1", rule_id="opening.greeting", phase="opening",
                 result="passed", severity="medium", reason=None, utterance_index=0, start_s=utts[0][1],
                 end_s=utts[0][2], matched_text="good morning", match_method="exact", confidence=1.0),
            dict(call_id=call_id, script_id="en", script_version="1", rule_id="opening.agent_name",
                 phase="opening", result="failed" if name == "alpha-2" else "passed", severity="medium",
                 reason="not said" if name == "alpha-2" else None, utterance_index=None, start_s=None, end_s=None,
                 matched_text=None, match_method=None, confidence=None)])
        write_rows(data, "call_scores", CALL_DATE, call_id, [
            dict(call_id=call_id, agent_id=agent, team=team, iso_week="2026-W48", criterion="quality",
                 item="greeting", points=1.0, max_points=1.0, rubric_version="t",
                 evidence=[dict(dataset="compliance", ref="opening.greeting", utterance_index=0,
                                start_s=utts[0][1], end_s=utts[0][2], note="said")]),
            dict(call_id=call_id, agent_id=agent, team=team, iso_week="2026-W48", criterion="quality",
                 item="agent_name", points=0.0 if name == "alpha-2" else 1.0, max_points=1.0, rubric_version="t",
                 evidence=[dict(dataset="compliance", ref="opening.agent_name", utterance_index=None,
                                start_s=None, end_s=None, note="not said")])])
        write_rows(data, "sentiment", CALL_DATE, call_id, [
            dict(call_id=call_id, role="customer", mean=-0.2, start=0.0, end=-0.4, trajectory="worsening")])
        if searched:  # and nothing found (tests/webapp/test_unredacted.py plants findings)
            write_rows(data, "pii", CALL_DATE, call_id, [])
        write_rows(data, "calls", CALL_DATE, call_id, [dict(
            call_id=call_id, audio_sha256=call_id, path=str(audio), agent_id=agent, team=team,
            campaign="energy-inbound", direction="inbound", call_type="complaint",
            started_at=STARTED + dt.timedelta(minutes=n), metadata_source="manifest", mode="stereo",
            duration_s=4.0, channels=2, language="en", agent_channel="left", role_method="manifest",
            role_confidence=1.0 if name != "beta-1" else 0.55, config_hash="x", pipeline_version="0",
            flags=[], status="ok", processed_at=STARTED)])
    return Tiny(data=data, calls=calls, ids=ids, outside=outside)


@pytest.fixture
def tiny(tmp_path) -> Tiny:
    return build_tiny_data(tmp_path)


def make_settings(tiny: Tiny, **changes):
    from webapp.config import AppSettings

    base = dict(data_dir=tiny.data, calls_roots=(tiny.calls,), argon2_time_cost=1, argon2_memory_kib=1024,
                login_delay_base_s=0.0, sync_interval_s=0.0)
    base.update(changes)
    return AppSettings(**base)


USERS = {  # username -> (role, teams, agent_id, unredacted)
    "admin": ("admin", (), None, True),
    "lead": ("qa_lead", (), None, False),
    "rev-alpha": ("qa_reviewer", ("alpha",), None, False),
    "rev-beta": ("qa_reviewer", (f"beta{XSS}",), None, False),
    "mgr-alpha": ("manager", ("alpha",), None, False),
    "agent-a1": ("agent", ("beta" + XSS,), "a1", False),
}


def add_users(app) -> None:
    from webapp.users import NewUser, add_user

    st = app.state.qa
    with st.db.write() as s:
        for name, (role, teams, agent, unredacted) in USERS.items():
            add_user(s, NewUser(username=name, role=role, password=PASSWORD, teams=teams, agent_id=agent,
                                can_view_unredacted=unredacted), st.passwords, min_length=10)


@pytest.fixture
def app(tiny):
    from webapp.app import create_app

    return create_app(make_settings(tiny))


@pytest.fixture
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:  # runs the lifespan: migrations, sync
        add_users(app)
        yield c


CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def form_token(html: str) -> str:
    m = CSRF_INPUT.search(html)
    assert m, "no csrf_token field on the page"
    return m.group(1)


def login(client, username: str, password: str = PASSWORD, *, next_url: str = "/"):
    page = client.get("/login")
    return client.post("/login", data={"username": username, "password": password, "next": next_url,
                                       "csrf_token": form_token(page.text)}, follow_redirects=False)


def signed_in(client, username: str):
    r = login(client, username)
    assert r.status_code == 303, r.text
    return client


# ---- the lifecycle's tests: the tiny data scored with the real rubric, inline rescoring, more accounts ----------

MORE_USERS = {  # username -> (role, teams, agent_id)
    "rev-alpha2": ("qa_reviewer", ("alpha",), None),
    "mgr-beta": ("manager", (f"beta{XSS}",), None),
    "trainer-alpha": ("trainer", ("alpha",), None),
    "agent-a2": ("agent", (), "a2"),
}
WEEK = "2026-W48"


def score_tiny(tiny: Tiny) -> None:
    """Score the tiny data with the default rubric (its hand-written call_scores rows are replaced)."""
    import shutil

    from qa_pipeline.scoring.score import rescore

    shutil.rmtree(tiny.data / "call_scores", ignore_errors=True)
    rescore(tiny.data)


@pytest.fixture
def scored(tmp_path) -> Tiny:
    tiny = build_tiny_data(tmp_path)
    score_tiny(tiny)
    return tiny


@pytest.fixture
def lapp(scored):
    from webapp.app import create_app

    return create_app(make_settings(scored, rescore="inline"))


@pytest.fixture
def lclient(lapp):
    from fastapi.testclient import TestClient

    from webapp.users import NewUser, add_user

    with TestClient(lapp) as c:
        add_users(lapp)
        st = lapp.state.qa
        with st.db.write() as s:
            for name, (role, teams, agent) in MORE_USERS.items():
                add_user(s, NewUser(username=name, role=role, password=PASSWORD, teams=teams, agent_id=agent),
                         st.passwords, min_length=10)
        yield c


def as_user(client, username: str):
    client.cookies.clear()
    return signed_in(client, username)


PANEL_VERSION = re.compile(r'id="evaluation"[^>]*data-version="(\d+)"')


def panel_version(html: str) -> int:
    m = PANEL_VERSION.search(html)
    assert m, "no evaluation panel on the page"
    return int(m.group(1))


def eval_post(client, call_id: str, action: str, data: dict | None = None, *, version: int | None = None,
              hx: bool = True, page_params: dict | None = None):
    """POST an evaluation form of the call page as the browser would: the page's CSRF token and version."""
    page = client.get(f"/calls/{call_id}", params=page_params or {})
    assert page.status_code == 200, page.text
    body = {"csrf_token": form_token(page.text),
            "version": str(panel_version(page.text) if version is None else version)}
    body.update({k: str(v) for k, v in (data or {}).items()})
    headers = {"hx-request": "true"} if hx else {"accept": "text/html"}
    return client.post(f"/calls/{call_id}/evaluation/{action}", data=body, headers=headers,
                       follow_redirects=False)


def cards(data) -> dict:
    from qa_pipeline.store.folder import read_dataset

    return {(r["agent_id"], r["iso_week"]): r for r in read_dataset(data, "scorecards_weekly").to_pylist()}


def reviews(data) -> list[dict]:
    from qa_pipeline.store.folder import read_dataset

    return read_dataset(data, "reviews").to_pylist()
