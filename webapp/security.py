"""Security primitives, each defined once: password hashing, session and CSRF tokens, login rate limiting.

- **Passwords**: argon2id through argon2-cffi's `PasswordHasher` (never passlib); a hash made with older
  parameters is replaced at the next successful login (`check_needs_rehash`). An unknown username is checked
  against a dummy hash, so it takes as long as a wrong password.
- **Session tokens**: 256 random bits (`secrets.token_urlsafe(32)`) in an HttpOnly, SameSite=Strict cookie; the
  database keeps only their SHA-256, so a copy of the database opens no session.
- **CSRF**: each session has its own random token, sent in every form (`csrf_token` field) and every htmx request
  (the `X-CSRF-Token` header, from `hx-headers` on <body>); compared in constant time. The login form, before any
  session exists, uses a double-submit token (cookie + field). Checked for every POST/PUT/PATCH/DELETE by
  `webapp.middleware.SessionMiddleware`, before any route runs.
- **Login rate limiting** (`LoginThrottle`): every attempt is stored (`login_attempts`); failures are counted per
  username (since its last success) and per address within a window. Each failure is answered after a delay that
  doubles (0.25 s, 0.5 s, 1 s, ... at most 2 s); past the limit the username or address gets 429 with
  Retry-After until the lockout after its latest failure has passed, and its password is not even checked."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.models import LoginAttempt, utcnow

SESSION_COOKIE = "qa_session"
LOGIN_CSRF_COOKIE = "qa_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def new_token() -> str:
    """256 random bits, URL-safe text."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the database stores of a session token: its SHA-256 in hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def same_token(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; False when either is missing."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


class Passwords:
    """argon2id hashing (see the module docstring)."""

    def __init__(self, *, time_cost: int = 3, memory_kib: int = 65536):
        self.hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)
        self._dummy = self.hasher.hash(new_token())

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when `password` matches; an unknown user (None) costs the same time and is False."""
        try:
            return self.hasher.verify(stored_hash or self._dummy, password) and stored_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return self.hasher.check_needs_rehash(stored_hash)


def check_password_policy(password: str, *, min_length: int) -> str | None:
    """What is wrong with a new password, or None."""
    if len(password) < min_length:
        return f"too short: at least {min_length} characters"
    if password.strip() != password:
        return "leading or trailing spaces"
    return None


# ---- login rate limiting ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ThrottleDecision:
    allowed: bool
    retry_after_s: int = 0  # when refused: seconds until the lockout ends
    failures: int = 0  # recent failures of this username


@dataclass(frozen=True, slots=True)
class LoginThrottle:
    max_failures_user: int = 5
    max_failures_ip: int = 30
    window_s: int = 900
    lockout_s: int = 900
    delay_base_s: float = 0.25
    delay_max_s: float = 2.0

    def _failures(self, s: Session, column, value: str, since: dt.datetime) -> tuple[int, dt.datetime | None]:
        row = s.execute(select(func.count(), func.max(LoginAttempt.at))
                        .where(column == value, LoginAttempt.success.is_(False), LoginAttempt.at > since)).one()
        return int(row[0]), row[1]

    def check(self, s: Session, username: str, ip: str, *, now: dt.datetime | None = None) -> ThrottleDecision:
        """May this username try a password from this address now?"""
        now = now or utcnow()
        since = now - dt.timedelta(seconds=self.window_s)
        last_ok = s.scalar(select(func.max(LoginAttempt.at)).where(LoginAttempt.username == username,
                                                                   LoginAttempt.success.is_(True)))
        user_n, user_last = self._failures(s, LoginAttempt.username, username, max(since, last_ok or since))
        ip_n, ip_last = self._failures(s, LoginAttempt.ip, ip, since)
        waits = []
        if user_n >= self.max_failures_user and user_last:
            waits.append(user_last + dt.timedelta(seconds=self.lockout_s) - now)
        if ip_n >= self.max_failures_ip and ip_last:
            waits.append(ip_last + dt.timedelta(seconds=self.lockout_s) - now)
        wait = max((w.total_seconds() for w in waits), default=0.0)
        if wait > 0:
            return ThrottleDecision(False, retry_after_s=int(wait) + 1, failures=user_n)
        return ThrottleDecision(True, failures=user_n)

    def record(self, s: Session, username: str, ip: str, *, success: bool) -> int:
        """Record an attempt; returns its id."""
        attempt = LoginAttempt(username=username, ip=ip, success=success)
        s.add(attempt)
        # keep the table small: attempts older than a day no longer count for anything
        s.query(LoginAttempt).filter(LoginAttempt.at < utcnow() - dt.timedelta(days=1)).delete()
        s.flush()
        return attempt.id

    def delay_after_failure(self, failures: int) -> float:
        """Seconds to wait before answering the `failures`-th consecutive failure."""
        if failures <= 0 or self.delay_base_s <= 0:
            return 0.0
        return min(self.delay_base_s * 2 ** (failures - 1), self.delay_max_s)
