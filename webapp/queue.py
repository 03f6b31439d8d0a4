"""The review queue: filters, ordering and server-side paging over `review_queue_items` (built by `webapp.sync`),
always inside the user's scope (`webapp.scope`).

Order: severity (high first), then fragility (most fragile automatic answer first), then the row id, so a page is
stable; read from an index (alone or after the team, agent, week or state filter), never sorted whole. Paging is
LIMIT/OFFSET; the page count comes from one COUNT over the same filters. The filters' choices are cached per
scope until the next sync (`FilterOptions`)."""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass, fields
from typing import Mapping, Sequence

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from webapp.models import REVIEW_STATES, SEVERITIES, CallIndex, ReviewQueueItem, User
from webapp.scope import Scope, scope_of, scoped

_WEEK = re.compile(r"^\d{4}-W\d{2}$")
MAX_FILTER_LEN = 200


@dataclass(frozen=True, slots=True)
class QueueFilters:
    """The queue's filters (None: any) and page. Built from query parameters by `from_params`, which drops
    values it cannot use instead of failing."""
    agent: str | None = None
    team: str | None = None
    week: str | None = None
    flag_type: str | None = None
    criterion: str | None = None
    severity: str | None = None
    language: str | None = None
    state: str | None = None
    kind: str | None = None  # flag / item
    page: int = 1
    per_page: int = 50

    @classmethod
    def from_params(cls, params: Mapping[str, str], *, page_sizes: Sequence[int] = (25, 50, 100)) -> "QueueFilters":
        def text_param(name: str) -> str | None:
            v = (params.get(name) or "").strip()
            return v[:MAX_FILTER_LEN] or None

        def int_param(name: str, default: int) -> int:
            try:
                return int(params.get(name) or default)
            except ValueError:
                return default

        week = text_param("week")
        severity = text_param("severity")
        state = text_param("state")
        kind = text_param("kind")
        per_page = int_param("per_page", page_sizes[1] if len(page_sizes) > 1 else page_sizes[0])
        return cls(agent=text_param("agent"), team=text_param("team"),
                   week=week if week and _WEEK.match(week) else None, flag_type=text_param("flag_type"),
                   criterion=text_param("criterion"), severity=severity if severity in SEVERITIES else None,
                   language=text_param("language"), state=state if state in REVIEW_STATES else None,
                   kind=kind if kind in ("flag", "item") else None, page=max(1, min(int_param("page", 1), 10**6)),
                   per_page=per_page if per_page in page_sizes else page_sizes[0])

    def params(self, **changes) -> dict[str, str]:
        """The non-empty filters as query parameters (for links: next page, clear one filter)."""
        values = {**asdict(self), **changes}
        return {k: str(v) for k, v in values.items() if v is not None and not (k == "page" and v == 1)}

    @property
    def active(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self) if f.name not in ("page", "per_page"))


@dataclass(frozen=True, slots=True)
class QueuePage:
    items: list[ReviewQueueItem]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _filtered(stmt, user: User, f: QueueFilters):
    from webapp.sync import SEVERITY_RANK  # (sync imports this module)

    q = ReviewQueueItem
    stmt = scoped(stmt, user, q)
    # a severity is filtered by its rank, the first column of the order's indexes: the page is then read in order
    # from them (filtering `severity` itself read every item of the other severities first: 1 s at 100,000 calls)
    rank = SEVERITY_RANK[f.severity] if f.severity is not None else None
    for column, value in ((q.agent_id, f.agent), (q.team, f.team), (q.iso_week, f.week), (q.flag_type, f.flag_type),
                          (q.criterion, f.criterion), (q.severity_rank, rank), (q.language, f.language),
                          (q.review_state, f.state), (q.target_type, f.kind)):
        if value is not None:
            stmt = stmt.where(column == value)
    return stmt


def queue_page(s: Session, user: User, f: QueueFilters) -> QueuePage:
    q = ReviewQueueItem
    total = s.scalar(_filtered(select(func.count()).select_from(q), user, f)) or 0
    pages = max(1, -(-total // f.per_page))
    page = min(f.page, pages)
    stmt = (_filtered(select(q), user, f)
            .order_by(q.severity_rank, q.fragility.desc(), q.id)
            .limit(f.per_page).offset((page - 1) * f.per_page))
    return QueuePage(items=list(s.scalars(stmt)), total=total, page=page, per_page=f.per_page)


def filter_options(s: Session, user: User) -> dict[str, list[str]]:
    """The values each filter can take within the user's scope (for the filter form's lists)."""
    q = ReviewQueueItem

    def distinct(column, model=q) -> list[str]:
        stmt = scoped(select(column).distinct(), user, model).where(column.is_not(None)).order_by(column)
        return [v for v in s.scalars(stmt)]

    return {"agent": distinct(CallIndex.agent_id, CallIndex), "team": distinct(CallIndex.team, CallIndex),
            "week": list(reversed(distinct(CallIndex.iso_week, CallIndex))), "flag_type": distinct(q.flag_type),
            "criterion": distinct(q.criterion), "language": distinct(CallIndex.language, CallIndex),
            "severity": list(SEVERITIES), "state": list(REVIEW_STATES), "kind": ["flag", "item"]}


class FilterOptions:
    """`filter_options` per scope, kept until the next sync changes the index (`clear`, called by the syncer)."""

    def __init__(self, *, max_entries: int = 512):
        self._cache: dict[Scope, dict[str, list[str]]] = {}
        self._lock = threading.Lock()
        self.max_entries = max_entries

    def get(self, s: Session, user: User) -> dict[str, list[str]]:
        key = scope_of(user)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        options = filter_options(s, user)
        with self._lock:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[key] = options
        return options

    def clear(self, *_args) -> None:
        with self._lock:
            self._cache.clear()


def refresh_review_state(s: Session, call_ids: Sequence[str]) -> None:
    """Copy the review state of these calls' targets from their standard evaluations into the queue (a target
    judged in an evaluation takes the evaluation's state; otherwise "unreviewed"). The lifecycle calls this after
    every state change."""
    sql = text("""
        UPDATE review_queue_items SET review_state = COALESCE((
            SELECT e.state FROM evaluations e JOIN verdicts v ON v.evaluation_id = e.id
            WHERE e.kind = 'standard' AND e.call_id = review_queue_items.call_id
              AND v.target_type = review_queue_items.target_type AND v.target_id = review_queue_items.target_id
            LIMIT 1), 'unreviewed')
        WHERE call_id = :call_id""")
    if call_ids:
        s.execute(sql, [{"call_id": c} for c in call_ids])
