"""Human input to the scores: QA verdicts on flags and rubric items (`reviews`) and complaints from other
divisions (`division_complaints`).

Both imports are validated whole before anything is written (one bad row: nothing is imported, E631 lists the
rows), run under the data folder's DATASETS_LOCK from their first read to their last write (an import and a
rescore, or two imports, at once never lose a row), and importing the same file twice adds nothing. Every value is
read as text: an operator id "007" stays "007" (CSV files are read with the csv module, never with a reader that
guesses types; a Parquet file whose id columns are not text is refused).

Verdicts: a verdict is what a reviewer said about a target at a time. A row identical to a stored verdict (call,
target, verdict, reviewer, reviewed_at, comment) is not added again; `review_id` is derived from those fields. A
row without `reviewed_at` is stamped with the import time, and is not added when it says again what that
reviewer said last about that target (same verdict and comment). Two different verdicts (or comments) by one
reviewer on one target at one time cannot be ordered, and are refused. A `reviewed_at` more than CLOCK_SKEW (5
minutes) in the future is refused: a time without a zone is UTC.

Division complaints: a complaint is identified by its `complaint_id` when the file has that column (any text,
kept as given), else by (date, agent, division); a later import of the same complaint replaces the stored one
(its text, justified, or with a complaint_id its date too), so an edited complaint never counts twice. Without
complaint_id, two complaints of one division about one operator on one day cannot be told apart: such a file is
refused (give it complaint_id). A complaint stored by an earlier version (its id a 20-hex hash of the text too) is
replaced by its edit like one without complaint_id."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import re
from pathlib import Path

from qa_pipeline.errors import Errors, QAPipelineError
from qa_pipeline.scoring.rubric import ITEMS
from qa_pipeline.store.folder import DataFolder, as_folder
from qa_pipeline.store.lock import DATASETS_LOCK
from qa_pipeline.store.queries import Queries

FLAG_VERDICTS = ("confirmed", "dismissed", "justified", "unjustified")
ITEM_VERDICTS = ("met", "not_met")
CLOCK_SKEW = dt.timedelta(minutes=5)  # how far in the future a reviewed_at may be (the clocks of two systems)
_MAX_LISTED = 20  # rows listed in an E631 message
_UTC = dt.timezone.utc
_TRUE, _FALSE = ("true", "yes", "y", "1"), ("false", "no", "n", "0")
_LEGACY_COMPLAINT_ID = re.compile(r"[0-9a-f]{20}")  # a hash of date, agent, division and text (earlier versions)
_AUTO = "auto-"  # complaint ids derived from (date, agent, division)


def _read_csv(path: Path, kind: str) -> tuple[list[str], list[dict]]:
    """(columns, rows) of a UTF-8 CSV, every value a string (a spreadsheet's byte-order mark is skipped).

    Raises:
        QAPipelineError: E630, the file cannot be read."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            return list(reader.fieldnames or ()), list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise QAPipelineError(Errors.E630, path=path, kind=kind, error=e, stage=kind) from e


def _refuse(path: Path, errors: list[str], stage: str) -> None:
    if errors:
        more = f"\n  ... and {len(errors) - _MAX_LISTED} more" if len(errors) > _MAX_LISTED else ""
        raise QAPipelineError(Errors.E631, path=path, count=len(errors),
                              rows="\n  ".join(errors[:_MAX_LISTED]) + more, stage=stage)


def review_id(call_id: str, target_type: str, target: str, verdict: str, reviewer: str, reviewed_at: dt.datetime,
              comment: str | None) -> str:
    """The `reviews` row id: a hash of what the verdict says (see the module docstring)."""
    text = "|".join((call_id, target_type, target, verdict, reviewer, reviewed_at.astimezone(_UTC).isoformat(),
                     comment or ""))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def import_reviews(data_dir: str | Path | DataFolder, csv_path: str | Path, *, now: dt.datetime | None = None) -> dict:
    """Validate and append QA verdicts from a CSV (call_id, flag_id or item, verdict, reviewer, reviewed_at,
    comment); see the module docstring for what is added and what is refused. Never overwrites a verdict: a new
    verdict on the same target is added beside the old one (the latest counts: view `latest_reviews`).

    Returns {"imported": rows added, "skipped_existing": rows that were there already}.

    Raises:
        QAPipelineError (E630 unreadable, E633 columns missing, E631 invalid rows): nothing is written then.
        StorageError: E705, the data folder's lock could not be had.
    """
    folder = as_folder(data_dir)
    path = Path(csv_path)
    now = now or dt.datetime.now(_UTC)
    fields, lines = _read_csv(path, "reviews")
    missing = {"call_id", "verdict", "reviewer"} - set(fields)
    if missing or not ({"flag_id", "item"} & set(fields)):
        raise QAPipelineError(Errors.E633, path=path, missing=sorted(missing) or ["flag_id/item"], stage="reviews")
    items = {f"{c}.{i}" for c, its in ITEMS.items() for i in its}
    with folder.lock(DATASETS_LOCK), Queries(folder) as q:
        calls = {r["call_id"]: r["call_date"] for r in q.fetch("SELECT call_id, call_date FROM calls").to_pylist()}
        flags = {(r["call_id"], r["flag_id"]) for r in q.fetch("SELECT call_id, flag_id FROM flags").to_pylist()}
        stored = q.fetch("SELECT call_id, target_type, target, verdict, reviewer, reviewed_at, comment FROM reviews "
                         "ORDER BY reviewed_at").to_pylist()
        said: dict[tuple, tuple] = {}  # (call, target type, target, reviewer, time) -> (verdict, comment)
        last: dict[tuple, tuple] = {}  # (call, target type, target, reviewer) -> (verdict, comment) said last
        for r in stored:
            said[(r["call_id"], r["target_type"], r["target"], r["reviewer"], r["reviewed_at"])] = (
                r["verdict"], r["comment"])
            last[(r["call_id"], r["target_type"], r["target"], r["reviewer"])] = (r["verdict"], r["comment"])
        errors, rows, skipped = [], [], 0
        for n, r in enumerate(lines, start=2):
            cid = (r.get("call_id") or "").strip()
            flag_id, item = (r.get("flag_id") or "").strip(), (r.get("item") or "").strip()
            verdict = (r.get("verdict") or "").strip().lower()
            reviewer = (r.get("reviewer") or "").strip()
            comment = (r.get("comment") or "").strip() or None
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
                when = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None
            except ValueError:
                errors.append(f"line {n}: reviewed_at {stamp!r} is not an ISO 8601 time")
                continue
            if when is not None:
                when = (when if when.tzinfo else when.replace(tzinfo=_UTC)).astimezone(_UTC)
                if when > now + CLOCK_SKEW:
                    errors.append(f"line {n}: reviewed_at {stamp} is in the future (now is "
                                  f"{now.astimezone(_UTC):%Y-%m-%dT%H:%M:%S}Z; a time without a zone is UTC): check "
                                  "the clock and time zone of the system that wrote it")
                    continue
            target_key = (cid, target_type, target, reviewer)
            if when is None:  # stamped now: new only when it says something else than this reviewer said last
                if last.get(target_key) == (verdict, comment):
                    skipped += 1
                    continue
                when = now
            before = said.get((*target_key, when))
            if before == (verdict, comment):
                skipped += 1
                continue
            if before is not None:
                errors.append(f"line {n}: {reviewer!r} already gave {target_type} {target!r} of call {cid!r} "
                              f"the verdict {before[0]!r} ({before[1] or 'no comment'}) at {when.isoformat()}: a "
                              "changed verdict needs a later reviewed_at")
                continue
            said[(*target_key, when)] = last[target_key] = (verdict, comment)
            rows.append(dict(review_id=review_id(cid, target_type, target, verdict, reviewer, when, comment),
                             call_id=cid, target_type=target_type, target=target, verdict=verdict,
                             reviewer=reviewer, reviewed_at=when, comment=comment, source=path.name))
        _refuse(path, errors, "reviews")
        for r in rows:
            folder.write_parquet("reviews", calls[r["call_id"]], r["review_id"], [r])
    return {"imported": len(rows), "skipped_existing": skipped}


# ---- division complaints ----------------------------------------------------------------------------------------

def _complaint_lines(path: Path) -> tuple[list[str], list[tuple[str, dict]], list[str]]:
    """(columns, [(where, row)], problems with the file's types) of a complaints CSV or Parquet file."""
    if path.suffix.lower() != ".parquet":
        fields, lines = _read_csv(path, "complaints")
        return fields, [(f"line {n}", r) for n, r in enumerate(lines, start=2)], []
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as e:
        raise QAPipelineError(Errors.E630, path=path, kind="complaints", error=e, stage="complaints") from e
    problems = [f"column {c!r} is {table.schema.field(c).type}, not text: ids such as '007' would lose their "
                f"zeros; write it as a string column" for c in ("complaint_id", "agent", "division")
                if c in table.column_names and not pa.types.is_string(table.schema.field(c).type)
                and not pa.types.is_large_string(table.schema.field(c).type)]
    return table.column_names, [(f"row {n}", r) for n, r in enumerate(table.to_pylist(), start=1)], problems


def _text(value) -> str | None:
    text = None if value is None else str(value).strip()
    return text or None


def _complaint_row(where: str, r: dict, source: str, errors: list[str]) -> dict | None:
    raw_date = r.get("date")
    if isinstance(raw_date, dt.datetime):
        day = raw_date.date()
    elif isinstance(raw_date, dt.date):
        day = raw_date
    else:
        try:
            day = dt.date.fromisoformat((_text(raw_date) or "")[:10])
        except ValueError:
            errors.append(f"{where}: date {raw_date!r} is not an ISO date (YYYY-MM-DD)")
            return None
    agent, division = _text(r.get("agent")), _text(r.get("division"))
    if not agent or not division:
        errors.append(f"{where}: {'agent' if not agent else 'division'} is empty")
        return None
    justified = r.get("justified")
    if not isinstance(justified, bool) and justified is not None:
        word = (_text(justified) or "").lower()
        if word and word not in _TRUE + _FALSE:
            errors.append(f"{where}: justified {justified!r} is neither true nor false (empty: not judged yet)")
            return None
        justified = (word in _TRUE) if word else None
    given = _text(r.get("complaint_id"))
    cid = given or _AUTO + hashlib.sha256(f"{day.isoformat()}|{agent}|{division}".encode()).hexdigest()[:20]
    return dict(complaint_id=cid, date=day, agent_id=agent, division=division, text=_text(r.get("text")),
                justified=justified, source=source)


def _has_given_id(complaint_id: str) -> bool:
    return not (complaint_id.startswith(_AUTO) or _LEGACY_COMPLAINT_ID.fullmatch(complaint_id))


def import_division_complaints(data_dir: str | Path | DataFolder, path: str | Path) -> dict:
    """Complaints from other divisions (CSV or Parquet: [complaint_id,] date, agent, division, text, justified);
    see the module docstring for how a complaint is identified and replaced.

    Returns {"rows": complaints in the file, "replaced": stored complaints they replaced}.

    Raises:
        QAPipelineError: E630 unreadable, E632 columns missing, E631 invalid rows (nothing is written then).
        StorageError: E705, the data folder's lock could not be had.
    """
    folder = as_folder(data_dir)
    path = Path(path)
    fields, lines, errors = _complaint_lines(path)
    need = {"date", "agent", "division", "text", "justified"}
    if need - set(fields):
        raise QAPipelineError(Errors.E632, path=path, missing=sorted(need - set(fields)), found=fields,
                              needed=sorted(need), stage="complaints")
    incoming: dict[str, dict] = {}
    where_of: dict[str, str] = {}
    for where, r in lines:
        row = _complaint_row(where, r, path.name, errors)
        if row is None:
            continue
        cid = row["complaint_id"]
        if cid in incoming:
            errors.append(
                f"{where}: the same complaint as {where_of[cid]} ("
                + (f"complaint_id {cid!r}" if _has_given_id(cid) else
                   f"{row['date']}, agent {row['agent_id']!r}, division {row['division']!r}: without a "
                   "complaint_id column, one complaint per division, operator and day; give each a complaint_id")
                + ")")
            continue
        incoming[cid], where_of[cid] = row, where
    _refuse(path, errors, "complaints")

    def natural(r: dict) -> tuple:
        return (r["date"], r["agent_id"], r["division"])

    with folder.lock(DATASETS_LOCK), Queries(folder) as q:
        stored = q.fetch("SELECT * FROM division_complaints").to_pylist()
        replaced_keys = {natural(r) for r in incoming.values()}
        by_month: dict[str, list[dict]] = {}
        touched = {r["date"].strftime("%Y-%m") for r in incoming.values()}
        replaced = 0
        for r in stored:
            if r["complaint_id"] in incoming or (not _has_given_id(r["complaint_id"])
                                                 and natural(r) in replaced_keys):
                replaced += 1
                touched.add(r["month"])  # it may have moved to another month
            else:
                by_month.setdefault(r["month"], []).append({k: v for k, v in r.items() if k != "month"})
        for r in incoming.values():
            by_month.setdefault(r["date"].strftime("%Y-%m"), []).append(r)
        for month in sorted(touched):
            rows = sorted(by_month.get(month, []), key=lambda r: (r["date"], r["agent_id"], r["complaint_id"]))
            files = folder.dataset_files("division_complaints", [month])
            if rows:  # a key per month: write_parquet removes the key's file from every other partition
                written = folder.write_parquet("division_complaints", month, f"complaints-{month}", rows)
                files = [f for f in files if not written.endswith(f)]
            for rel in files:  # the month is one file
                folder.remove(rel)
    return {"rows": len(incoming), "replaced": replaced}
