"""Managers' weekly scorecards in the app, with the weekly HTML report's numbers: the page is built from the
report's own data and view model (`qa_pipeline.render.weekly.load_weekly_data` + `build_weekly_view`), nothing is
scored here. Teams are filtered by `webapp.scope.can_see_team` (a manager sees their teams only).

Beside the scores: how far the automatic answers agree with the human verdicts where verdicts exist (the latest
verdict per target, view `latest_reviews` of the query layer): per rubric item, the reviewed calls on which the
automatic answer (met = full points) is the human one; per flag type, the share of reviewed flags QA confirmed. Each
with a 95 % Wilson score interval, which stays honest with a handful of verdicts.

Views are kept per week until the scores change (the rescorer and the queue sync clear them)."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path

from qa_pipeline.render.weekly import NO_TEAM, WeeklyReport, build_weekly_view, load_weekly_data, recent_weeks
from webapp.callpage import Datasets
from webapp.models import User
from webapp.scope import can_see_team, visible_teams

Z95 = 1.959963984540054

ITEMS_SQL = """
    SELECT s.team, s.criterion, s.item, count(*) AS n,
           count(*) FILTER (WHERE (s.points >= s.max_points) = (l.verdict = 'met')) AS agree
    FROM latest_reviews l
    JOIN call_scores s ON s.call_id = l.call_id AND s.criterion || '.' || s.item = l.target
    WHERE l.target_type = 'item' AND s.points IS NOT NULL AND s.iso_week = $week
      AND list_contains($versions, s.rubric_version)
    GROUP BY 1, 2, 3
"""
FLAGS_SQL = """
    SELECT c.team, f.flag_type, count(*) AS n,
           count(*) FILTER (WHERE l.verdict IN ('confirmed', 'justified')) AS agree
    FROM latest_reviews l
    JOIN flags f ON f.call_id = l.call_id AND f.flag_id = l.target
    JOIN call_weeks c ON c.call_id = f.call_id
    WHERE l.target_type = 'flag' AND c.iso_week = $week
    GROUP BY 1, 2
"""


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion k/n (None when n is 0)."""
    if n <= 0:
        return None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True, slots=True)
class Agreement:
    """Automatic vs human on one item (or flag type) for one team and week."""
    kind: str  # item / flag
    key: str  # "criterion.item" or the flag type
    criterion: str | None
    label: str
    agree: int
    n: int
    low: float
    high: float

    @property
    def rate(self) -> float:
        return self.agree / self.n if self.n else 0.0


@dataclass(frozen=True, slots=True)
class WeekView:
    report: WeeklyReport
    agreement: dict[str, tuple[Agreement, ...]]  # team section name -> rows


def _team_name(team: str | None) -> str:
    return str(team) if team is not None else NO_TEAM


class WeeklyViews:
    """The weekly report's view model per week, with the agreement figures; cached until `clear`."""

    def __init__(self, data_dir, datasets: Datasets, rubric_path: str | Path | None = None, *, weeks_back: int = 4):
        self.data_dir = data_dir
        self.datasets = datasets
        self.rubric_path = rubric_path
        self.weeks_back = weeks_back
        self._cache: dict[str, WeekView | None] = {}
        self._lock = threading.Lock()

    def clear(self, *_args) -> None:
        with self._lock:
            self._cache.clear()

    def weeks(self) -> list[str]:
        with self.datasets.queries() as q:
            t = q.fetch("SELECT DISTINCT iso_week FROM scorecards_weekly WHERE iso_week IS NOT NULL "
                        "ORDER BY iso_week DESC")
        return t.column(0).to_pylist()

    def get(self, week: str) -> WeekView | None:
        """The week's view (None: no scorecards for it)."""
        with self._lock:
            if week in self._cache:
                return self._cache[week]
        view = self._build(week)
        with self._lock:
            if len(self._cache) > 32:
                self._cache.clear()
            self._cache[week] = view
        return view

    def _rubric(self, versions: list[str]):
        if len(versions) != 1:
            return None
        try:
            from qa_pipeline.scoring.rubric import load_rubric

            rubric = load_rubric(self.rubric_path)
        except Exception:  # the legend stays generic, as in the report
            return None
        return rubric if rubric.version == versions[0] else None

    def _build(self, week: str) -> WeekView | None:
        from qa_pipeline.errors import QAPipelineError

        weeks = recent_weeks(week, self.weeks_back)
        try:
            data = load_weekly_data(self.data_dir, week, weeks)
        except QAPipelineError:  # no scorecards (for that week)
            return None
        report = build_weekly_view(data, week, weeks=weeks, rubric=self._rubric(data.versions),
                                   data_name=Path(str(self.data_dir)).name)
        agreement: dict[str, list[Agreement]] = {}
        with self.datasets.queries() as q:
            for r in q.fetch(ITEMS_SQL, {"week": week, "versions": data.versions}).to_pylist():
                lo, hi = wilson(r["agree"], r["n"])
                agreement.setdefault(_team_name(r["team"]), []).append(Agreement(
                    kind="item", key=f"{r['criterion']}.{r['item']}", criterion=r["criterion"], label=r["item"],
                    agree=r["agree"], n=r["n"], low=lo, high=hi))
            for r in q.fetch(FLAGS_SQL, {"week": week}).to_pylist():
                lo, hi = wilson(r["agree"], r["n"])
                agreement.setdefault(_team_name(r["team"]), []).append(Agreement(
                    kind="flag", key=r["flag_type"], criterion=None, label=r["flag_type"], agree=r["agree"],
                    n=r["n"], low=lo, high=hi))
        return WeekView(report=report, agreement={k: tuple(sorted(v, key=lambda a: (a.kind != "item", a.key)))
                                                  for k, v in agreement.items()})


def visible_sections(view: WeekView, user: User) -> list:
    """The report's team sections `user` may see."""
    teams = visible_teams(user)
    out = []
    for t in view.report.teams:
        if teams is None:
            out.append(t)
        elif t.name != NO_TEAM and can_see_team(user, t.name):
            out.append(t)
    return out


def find_operator(view: WeekView, user: User, agent_id: str):
    """(team section, operator card) of `agent_id` in a team `user` may see, or None."""
    for team in visible_sections(view, user):
        for op in team.operators:
            if op.agent_id == agent_id:
                return team, op
    return None
