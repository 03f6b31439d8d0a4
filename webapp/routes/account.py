"""Signing in and out: GET/POST /login, POST /logout."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from webapp import auth
from webapp.routes.common import app_state, client_ip, current_user
from webapp.security import LOGIN_CSRF_COOKIE, SESSION_COOKIE, new_token

router = APIRouter()


def safe_next(target: str | None) -> str:
    """Only a path on this site: never another host (`//evil`, `/\\evil`, `https://...`)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _secure(request: Request) -> bool:
    setting = app_state(request).settings.cookie_secure
    return request.url.scheme == "https" if setting is None else setting


def _login_page(request: Request, *, next_url: str, error: str | None = None, status: int = 200,
                username: str = "", headers: dict | None = None):
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or new_token()
    response = app_state(request).pages.render(request, "login.html", status=status, csrf_token=token,
                                               next_url=next_url, error=error, username=username,
                                               headers=headers)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request),
                        path="/login")
    return response


@router.get("/login")
def login_form(request: Request, next: str = "/"):
    if getattr(request.state, "user", None) is not None:
        return RedirectResponse(safe_next(next), 303)
    return _login_page(request, next_url=safe_next(next))


@router.post("/login")
async def login_submit(request: Request, username: str = Form("", max_length=200),
                       password: str = Form("", max_length=1024), next: str = Form("/", max_length=2000)):
    st = app_state(request)
    ip = client_ip(request)

    def attempt():
        return auth.login(st.db, st.settings, st.passwords, username=username, password=password, ip=ip,
                          user_agent=request.headers.get("user-agent"), old_token=request.cookies.get(SESSION_COOKIE))

    result = await run_in_threadpool(attempt)
    if result.status == "locked":
        minutes = max(1, round(result.retry_after_s / 60))
        return _login_page(request, next_url=safe_next(next), status=429, username=username,
                           error=f"Too many failed attempts: try again in about {minutes} minute(s).",
                           headers={"Retry-After": str(result.retry_after_s)})
    if result.status != "ok":
        await asyncio.sleep(result.delay_s)  # slows guessing down; the lockout stops it
        return _login_page(request, next_url=safe_next(next), status=401, username=username,
                           error="Wrong username or password.")
    response = RedirectResponse(safe_next(next), 303)
    response.set_cookie(SESSION_COOKIE, result.token, httponly=True, samesite="strict", secure=_secure(request),
                        max_age=st.settings.session_max_age_s, path="/")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request):
    st = app_state(request)
    user = current_user(request)
    with st.db.write() as s:
        auth.logout(s, request.cookies.get(SESSION_COOKIE), user=user, ip=client_ip(request))
    response = RedirectResponse("/login", 303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
