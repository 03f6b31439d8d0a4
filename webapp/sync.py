"""The queue index: the app database's copy of what the queue, its filters and scoping need from the datasets
(`call_index`: one row per call; `review_queue_items`: one row per thing to review), so a page of the queue is one
indexed SQL query at 100,000 calls instead of a scan of Parquet files.

What is indexed:

- every **flag** (`flags`), with its severity;
- every **automatically scored rubric item that lost points** (`call_scores` rows with points < max_points),
  target "criterion.item" as in the `reviews` dataset; severity medium when it lost all its points, low when
  some. Items scored in full are not queued (the lifecycle step can add them to an evaluation).

**Fragility** (0 = solid, 1 = fragile): how likely the automatic answer rests on a transcription or speaker
error. ASR part: 1 - (mean + min) / 2 of the word probabilities (`words`) inside the evidence span (the minimum
counts: one garbled word breaks a phrase match); without a span (e.g. a phrase that was never said), 1 - the mean
over the call's words; without words (imported transcripts), the utterances' `mean_probability`. Speaker part:
1 - `calls.role_confidence` (how sure the agent/customer split is). Fragility is the larger of the two; the parts
are stored beside it.

When: at server start, every `sync_interval_s` while it runs, and by `qa-pipeline db sync`. Incremental: a date
partition is re-read only when one of its dataset folders changed (`partition_markers`: the folders' mtimes
locally, their file lists on an object store), so a nightly run that adds a day re-reads that day. A re-read
partition's rows are replaced in one transaction; review states are then re-derived from the evaluations."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import threading
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pyarrow as pa
from sqlalchemy import delete, insert, select, text

from qa_pipeline.store.folder import DataFolder, as_folder
from webapp import queue
from webapp.db import Database
from webapp.models import CallIndex, ReviewQueueItem, SyncState, utcnow

log = logging.getLogger("webapp")

SYNC_DATASETS = ("calls", "flags", "call_scores", "words", "utterances")
PARTITION = "call_date"
SEVERITY_RANK = {"high": 0, "medium": 1, "low": 2}
CALL_COLUMNS = ["call_id", "path", "agent_id", "team", "campaign", "direction", "call_type", "started_at", "mode",
                "duration_s", "language", "role_confidence"]
_PG_SYNC_LOCK = 0x5157_5359  # pg_advisory_xact_lock key: one sync writes at a time


@dataclass(frozen=True, slots=True)
class SyncResult:
    partitions: int  # re-read
    removed: int  # partitions gone from the data folder
    calls: int
    items: int
    seconds: float


def partition_markers(folder: DataFolder) -> dict[str, str]:
    """call_date -> a marker that changes whenever a file of that date is added, replaced or removed in any of
    `SYNC_DATASETS`."""
    parts: dict[str, list[str]] = defaultdict(list)
    if folder.is_uri:
        for ds in SYNC_DATASETS:
            for rel in folder.glob(f"{ds}/{PARTITION}=*/*.parquet"):
                parts[rel.split("/")[1].split("=", 1)[1]].append(rel)
    else:
        for ds in SYNC_DATASETS:
            root = Path(folder.path(ds))
            if not root.is_dir():
                continue
            with os.scandir(root) as it:
                for e in it:
                    if e.is_dir() and e.name.startswith(f"{PARTITION}="):
                        parts[e.name.split("=", 1)[1]].append(f"{ds}:{e.stat().st_mtime_ns}")
    return {p: hashlib.sha1("\n".join(sorted(v)).encode()).hexdigest() for p, v in parts.items()}


def _iso_week(t: dt.datetime | None) -> str | None:
    if t is None:
        return None
    y, w, _ = t.astimezone(dt.timezone.utc).isocalendar()
    return f"{y}-W{w:02d}"


def _rows(table: pa.Table) -> list[dict]:
    return table.to_pylist()


class _Words:
    """A call's word probabilities by time, for span lookups."""

    def __init__(self, starts: np.ndarray, ends: np.ndarray, probs: np.ndarray):
        order = np.argsort(starts, kind="stable")
        self.starts, self.ends, self.probs = starts[order], ends[order], probs[order]

    def span(self, start: float, end: float) -> tuple[float | None, float | None]:
        """(mean, min) probability of the words overlapping [start, end]."""
        hi = np.searchsorted(self.starts, end, side="left")
        sel = self.ends[:hi] > start
        p = self.probs[:hi][sel]
        p = p[~np.isnan(p)]
        return (float(p.mean()), float(p.min())) if p.size else (None, None)

    def overall(self) -> float | None:
        p = self.probs[~np.isnan(self.probs)]
        return float(p.mean()) if p.size else None


def _words_by_call(table: pa.Table) -> dict[str, _Words]:
    if table.num_rows == 0:
        return {}
    ids = table.column("call_id").to_numpy(zero_copy_only=False)
    starts = table.column("start_s").to_numpy(zero_copy_only=False).astype(float)
    ends = table.column("end_s").to_numpy(zero_copy_only=False).astype(float)
    probs = np.array(table.column("probability").to_pylist(), dtype=float)  # nulls -> nan
    order = np.argsort(ids, kind="stable")
    ids, starts, ends, probs = ids[order], starts[order], ends[order], probs[order]
    out = {}
    bounds = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(ids)]):
        out[str(ids[lo])] = _Words(starts[lo:hi], ends[lo:hi], probs[lo:hi])
    return out


def fragility(asr_mean: float | None, asr_min: float | None, role_confidence: float | None) -> float:
    """See the module docstring: max(ASR part, speaker part), in [0, 1]."""
    asr = 0.0
    if asr_mean is not None:
        asr = 1.0 - (asr_mean + (asr_min if asr_min is not None else asr_mean)) / 2.0
    role = 1.0 - role_confidence if role_confidence is not None else 0.0
    return round(min(1.0, max(0.0, asr, role)), 4)


def build_partition(folder: DataFolder, call_date: str) -> tuple[list[dict], list[dict]]:
    """The call_index rows and review_queue_items rows of one date partition, from the datasets."""
    parts = [call_date]
    calls = _rows(folder.read_dataset("calls", CALL_COLUMNS, partitions=parts))
    flags = _rows(folder.read_dataset("flags", ["call_id", "flag_id", "flag_type", "severity", "reason",
                                                "utterance_index", "start_s", "end_s"], partitions=parts))
    scores = _rows(folder.read_dataset("call_scores", ["call_id", "criterion", "item", "points", "max_points",
                                                       "evidence"], partitions=parts))
    words = _words_by_call(folder.read_dataset("words", ["call_id", "start_s", "end_s", "probability"],
                                               partitions=parts))
    utts: dict[str, list[dict]] = defaultdict(list)
    for u in _rows(folder.read_dataset("utterances", ["call_id", "utterance_index", "start_s", "end_s",
                                                      "mean_probability"], partitions=parts)):
        utts[u["call_id"]].append(u)

    by_id = {c["call_id"]: c for c in calls}
    n_flags: dict[str, int] = defaultdict(int)
    for f in flags:
        n_flags[f["call_id"]] += 1

    def asr(call_id: str, start: float | None, end: float | None, utterance_index: int | None):
        w = words.get(call_id)
        if w is not None:
            if start is not None:
                mean, low = w.span(start, end if end is not None else start)
                if mean is not None:
                    return mean, low
            return w.overall(), None
        us = utts.get(call_id, [])
        if start is not None:
            us = [u for u in us if u["end_s"] > start and u["start_s"] < (end if end is not None else start)] or us
        ps = [u["mean_probability"] for u in us if u["mean_probability"] is not None]
        return (float(np.mean(ps)), float(np.min(ps))) if ps else (None, None)

    items: list[dict] = []

    def add(call: dict, **fields) -> None:
        mean, low = asr(call["call_id"], fields["start_s"], fields["end_s"], fields["utterance_index"])
        rc = call["role_confidence"]
        items.append(dict(call_id=call["call_id"], call_date=call_date, agent_id=call["agent_id"],
                          team=call["team"], iso_week=_iso_week(call["started_at"]),
                          started_at=call["started_at"], language=call["language"],
                          severity_rank=SEVERITY_RANK.get(fields["severity"], 3), asr_mean_prob=mean,
                          asr_min_prob=low, role_confidence=None if rc is None else float(rc),
                          fragility=fragility(mean, low, None if rc is None else float(rc)),
                          review_state="unreviewed", **fields))

    for f in flags:
        call = by_id.get(f["call_id"])
        if call is None:  # a call being rewritten: its calls row comes last, the next sync sees it
            continue
        add(call, target_type="flag", target_id=f["flag_id"], flag_type=f["flag_type"], criterion=None,
            item=None, severity=f["severity"], summary=f["reason"], start_s=f["start_s"], end_s=f["end_s"],
            utterance_index=f["utterance_index"])
    seen: set[tuple[str, str]] = set()
    for r in scores:
        call = by_id.get(r["call_id"])
        target = f"{r['criterion']}.{r['item']}"
        if call is None or r["points"] is None or r["points"] >= r["max_points"] or (r["call_id"], target) in seen:
            continue
        seen.add((r["call_id"], target))
        timed = [e for e in (r["evidence"] or []) if e.get("start_s") is not None]
        start = min((e["start_s"] for e in timed), default=None)
        end = max((e["end_s"] if e.get("end_s") is not None else e["start_s"] for e in timed), default=None)
        index = next((e["utterance_index"] for e in timed if e.get("utterance_index") is not None), None)
        lost_all = r["points"] <= 0
        add(call, target_type="item", target_id=target, flag_type=None, criterion=r["criterion"], item=r["item"],
            severity="medium" if lost_all else "low",
            summary=f"{r['points']:g} of {r['max_points']:g} points", start_s=start, end_s=end,
            utterance_index=index)

    index_rows = [dict(call_id=c["call_id"], call_date=call_date, agent_id=c["agent_id"], team=c["team"],
                       iso_week=_iso_week(c["started_at"]), started_at=c["started_at"], language=c["language"],
                       campaign=c["campaign"], call_type=c["call_type"], direction=c["direction"], mode=c["mode"],
                       duration_s=float(c["duration_s"]), path=c["path"],
                       role_confidence=None if c["role_confidence"] is None else float(c["role_confidence"]),
                       n_flags=n_flags.get(c["call_id"], 0))
                  for c in calls]
    return index_rows, items


def _chunks(xs: list, n: int = 500) -> Iterable[list]:
    for i in range(0, len(xs), n):
        yield xs[i:i + n]


class Syncer:
    """Keeps one database's queue index in step with one data folder (see the module docstring). Thread-safe:
    one sync at a time per process; on PostgreSQL also across processes (an advisory lock)."""

    def __init__(self, db: Database, data_dir, *, on_synced=None):
        self.db = db
        self.folder = as_folder(data_dir)
        self._lock = threading.Lock()
        self.on_synced = on_synced  # called with the SyncResult after a sync that changed something

    def stale(self) -> tuple[dict[str, str], list[str], list[str]]:
        """(markers, partitions to re-read, partitions to drop)."""
        markers = partition_markers(self.folder)
        with self.db.read() as s:
            known = {p: m for p, m in s.execute(select(SyncState.call_date, SyncState.marker))}
        changed = sorted(p for p, m in markers.items() if known.get(p) != m)
        gone = sorted(set(known) - set(markers))
        return markers, changed, gone

    def sync(self, *, full: bool = False) -> SyncResult:
        """Re-read the changed partitions (all of them with `full`)."""
        t0 = utcnow()
        with self._lock:
            markers, changed, gone = self.stale()
            if full:
                changed = sorted(markers)
            n_calls = n_items = 0
            for p in gone:
                with self.db.write() as s:
                    self._pg_lock(s)
                    s.execute(delete(ReviewQueueItem).where(ReviewQueueItem.call_date == p))
                    s.execute(delete(CallIndex).where(CallIndex.call_date == p))
                    s.execute(delete(SyncState).where(SyncState.call_date == p))
            for p in changed:
                index_rows, items = build_partition(self.folder, p)
                ids = [r["call_id"] for r in index_rows]
                with self.db.write() as s:
                    self._pg_lock(s)
                    s.execute(delete(ReviewQueueItem).where(ReviewQueueItem.call_date == p))
                    s.execute(delete(CallIndex).where(CallIndex.call_date == p))
                    for chunk in _chunks(ids):  # a call that moved here from another date
                        s.execute(delete(ReviewQueueItem).where(ReviewQueueItem.call_id.in_(chunk)))
                        s.execute(delete(CallIndex).where(CallIndex.call_id.in_(chunk)))
                    for chunk in _chunks(index_rows, 2000):
                        s.execute(insert(CallIndex), chunk)
                    for chunk in _chunks(items, 2000):
                        s.execute(insert(ReviewQueueItem), chunk)
                    queue.refresh_review_state(s, ids)
                    state = s.get(SyncState, p) or SyncState(call_date=p, marker="")
                    state.marker, state.synced_at = markers[p], utcnow()
                    state.calls, state.items = len(index_rows), len(items)
                    s.add(state)
                n_calls += len(index_rows)
                n_items += len(items)
        result = SyncResult(partitions=len(changed), removed=len(gone), calls=n_calls, items=n_items,
                            seconds=(utcnow() - t0).total_seconds())
        if changed or gone:
            self._analyze()
            log.info("queue index: %d date(s) re-read, %d removed, %d calls, %d items, %.1f s", result.partitions,
                     result.removed, result.calls, result.items, result.seconds)
            if self.on_synced:
                self.on_synced(result)
        return result

    def _analyze(self) -> None:
        """Fresh planner statistics for the index tables. SQLite has none until ANALYZE runs, and without them it
        picks a filter's index even when the filter matches nearly every row (state "unreviewed", a reviewer's
        teams): at 100,000 calls such a queue page took 2 s instead of 0.2 s."""
        with self.db.write() as s:
            for table in (ReviewQueueItem.__tablename__, CallIndex.__tablename__):
                s.execute(text(f"ANALYZE {table}"))

    def _pg_lock(self, s) -> None:
        if self.db.dialect == "postgresql":
            s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_SYNC_LOCK})
