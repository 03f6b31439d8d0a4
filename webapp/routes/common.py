"""What every route module uses: the app state, the signed-in user, the client's address."""

from __future__ import annotations

from fastapi import HTTPException, Request

from webapp.app import AppState
from webapp.models import User


def app_state(request: Request) -> AppState:
    return request.app.state.qa


def current_user(request: Request) -> User:
    """The signed-in user (the session gate has already refused anonymous requests to every non-public route)."""
    user = getattr(request.state, "user", None)
    if user is None:
        raise HTTPException(401, "sign in first")
    return user


def client_ip(request: Request) -> str:
    """The peer address. Behind a reverse proxy, run uvicorn with --proxy-headers and --forwarded-allow-ips so
    this is the client's, not the proxy's (rate limiting counts per address)."""
    return request.client.host if request.client else "unknown"
