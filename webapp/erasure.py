"""Erasure in the review database, and the `qa-pipeline forget` command (dispatched here by flows/cli.py: the
library cannot import the app, so the command calls the library's `qa_pipeline.pipeline.forget.forget` first and
then `anonymise_calls` on the database).

    qa-pipeline forget (--call ID ... | --before YYYY-MM-DD) --data DATA [--db URL] [--rubric FILE]
                       [--delete-source] [--reason TEXT] [--yes]

What `anonymise_calls` does to a forgotten call's rows (counts stay, text and link go):

- evaluations, verdicts, disputes, comments, coaching marks, role swaps, sample and calibration memberships: the
  call id becomes `forgotten:<first 16 hex of its SHA-256>`; comments' bodies, verdicts' comments and evidence
  spans, coaching notes and spans, dispute reasons and resolution notes, swap reasons and before/after are
  dropped; the agent, the reviewer and the verdicts themselves stay (the counts and the kappa still hold);
- call_index, review_queue_items and call views of the call are deleted (the datasets no longer have it);
- audit_log entries about the call: its id becomes the same pseudonym and their detail is dropped. The audit
  log is otherwise append-only (triggers): erasure is the one change allowed, made by this function only, with
  the trigger lifted inside the same transaction;
- one audit entry `forgotten` (target: the pseudonym; detail: how many rows of each kind were anonymised);
- on SQLite the file is VACUUMed afterwards, so the removed text does not survive in free pages or the WAL."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sqlalchemy import delete, select, text, update

from qa_pipeline.pipeline.forget import id_hash
from webapp import audit
from webapp.db import Database, default_url
from webapp.models import (
    AuditEntry,
    CalibrationCall,
    CallIndex,
    CallView,
    CoachingMark,
    Comment,
    Dispute,
    Evaluation,
    ReviewQueueItem,
    RoleSwap,
    SampleCall,
    Verdict,
)


def pseudonym(call_id: str) -> str:
    return f"forgotten:{id_hash(call_id)[:16]}"


def anonymise_calls(db_url: str, call_ids, *, actor: str = "qa-pipeline forget") -> dict[str, int]:
    """Anonymise the calls' rows in the review database (see the module docstring); returns rows per table."""
    db = Database(db_url)
    counts: dict[str, int] = {}
    try:
        db.upgrade()
        with db.write() as s:
            sqlite = s.get_bind().dialect.name == "sqlite"
            for cid in sorted(set(call_ids)):
                alias = pseudonym(cid)
                evals = list(s.scalars(select(Evaluation.id).where(Evaluation.call_id == cid)))

                def bump(name: str, n: int) -> None:
                    if n:
                        counts[name] = counts.get(name, 0) + n

                if evals:
                    bump("verdicts", s.execute(update(Verdict).where(Verdict.evaluation_id.in_(evals)).values(
                        comment=None, evidence_start_s=None, evidence_end_s=None)).rowcount)
                    bump("disputes", s.execute(update(Dispute).where(Dispute.evaluation_id.in_(evals)).values(
                        reason="", resolution_note=None)).rowcount)
                bump("evaluations", s.execute(update(Evaluation).where(Evaluation.call_id == cid).values(
                    call_id=alias, sample_filters=None)).rowcount)
                bump("comments", s.execute(update(Comment).where(Comment.call_id == cid).values(
                    call_id=alias, body="", utterance_index=None)).rowcount)
                bump("coaching_marks", s.execute(update(CoachingMark).where(CoachingMark.call_id == cid).values(
                    call_id=alias, note=None, utterance_index=None, start_s=0.0, end_s=0.0)).rowcount)
                bump("role_swaps", s.execute(update(RoleSwap).where(RoleSwap.call_id == cid).values(
                    call_id=alias, reason=None, before=None, after=None)).rowcount)
                bump("sample_calls", s.execute(update(SampleCall).where(SampleCall.call_id == cid).values(
                    call_id=alias)).rowcount)
                bump("calibration_calls", s.execute(update(CalibrationCall).where(
                    CalibrationCall.call_id == cid).values(call_id=alias)).rowcount)
                bump("call_views", s.execute(delete(CallView).where(CallView.call_id == cid)).rowcount)
                bump("review_queue_items", s.execute(delete(ReviewQueueItem).where(
                    ReviewQueueItem.call_id == cid)).rowcount)
                bump("call_index", s.execute(delete(CallIndex).where(CallIndex.call_id == cid)).rowcount)
                bump("audit_log", _pseudonymise_audit(s, cid, alias, sqlite=sqlite))
            audit.record(s, "forgotten", username=actor, target_type="calls",
                         target_id=",".join(pseudonym(c) for c in sorted(set(call_ids)))[:200],
                         detail={"calls": len(set(call_ids)), "rows": counts})
    finally:
        db.dispose()
    if db_url.startswith("sqlite"):
        _vacuum(db_url)
    return counts


def _pseudonymise_audit(s, cid: str, alias: str, *, sqlite: bool) -> int:
    """The audit entries naming the call: target id pseudonymised, detail dropped (the trigger that keeps the log
    append-only is lifted for this statement only, inside the transaction)."""
    ids = list(s.scalars(select(AuditEntry.id).where(AuditEntry.target_id == cid)))
    ids += [e.id for e in s.scalars(select(AuditEntry).where(AuditEntry.detail.is_not(None)))
            if e.id not in ids and cid in str(e.detail)]
    if not ids:
        return 0
    table = AuditEntry.__table__
    if sqlite:
        s.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
    else:
        s.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change"))
    try:
        n = s.execute(table.update().where(table.c.id.in_(ids)).values(target_id=alias, detail=None)).rowcount
    finally:
        if sqlite:
            s.execute(text("CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
                           "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"))
        else:
            s.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change"))
    return n


def _vacuum(db_url: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.exec_driver_sql("VACUUM")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()


# ---- the command ------------------------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qa-pipeline forget", description="erase calls from the data folder and the "
                                "review database (the original recordings are not ours: see --delete-source)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--call", action="append", metavar="ID", help="a call id (repeat for several)")
    which.add_argument("--before", metavar="DATE", help="every call dated before YYYY-MM-DD")
    p.add_argument("--data", required=True, help="the data folder")
    p.add_argument("--db", default=os.environ.get("QA_REVIEW_DB"),
                   help="the review database URL (default: $QA_REVIEW_DB, else DATA/review.sqlite3 when it exists)")
    p.add_argument("--rubric", help="the rubric the scores are recomputed with (default: the default rubric)")
    p.add_argument("--delete-source", action="store_true",
                   help="also delete the original recordings (by default they are left: not the pipeline's)")
    p.add_argument("--reason", default="erasure request", help="recorded in the audit entry")
    return p


def forget_calls(data_dir, call_ids, *, db_url: str | None = None, rubric: str | None = None,
                 delete_source: bool = False, reason: str = "erasure request", actor: str | None = None):
    """The library's forget, then the database's anonymiser (when there is a database). Returns (report, counts)."""
    from qa_pipeline.pipeline.forget import forget

    report = forget(data_dir, call_ids, rubric=rubric, delete_source=delete_source, reason=reason, actor=actor)
    url = db_url
    if url is None and "://" not in str(data_dir) and (Path(data_dir) / "review.sqlite3").is_file():
        url = default_url(data_dir)
    counts = anonymise_calls(url, call_ids, actor=actor or "qa-pipeline forget") if url else None
    return report, counts


def main(argv: list[str]) -> int:
    from qa_pipeline.errors import QAPipelineError
    from qa_pipeline.pipeline.forget import calls_before

    args = _parser().parse_args(argv)
    try:
        ids = args.call or calls_before(args.data, args.before)
        if not ids:
            print(f"no call dated before {args.before}: nothing to erase")
            return 0
        report, counts = forget_calls(args.data, ids, db_url=args.db, rubric=args.rubric,
                                      delete_source=args.delete_source, reason=args.reason)
    except QAPipelineError as e:
        print(f"error [{e.code}]: {e}", file=sys.stderr)
        return 2
    print(report.text())
    if counts is not None:
        print("review database: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing of them")
              + " (anonymised; audit entry 'forgotten')")
    else:
        print("review database: none given (--db) or found: nothing anonymised there")
    return 0
