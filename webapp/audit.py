"""The audit log: who viewed, played, judged or changed what. One function writes it; nothing reads it back to
change it (the table refuses UPDATE and DELETE: triggers in the initial migration, and an ORM guard in
`webapp.models`).

Actions: login, login_failed, logout, viewed (a call page), played (the first audio request of a call view, with
the copy served: "variant" redacted or original), raw_text_viewed (a call page with its original, unredacted text:
`webapp.routes.calls`), raw_text_refused (the same asked for without the permission),
user_added, user_changed, password_changed, user_disabled, synced; the evaluation lifecycle (`webapp.lifecycle`):
judged (a first verdict), changed (a verdict or an evaluation changed), commented, submitted, acknowledged,
disputed, resolved, each with the state or verdict `before` and `after` in `detail`; exported (verdicts written
to the reviews dataset) and rescored (by the app itself, username "review-app"); roles_swapped, sample_created,
calibration_created, calibration_closed, coaching_marked (`webapp.models.AUDIT_ACTIONS`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from webapp.models import AuditEntry, User


def record(s: Session, action: str, *, user: User | None = None, target_type: str | None = None,
           target_id: str | None = None, detail: dict[str, Any] | None = None, ip: str | None = None,
           username: str | None = None) -> AuditEntry:
    """Append one entry (flushed with the caller's transaction: it commits or rolls back with the change it
    describes). `username` names the actor when there is no account (the command line, a failed login)."""
    entry = AuditEntry(action=action, user_id=user.id if user else None,
                       username=user.username if user else username, target_type=target_type,
                       target_id=None if target_id is None else str(target_id), detail=detail, ip=ip)
    s.add(entry)
    return entry
