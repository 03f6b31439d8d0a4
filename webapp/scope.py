"""Who may see what: team scoping and role capabilities, defined here and nowhere else. Every page, API and the
audio URL go through these functions.

Scoping (what calls a user sees), by role:

| role | sees |
|---|---|
| admin | every team, every agent |
| qa_lead | every team (QA leads arbitrate disputes and run calibration across the centre) |
| qa_reviewer, trainer, manager | the teams they belong to (`user_teams`; none: nothing) |
| agent | only their own calls (`users.agent_id`), whatever their teams |

A call without a team is seen only by the all-teams roles (and by its agent). A call outside the user's scope is
answered exactly like a call that does not exist (404), so ids cannot be probed.

Capabilities (what a user may do) are in `CAPABILITIES`; `can(user, "review")`. The lifecycle's questions combine
a capability with the call's scope, here too: `may_review` (judge a call), `may_answer` (acknowledge or dispute:
the call's own agent, or a manager of its team), `may_resolve` (QA lead), `may_see_evaluation` (drafts are not
shown to agents and managers), `can_see_team` (scorecards). Unredacted audio and text are a separate permission
on the account (`can_view_unredacted`), not a role."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, false, select, true
from sqlalchemy.orm import Session

from webapp.models import CallIndex, User

ALL_TEAMS_ROLES = frozenset({"admin", "qa_lead"})
TEAM_ROLES = frozenset({"qa_reviewer", "trainer", "manager"})
OWN_CALLS_ROLES = frozenset({"agent"})

CAPABILITIES: dict[str, frozenset[str]] = {
    "view_queue": frozenset({"admin", "qa_lead", "qa_reviewer", "trainer", "manager", "agent"}),
    "view_evaluations": frozenset({"admin", "qa_lead", "qa_reviewer", "trainer", "manager", "agent"}),
    "review": frozenset({"admin", "qa_lead", "qa_reviewer"}),  # judge flags and items, submit evaluations
    "swap_speakers": frozenset({"admin", "qa_lead", "qa_reviewer"}),  # roles came out wrong: swap and re-score
    "resolve_disputes": frozenset({"admin", "qa_lead"}),
    "dispute": frozenset({"agent", "manager"}),  # acknowledge or dispute an evaluation (own call / own team)
    "sample": frozenset({"admin", "qa_lead"}),  # draw review samples
    "calibrate": frozenset({"admin", "qa_lead"}),  # run calibration sessions (raters are invited members)
    "coach": frozenset({"admin", "qa_lead", "trainer"}),  # mark coaching examples
    "view_scorecards": frozenset({"admin", "qa_lead", "manager", "trainer"}),
    "manage_users": frozenset({"admin"}),
}


class NotVisible(LookupError):
    """The call does not exist or is outside the user's scope (answered as 404 either way)."""


@dataclass(frozen=True, slots=True)
class Scope:
    """What one user may see: every team, or some teams, or one agent's calls."""
    all_teams: bool
    teams: frozenset[str] = frozenset()
    agent_id: str | None = None

    def allows(self, team: str | None, agent_id: str | None) -> bool:
        if self.agent_id is not None:
            return agent_id == self.agent_id
        return self.all_teams or (team is not None and team in self.teams)

    def where(self, team_column, agent_column) -> ColumnElement[bool]:
        """The same rule as `allows`, as a SQL condition on a table's team and agent columns."""
        if self.agent_id is not None:
            return agent_column == self.agent_id
        if self.all_teams:
            return true()
        return team_column.in_(sorted(self.teams)) if self.teams else false()


def scope_of(user: User) -> Scope:
    if user.disabled:
        return Scope(all_teams=False)
    if user.role in OWN_CALLS_ROLES:
        # an agent without agent_id sees nothing (the database refuses such an account anyway)
        return Scope(all_teams=False, agent_id=user.agent_id or "\x00no agent id")
    if user.role in ALL_TEAMS_ROLES:
        return Scope(all_teams=True)
    if user.role in TEAM_ROLES:
        return Scope(all_teams=False, teams=user.team_names)
    return Scope(all_teams=False)


def visible_teams(user: User) -> frozenset[str] | None:
    """The teams whose calls `user` may see; None: every team (and calls without a team)."""
    scope = scope_of(user)
    if scope.agent_id is not None:
        return frozenset()
    return None if scope.all_teams else scope.teams


def visible_agents(user: User) -> frozenset[str] | None:
    """The agents whose calls `user` may see, when limited to agents; None: every agent of the visible teams."""
    scope = scope_of(user)
    return frozenset({scope.agent_id}) if scope.agent_id is not None else None


def can_see(user: User, team: str | None, agent_id: str | None) -> bool:
    return scope_of(user).allows(team, agent_id)


def scoped(stmt, user: User, model):
    """`stmt` limited to the rows of `model` (any table with `team` and `agent_id` columns) `user` may see."""
    return stmt.where(scope_of(user).where(model.team, model.agent_id))


def require_call(s: Session, user: User, call_id: str) -> CallIndex:
    """The call's index row, if `user` may see the call.

    Raises:
        NotVisible: unknown call, or outside the user's scope (the caller answers 404 for both)."""
    if not call_id or len(call_id) > 200:
        raise NotVisible(call_id)
    call = s.scalar(scoped(select(CallIndex).where(CallIndex.call_id == call_id), user, CallIndex))
    if call is None:
        raise NotVisible(call_id)
    return call


def can(user: User, capability: str) -> bool:
    """May `user` do this (`CAPABILITIES`)? Unknown capabilities are refused."""
    return not user.disabled and user.role in CAPABILITIES.get(capability, frozenset())


def require(user: User, capability: str) -> None:
    """Raises PermissionError unless `can(user, capability)`."""
    if not can(user, capability):
        raise PermissionError(f"{user.role} may not {capability}")


def can_see_team(user: User, team: str | None) -> bool:
    """May `user` see a team's scorecards (a manager or trainer: their teams; admin and QA lead: every team)?"""
    if not can(user, "view_scorecards"):
        return False
    scope = scope_of(user)
    return scope.agent_id is None and (scope.all_teams or (team is not None and team in scope.teams))


def may_review(user: User, call: CallIndex) -> bool:
    """May `user` judge this call (a standard evaluation): the review capability and the call in scope."""
    return can(user, "review") and can_see(user, call.team, call.agent_id)


def may_answer(user: User, call: CallIndex) -> bool:
    """May `user` acknowledge or dispute an evaluation of this call: its agent (their own call), or a manager of
    the call's team."""
    if not can(user, "dispute") or not can_see(user, call.team, call.agent_id):
        return False
    return user.role != "agent" or (call.agent_id is not None and call.agent_id == user.agent_id)


def may_resolve(user: User, call: CallIndex) -> bool:
    return can(user, "resolve_disputes") and can_see(user, call.team, call.agent_id)


def may_see_evaluation(user: User, call: CallIndex, state: str, kind: str = "standard") -> bool:
    """Who sees an evaluation of a call they may see: a draft only its reviewers' side (the review capability);
    an agent or a manager from submission on. Calibration evaluations are decided by the session (blind raters)."""
    if not can_see(user, call.team, call.agent_id):
        return False
    if kind != "standard":
        return False
    return state != "draft" or can(user, "review")


def require_capability(user: User, capability: str, call: CallIndex | None = None) -> None:
    """`require`, and for a call, also that it is in the user's scope (NotVisible otherwise)."""
    require(user, capability)
    if call is not None and not can_see(user, call.team, call.agent_id):
        raise NotVisible(call.call_id)


__all__ = ["CAPABILITIES", "NotVisible", "Scope", "can", "can_see", "can_see_team", "may_answer", "may_resolve",
           "may_review", "may_see_evaluation", "require", "require_call", "require_capability", "scope_of",
           "scoped", "visible_agents", "visible_teams"]
