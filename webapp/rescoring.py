"""Verdicts to the `reviews` dataset, and the scores that follow them.

**Export** (always, right after the change is committed): every verdict of a submitted evaluation, and again after
a dispute is resolved, is written to the `reviews` dataset with the schema and the verdict values of
`qa-pipeline reviews import` (`qa_pipeline.store.schema.REVIEWS`; flags confirmed / dismissed / justified /
unjustified, items met / not_met), one file per verdict as the import writes them. A row's `review_id` is the
import's (SHA-256 of call, target, reviewer, time): the reviewer is the account's username, the time is when the
verdict was last decided (its submission, or the resolution that changed it), so exporting an evaluation twice
writes the same files again and nothing is duplicated, while a verdict changed by a resolution is a new, later row
("the latest verdict counts": view `latest_reviews`). `source` says "review-app:evaluation=<id>[;sample=<id>]", so
a sample's verdicts can be told apart in the dataset. Calibration evaluations are never exported. An evaluation
waits for export while `exported_at` is NULL (set by submit and by a resolution that changed something); the
exporter marks it without touching its `version`, so an open form does not go stale. A crash between commit and
export loses nothing: pending evaluations are exported at the next start or request.

**Rescoring** (`AppSettings.rescore`): verdicts change only what is computed from them: the weekly scorecards (a
customer complaint judged justified costs the operator the rubric's penalty; one judged not justified stops being
pending) and the `calibration` dataset (automatic answers against the latest verdicts). The per-call item scores
(`call_scores`) do not read verdicts, so they are not recomputed: the rescorer runs the library's own
`weekly_scorecards` and `calibration` through the query layer (`qa_pipeline.scoring`) and rewrites only the weeks
whose scorecards changed (one file per week, the same file `qa-pipeline rescore` writes). "Swap speakers" changes
the call's transcript roles and analysis, hence its item scores: that asks for a full `rescore`. The rubric is the
app's (`--rubric`); when the stored scores were made with another rubric version, the app does not rescore (it
would replace the rubric in force) and says so: the flow's `qa-pipeline rescore` does it.

Modes: "on-submit" (a background thread runs after each request that asks for it; requests arriving meanwhile are
coalesced into one more run), "inline" (the same, inside the request), "flow" (export only; the nightly flow
rescores)."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select, update

from qa_pipeline.store.folder import DataFolder
from qa_pipeline.store.keys import file_key
from webapp import audit
from webapp.db import Database
from webapp.models import CallIndex, Dispute, Evaluation, User, utcnow

log = logging.getLogger("webapp")

EXPORTED_STATES = ("submitted", "acknowledged", "disputed", "resolved")
SOURCE = "review-app"


def review_id(call_id: str, target: str, reviewer: str, when: dt.datetime) -> str:
    """The `reviews` row id, as `qa_pipeline.scoring.reviews.import_reviews` computes it."""
    return hashlib.sha256(f"{call_id}|{target}|{reviewer}|{when.isoformat()}".encode()).hexdigest()[:20]


def review_rows(ev: Evaluation, usernames: dict[int, str], resolution: Dispute | None) -> list[dict]:
    """The `reviews` rows of a submitted evaluation's verdicts (see the module docstring)."""
    rows = []
    source = f"{SOURCE}:evaluation={ev.id}" + (f";sample={ev.sample_id}" if ev.sample_id else "")
    for v in sorted(ev.verdicts, key=lambda v: (v.target_type, v.target_id)):
        if not v.human_answer:
            continue
        when = max(v.at, ev.submitted_at) if ev.submitted_at else v.at
        reviewer = usernames.get(v.by_user_id, f"user-{v.by_user_id}")
        comment = v.comment
        if resolution is not None and ev.submitted_at and v.at > ev.submitted_at:
            comment = (f"dispute resolved ({resolution.root_cause}, {resolution.outcome}): "
                       f"{resolution.resolution_note or ''}").strip()
        rows.append(dict(review_id=review_id(ev.call_id, v.target_id, reviewer, when), call_id=ev.call_id,
                         target_type=v.target_type, target=v.target_id, verdict=v.human_answer, reviewer=reviewer,
                         reviewed_at=when, comment=comment, source=source))
    return rows


def write_partition(folder: DataFolder, dataset: str, value: str, key: str, rows: list[dict]) -> None:
    """Replace one partition of a derived dataset with `rows` (one file, written atomically), removing any other
    file in it."""
    folder.write_parquet(dataset, value, key, rows)
    mine = f"{file_key(key)}.parquet"
    for rel in folder.dataset_files(dataset, [value]):
        if rel.rsplit("/", 1)[-1] != mine:
            folder.remove(rel)


def _norm(rows: list[dict]) -> list[tuple]:
    def value(v):
        return round(v, 6) if isinstance(v, float) else v

    return sorted(tuple(sorted((k, value(v)) for k, v in r.items() if k != "week")) for r in rows)


def rescore_scorecards(folder: DataFolder, rubric_path: str | Path | None, *, full: bool = False) -> dict:
    """Recompute the weekly scorecards and the calibration from the stored scores and the latest verdicts (with
    `full`: the per-call scores first, `qa_pipeline.scoring.score.rescore`), writing only the weeks that changed.
    Returns {"status": "ok"|"deferred", "weeks": [...], "seconds": s, "reason": ...}."""
    from qa_pipeline.scoring.calibration import calibration
    from qa_pipeline.scoring.rubric import load_rubric
    from qa_pipeline.scoring.scorecards import weekly_scorecards
    from qa_pipeline.store.queries import Queries

    t0 = time.perf_counter()
    rubric = load_rubric(rubric_path)
    with Queries(folder, threads=2) as q:
        versions = set(q.fetch("SELECT DISTINCT rubric_version FROM call_scores").column(0).to_pylist())
    if versions and rubric.version not in versions or len(versions) > 1 and full:
        return {"status": "deferred", "weeks": [], "seconds": round(time.perf_counter() - t0, 3),
                "reason": f"the stored scores were made with rubric version(s) {sorted(versions)}, the app's rubric "
                          f"is {rubric.version}: run `qa-pipeline rescore --data DATA --rubric FILE`"}
    if full:
        from qa_pipeline.scoring.score import rescore

        summary = rescore(folder, rubric_path)
        return {"status": "ok", "weeks": summary["weeks"], "full": True,
                "seconds": round(time.perf_counter() - t0, 3)}
    with Queries(folder, threads=2) as q:
        cards = weekly_scorecards(q, rubric)
        stored: dict[str, list[dict]] = {}
        for r in q.fetch("SELECT * FROM scorecards_weekly").to_pylist():
            stored.setdefault(r["week"], []).append(r)
        cal = calibration(q, rubric)
    changed = sorted(w for w, rows in cards.items() if _norm(rows) != _norm(stored.get(w, [])))
    for week in changed:
        write_partition(folder, "scorecards_weekly", week, f"scorecards-{week}", cards[week])
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in rubric.version)
    write_partition(folder, "calibration", safe, f"calibration-{safe}", cal)
    return {"status": "ok", "weeks": changed, "seconds": round(time.perf_counter() - t0, 3)}


@dataclass
class RescoreStatus:
    runs: int = 0
    last_at: dt.datetime | None = None
    last_seconds: float | None = None
    last_weeks: list = field(default_factory=list)
    last_status: str | None = None
    last_reason: str | None = None
    last_error: str | None = None
    exported_rows: int = 0
    due_since: dt.datetime | None = None  # verdicts exported since then are not in the scorecards yet


class Rescorer:
    """Exports pending evaluations at once and rescores after them (see the module docstring); one run at a time
    per process.

    Rescoring costs what reading the complaint flags and calls of the archive costs (it grows with the archive, not
    with the verdict: bench/verdict_rescore_bench.py), so in the background it is spaced out: the next run starts no
    sooner than `min_interval_s` after the last one ended, nor sooner than `duty` times the last run's length
    (9: at most about a tenth of a core goes to rescoring however large the archive). Verdicts submitted meanwhile
    are exported and counted by that next run; `flush` runs a due rescore at once (tests, shutdown scripts)."""

    def __init__(self, db: Database, folder: DataFolder, *, mode: str, rubric_path=None, call_rows=None,
                 on_changed=None, after_full=None, min_interval_s: float = 30.0, duty: float = 9.0):
        self.db = db
        self.folder = folder
        self.mode = mode
        self.rubric_path = rubric_path
        self.call_flags = call_rows  # (CallIndex) -> set of flag ids on the call, to validate exports
        self.on_changed = on_changed  # called after scores changed (caches)
        self.after_full = after_full  # called after a full rescore (the queue index)
        self.min_interval_s = min_interval_s
        self.duty = duty
        self.status = RescoreStatus()
        self._cond = threading.Condition()
        self._pending = False  # an export is asked for
        self._due = False  # a rescore is owed (verdicts exported since the last one)
        self._full = False
        self._not_before = 0.0  # time.monotonic() before which no rescore starts (background)
        self._running = False
        self._stop = False
        self._thread: threading.Thread | None = None
        self._run_lock = threading.Lock()

    # ---- asking ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self.mode != "inline" and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="rescorer", daemon=True)
            self._thread.start()
        self.request()  # evaluations left pending by a previous process

    def stop(self, timeout: float = 10) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def request(self, *, full: bool = False) -> None:
        """Export what is pending and (unless the mode is "flow") rescore after it; `full`: the per-call scores
        too ("swap speakers")."""
        with self._cond:
            self._pending = True
            self._full |= full
            self._cond.notify_all()
        if self.mode == "inline":
            self._step(now=True)

    def flush(self, timeout: float = 60) -> bool:
        """Export and rescore what is owed now, ignoring the spacing; True when everything is done in time."""
        if self.mode == "inline":
            self._step(now=True)
            return True
        deadline = time.monotonic() + timeout
        with self._cond:
            self._not_before = 0.0
            self._cond.notify_all()
            while self._pending or self._running or (self._due and self.mode != "flow"):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def describe(self) -> str | None:
        """For the scorecards page: whether exported verdicts still wait for a rescore."""
        if self.mode == "flow":
            return ("Verdicts are exported to the reviews dataset as they are submitted; the scorecards count them "
                    "from the next `qa-pipeline rescore` (the nightly flow).")
        if self.status.due_since is not None:
            return (f"Verdicts submitted since {self.status.due_since:%Y-%m-%d %H:%M} UTC are exported and count "
                    f"from the next rescore (in the background, within minutes).")
        if self.status.last_status == "deferred":
            return f"The app does not rescore: {self.status.last_reason}."
        return None

    # ---- running --------------------------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stop:
                    if self._pending:
                        break
                    if self._due and self.mode != "flow":
                        left = self._not_before - time.monotonic()
                        if left <= 0:
                            break
                        self._cond.wait(left)
                    else:
                        self._cond.wait()
                if self._stop:
                    return
            self._step(now=False)

    def _step(self, *, now: bool) -> None:
        with self._run_lock:
            with self._cond:
                pending, self._pending = self._pending, False
                self._running = True
            try:
                if pending:
                    try:
                        exported = self.export_pending()
                    except Exception as e:  # kept for the status; the next request tries again
                        log.exception("export to the reviews dataset failed")
                        self.status.last_error = f"{type(e).__name__}: {e}"
                        exported = 0
                    with self._cond:
                        if self.mode != "flow" and (exported or self._full):
                            if not self._due:
                                self.status.due_since = utcnow()
                            self._due = True
                with self._cond:
                    run = self._due and self.mode != "flow" and (now or time.monotonic() >= self._not_before)
                    full, self._full = (self._full, False) if run else (False, self._full)
                    if run:
                        self._due = False
                if run:
                    self._rescore(full)
            finally:
                with self._cond:
                    self._running = False
                    self._cond.notify_all()

    def _rescore(self, full: bool) -> None:
        st = self.status
        due_since = st.due_since
        st.due_since = None
        try:
            result = rescore_scorecards(self.folder, self.rubric_path, full=full)
        except Exception as e:  # owed again: retried after the spacing
            log.exception("rescoring failed")
            st.last_error = f"{type(e).__name__}: {e}"
            with self._cond:
                self._due, self._full = True, self._full or full
                st.due_since = due_since
                self._not_before = time.monotonic() + max(self.min_interval_s, 60.0)
            return
        with self._cond:
            self._not_before = time.monotonic() + max(self.min_interval_s, self.duty * result["seconds"])
        st.runs += 1
        st.last_at, st.last_seconds = utcnow(), result["seconds"]
        st.last_weeks, st.last_status, st.last_reason = result["weeks"], result["status"], result.get("reason")
        st.last_error = None
        if result["status"] != "ok":
            log.warning("rescoring deferred: %s", result.get("reason"))
            return
        with self.db.write() as s:
            audit.record(s, "rescored", username=SOURCE, target_type="scorecards",
                         detail={"weeks": result["weeks"], "seconds": result["seconds"], "full": full,
                                 "verdicts_since": None if due_since is None else due_since.isoformat()})
        if full and self.after_full:
            self.after_full()
        if self.on_changed:
            self.on_changed()

    def run_once(self, *, full: bool = False) -> None:
        """Export what is pending and rescore now (whatever the spacing)."""
        self.request(full=full)
        self.flush()

    def export_pending(self) -> int:
        """Export every evaluation waiting for it; returns the number of rows written."""
        with self.db.read() as s:
            evs = list(s.scalars(select(Evaluation).where(Evaluation.kind == "standard",
                                                          Evaluation.state.in_(EXPORTED_STATES),
                                                          Evaluation.exported_at.is_(None))
                                 .order_by(Evaluation.id)))
            usernames = {k: v for k, v in s.execute(select(User.id, User.username))}
            work = []
            for ev in evs:
                _ = ev.verdicts  # loaded while the session is open
                call = s.get(CallIndex, ev.call_id)
                resolution = s.scalar(select(Dispute).where(Dispute.evaluation_id == ev.id,
                                                            Dispute.state == "resolved")
                                      .order_by(Dispute.resolved_at.desc(), Dispute.id.desc()))
                work.append((ev, call, resolution))
        total = 0
        for ev, call, resolution in work:
            if call is None:  # the call left the data folder: nothing to attach the verdicts to
                log.warning("evaluation %s: call %s is not in the datasets, not exported", ev.id, ev.call_id)
                continue
            rows = review_rows(ev, usernames, resolution)
            flags = self.call_flags(call) if self.call_flags else None
            skipped = [r["target"] for r in rows if r["target_type"] == "flag" and flags is not None
                       and r["target"] not in flags]
            rows = [r for r in rows if r["target"] not in skipped or r["target_type"] != "flag"]
            for r in rows:
                self.folder.write_parquet("reviews", call.call_date, r["review_id"], [r])
            with self.db.write() as s:
                t = Evaluation.__table__
                done = s.execute(update(t).where(t.c.id == ev.id, t.c.version == ev.version)
                                 .values(exported_at=utcnow(), updated_at=t.c.updated_at)).rowcount
                audit.record(s, "exported", username=SOURCE, target_type="evaluation", target_id=ev.id,
                             detail={"call_id": ev.call_id, "rows": [r["review_id"] for r in rows],
                                     "skipped_targets_not_on_call": skipped, "marked": bool(done)})
            if not done:  # changed meanwhile (acknowledged, resolved): export it again, as it is now
                with self._cond:
                    self._pending = True
            total += len(rows)
        self.status.exported_rows += total
        return total
