"""Erasure: `forget` removes calls from everything the pipeline wrote (`qa-pipeline forget --call ID | --before DATE`).

Where a call lives in a data folder, and what happens to it:

- every per-call dataset file of the call, in every date partition (calls, utterances, words, metrics, compliance,
  events, flags, sentiment, pii, redactions) and its restricted original text (`_restricted/utterances_raw`);
- its rows in the shared datasets that name calls (call_scores, reviews, failures, and any other dataset with a
  `call_id` column): each file holding one is rewritten without it (removed when nothing is left);
- quarantined files of the call (`_quarantine/<dataset>/<partition>/<key>.parquet.*`);
- its audio copies: the redacted copy (`redacted_audio/`), the review app's waveform peaks (`_app/peaks/*/`),
  the object-store index entry (`_objects/`), its in-progress marker (`_inprogress/<sha256>.json`);
- run summaries (`_runs/*.json`): the call's entries keep their status, lose id and path;
- the weekly scorecards are recomputed without it (`rescore`) and the weekly HTML reports of its weeks written
  again (deleted when the week has nothing left); any other report still naming it is deleted;
- coaching packs that include it (the pack registry `_packs/registry.json`) are deleted whole.

What is left: an audit entry `_audit/forget-<time>.json` naming the SHA-256 of each call id (never its content,
id, path or agent). The original recording in the calls folder is not the pipeline's: it is left where it is and
its path is returned (`sources`), unless `delete_source` is given. The review database is the app's: its
anonymiser (webapp.erasure) is called by the command after this."""

from __future__ import annotations

import datetime as dt
import getpass
import io
import json
import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from qa_pipeline.errors import ConfigError, Errors
from qa_pipeline.pipeline.audio_redaction import redacted_copies
from qa_pipeline.pipeline.runner import INPROGRESS_DIR, PER_CALL_DATASETS
from qa_pipeline.privacy.restricted import remove_raw_utterances
from qa_pipeline.render.coaching import PACKS_REGISTRY, id_hash, read_registry
from qa_pipeline.store.folder import QUARANTINE_DIR, DataFolder, as_folder
from qa_pipeline.store.keys import file_key
from qa_pipeline.store.lock import DATASETS_LOCK
from qa_pipeline.store.schema import DATASETS, RESTRICTED_DATASETS

log = logging.getLogger("qa_pipeline")

AUDIT_DIR = "_audit"
PEAKS_DIR = "_app/peaks"  # the review app's waveform cache (webapp.media.PEAKS_DIR)
REPORTS_DIR = "reports"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")  # how the app names a call's peaks file (webapp.media)


@dataclass
class ForgetReport:
    call_ids: list[str]
    files_removed: list[str] = field(default_factory=list)
    rows_removed: dict[str, int] = field(default_factory=dict)
    reports_rewritten: list[str] = field(default_factory=list)
    reports_deleted: list[str] = field(default_factory=list)
    packs_deleted: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # the original recordings (not ours: left unless asked)
    sources_deleted: list[str] = field(default_factory=list)
    audit_path: str = ""

    def text(self) -> str:
        rows = ", ".join(f"{k} {v}" for k, v in sorted(self.rows_removed.items())) or "none"
        lines = [f"forgot {len(self.call_ids)} call(s): {len(self.files_removed)} files removed; rows removed from "
                 f"shared datasets: {rows}"]
        if self.reports_rewritten:
            lines.append(f"weekly reports written again without them: {', '.join(self.reports_rewritten)}")
        if self.reports_deleted:
            lines.append(f"reports deleted (they named a forgotten call): {', '.join(self.reports_deleted)}")
        if self.packs_deleted:
            lines.append(f"coaching packs deleted (they held a forgotten call): {', '.join(self.packs_deleted)}")
        kept = [s for s in self.sources if s not in self.sources_deleted]
        if kept:
            lines.append("the original recordings are NOT deleted (they are not the pipeline's: delete them where "
                         "they are kept, or run again with --delete-source):")
            lines += [f"  {s}" for s in kept]
        for s in self.sources_deleted:
            lines.append(f"original recording deleted: {s}")
        lines.append(f"audit entry: {self.audit_path}")
        return "\n".join(lines)


def calls_before(data_dir, before: str) -> list[str]:
    """The ids of the stored calls whose date (`call_date`) is before `before` (YYYY-MM-DD).

    Raises:
        ConfigError: E651, `before` is not a date.
    """
    try:
        day = dt.date.fromisoformat(str(before))
    except ValueError as e:
        raise ConfigError(Errors.E651, value=before, error=e) from e
    t = as_folder(data_dir).read_dataset("calls", ["call_id", "call_date"])
    return sorted({c for c, d in zip(t.column("call_id").to_pylist(), t.column("call_date").to_pylist())
                   if _date(d) is not None and _date(d) < day})


def _date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value or "")
    except ValueError:
        return None


def forget(data_dir, call_ids, *, rubric: str | None = None, delete_source: bool = False,
           actor: str | None = None, reason: str = "erasure request") -> ForgetReport:
    """Remove every trace of `call_ids` from the data folder (see the module docstring), under its datasets lock.

    Raises:
        ConfigError: E650, none of the ids is a stored call (and nothing else of them is found).
        StorageError: E705, the lock could not be had.
    """
    folder = as_folder(data_dir)
    ids = sorted(set(call_ids))
    report = ForgetReport(call_ids=ids)
    with folder.lock(DATASETS_LOCK):
        calls = folder.read_dataset("calls", ["call_id", "audio_sha256", "path", "call_date"])
        stored = [r for r in calls.to_pylist() if r["call_id"] in ids]
        shas = {r["audio_sha256"] for r in stored}
        paths = {r["path"] for r in stored}
        keys = {file_key(c) for c in ids}
        weeks = _weeks_of(folder, ids)
        if not stored and not any(folder.glob(f"{d}/*/{k}.parquet") for d in DATASETS for k in keys):
            raise ConfigError(Errors.E650, data_dir=folder.url(), what=", ".join(ids) or "(no id)")
        report.sources = sorted(paths)
        # 1. per-call dataset files, every partition; restricted original text; quarantined files
        for name in PER_CALL_DATASETS:
            for cid in ids:
                for rel in folder.glob(f"{name}/*/{file_key(cid)}.parquet"):
                    folder.remove(rel)
                    report.files_removed.append(rel)
        for cid in ids:
            if any(folder.glob(f"_restricted/{d}/*/{file_key(cid)}.parquet") for d in RESTRICTED_DATASETS):
                report.files_removed.append(f"_restricted/.../{file_key(cid)}.parquet")
            remove_raw_utterances(folder, cid)
            for k in (file_key(cid),):
                for rel in folder.glob(f"{QUARANTINE_DIR}/*/*/{k}.parquet.*"):
                    folder.remove(rel)
                    report.files_removed.append(rel)
        # 2. rows in shared datasets
        for name, schema in DATASETS.items():
            if name in RESTRICTED_DATASETS:
                continue
            cols = [c for c in ("call_id", "audio_sha256", "path") if c in schema.names]
            if not cols:
                continue
            n = _drop_rows(folder, name, cols, ids, shas, paths)
            if n:
                report.rows_removed[name] = n
        # 3. audio copies, caches, markers, object index
        for cid in ids:
            for rel in redacted_copies(folder, cid):
                folder.remove(rel)
                report.files_removed.append(rel)
            for rel in folder.glob(f"{PEAKS_DIR}/*/{_SAFE_NAME.sub('_', cid)}.json"):
                folder.remove(rel)
                report.files_removed.append(rel)
        for sha in shas:
            rel = f"{INPROGRESS_DIR}/{sha}.json"
            if folder.exists(rel):
                folder.remove(rel)
                report.files_removed.append(rel)
        needles = [*ids, *shas, *paths]
        for rel in folder.glob("_objects/*.json"):
            if _mentions(folder, rel, needles):
                folder.remove(rel)
                report.files_removed.append(rel)
        for rel in folder.glob("_runs/*.json"):
            _scrub_json(folder, rel, needles)
        # 4. scores without them, reports of their weeks again
        from qa_pipeline.scoring.score import rescore

        if folder.dataset_files("calls") or folder.dataset_files("call_scores"):
            rescore(folder, rubric)
        _reports(folder, weeks, ids, report)
        # 5. coaching packs holding them
        _packs(folder, ids, report)
        if delete_source:
            for p in report.sources:
                if "://" not in p and Path(p).is_file():
                    Path(p).unlink()
                    report.sources_deleted.append(p)
        # 6. the audit entry: hashes only
        now = dt.datetime.now(dt.timezone.utc)
        entry = {"action": "forget", "at": now.isoformat(timespec="seconds"), "by": actor or _user(),
                 "reason": reason, "call_id_sha256": [id_hash(c) for c in ids],
                 "files_removed": len(report.files_removed), "rows_removed": report.rows_removed,
                 "reports_rewritten": report.reports_rewritten, "reports_deleted": report.reports_deleted,
                 "packs_deleted": len(report.packs_deleted), "sources_left": len(report.sources)
                 - len(report.sources_deleted), "sources_deleted": len(report.sources_deleted)}
        rel = f"{AUDIT_DIR}/forget-{now:%Y%m%dT%H%M%S%f}.json"
        folder.write_text(rel, json.dumps(entry, indent=1))
        report.audit_path = folder.url(rel)
    return report


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (a container): the audit entry says so
        return "unknown"


def _weeks_of(folder: DataFolder, ids: list[str]) -> set[str]:
    t = folder.read_dataset("call_scores", ["call_id", "iso_week"])
    mask = pc.is_in(t.column("call_id"), pa.array(ids, pa.string()))
    return {w for w in t.filter(mask).column("iso_week").to_pylist() if w}


def _drop_rows(folder: DataFolder, dataset: str, cols: list[str], ids, shas, paths) -> int:
    """Rewrite each file of `dataset` holding a row of these calls without it; returns the rows removed."""
    values = {"call_id": ids, "audio_sha256": sorted(shas), "path": sorted(paths)}
    removed = 0
    for rel in folder.dataset_files(dataset):
        try:
            table = pq.read_table(io.BytesIO(folder.read_bytes(rel)))
        except (pa.ArrowException, OSError):
            continue
        mask = None
        for c in cols:
            if c not in table.column_names or not values[c]:
                continue
            m = pc.fill_null(pc.is_in(table.column(c), pa.array(values[c], pa.string())), False)
            mask = m if mask is None else pc.or_(mask, m)
        if mask is None:
            continue
        hit = pc.sum(mask).as_py() or 0
        if not hit:
            continue
        removed += hit
        keep = table.filter(pc.invert(mask))
        if keep.num_rows == 0:
            folder.remove(rel)
        else:
            sink = pa.BufferOutputStream()
            pq.write_table(keep, sink, compression="zstd")
            folder.write_bytes(rel, sink.getvalue().to_pybytes())
    return removed


def _mentions(folder: DataFolder, rel: str, needles) -> bool:
    try:
        data = folder.read_bytes(rel)
    except FileNotFoundError:
        return False
    return any(n and n.encode() in data for n in needles)


def _scrub_json(folder: DataFolder, rel: str, needles) -> None:
    """A JSON file (a run summary) with every value naming a forgotten call replaced by "forgotten"."""
    if not _mentions(folder, rel, needles):
        return
    try:
        doc = json.loads(folder.read_bytes(rel))
    except ValueError:
        folder.remove(rel)
        return
    needles = [n for n in needles if n]

    def scrub(x):
        if isinstance(x, dict):
            return {k: scrub(v) for k, v in x.items()}
        if isinstance(x, list):
            return [scrub(v) for v in x]
        if isinstance(x, str) and any(n in x for n in needles):
            return "forgotten"
        return x

    folder.write_text(rel, json.dumps(scrub(doc), indent=1, default=str))


def _reports(folder: DataFolder, weeks: set[str], ids: list[str], report: ForgetReport) -> None:
    if folder.is_uri:
        return
    from qa_pipeline.render.report import write_weekly_report

    have = set(folder.read_dataset("scorecards_weekly", ["iso_week"]).column("iso_week").to_pylist())
    for week in sorted(weeks):
        rel = f"{REPORTS_DIR}/weekly-{week}.html"
        if not folder.exists(rel):
            continue
        if week in have:
            write_weekly_report(folder.root, week, Path(folder.path(rel)))
            report.reports_rewritten.append(rel)
        else:
            folder.remove(rel)
            report.reports_deleted.append(rel)
    for rel in folder.glob(f"{REPORTS_DIR}/**/*"):
        if Path(folder.path(rel)).is_file() and _mentions(folder, rel, ids):
            folder.remove(rel)
            report.reports_deleted.append(rel)
            if rel in report.reports_rewritten:
                report.reports_rewritten.remove(rel)


def _packs(folder: DataFolder, ids: list[str], report: ForgetReport) -> None:
    hashes = {id_hash(c) for c in ids}
    with folder.lock("packs"):
        entries = read_registry(folder)
        keep = []
        for e in entries:
            if hashes & set(e.get("calls", ())):
                d = Path(e["dir"])
                if d.is_dir():
                    shutil.rmtree(d)
                report.packs_deleted.append(str(d))
            else:
                keep.append(e)
        if len(keep) != len(entries):
            folder.write_text(PACKS_REGISTRY, json.dumps(keep, indent=1))


def apply_retention(data_dir, config, *, today: dt.date | None = None, rubric: str | None = None,
                    erase=None) -> list[str]:
    """Erase the calls older than privacy.retention_days (their date before today - days); returns their ids.
    `erase(data_dir, ids)` does the erasing (default: `forget`; the nightly flow passes the one that also
    anonymises the review database). Nothing happens when no retention is set."""
    days = config.privacy.retention_days
    if not days:
        return []
    cutoff = (today or dt.datetime.now(dt.timezone.utc).date()) - dt.timedelta(days=days)
    ids = calls_before(data_dir, cutoff.isoformat())
    if ids:
        if erase is None:
            forget(data_dir, ids, rubric=rubric, reason=f"retention: older than {days} days")
        else:
            erase(data_dir, ids)
    return ids
