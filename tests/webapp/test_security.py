"""The review app's security properties, each tested through HTTP: login required everywhere, team scoping by
page, API and audio URL, no file outside the allowed folders, escaping, CSRF, session fixation, login rate
limiting, the append-only audit log, the response headers."""

from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select, text
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
