"""The review app's database: every table, as typed SQLAlchemy 2 ORM classes (the Alembic migrations in
`webapp/migrations/versions/` create exactly these; `tests/webapp/test_db.py` compares the two).

What lives here is what people do (accounts, sessions, evaluations, verdicts, comments, disputes, calibration,
coaching, samples, the audit trail) plus an index of the datasets for the queue (`call_index`,
`review_queue_items`, `sync_state`), rebuilt from the Parquet datasets by `webapp.sync` and never the source of
truth for them. Verdicts are exported to the `reviews` dataset by the lifecycle step.

Times are stored as UTC (`UTCDateTime`: naive UTC in the database, aware UTC in Python), on SQLite and
PostgreSQL alike. Enumerated columns are strings with a CHECK constraint listing their values (the tuples below),
so a new value is one migration that replaces the constraint."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.orm import Session as OrmSession

ROLES = ("admin", "qa_lead", "qa_reviewer", "trainer", "manager", "agent")
EVALUATION_KINDS = ("standard", "calibration")
EVALUATION_STATES = ("draft", "submitted", "acknowledged", "disputed", "resolved")
TARGET_TYPES = ("flag", "item")  # as in the `reviews` dataset: a flag_id, or "criterion.item" of the rubric
DISPUTE_STATES = ("open", "resolved")
DISPUTE_OUTCOMES = ("upheld", "overturned", "partly_overturned")
ROOT_CAUSES = ("asr_error", "wrong_speaker", "rule_defect", "judgement")
CALIBRATION_STATES = ("open", "closed")
CALIBRATION_MEMBER_ROLES = ("rater", "expert")
SAMPLE_METHODS = ("random", "stratified", "manual")
SEVERITIES = ("high", "medium", "low")
REVIEW_STATES = ("unreviewed",) + EVALUATION_STATES
# the audit log's actions (a plain string column: these are the ones the app writes)
AUDIT_ACTIONS = ("login", "login_failed", "logout", "viewed", "played", "judged", "changed", "commented",
                 "submitted", "acknowledged", "disputed", "resolved", "exported", "rescored", "roles_swapped",
                 "sample_created", "calibration_created", "calibration_closed", "coaching_marked", "user_added",
                 "user_changed", "password_changed", "user_disabled", "synced", "forgotten", "pack_built",
                 "raw_text_viewed", "raw_text_refused")

# constraint names fixed by convention: the migrations and the models agree on them, on every database
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator):
    """A timestamp stored as naive UTC, returned as aware UTC; aware values of any zone are converted."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column: use datetime.now(timezone.utc)")
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.timezone.utc)


JSONType = JSON().with_variant(postgresql.JSONB(), "postgresql")
# SQLite autoincrements only an INTEGER PRIMARY KEY; PostgreSQL gets 64 bits
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSONType, list[Any]: JSONType}


# ---- people, sessions, sign-in ---------------------------------------------------------------------------------

class User(Base):
    """An account. `role` decides what the user may do and see (`webapp.scope`); `agent_id` links an agent's
    account to their calls; `can_view_unredacted` is the separate permission for original audio and text."""
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),
                      CheckConstraint("role <> 'agent' OR agent_id IS NOT NULL", name="agent_has_agent_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    agent_id: Mapped[str | None] = mapped_column(String(200), index=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    can_view_unredacted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    teams: Mapped[list[UserTeam]] = relationship(back_populates="user", cascade="all, delete-orphan",
                                                 lazy="selectin")

    @property
    def team_names(self) -> frozenset[str]:
        return frozenset(t.team for t in self.teams)


class UserTeam(Base):
    """Membership: the teams (the `team` of the calls) a user belongs to and so may see."""
    __tablename__ = "user_teams"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    team: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)

    user: Mapped[User] = relationship(back_populates="teams")


class UserSession(Base):
    """A server-side sign-in session. `id` is the SHA-256 (hex) of the random 256-bit token in the cookie: the
    database never holds a usable token. A new one is made at every login (see `webapp.auth`)."""
    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(400))

    user: Mapped[User] = relationship(lazy="joined")


class LoginAttempt(Base):
    """Every sign-in attempt, for rate limiting (per username and per address; `webapp.security.LoginThrottle`)."""
    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_username_at", "username", "at"),
                      Index("ix_login_attempts_ip_at", "ip", "at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    username: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64))
    success: Mapped[bool] = mapped_column(Boolean)


class AuditEntry(Base):
    """The append-only audit log: who viewed, played, judged or changed what, when. The database refuses UPDATE and
    DELETE on it (triggers, created by the initial migration), and the app only ever inserts (`webapp.audit`).
    `username` is copied so the entry reads the same whatever happens to the account later."""
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_target", "target_type", "target_id", "at"),
                      Index("ix_audit_log_user_at", "user_id", "at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    username: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40), index=True)
    target_type: Mapped[str | None] = mapped_column(String(40))
    target_id: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[dict[str, Any] | None] = mapped_column()
    ip: Mapped[str | None] = mapped_column(String(64))


class CallView(Base):
    """One opening of a call page: its id goes into the page's audio URL, so the audio's many range requests are
    audited as one "played" (the first) per view."""
    __tablename__ = "call_views"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    call_id: Mapped[str] = mapped_column(String(200), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    played_at: Mapped[dt.datetime | None] = mapped_column()


# ---- samples, evaluations, verdicts ----------------------------------------------------------------------------

class Sample(Base):
    """A random or stratified sample of calls drawn for review; its id and filters are copied onto each evaluation
    made from it, so sampling bias can be audited."""
    __tablename__ = "samples"
    __table_args__ = (CheckConstraint(_in("method", SAMPLE_METHODS), name="method"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(20), default="random")
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    seed: Mapped[int | None] = mapped_column(BigInteger)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    calls: Mapped[list[SampleCall]] = relationship(cascade="all, delete-orphan", order_by="SampleCall.position")


class SampleCall(Base):
    __tablename__ = "sample_calls"

    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"), primary_key=True)
    call_id: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer)


class CalibrationSession(Base):
    """Several raters score the same calls blind; their evaluations (kind "calibration") never reach the
    scorecards."""
    __tablename__ = "calibration_sessions"
    __table_args__ = (CheckConstraint(_in("state", CALIBRATION_STATES), name="state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20), default="open")
    blind: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    due_at: Mapped[dt.datetime | None] = mapped_column()
    closed_at: Mapped[dt.datetime | None] = mapped_column()

    members: Mapped[list[CalibrationMember]] = relationship(cascade="all, delete-orphan")
    calls: Mapped[list[CalibrationCall]] = relationship(cascade="all, delete-orphan")


class CalibrationMember(Base):
    __tablename__ = "calibration_members"
    __table_args__ = (CheckConstraint(_in("role", CALIBRATION_MEMBER_ROLES), name="role"),)

    session_id: Mapped[int] = mapped_column(ForeignKey("calibration_sessions.id", ondelete="CASCADE"),
                                            primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20), default="rater")


class CalibrationCall(Base):
    __tablename__ = "calibration_calls"

    session_id: Mapped[int] = mapped_column(ForeignKey("calibration_sessions.id", ondelete="CASCADE"),
                                            primary_key=True)
    call_id: Mapped[str] = mapped_column(String(200), primary_key=True)


class Evaluation(Base):
    """A reviewer's evaluation of one call. One standard evaluation per call; one calibration evaluation per call,
    session and rater. `version` is the optimistic lock: every UPDATE checks it (SQLAlchemy's version_id_col), and
    a form carries the version it was drawn from, so a stale form is refused instead of overwriting."""
    __tablename__ = "evaluations"
    __table_args__ = (
        CheckConstraint(_in("kind", EVALUATION_KINDS), name="kind"),
        CheckConstraint(_in("state", EVALUATION_STATES), name="state"),
        CheckConstraint("(kind = 'calibration') = (calibration_session_id IS NOT NULL)", name="calibration_session"),
        Index("uq_evaluations_standard_call", "call_id", unique=True,
              sqlite_where=text("kind = 'standard'"), postgresql_where=text("kind = 'standard'")),
        Index("uq_evaluations_calibration", "calibration_session_id", "call_id", "reviewer_id", unique=True,
              sqlite_where=text("kind = 'calibration'"), postgresql_where=text("kind = 'calibration'")),
        Index("ix_evaluations_state_updated", "state", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(20), default="standard")
    calibration_session_id: Mapped[int | None] = mapped_column(ForeignKey("calibration_sessions.id"))
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    state: Mapped[str] = mapped_column(String(20), default="draft")
    version: Mapped[int] = mapped_column(Integer, default=1)
    sample_id: Mapped[int | None] = mapped_column(ForeignKey("samples.id"))
    sample_filters: Mapped[dict[str, Any] | None] = mapped_column()
    rubric_version: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    submitted_at: Mapped[dt.datetime | None] = mapped_column()
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column()
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    dispute_window_ends_at: Mapped[dt.datetime | None] = mapped_column()
    exported_at: Mapped[dt.datetime | None] = mapped_column()

    verdicts: Mapped[list[Verdict]] = relationship(back_populates="evaluation", cascade="all, delete-orphan")

    __mapper_args__ = {"version_id_col": version}


class Verdict(Base):
    """The human answer on one target of an evaluation (a flag, or a rubric item "criterion.item"), beside the
    automatic answer it confirms or overrides, with the evidence span the reviewer pinned."""
    __tablename__ = "verdicts"
    __table_args__ = (CheckConstraint(_in("target_type", TARGET_TYPES), name="target_type"),
                      UniqueConstraint("evaluation_id", "target_type", "target_id"),
                      Index("ix_verdicts_target", "target_type", "target_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id", ondelete="CASCADE"), index=True)
    target_type: Mapped[str] = mapped_column(String(10))
    target_id: Mapped[str] = mapped_column(String(200))
    auto_answer: Mapped[str | None] = mapped_column(String(64))
    human_answer: Mapped[str | None] = mapped_column(String(64))
    comment: Mapped[str | None] = mapped_column(Text)
    evidence_start_s: Mapped[float | None] = mapped_column(Float)
    evidence_end_s: Mapped[float | None] = mapped_column(Float)
    by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    evaluation: Mapped[Evaluation] = relationship(back_populates="verdicts")


class Comment(Base):
    """A note on a call, anchored to an utterance and/or a target (flag or item), optionally inside an
    evaluation. Edits keep `edited_at`; removal sets `deleted_at` (the audit log keeps the text)."""
    __tablename__ = "comments"
    __table_args__ = (Index("ix_comments_call", "call_id", "utterance_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(String(200))
    utterance_index: Mapped[int | None] = mapped_column(Integer)
    target_type: Mapped[str | None] = mapped_column(String(10))
    target_id: Mapped[str | None] = mapped_column(String(200))
    evaluation_id: Mapped[int | None] = mapped_column(ForeignKey("evaluations.id"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    edited_at: Mapped[dt.datetime | None] = mapped_column()
    deleted_at: Mapped[dt.datetime | None] = mapped_column()


class Dispute(Base):
    """An agent's (or supervisor's) dispute of an evaluation, or of one verdict in it; a QA lead resolves it with
    an outcome and a root cause."""
    __tablename__ = "disputes"
    __table_args__ = (CheckConstraint(_in("state", DISPUTE_STATES), name="state"),
                      CheckConstraint(f"outcome IS NULL OR {_in('outcome', DISPUTE_OUTCOMES)}", name="outcome"),
                      CheckConstraint(f"root_cause IS NULL OR {_in('root_cause', ROOT_CAUSES)}", name="root_cause"),
                      CheckConstraint("state <> 'resolved' OR (outcome IS NOT NULL AND root_cause IS NOT NULL "
                                      "AND resolved_by IS NOT NULL)", name="resolution_complete"),
                      Index("ix_disputes_state_raised", "state", "raised_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id"), index=True)
    verdict_id: Mapped[int | None] = mapped_column(ForeignKey("verdicts.id"))
    raised_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    raised_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    reason: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), default="open")
    assigned_to: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[dt.datetime | None] = mapped_column()
    outcome: Mapped[str | None] = mapped_column(String(20))
    root_cause: Mapped[str | None] = mapped_column(String(20))
    resolution_note: Mapped[str | None] = mapped_column(Text)


class CoachingMark(Base):
    """A trainer marks an evidence span as a coaching example (the coaching packs build on these)."""
    __tablename__ = "coaching_marks"
    __table_args__ = (Index("ix_coaching_marks_agent", "agent_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    trainer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    call_id: Mapped[str] = mapped_column(String(200), index=True)
    agent_id: Mapped[str | None] = mapped_column(String(200))
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    utterance_index: Mapped[int | None] = mapped_column(Integer)
    criterion: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20), default="example")  # example (good) / miss (to improve)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    due_at: Mapped[dt.datetime | None] = mapped_column()
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column()


class RoleSwap(Base):
    """A "swap speakers" decision on a call whose agent/customer roles came out wrong. The datasets carry the
    swap itself (`qa_pipeline.pipeline.swap`: the call's rows rewritten, `calls.role_method` "qa_swap"); this row
    records who decided it, why, and what the roles were before, so the call page can show it and tell when a
    reprocessing of the recording has decided the roles again."""
    __tablename__ = "role_swaps"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(String(200), index=True)
    by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    reason: Mapped[str | None] = mapped_column(Text)
    before: Mapped[dict[str, Any] | None] = mapped_column()
    after: Mapped[dict[str, Any] | None] = mapped_column()


# ---- the index of the datasets (rebuilt by webapp.sync) ------------------------------------------------------

class CallIndex(Base):
    """One row per call of the `calls` dataset: what scoping, the queue's filters and the call page need without
    reading Parquet."""
    __tablename__ = "call_index"

    call_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    call_date: Mapped[str] = mapped_column(String(10), index=True)
    agent_id: Mapped[str | None] = mapped_column(String(200), index=True)
    team: Mapped[str | None] = mapped_column(String(200), index=True)
    iso_week: Mapped[str | None] = mapped_column(String(8), index=True)
    started_at: Mapped[dt.datetime | None] = mapped_column()
    language: Mapped[str | None] = mapped_column(String(16))
    campaign: Mapped[str | None] = mapped_column(String(200))
    call_type: Mapped[str | None] = mapped_column(String(40))
    direction: Mapped[str | None] = mapped_column(String(20))
    mode: Mapped[str] = mapped_column(String(20))
    duration_s: Mapped[float] = mapped_column(Float)
    path: Mapped[str] = mapped_column(Text)
    role_confidence: Mapped[float | None] = mapped_column(Float)
    n_flags: Mapped[int] = mapped_column(Integer, default=0)


class ReviewQueueItem(Base):
    """One thing to review: a flag, or an automatically scored rubric item that lost points; with the call's
    agent, team, week and language, the severity, and how fragile the automatic answer is (see `webapp.sync`).
    `review_state` is copied from the evaluations (`webapp.queue.refresh_review_state`)."""
    __tablename__ = "review_queue_items"
    __table_args__ = (
        CheckConstraint(_in("target_type", TARGET_TYPES), name="target_type"),
        UniqueConstraint("call_id", "target_type", "target_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(200), index=True)
    call_date: Mapped[str] = mapped_column(String(10), index=True)
    target_type: Mapped[str] = mapped_column(String(10))
    target_id: Mapped[str] = mapped_column(String(200))
    agent_id: Mapped[str | None] = mapped_column(String(200))
    team: Mapped[str | None] = mapped_column(String(200))
    iso_week: Mapped[str | None] = mapped_column(String(8), index=True)
    started_at: Mapped[dt.datetime | None] = mapped_column()
    language: Mapped[str | None] = mapped_column(String(16), index=True)
    flag_type: Mapped[str | None] = mapped_column(String(64), index=True)
    criterion: Mapped[str | None] = mapped_column(String(64), index=True)
    item: Mapped[str | None] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(16), index=True)
    severity_rank: Mapped[int] = mapped_column(Integer)
    summary: Mapped[str | None] = mapped_column(Text)
    start_s: Mapped[float | None] = mapped_column(Float)
    end_s: Mapped[float | None] = mapped_column(Float)
    utterance_index: Mapped[int | None] = mapped_column(Integer)
    fragility: Mapped[float] = mapped_column(Float, default=0.0)
    asr_mean_prob: Mapped[float | None] = mapped_column(Float)
    asr_min_prob: Mapped[float | None] = mapped_column(Float)
    role_confidence: Mapped[float | None] = mapped_column(Float)
    review_state: Mapped[str] = mapped_column(String(20), default="unreviewed")


# the queue's order (severity, most fragile first, then id) read straight from an index, alone or after the most
# used filters: no sort of the whole queue for a page
for _prefix, _cols in (("order", ()), ("state_order", ("review_state",)), ("team_order", ("team",)),
                       ("agent_order", ("agent_id",)), ("week_order", ("iso_week",))):
    Index(f"ix_review_queue_items_{_prefix}", *(getattr(ReviewQueueItem, c) for c in _cols),
          ReviewQueueItem.severity_rank, ReviewQueueItem.fragility.desc(), ReviewQueueItem.id)


class SyncState(Base):
    """What the index was last built from: per date partition, a marker of its dataset folders (see
    `webapp.sync.partition_markers`)."""
    __tablename__ = "sync_state"

    call_date: Mapped[str] = mapped_column(String(64), primary_key=True)
    marker: Mapped[str] = mapped_column(String(64))
    synced_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    calls: Mapped[int] = mapped_column(Integer, default=0)
    items: Mapped[int] = mapped_column(Integer, default=0)



@event.listens_for(OrmSession, "before_flush")
def _audit_log_is_append_only(session: OrmSession, _context, _instances) -> None:
    """No ORM code path may change or remove an audit entry (the database's triggers refuse it as well)."""
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, AuditEntry) and (obj in session.deleted or session.is_modified(obj)):
            raise PermissionError("audit_log is append-only: entries are never changed or removed")
