"""Human input to the scores: QA verdicts on flags and rubric items (`reviews`) and complaints from other
divisions (`division_complaints`). Both are validated whole before anything is written, and re-importing the same
rows adds nothing."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from pathlib import Path

from qa_pipeline.errors import Errors, QAPipelineError
from qa_pipeline.scoring.rubric import ITEMS
from qa_pipeline.store.folder import DataFolder, as_folder
from qa_pipeline.store.queries import Queries

FLAG_VERDICTS = ("confirmed", "dismissed", "justified", "unjustified")
ITEM_VERDICTS = ("met", "not_met")


def import_reviews(data_dir: str | Path | DataFolder, csv_path: str | Path) -> dict:
    """Validate and append QA verdicts from a CSV (call_id, flag_id or item, verdict, reviewer, reviewed_at,
    comment). A verdict already imported (same call, target, reviewer and time) is skipped, never overwritten; a
    new verdict on the same target is added beside the old one (the latest counts: view `latest_reviews`).

    Raises:
        QAPipelineError (E630 unreadable, E633 columns missing, E631 invalid rows): nothing is written then.
    """
    folder = as_folder(data_dir)
    path = Path(csv_path)
    with Queries(folder) as q:
        calls = {r["call_id"]: r["call_date"] for r in q.fetch("SELECT call_id, call_date FROM calls").to_pylist()}
        flags = {(r["call_id"], r["flag_id"]) for r in q.fetch("SELECT call_id, flag_id FROM flags").to_pylist()}
        existing = set(q.fetch("SELECT review_id FROM reviews").column("review_id").to_pylist())
    items = {f"{c}.{i}" for c, its in ITEMS.items() for i in its}
    errors, rows = [], []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            fields = set(reader.fieldnames or ())
            lines = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise QAPipelineError(Errors.E630, path=path, error=e, stage="reviews") from e
    missing = {"call_id", "verdict", "reviewer"} - fields
    if missing or not ({"flag_id", "item"} & fields):
        raise QAPipelineError(Errors.E633, path=path, missing=sorted(missing) or ["flag_id/item"], stage="reviews")
    for n, r in enumerate(lines, start=2):
        cid = (r.get("call_id") or "").strip()
        flag_id, item = (r.get("flag_id") or "").strip(), (r.get("item") or "").strip()
        verdict = (r.get("verdict") or "").strip().lower()
        reviewer = (r.get("reviewer") or "").strip()
        if cid not in calls:
            errors.append(f"line {n}: unknown call_id {cid!r}")
            continue
        if not reviewer:
            errors.append(f"line {n}: reviewer is empty")
            continue
        if flag_id:
            target_type, target, allowed = "flag", flag_id, FLAG_VERDICTS
            if (cid, flag_id) not in flags:
                errors.append(f"line {n}: flag {flag_id!r} is not a flag of call {cid!r}")
                continue
        elif item:
            target_type, target, allowed = "item", item, ITEM_VERDICTS
            if item not in items:
                errors.append(f"line {n}: unknown rubric item {item!r}; known: {sorted(items)}")
                continue
        else:
            errors.append(f"line {n}: give flag_id or item")
            continue
        if verdict not in allowed:
            errors.append(f"line {n}: verdict {verdict!r} for a {target_type} must be one of {allowed}")
            continue
        stamp = (r.get("reviewed_at") or "").strip()
        try:
            when = (dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp
                    else dt.datetime.now(dt.timezone.utc))
        except ValueError:
            errors.append(f"line {n}: reviewed_at {r.get('reviewed_at')!r} is not an ISO 8601 time")
            continue
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        rid = hashlib.sha256(f"{cid}|{target}|{reviewer}|{when.isoformat()}".encode()).hexdigest()[:20]
        if rid in existing:
            continue
        existing.add(rid)
        rows.append(dict(review_id=rid, call_id=cid, target_type=target_type, target=target, verdict=verdict,
                         reviewer=reviewer, reviewed_at=when, comment=(r.get("comment") or "").strip() or None,
                         source=path.name))
    if errors:
        raise QAPipelineError(Errors.E631, path=path, count=len(errors), rows="\n  ".join(errors[:20]),
                              stage="reviews")
    for r in rows:
        folder.write_parquet("reviews", calls[r["call_id"]], r["review_id"], [r])
    return {"imported": len(rows), "skipped_existing": len(lines) - len(rows)}


def import_division_complaints(data_dir: str | Path | DataFolder, path: str | Path) -> dict:
    """Complaints from other divisions (CSV or Parquet: date, agent, division, text, justified); re-importing the
    same rows adds nothing (a changed `justified` replaces the old value).

    Raises:
        QAPipelineError (E632): columns are missing.
    """
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    folder = as_folder(data_dir)
    path = Path(path)
    table = pq.read_table(path) if path.suffix == ".parquet" else pacsv.read_csv(path)
    need = {"date", "agent", "division", "text", "justified"}
    if need - set(table.column_names):
        raise QAPipelineError(Errors.E632, path=path, missing=sorted(need - set(table.column_names)),
                              found=table.column_names, needed=sorted(need), stage="complaints")
    by_month: dict[str, list[dict]] = {}
    for r in table.to_pylist():
        d = r["date"] if isinstance(r["date"], dt.date) else dt.date.fromisoformat(str(r["date"])[:10])
        justified = r["justified"] if isinstance(r["justified"], bool) else \
            str(r["justified"]).strip().lower() in ("1", "true", "yes", "y")
        cid = hashlib.sha256(f"{d}|{r['agent']}|{r['division']}|{r['text']}".encode()).hexdigest()[:20]
        by_month.setdefault(d.strftime("%Y-%m"), []).append(dict(
            complaint_id=cid, date=d, agent_id=str(r["agent"]), division=str(r["division"]), text=r["text"],
            justified=justified, source=path.name))
    with Queries(folder) as q:
        existing = q.fetch("SELECT * FROM division_complaints").to_pylist()
    for month, rows in by_month.items():
        merged = {r["complaint_id"]: {k: v for k, v in r.items() if k != "month"} for r in existing
                  if r["month"] == month}
        merged.update({r["complaint_id"]: r for r in rows})  # a re-import updates `justified`, never duplicates
        folder.write_parquet("division_complaints", month, "complaints", list(merged.values()))
    return {"rows": sum(len(v) for v in by_month.values())}
