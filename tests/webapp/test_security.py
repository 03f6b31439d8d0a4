"""The review app's security properties, each tested through HTTP: login required everywhere (every route, as a
page, an API call and an htmx request); team scoping by page, API and audio URL, for every route about a call
(the evaluation's forms, coaching, swap speakers too) and on the pages that list calls, operators or marks; no
file outside the allowed folders (every file response recorded while every page, recording, asset and path
parameter is tried); escaping on every page; CSRF (missing, wrong, another session's; every POST route:
tests/webapp/test_lifecycle.py), session fixation, login rate limiting, the append-only audit log, the headers."""

from __future__ import annotations

import os
import re
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from starlette.routing import Mount

from tests.webapp.conftest import CALL_DATE, PASSWORD, XSS, add_users, form_token, login, make_settings, signed_in

HTML = {"accept": "text/html"}


def _leaf_routes(routes) -> list:
    """Every route of the app, the included routers' too (FastAPI may wrap those in an included-router route)."""
    out = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            assert not getattr(getattr(route, "include_context", None), "prefix", ""), "prefixes: join them here"
            out += _leaf_routes(inner.routes)
        else:
            out.append(route)
    return out


def _concrete(path: str, call_id: str) -> str:
    return re.sub(r"\{[^}]+\}", call_id, path)


# ---- login required --------------------------------------------------------------------------------------------

def test_every_route_refuses_anonymous_access(client, app, tiny):
    """Enumerates the app's routes: each method of each route answers 401 (or 303 to /login for a page) without a
    session; only /login and /static are public, and the static files are the app's own."""
    call_id = tiny.ids["alpha-1"]
    public, checked = set(), 0
    for route in _leaf_routes(app.routes):
        if isinstance(route, Mount):
            public.add(route.path)
            continue
        for method in sorted(getattr(route, "methods", None) or {"GET"}):
            if method == "HEAD":
                continue
            url = _concrete(route.path, call_id)
            r = client.request(method, url, headers=HTML, follow_redirects=False)
            if route.path.startswith("/static/"):  # the render layer's stylesheet, served as a static file
                public.add("/static")
                assert r.status_code == 200 and r.headers["content-type"].startswith("text/css")
                continue
            if route.path == "/login":
                public.add(route.path)
                assert r.status_code in (200, 403), (method, url, r.status_code)  # POST: refused without token
                continue
            checked += 1
            assert r.status_code in (401, 303), (method, url, r.status_code)
            if r.status_code == 303:
                assert r.headers["location"].startswith("/login"), (method, url)
            assert call_id not in r.text and "transcript" not in r.text
    assert checked >= 5  # /, /logout, the call page, its peaks, its audio
    assert public == {"/login", "/static"}
    # a page redirects to the login with where to go back to; an API call gets 401
    r = client.get(f"/calls/{call_id}", headers=HTML, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/login?next=%2Fcalls%2F{call_id}"
    assert client.get(f"/calls/{call_id}/peaks.json", follow_redirects=False).status_code == 401
    assert client.get("/", headers={"hx-request": "true"}).headers.get("hx-redirect") == "/login"
    assert client.get("/static/app.js").status_code == 200


def test_unknown_paths_also_need_login(client):
    assert client.get("/nothing-here", headers=HTML, follow_redirects=False).status_code == 303
    assert client.get("/docs").status_code == 401 and client.get("/openapi.json").status_code == 401
    signed_in(client, "admin")
    assert client.get("/docs").status_code == 404 and client.get("/openapi.json").status_code == 404


# ---- scoping ---------------------------------------------------------------------------------------------------

def _view_audio_url(client, call_id: str) -> str:
    page = client.get(f"/calls/{call_id}")
    assert page.status_code == 200, page.text
    return re.search(r'src="(/audio/[^"]+)"', page.text).group(1).replace("&amp;", "&")


def test_reviewer_cannot_reach_another_teams_call(client, app, tiny):
    beta = tiny.ids["beta-1"]
    signed_in(client, "admin")
    admin_audio = _view_audio_url(client, beta)  # a valid view id, but the admin's
    client.cookies.clear()
    signed_in(client, "rev-alpha")
    for url in (f"/calls/{beta}", f"/calls/{beta}/peaks.json", f"/audio/{beta}", admin_audio):
        r = client.get(url)
        assert r.status_code == 404, (url, r.status_code)
        assert "not bold" not in r.text
    queue = client.get("/").text
    assert beta not in queue and "beta" not in queue
    # their own team's calls are reachable by all three
    alpha = tiny.ids["alpha-1"]
    audio = _view_audio_url(client, alpha)
    assert client.get(audio).status_code == 200
    assert client.get(f"/calls/{alpha}/peaks.json").status_code == 200
    # the other user's view id does not open the audio of a call they may see either
    client.cookies.clear()
    signed_in(client, "rev-beta")
    assert client.get(f"/calls/{beta}").status_code == 200
    assert client.get(admin_audio).status_code == 403


def test_an_agent_sees_only_their_own_calls(client, tiny):
    signed_in(client, "agent-a1")  # member of team beta on paper: agents see their own calls only
    assert client.get(f"/calls/{tiny.ids['alpha-1']}").status_code == 200
    for name in ("alpha-2", "beta-1"):
        assert client.get(f"/calls/{tiny.ids[name]}").status_code == 404
    queue = client.get("/").text
    assert tiny.ids["alpha-1"] in queue and tiny.ids["alpha-2"] not in queue


def test_scope_rules(app):
    from webapp.models import User, UserTeam
    from webapp.scope import can, can_see, visible_agents, visible_teams

    def user(role, teams=(), agent=None):
        return User(username=role, role=role, agent_id=agent, disabled=False,
                    teams=[UserTeam(team=t) for t in teams])

    assert visible_teams(user("admin")) is None and visible_teams(user("qa_lead")) is None
    assert visible_teams(user("manager", ["x"])) == {"x"} and visible_agents(user("manager", ["x"])) is None
    assert visible_agents(user("agent", ["x"], "a9")) == {"a9"} and visible_teams(user("agent", ["x"], "a9")) == set()
    assert can_see(user("admin"), None, None) and not can_see(user("trainer", ["x"]), None, "a")
    assert not can_see(user("qa_reviewer"), "x", "a")  # no teams: nothing
    assert can(user("qa_lead"), "resolve_disputes") and not can(user("qa_reviewer"), "resolve_disputes")
    assert not can(user("manager"), "no such capability")
    off = user("admin")
    off.disabled = True
    assert not can_see(off, "x", "a") and not can(off, "review")


# ---- files -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/audio/..%2F..%2F..%2Fetc%2Fpasswd", "/audio/%2e%2e/%2e%2e/etc/passwd", "/audio/../../etc/passwd",
    "/audio//etc/passwd", "/audio/%2Fetc%2Fpasswd", "/audio/%2e%2e",
    "/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py", "/static/%2e%2e%2f%2e%2e%2fpyproject.toml",
    "/static//etc/passwd", "/static/%2Fetc%2Fpasswd", "/static/vendor/../../app.py", "/static/..\\app.py",
])
def test_path_traversal_fails(client, path):
    signed_in(client, "admin")
    r = client.get(path)
    assert r.status_code in (400, 403, 404, 405), r.status_code
    assert "root:" not in r.text and "create_app" not in r.text and "[project]" not in r.text


def _add_call(tiny, name: str, path: str) -> str:
    """Another call of team alpha whose `calls.path` is `path`."""
    from qa_pipeline.store.folder import write_rows
    from tests.webapp.conftest import STARTED, cid

    call_id = cid(name)
    write_rows(tiny.data, "calls", CALL_DATE, call_id, [dict(
        call_id=call_id, audio_sha256=call_id, path=path, agent_id="a1", team="alpha", mode="stereo",
        duration_s=1.0, channels=2, config_hash="x", pipeline_version="0", status="ok", processed_at=STARTED,
        started_at=STARTED)])
    return call_id


def test_audio_only_from_inside_the_calls_folder(client, app, tiny):
    link = tiny.calls / "link-out.wav"
    os.symlink(tiny.outside, link)
    cases = {
        "absolute outside": str(tiny.outside),
        "dot-dot": str(tiny.calls / ".." / "outside.wav"),
        "relative dot-dot": "../outside.wav",
        "symlink out": str(link),
        "missing": str(tiny.calls / "gone.wav"),
        "system file": "/etc/passwd",
        "uri": "s3://bucket/x.wav",
    }
    ids = {k: _add_call(tiny, k, p) for k, p in cases.items()}
    app.state.qa.syncer.sync()
    signed_in(client, "admin")
    for case, call_id in ids.items():
        page = client.get(f"/calls/{call_id}")
        assert page.status_code == 200, case
        assert "/audio/" not in page.text, case  # no player
        assert client.get(f"/calls/{call_id}/peaks.json").status_code == 404, case
    # a symlink that stays inside the folder is fine
    inside = tiny.calls / "link-in.wav"
    os.symlink(tiny.calls / "alpha-1.wav", inside)
    ok = _add_call(tiny, "inside", str(inside))
    app.state.qa.syncer.sync()
    assert client.get(_view_audio_url(client, ok)).status_code == 200


def test_static_symlink_out_is_refused(client):
    from webapp.templating import STATIC_DIR

    link = STATIC_DIR / f"test-link-{uuid.uuid4().hex}.txt"
    os.symlink(Path(__file__), link)
    try:
        signed_in(client, "admin")
        r = client.get(f"/static/{link.name}")
        assert r.status_code == 404 and "test_static_symlink_out_is_refused" not in r.text
    finally:
        link.unlink()


def test_no_audio_roots_means_no_audio(tiny):
    from fastapi.testclient import TestClient

    from webapp.app import create_app

    app = create_app(make_settings(tiny, calls_roots=()))
    with TestClient(app) as c:
        add_users(app)
        signed_in(c, "admin")
        page = c.get(f"/calls/{tiny.ids['alpha-1']}")
        assert "/audio/" not in page.text and "--calls" in page.text
        assert c.get(f"/calls/{tiny.ids['alpha-1']}/peaks.json").status_code == 404


# ---- escaping --------------------------------------------------------------------------------------------------

def test_markup_is_shown_escaped(client, tiny):
    signed_in(client, "admin")
    beta = tiny.ids["beta-1"]
    for page in (client.get(f"/calls/{beta}").text, client.get("/").text,
                 client.get("/", params={"team": f"beta{XSS}"}).text):
        assert XSS not in page and "<b>not bold" not in page
    page = client.get(f"/calls/{beta}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the transcript, the agent id, the team, the flag reason
    assert "&lt;b&gt;not bold&lt;/b&gt; &amp; fine" in page
    client.cookies.clear()
    r = login(client, f"x{XSS}", "wrong password")  # the login form echoes the username
    assert XSS not in r.text and "&lt;script&gt;" in r.text


# ---- CSRF, sessions, login -------------------------------------------------------------------------------------

def test_post_without_csrf_token_is_refused(client):
    signed_in(client, "admin")
    assert client.post("/logout", follow_redirects=False).status_code == 403
    assert client.post("/logout", data={"csrf_token": "wrong"}, follow_redirects=False).status_code == 403
    assert client.post("/logout", headers={"x-csrf-token": "wrong"}, follow_redirects=False).status_code == 403
    assert client.get("/").status_code == 200  # still signed in
    token = form_token(client.get("/").text)
    r = client.post("/logout", headers={"x-csrf-token": token, "hx-request": "true"}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/", headers=HTML, follow_redirects=False).status_code == 303  # signed out


def test_login_form_needs_its_token(client):
    client.get("/login")  # the double-submit cookie is set, but the form field is missing
    r = client.post("/login", data={"username": "admin", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 403
    client.cookies.clear()
    r = client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": "made-up"},
                    follow_redirects=False)
    assert r.status_code == 403


def test_session_id_changes_at_login(client, app):
    from webapp.models import UserSession
    from webapp.security import SESSION_COOKIE, token_hash

    client.cookies.set(SESSION_COOKIE, "planted-by-an-attacker", domain="testserver.local")
    signed_in(client, "admin")
    first = client.cookies.get(SESSION_COOKIE)
    assert first and first != "planted-by-an-attacker" and len(first) >= 43
    signed_in(client, "admin")  # signing in again: another new id, the old session is gone
    second = client.cookies.get(SESSION_COOKIE)
    assert second != first
    with app.state.qa.db.read() as s:
        ids = set(s.scalars(select(UserSession.id)))
    assert token_hash(second) in ids and token_hash(first) not in ids
    assert second not in ids  # only the hash is stored


def test_cookies_are_httponly_and_samesite_strict(client):
    page = client.get("/login")
    assert "httponly" in page.headers["set-cookie"].lower() and "samesite=strict" in page.headers["set-cookie"].lower()
    r = login(client, "admin")
    cookie = r.headers["set-cookie"].lower()
    assert "qa_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert "secure" not in cookie.replace("samesite", "")  # plain http here (auto); https sets Secure


def test_secure_cookie_setting(tiny):
    from fastapi.testclient import TestClient

    from webapp.app import create_app

    app = create_app(make_settings(tiny, cookie_secure=True))
    with TestClient(app, base_url="https://testserver") as c:
        add_users(app)
        r = login(c, "admin")
        assert "; secure" in r.headers["set-cookie"].lower()


def test_open_redirect_is_refused(client):
    for target in ("//evil.example", "https://evil.example/", "/\\evil.example"):
        r = login(client, "admin", next_url=target)
        assert r.status_code == 303 and r.headers["location"] == "/"
        client.cookies.clear()


def test_repeated_bad_passwords_are_slowed_then_locked(tiny):
    from fastapi.testclient import TestClient

    from webapp.app import create_app

    app = create_app(make_settings(tiny, login_max_failures_user=3, login_delay_base_s=0.1,
                                   login_delay_max_s=0.4, login_lockout_s=600))
    with TestClient(app) as c:
        add_users(app)
        times = []
        for _ in range(3):
            t0 = time.monotonic()
            r = login(c, "admin", "not the password")
            times.append(time.monotonic() - t0)
            assert r.status_code == 401 and "Wrong username or password" in r.text
        assert times[0] >= 0.1 and times[1] >= 0.2 and times[2] >= 0.4  # doubling
        r = login(c, "admin")  # the right password no longer gets in
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 500
        assert "qa_session" not in r.headers.get("set-cookie", "")
        assert login(c, "lead").status_code == 303  # other accounts are not locked out


def test_per_address_limit(tiny):
    from fastapi.testclient import TestClient

    from webapp.app import create_app

    app = create_app(make_settings(tiny, login_max_failures_ip=4, login_max_failures_user=100))
    with TestClient(app) as c:
        add_users(app)
        for i in range(4):
            assert login(c, f"nobody{i}", "x" * 12).status_code == 401
        assert login(c, "admin").status_code == 429


class _SlowPasswords:
    """The app's hasher, with each check taking `delay` seconds (argon2 at its real cost on a busy machine)."""

    def __init__(self, inner, delay: float):
        self.inner, self.delay = inner, delay

    def verify(self, stored_hash, password):
        time.sleep(self.delay)
        return self.inner.verify(stored_hash, password)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_concurrent_logins_do_not_wait_on_each_other(tiny):
    """The password is checked outside the database's write transaction: twelve people signing in at once (each
    check taking 0.5 s) are all signed in in about the time of one check, not one after another (a SQLite writer
    holds the whole database: serialised, twenty real logins ran past the busy timeout and answered 500)."""
    from concurrent.futures import ThreadPoolExecutor

    from fastapi.testclient import TestClient

    from webapp import auth
    from webapp.app import create_app
    from webapp.users import NewUser, add_user

    app = create_app(make_settings(tiny))
    with TestClient(app):
        st = app.state.qa
        names = [f"user{i:02d}" for i in range(12)]
        with st.db.write() as s:
            for name in names:
                add_user(s, NewUser(username=name, role="qa_lead", password=PASSWORD), st.passwords, min_length=10)
        slow = _SlowPasswords(st.passwords, 0.5)

        def sign_in(name):
            return auth.login(st.db, st.settings, slow, username=name, password=PASSWORD, ip="10.0.0.1",
                              user_agent=None, old_token=None)

        t0 = time.monotonic()
        with ThreadPoolExecutor(len(names)) as pool:
            results = list(pool.map(sign_in, names))
        wall = time.monotonic() - t0
    assert [r.status for r in results] == ["ok"] * len(names)
    assert wall < 3.0, f"{wall:.1f} s: the logins waited for each other"


def test_parallel_guesses_are_limited_like_sequential_ones(tiny):
    """Guesses sent all at once see each other (each attempt counts as a failure before its password is checked):
    with a limit of 3, at most 3 of 10 parallel wrong guesses are checked, the rest are refused (429)."""
    from concurrent.futures import ThreadPoolExecutor

    from fastapi.testclient import TestClient

    from webapp import auth
    from webapp.app import create_app
    from webapp.models import LoginAttempt

    app = create_app(make_settings(tiny, login_max_failures_user=3))
    with TestClient(app):
        add_users(app)
        st = app.state.qa
        slow = _SlowPasswords(st.passwords, 0.3)

        def guess(i):
            return auth.login(st.db, st.settings, slow, username="admin", password=f"guess number {i}",
                              ip=f"10.0.0.{i}", user_agent=None, old_token=None).status

        with ThreadPoolExecutor(10) as pool:
            statuses = Counter(pool.map(guess, range(10)))
        assert statuses["bad"] <= 3 and statuses["locked"] >= 7 and statuses["ok"] == 0
        # the right password is refused too now, and the checked attempts stay failures
        assert auth.login(st.db, st.settings, st.passwords, username="admin", password=PASSWORD, ip="10.0.1.1",
                          user_agent=None, old_token=None).status == "locked"
        with st.db.read() as s:
            assert s.scalar(select(func.count()).select_from(LoginAttempt).where(LoginAttempt.success)) == 0
        # a successful login turns its provisional failure into a success
        assert auth.login(st.db, st.settings, st.passwords, username="lead", password=PASSWORD, ip="10.0.1.2",
                          user_agent=None, old_token=None).status == "ok"
        with st.db.read() as s:
            rows = s.execute(select(LoginAttempt.username, LoginAttempt.success)).all()
        assert ("lead", True) in rows and ("lead", False) not in rows


def test_throttle_delays_double():
    from webapp.security import LoginThrottle

    t = LoginThrottle(delay_base_s=0.25, delay_max_s=2.0)
    assert [t.delay_after_failure(n) for n in range(6)] == [0.0, 0.25, 0.5, 1.0, 2.0, 2.0]


def test_disabled_account_is_signed_out(client, app):
    from webapp.users import disable_user

    signed_in(client, "rev-alpha")
    with app.state.qa.db.write() as s:
        disable_user(s, "rev-alpha")
    assert client.get("/", headers=HTML, follow_redirects=False).status_code == 303
    assert login(client, "rev-alpha").status_code == 401


def test_expired_and_idle_sessions_end(tiny):
    from fastapi.testclient import TestClient

    from webapp.app import create_app

    app = create_app(make_settings(tiny, session_idle_s=0))
    with TestClient(app) as c:
        add_users(app)
        signed_in(c, "admin")
        assert c.get("/", headers=HTML, follow_redirects=False).status_code == 303


# ---- audit log -------------------------------------------------------------------------------------------------

def test_audit_rows_are_written_and_cannot_change(client, app, tiny):
    from webapp.models import AuditEntry

    alpha = tiny.ids["alpha-1"]
    signed_in(client, "admin")
    audio = _view_audio_url(client, alpha)
    for rng in ("bytes=0-99", "bytes=100-", "bytes=5000-6000"):
        assert client.get(audio, headers={"range": rng}).status_code == 206
    audio2 = _view_audio_url(client, alpha)  # a second view: a second play
    client.get(audio2, headers={"range": "bytes=0-1"})
    login(client, "admin", "wrong password!")
    st = app.state.qa
    with st.db.read() as s:
        rows = s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    actions = [r.action for r in rows]
    assert actions.count("user_added") == 6 and "login" in actions and "login_failed" in actions
    assert actions.count("viewed") == 2 and actions.count("played") == 2  # one per view, not per range request
    played = next(r for r in rows if r.action == "played")
    assert played.username == "admin" and played.target_id == alpha and played.detail["variant"] == "original"
    # the database refuses to change or remove entries, whatever the client
    for sql in ("UPDATE audit_log SET action = 'nothing'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"):
            with st.db.write() as s:
                s.execute(text(sql))
    # and no ORM code path can either
    with pytest.raises(PermissionError):
        with st.db.write() as s:
            s.get(AuditEntry, played.id).action = "nothing"
    with pytest.raises(PermissionError):
        with st.db.write() as s:
            s.delete(s.get(AuditEntry, played.id))
    with st.db.read() as s:
        assert s.scalar(select(AuditEntry.action).where(AuditEntry.id == played.id)) == "played"


# ---- headers ---------------------------------------------------------------------------------------------------

def test_strict_content_security_policy(client, tiny):
    signed_in(client, "admin")
    for url in ("/", f"/calls/{tiny.ids['alpha-1']}", "/static/app.js", "/login"):
        r = client.get(url)
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self';" in csp and "unsafe" not in csp
        assert "frame-ancestors 'none'" in csp and r.headers["x-content-type-options"] == "nosniff"
    page = client.get(f"/calls/{tiny.ids['alpha-1']}")
    nonce = re.search(r"'nonce-([^']+)'", page.headers["content-security-policy"]).group(1)
    assert f'content="{nonce}"' in page.text  # handed to wavesurfer.js for its shadow-DOM styles
    assert "<script>" not in page.text and "<style" not in page.text and " style=" not in page.text
    assert not re.search(r"""(src|href)=["']https?://""", page.text)  # nothing from another origin
    assert page.headers["cache-control"] == "no-store"


# ---- every route, every role (the lifecycle, calibration, scorecards, coaching, samples and roles routes too) -----

_BODIES = {  # a well-formed body for each POST route on a call: what is refused is the scope, not the form
    "/calls/{call_id}/evaluation/verdicts": {"target_type": "flag", "target_id": "{flag}", "action": "confirm",
                                             "comment": "x"},
    "/calls/{call_id}/evaluation/comments": {"anchor": "u:0", "body": "a comment"},
    "/calls/{call_id}/evaluation/submit": {},
    "/calls/{call_id}/evaluation/acknowledge": {},
    "/calls/{call_id}/evaluation/dispute": {"reason": "not me"},
    "/calls/{call_id}/evaluation/resolve": {"root_cause": "judgement", "note": "x"},
    "/calls/{call_id}/coaching": {"start_s": "0.5", "end_s": "1.0", "kind": "example", "note": "x"},
    "/calls/{call_id}/swap-speakers": {"swaps": "0", "reason": "x"},
}


def _call_routes(app) -> list[tuple[str, str]]:
    """(method, path) of every route about one call."""
    return [(m, r.path) for r in _leaf_routes(app.routes) if not isinstance(r, Mount) and "{call_id}" in r.path
            for m in sorted((getattr(r, "methods", None) or {"GET"}) - {"HEAD"})]


def _rows_about(app, call_id: str) -> dict:
    from webapp.models import CallView, CoachingMark, Evaluation, RoleSwap

    with app.state.qa.db.read() as s:
        return {m.__name__: s.scalar(select(func.count()).select_from(m).where(m.call_id == call_id))
                for m in (Evaluation, CoachingMark, RoleSwap, CallView)}


@pytest.mark.parametrize("username, target", [
    ("rev-alpha", "beta-1"),      # a reviewer, another team's call
    ("mgr-alpha", "beta-1"),      # a manager, another team's call
    ("trainer-alpha", "beta-1"),  # a trainer, another team's call
    ("rev-beta", "alpha-1"),      # the other way round
    ("agent-a2", "alpha-1"),      # an agent, a colleague's call
])
def test_no_route_reaches_a_call_outside_the_scope(lclient, lapp, scored, username, target):
    """Every route about one call (page, peaks, audio, the evaluation's forms, coaching, swap speakers), with a
    valid session and CSRF token and a well-formed body, answers 404 for a call outside the user's scope, shows
    nothing of it and changes nothing."""
    from tests.webapp.conftest import as_user, reviews

    call_id = scored.ids[target]
    secret = "not bold" if target == "beta-1" else "complain about my bill"
    routes = _call_routes(lapp)
    assert {p for _, p in routes if _ != "GET"} == set(_BODIES), "a new route on a call: add its body here"
    before = _rows_about(lapp, call_id)
    as_user(lclient, username)
    token = form_token(lclient.get("/").text)
    for method, path in routes:
        url = _concrete(path, call_id)
        for headers in (HTML, {"hx-request": "true"}, {}):
            if method == "GET":
                r = lclient.get(url, params={"view": "x" * 20} if path.startswith("/audio") else None,
                                headers=headers, follow_redirects=False)
            else:
                body = {k: v.replace("{flag}", f"{call_id[:8]}-f1") for k, v in _BODIES[path].items()}
                r = lclient.post(url, data={"csrf_token": token, "version": "0", **body}, headers=headers,
                                 follow_redirects=False)
            assert r.status_code == 404, (username, method, url, headers, r.status_code, r.text[:200])
            assert secret not in r.text and call_id not in r.text.replace(url, "")
    for params in ({"calibration": "1"}, {"sample": "1"}):
        assert lclient.get(f"/calls/{call_id}", params=params).status_code == 404
    assert _rows_about(lapp, call_id) == before
    assert reviews(scored.data) == []


def test_scorecards_samples_coaching_and_calibration_stay_in_scope(lclient, lapp, scored):
    """The pages that list calls, operators or marks show those of the user's teams only."""
    from tests.webapp.conftest import WEEK, as_user, eval_post

    alpha1, beta = scored.ids["alpha-1"], scored.ids["beta-1"]
    # the lead draws a sample over every team, marks a beta call for coaching, and judges a beta call
    as_user(lclient, "lead")
    token = form_token(lclient.get("/samples").text)
    r = lclient.post("/samples", data={"csrf_token": token, "name": "all teams", "method": "random",
                                       "per_agent": "5", "seed": "7"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    sample_url = r.headers["location"]
    assert beta[:12] in lclient.get(sample_url).text and alpha1[:12] in lclient.get(sample_url).text
    r = lclient.post(f"/calls/{beta}/coaching", data={"csrf_token": token, "start_s": "0.3", "end_s": "1.5",
                                                       "kind": "miss", "note": "beta secret note"},
                     follow_redirects=False)
    assert r.status_code == 303
    as_user(lclient, "rev-beta")
    assert eval_post(lclient, beta, "verdicts", {"target_type": "flag", "target_id": f"{beta[:8]}-f1",
                                                 "action": "confirm", "comment": "beta verdict"}).status_code == 200
    assert eval_post(lclient, beta, "submit").status_code == 200
    # a reviewer of alpha: the sample lists alpha's calls only; no beta evaluation; no beta in the filters
    as_user(lclient, "rev-alpha")
    page = lclient.get(sample_url).text
    assert alpha1[:12] in page and beta[:12] not in page and "b1&lt;script" not in page
    page = lclient.get("/evaluations").text
    assert beta[:12] not in page and "beta verdict" not in page
    assert "beta" not in lclient.get("/").text
    # a manager of alpha: no beta team, no beta operator, not even by asking for it
    as_user(lclient, "mgr-alpha")
    page = lclient.get("/scorecards", params={"week": WEEK}).text
    assert "Team alpha" in page and "beta" not in page and "b1&lt;" not in page
    assert "beta" not in lclient.get("/scorecards", params={"week": WEEK, "team": f"beta{XSS}"}).text
    for agent in (f"b1{XSS}", "b1"):
        r = lclient.get("/scorecards/operator", params={"week": WEEK, "agent": agent})
        assert r.status_code == 404 and "beta" not in r.text
    assert lclient.get("/scorecards/operator", params={"week": WEEK, "agent": "a1"}).status_code == 200
    # a trainer of alpha: the lead's mark on a beta call is not among theirs, nor can they ask for everyone's,
    # nor build a coaching pack of team beta or of its agent
    as_user(lclient, "trainer-alpha")
    page = lclient.get("/coaching", params={"all": "1"}).text
    assert "beta secret note" not in page and beta[:12] not in page
    token = form_token(page)
    for form in ({"team": f"beta{XSS}"}, {"agent": f"b1{XSS}"}, {"team": "alpha", "agent": f"b1{XSS}"}):
        r = lclient.post("/coaching/pack", data={"csrf_token": token, **form})
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/"), form
        assert "beta secret note" not in r.text and XSS not in r.text
    # the lead sees everything
    as_user(lclient, "lead")
    assert "beta secret note" in lclient.get("/coaching", params={"all": "1"}).text


def test_csrf_token_of_another_session_is_refused(lclient, lapp, scored):
    """A token is bound to its session: one taken from another account's (or an earlier) session does not work."""
    from tests.webapp.conftest import as_user

    alpha1 = scored.ids["alpha-1"]
    as_user(lclient, "rev-alpha2")
    other = form_token(lclient.get("/").text)
    as_user(lclient, "rev-alpha")
    mine = form_token(lclient.get("/").text)
    assert other != mine
    for url, data in ((f"/calls/{alpha1}/evaluation/comments", {"anchor": "", "body": "x", "version": "0"}),
                      ("/logout", {})):
        for headers, body in (({}, {"csrf_token": other}), ({"x-csrf-token": other, "hx-request": "true"}, {})):
            r = lclient.post(url, data={**data, **body}, headers=headers, follow_redirects=False)
            assert r.status_code == 403, (url, headers, r.status_code)
    assert _rows_about(lapp, alpha1)["Evaluation"] == 0
    as_user(lclient, "rev-alpha")  # a new session: the previous session's token is dead too
    r = lclient.post("/logout", data={"csrf_token": mine}, follow_redirects=False)
    assert r.status_code == 403


def test_anonymous_requests_change_nothing(client, app, tiny):
    """Every route, as a page, an API call and an htmx request, without a session: a redirect to the login (page),
    401 (API; htmx with HX-Redirect), and nothing is written."""
    from webapp.models import AuditEntry

    call_id = tiny.ids["alpha-1"]
    with app.state.qa.db.read() as s:
        audit_before = s.scalar(select(func.count()).select_from(AuditEntry))
    for route in _leaf_routes(app.routes):
        if isinstance(route, Mount) or route.path in ("/login", "/static/report.css"):
            continue
        for method in sorted((getattr(route, "methods", None) or {"GET"}) - {"HEAD"}):
            url = _concrete(route.path, call_id)
            r = client.request(method, url, follow_redirects=False)
            assert r.status_code == 401, (method, url, r.status_code)
            r = client.request(method, url, headers={"hx-request": "true"}, follow_redirects=False)
            assert r.status_code == 401 and r.headers.get("hx-redirect") == "/login", (method, url)
            r = client.request(method, url, headers=HTML, data={"csrf_token": "x"} if method == "POST" else None,
                               follow_redirects=False)
            assert r.status_code in (303, 401) and "alpha" not in r.text, (method, url, r.status_code)
    assert _rows_about(app, call_id) == {"Evaluation": 0, "CoachingMark": 0, "RoleSwap": 0, "CallView": 0}
    with app.state.qa.db.read() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == audit_before


# ---- escaping on every page ------------------------------------------------------------------------------------

def test_markup_is_escaped_on_every_page(lclient, lapp, scored):
    """Markup in everything a user can type or the data can hold (transcripts, flag reasons, agent ids, team names,
    verdict comments, line comments, dispute reasons, resolution notes, coaching notes, sample and calibration
    session names, display names) is shown escaped on every page of the app, for every role that sees it."""
    from tests.webapp.conftest import PASSWORD, WEEK, as_user, eval_post
    from webapp.users import NewUser, add_user

    beta = scored.ids["beta-1"]
    st = lapp.state.qa
    with st.db.write() as s:
        add_user(s, NewUser(username="rev-x", role="qa_reviewer", password=PASSWORD, teams=(f"beta{XSS}",),
                            display_name=f"Rex {XSS}"), st.passwords, min_length=10)
    as_user(lclient, "rev-x")
    assert eval_post(lclient, beta, "verdicts", {"target_type": "flag", "target_id": f"{beta[:8]}-f1",
                                                 "action": "confirm", "comment": f"verdict {XSS}"}).status_code == 200
    assert eval_post(lclient, beta, "comments", {"anchor": "u:0", "body": f"line {XSS}"}).status_code == 200
    assert eval_post(lclient, beta, "submit").status_code == 200
    as_user(lclient, "mgr-beta")
    assert eval_post(lclient, beta, "dispute", {"reason": f"dispute {XSS}"}).status_code == 200
    as_user(lclient, "lead")
    assert eval_post(lclient, beta, "resolve", {"root_cause": "judgement", "note": f"note {XSS}"}).status_code == 200
    token = form_token(lclient.get("/").text)
    assert lclient.post(f"/calls/{beta}/coaching", data={"csrf_token": token, "start_s": "0.3", "end_s": "1.5",
                                                          "kind": "example", "note": f"coach {XSS}",
                                                          "criterion": f"c{XSS}"},
                        follow_redirects=False).status_code == 303
    r = lclient.post("/samples", data={"csrf_token": token, "name": f"sample {XSS}", "method": "stratified",
                                       "per_agent": "3", "team": f"beta{XSS}"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    sample_url = r.headers["location"]
    from webapp.models import User

    with st.db.read() as s:
        raters = [str(s.scalar(select(User.id).where(User.username == u))) for u in ("rev-x", "lead")]
    r = lclient.post("/calibration", data={"csrf_token": token, "name": f"session {XSS}", "calls": beta,
                                           "raters": raters}, follow_redirects=False)
    assert r.status_code == 303, r.text
    session_url = r.headers["location"]
    lclient.post(f"{session_url}/close", data={"csrf_token": token})

    pages = {"/": {}, "/calls/{call_id}": {}, "/evaluations": {}, "/samples": {}, "/samples/{sample_id}": {},
             "/calibration": {}, "/calibration/{session_id}": {}, "/scorecards": {"week": WEEK},
             "/scorecards/operator": {"week": WEEK, "agent": f"b1{XSS}"}, "/coaching": {"all": "1"},
             "/login": {}}
    gets = {r.path for r in _leaf_routes(lapp.routes) if not isinstance(r, Mount)
            and "GET" in (getattr(r, "methods", None) or ()) and r.path not in ("/static/report.css",)}
    assert gets - {"/calls/{call_id}/peaks.json", "/audio/{call_id}"} == set(pages), "a new page: check it here"
    concrete = {"{call_id}": beta, "{sample_id}": sample_url.rsplit("/", 1)[1],
                "{session_id}": session_url.rsplit("/", 1)[1]}
    seen = 0
    for username in ("admin", "lead", "rev-x", "mgr-beta"):
        as_user(lclient, username)
        for path, params in pages.items():
            url = path
            for k, v in concrete.items():
                url = url.replace(k, v)
            r = lclient.get(url, params=params, follow_redirects=False)
            assert XSS not in r.text and "<b>not bold" not in r.text, (username, url)
            assert "<script>" not in r.text.replace('<script src="/static/', ""), (username, url)
            seen += r.text.count("&lt;script&gt;")
    assert seen > 40  # the markup was there to escape, and was escaped
    as_user(lclient, "lead")
    page = lclient.get(f"/calls/{beta}").text
    for what in ("verdict", "line", "dispute", "note", "Rex"):
        assert f"{what} &lt;script&gt;alert(1)&lt;/script&gt;" in page, what
    assert "coach &lt;script&gt;" in page and "sample &lt;script&gt;" in lclient.get("/samples").text
    assert "session &lt;script&gt;" in lclient.get(session_url).text


# ---- no file outside the data folder, the static folder and the calls folder ------------------------------------

def test_every_file_served_comes_from_an_allowed_folder(client, app, tiny, monkeypatch):
    """Every file response the app makes while a signed-in admin walks every page, plays every recording, loads
    every script and stylesheet and tries traversal on every path parameter is a file inside the app's static
    folder, the render layer's stylesheet, the calls folder or the data folder."""
    from starlette.responses import FileResponse

    from qa_pipeline.render import TEMPLATES_DIR as RENDER_TEMPLATES_DIR
    from webapp.templating import STATIC_DIR

    served: list[Path] = []
    original = FileResponse.__init__

    def recording(self, path, *args, **kwargs):
        served.append(Path(path))
        original(self, path, *args, **kwargs)

    monkeypatch.setattr(FileResponse, "__init__", recording)
    link = tiny.calls / "link-out.wav"
    os.symlink(tiny.outside, link)
    extra = {k: _add_call(tiny, k, p) for k, p in {"abs": str(tiny.outside), "dotdot": "../outside.wav",
                                                   "link": str(link), "db": str(tiny.data / "review.sqlite3"),
                                                   "etc": "/etc/passwd"}.items()}
    app.state.qa.syncer.sync()
    signed_in(client, "admin")
    assets = set()
    for call_id in list(tiny.ids.values()) + list(extra.values()):
        page = client.get(f"/calls/{call_id}")
        assert page.status_code == 200
        assets |= set(re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text))
        m = re.search(r'src="(/audio/[^"]+)"', page.text)
        if m:
            assert client.get(m.group(1).replace("&amp;", "&"), headers={"range": "bytes=0-99"}).status_code == 206
        client.get(f"/calls/{call_id}/peaks.json")
    for url in sorted(assets) + ["/", "/evaluations", "/samples", "/calibration", "/scorecards", "/coaching"]:
        assert client.get(url).status_code == 200, url
    payloads = ["..%2F..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fpyproject.toml", "%2e%2e", "%2Fetc%2Fpasswd",
                "..%5C..%5Capp.py", "review.sqlite3", "..%2Freview.sqlite3"]
    for route in _leaf_routes(app.routes):
        if isinstance(route, Mount) or "{" not in route.path:
            continue
        for payload in payloads:
            url = re.sub(r"\{[^}]+\}", payload, route.path)
            for method in sorted((getattr(route, "methods", None) or {"GET"}) - {"HEAD"}):
                r = client.request(method, url, follow_redirects=False)
                assert r.status_code in (400, 403, 404, 405, 422), (method, url, r.status_code)
                assert "root:" not in r.text and "SQLite format" not in r.text and "[project]" not in r.text
    allowed = [STATIC_DIR.resolve(), tiny.calls.resolve(), Path(tiny.data).resolve()]
    report_css = (RENDER_TEMPLATES_DIR / "report.css").resolve()
    assert served, "no file was served"
    kinds = set()
    for p in served:
        real = p.resolve()
        ok = real == report_css or any(real.is_relative_to(root) for root in allowed)
        assert ok, f"served a file outside the allowed folders: {p}"
        assert real.name != "review.sqlite3" and real != tiny.outside.resolve()
        kinds.add("static" if real.is_relative_to(STATIC_DIR.resolve()) else "audio" if real.suffix == ".wav"
                  else real.name)
    assert {"static", "audio", "report.css"} <= kinds
