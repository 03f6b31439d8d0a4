"""Signing in and out, and the server-side sessions behind the cookie.

A login that succeeds always creates a NEW session (a new random token, a new CSRF token) and removes the
session the browser came with, if any: a token planted before login is worthless after it (session fixation).
A session ends at logout, `session_max_age_s` after login, `session_idle_s` after its last request, when the
password changes or the account is disabled."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp import audit
from webapp.config import AppSettings
from webapp.db import Database
from webapp.models import LoginAttempt, User, UserSession, utcnow
from webapp.security import LoginThrottle, Passwords, new_token, token_hash
from webapp.users import get_user, normalise_username

LAST_SEEN_EVERY_S = 60  # last_seen_at is written at most this often per session (not on every request)


@dataclass(frozen=True, slots=True)
class LoginResult:
    """status: ok / bad (unknown user, wrong password or disabled: one answer for all three) / locked."""
    status: str
    user: User | None = None
    token: str | None = None
    csrf_token: str | None = None
    retry_after_s: int = 0
    delay_s: float = 0.0


def throttle_of(settings: AppSettings) -> LoginThrottle:
    return LoginThrottle(max_failures_user=settings.login_max_failures_user,
                         max_failures_ip=settings.login_max_failures_ip, window_s=settings.login_window_s,
                         lockout_s=settings.login_lockout_s, delay_base_s=settings.login_delay_base_s,
                         delay_max_s=settings.login_delay_max_s)


def login(db: Database, settings: AppSettings, passwords: Passwords, *, username: str, password: str, ip: str,
          user_agent: str | None, old_token: str | None) -> LoginResult:
    """Check the credentials under the rate limit; on success, replace any old session with a new one.

    Three steps, so that no write transaction is open while the password hash is checked (argon2 takes a good
    fraction of a second by design, and a SQLite writer holds the whole database: twenty people signing in at
    once would otherwise queue on the lock past its busy timeout): (1) a short write transaction checks the limit
    and records the attempt as a failure; (2) the password is checked; (3) a short write transaction turns the
    attempt into a success and creates the session, or records the failure. Because the attempt counts as a failure
    from step 1, guesses sent in parallel see each other and are limited as if they came one after another."""
    name = normalise_username(username)[:64]
    throttle = throttle_of(settings)
    with db.write() as s:
        decision = throttle.check(s, name, ip)
        if not decision.allowed:
            return LoginResult("locked", retry_after_s=decision.retry_after_s)
        attempt_id = throttle.record(s, name, ip, success=False)
        user = get_user(s, name)
        seen = (user.id, user.password_hash, user.disabled) if user is not None else None
    ok = passwords.verify(seen[1] if seen else None, password) and seen is not None and not seen[2]
    with db.write() as s:
        user = s.get(User, seen[0]) if seen else None
        # the account changed while the password was checked (disabled, another password): not this time
        ok = ok and user is not None and not user.disabled and user.password_hash == seen[1]
        if not ok:
            audit.record(s, "login_failed", username=name, ip=ip,
                         detail={"reason": "disabled" if user is not None and user.disabled else "bad credentials"})
            return LoginResult("bad", delay_s=throttle.delay_after_failure(decision.failures + 1))
        attempt = s.get(LoginAttempt, attempt_id)
        if attempt is not None:
            attempt.success = True
        if passwords.needs_rehash(user.password_hash):
            user.password_hash = passwords.hash(password)
        if old_token:
            s.query(UserSession).filter(UserSession.id == token_hash(old_token)).delete()
        token, csrf = new_token(), new_token()
        now = utcnow()
        s.add(UserSession(id=token_hash(token), user_id=user.id, csrf_token=csrf, created_at=now, last_seen_at=now,
                          expires_at=now + dt.timedelta(seconds=settings.session_max_age_s), ip=ip,
                          user_agent=(user_agent or "")[:400]))
        audit.record(s, "login", user=user, ip=ip)
        return LoginResult("ok", user=user, token=token, csrf_token=csrf)


def load_session(s: Session, settings: AppSettings, token: str | None) -> UserSession | None:
    """The live session of this cookie token (with its user), or None: unknown, expired, idle too long, or the
    account disabled."""
    if not token or len(token) > 200:
        return None
    sess = s.scalar(select(UserSession).where(UserSession.id == token_hash(token)))
    if sess is None:
        return None
    now = utcnow()
    idle_limit = sess.last_seen_at + dt.timedelta(seconds=settings.session_idle_s)
    if now >= sess.expires_at or now >= idle_limit or sess.user.disabled:
        return None
    return sess


def touch(s: Session, session_id: str) -> None:
    """Record activity on a session (called when `last_seen_at` is older than LAST_SEEN_EVERY_S)."""
    sess = s.get(UserSession, session_id)
    if sess is not None:
        sess.last_seen_at = utcnow()


def needs_touch(sess: UserSession) -> bool:
    return (utcnow() - sess.last_seen_at).total_seconds() >= LAST_SEEN_EVERY_S


def logout(s: Session, token: str | None, *, user: User | None, ip: str | None) -> None:
    if token:
        s.query(UserSession).filter(UserSession.id == token_hash(token)).delete()
    if user is not None:
        audit.record(s, "logout", user=user, ip=ip)


def prune_sessions(s: Session) -> int:
    """Remove expired sessions; returns how many."""
    return s.query(UserSession).filter(UserSession.expires_at < utcnow()).delete()
