"""Accounts: add, change password, disable, list. Used by `qa-pipeline users ...` (and by the admin pages of a
later step); every change is audited."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp import audit
from webapp.models import ROLES, User, UserSession, UserTeam, utcnow
from webapp.security import Passwords, check_password_policy

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class AccountError(ValueError):
    """A refused account change; the message says why."""


@dataclass(frozen=True, slots=True)
class NewUser:
    username: str
    role: str
    password: str
    display_name: str | None = None
    teams: tuple[str, ...] = ()
    agent_id: str | None = None
    can_view_unredacted: bool = False


def normalise_username(username: str) -> str:
    """Usernames are case-insensitive: stored and compared lower-cased."""
    return username.strip().lower()


def get_user(s: Session, username: str) -> User | None:
    return s.scalar(select(User).where(User.username == normalise_username(username)))


def add_user(s: Session, new: NewUser, passwords: Passwords, *, min_length: int, actor: User | None = None,
             actor_name: str = "cli") -> User:
    """Create an account. Raises AccountError: bad username or role, agent without agent id, taken name, weak
    password."""
    username = normalise_username(new.username)
    if not USERNAME.match(username):
        raise AccountError(f"username {new.username!r}: letters, digits and . _ @ - only, at most 64")
    if new.role not in ROLES:
        raise AccountError(f"role {new.role!r}: one of {', '.join(ROLES)}")
    if new.role == "agent" and not new.agent_id:
        raise AccountError("an agent's account needs --agent-id (the agent_id of their calls)")
    if get_user(s, username) is not None:
        raise AccountError(f"user {username!r} exists already")
    problem = check_password_policy(new.password, min_length=min_length)
    if problem:
        raise AccountError(f"password {problem}")
    user = User(username=username, display_name=new.display_name or username, role=new.role,
                password_hash=passwords.hash(new.password), agent_id=new.agent_id or None,
                can_view_unredacted=new.can_view_unredacted, disabled=False)
    user.teams = [UserTeam(team=t) for t in dict.fromkeys(t.strip() for t in new.teams if t.strip())]
    s.add(user)
    s.flush()
    audit.record(s, "user_added", user=actor, username=None if actor else actor_name, target_type="user",
                 target_id=str(user.id), detail={"username": username, "role": new.role,
                                                 "teams": sorted(user.team_names), "agent_id": new.agent_id,
                                                 "can_view_unredacted": new.can_view_unredacted})
    return user


def set_password(s: Session, username: str, password: str, passwords: Passwords, *, min_length: int,
                 actor: User | None = None, actor_name: str = "cli") -> User:
    """Change a password; the user's sessions end. Raises AccountError: unknown user, weak password."""
    user = _existing(s, username)
    problem = check_password_policy(password, min_length=min_length)
    if problem:
        raise AccountError(f"password {problem}")
    user.password_hash = passwords.hash(password)
    user.password_changed_at = utcnow()
    s.query(UserSession).filter(UserSession.user_id == user.id).delete()
    audit.record(s, "password_changed", user=actor, username=None if actor else actor_name, target_type="user",
                 target_id=str(user.id), detail={"username": user.username})
    return user


def disable_user(s: Session, username: str, *, actor: User | None = None, actor_name: str = "cli") -> User:
    """Disable an account (never deleted: the audit log and evaluations refer to it); its sessions end."""
    user = _existing(s, username)
    user.disabled = True
    s.query(UserSession).filter(UserSession.user_id == user.id).delete()
    audit.record(s, "user_disabled", user=actor, username=None if actor else actor_name, target_type="user",
                 target_id=str(user.id), detail={"username": user.username})
    return user


def list_users(s: Session) -> list[User]:
    return list(s.scalars(select(User).order_by(User.username)))


def _existing(s: Session, username: str) -> User:
    user = get_user(s, username)
    if user is None:
        raise AccountError(f"no user {normalise_username(username)!r}")
    return user
