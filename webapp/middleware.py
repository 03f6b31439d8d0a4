"""The two middlewares every request passes (plain ASGI, outermost first):

1. `SecurityHeaders`: a per-request nonce, and on every response a strict Content-Security-Policy (scripts,
   styles, media, fetches: this origin only; inline styles only with the nonce, which wavesurfer.js needs for its
   shadow-DOM styles; no inline script, no plugin, no framing, forms post here only), `nosniff`,
   `Referrer-Policy: same-origin`, and `Cache-Control: no-store` on anything but static files and audio.
2. `SessionGate`: finds the session of the cookie (`webapp.auth.load_session`), puts the user in
   `request.state.user`, and refuses, before any route runs:
   - anonymous requests to anything but `PUBLIC_PATHS` / `PUBLIC_PREFIXES` (a page: 303 to /login?next=...;
     htmx: 401 with HX-Redirect; anything else: 401), so a new route is protected without doing anything;
   - POST/PUT/PATCH/DELETE without the CSRF token (403): the `X-CSRF-Token` header (htmx sends it from
     `hx-headers` on <body>) or the `csrf_token` form field, compared with the session's (or, for the login form,
     with the double-submit cookie). The form body is read here and replayed to the route."""

from __future__ import annotations

import secrets
import urllib.parse

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from webapp import auth
from webapp.security import CSRF_FIELD, CSRF_HEADER, LOGIN_CSRF_COOKIE, SESSION_COOKIE, same_token

PUBLIC_PATHS = frozenset({"/login"})
PUBLIC_PREFIXES = ("/static/",)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_FORM_BYTES = 2 * 1024 * 1024

CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'nonce-{nonce}'; img-src 'self' data:; "
       "media-src 'self'; connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; "
       "frame-ancestors 'none'")


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class SecurityHeaders:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})["csp_nonce"] = nonce
        cacheable = scope["path"].startswith(("/static/", "/audio/"))

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                h = MutableHeaders(scope=message)
                h["Content-Security-Policy"] = CSP.format(nonce=nonce)
                h["X-Content-Type-Options"] = "nosniff"
                h["Referrer-Policy"] = "same-origin"
                h["X-Frame-Options"] = "DENY"
                h["Cross-Origin-Opener-Policy"] = "same-origin"
                h["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
                if not cacheable and "cache-control" not in h:
                    h["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _login_url(scope) -> str:
    path = scope["path"]
    query = scope.get("query_string", b"").decode("latin-1")
    target = path + ("?" + query if query else "")
    return "/login" if path in ("/", "/logout") and not query else "/login?" + urllib.parse.urlencode({"next": target})


class SessionGate:
    def __init__(self, app, state):
        self.app = app
        self.state = state  # webapp.app.AppState

    def _load(self, token: str | None):
        st = self.state
        with st.db.read() as s:
            sess = auth.load_session(s, st.settings, token)
            if sess is None:
                return None
            info = (sess.user, sess.id, sess.csrf_token, auth.needs_touch(sess))
        if info[3]:
            with st.db.write() as s:
                auth.touch(s, info[1])
        return info

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        path = scope["path"]
        state = scope.setdefault("state", {})
        state["user"] = state["session_id"] = state["csrf_token"] = None
        token = request.cookies.get(SESSION_COOKIE)
        public = is_public(path)
        if token and not path.startswith("/static/"):
            info = await run_in_threadpool(self._load, token)
            if info is not None:
                state["user"], state["session_id"], state["csrf_token"], _ = info
        if state["user"] is None and not public:
            return await self._refuse_anonymous(request)(scope, receive, send)
        if scope["method"] in UNSAFE_METHODS:
            expected = state["csrf_token"] if state["user"] is not None else request.cookies.get(LOGIN_CSRF_COOKIE)
            given = request.headers.get(CSRF_HEADER)
            body: list[dict] | None = None
            if not given:
                body, too_big = await self._read_body(receive)
                if too_big:
                    return await PlainTextResponse("request too large", 413)(scope, receive, send)
                given = await self._form_token(scope, body)
            if not same_token(expected, given):
                return await PlainTextResponse("refused: missing or wrong CSRF token (reload the page and try "
                                               "again)", 403)(scope, receive, send)
            if body is not None:
                receive = _replay(body, receive)
        await self.app(scope, receive, send)

    @staticmethod
    def _refuse_anonymous(request: Request) -> Response:
        if request.headers.get("hx-request"):
            return Response("sign in first", 401, headers={"HX-Redirect": "/login"})
        if request.method in ("GET", "HEAD") and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse(_login_url(request.scope), 303)
        return PlainTextResponse("sign in first", 401, headers={"WWW-Authenticate": 'Cookie realm="qa-review"'})

    @staticmethod
    async def _read_body(receive) -> tuple[list[dict], bool]:
        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > MAX_FORM_BYTES:
                return messages, True
            if not message.get("more_body"):
                break
        return messages, False

    @staticmethod
    async def _form_token(scope, body: list[dict]) -> str | None:
        ctype = Request(scope).headers.get("content-type", "")
        if not ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            return None
        request = Request(scope, receive=_replay(body, None))
        try:
            form = await request.form()
            value = form.get(CSRF_FIELD)
            return value if isinstance(value, str) else None
        except Exception:  # a malformed body: no token
            return None
        finally:
            await request.close()


def _replay(messages: list[dict], then):
    """A `receive` that gives back the buffered body messages, then waits on the real `receive` (`then`; None: a
    disconnect), which is how the client's disconnect still reaches the route."""
    pending = list(messages)

    async def receive():
        if pending:
            return pending.pop(0)
        return await then() if then is not None else {"type": "http.disconnect"}

    return receive
