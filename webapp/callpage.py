"""The call page's data and view model: one call's rows from the datasets (read through the query layer,
`qa_pipeline.store.queries.Queries`, only the call's date partition), turned into frozen records the templates
print. The flags, evidence and quotes reuse the report's view records (`qa_pipeline.render.weekly`: Quote,
EvidenceItem, FlagRow, CallInfo), so the shared partials render them the same way as in the weekly report."""

from __future__ import annotations

import contextlib
import queue as stdlib_queue
import threading
from dataclasses import dataclass
from typing import Iterator

from qa_pipeline.render.weekly import SEVERITY_ORDER, CallInfo, EvidenceItem, FlagRow, Quote
from qa_pipeline.store.folder import as_folder
from qa_pipeline.store.queries import Queries
from webapp.models import CallIndex

CALL_DATASETS = ("calls", "utterances", "flags", "compliance", "call_scores", "sentiment", "metrics", "events")


class Datasets:
    """The data folder, read through a small pool of `Queries` (a DuckDB connection each; one thread uses one at a
    time)."""

    def __init__(self, data_dir, *, size: int = 4):
        self.folder = as_folder(data_dir)
        self._pool: stdlib_queue.LifoQueue[Queries] = stdlib_queue.LifoQueue()
        self._size = size
        self._created = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def queries(self) -> Iterator[Queries]:
        try:
            q = self._pool.get_nowait()
        except stdlib_queue.Empty:
            with self._lock:
                create = self._created < self._size
                self._created += create
            q = Queries(self.folder, threads=1) if create else self._pool.get()
        try:
            yield q
        finally:
            self._pool.put(q)

    def close(self) -> None:
        while True:
            try:
                self._pool.get_nowait().close()
            except stdlib_queue.Empty:
                return

    def call_rows(self, call: CallIndex) -> dict[str, list[dict]]:
        """Every dataset's rows of one call (reading only its date partition)."""
        out = {}
        with self.queries() as q:
            for ds in CALL_DATASETS:
                out[ds] = q.table(ds, where="call_id = $id", params={"id": call.call_id},
                                  partitions=[call.call_date]).to_pylist()
        return out


@dataclass(frozen=True, slots=True)
class Line:
    """A transcript line."""
    index: int
    role: str
    speaker: str
    start_s: float
    end_s: float
    text: str
    sentiment_label: str | None
    mean_probability: float | None
    marks: tuple[str, ...]  # flag types and failed rules pointing at this line


@dataclass(frozen=True, slots=True)
class EvidenceTarget:
    """Something on the call with its evidence: a flag, a compliance rule or a scored item. `play_from_s` is where
    its evidence button starts playback (a second before the span: word timestamps are imprecise)."""
    kind: str  # flag / compliance / item
    target_id: str
    label: str
    severity: str | None
    result: str | None
    start_s: float | None
    end_s: float | None
    play_from_s: float | None
    flag: FlagRow | None = None
    evidence: tuple[EvidenceItem, ...] = ()
    points: float | None = None
    max_points: float | None = None


@dataclass(frozen=True, slots=True)
class CallPage:
    call: CallIndex
    info: CallInfo
    row: dict  # the calls row
    lines: tuple[Line, ...]
    flags: tuple[EvidenceTarget, ...]
    compliance: tuple[EvidenceTarget, ...]
    items: tuple[EvidenceTarget, ...]
    sentiment: tuple[dict, ...]
    metrics: dict | None
    events: tuple[dict, ...]


PLAY_LEAD_S = 1.0


def _play_from(start: float | None) -> float | None:
    return None if start is None else max(0.0, start - PLAY_LEAD_S)


def build_call_page(call: CallIndex, rows: dict[str, list[dict]]) -> CallPage:
    utts = {u["utterance_index"]: u for u in rows["utterances"]}

    def quote(index: int | None) -> Quote | None:
        if index is None:
            return None
        u = utts.get(index)
        if u is None:
            return Quote(call_id=call.call_id, index=index, stored=False)
        return Quote(call_id=call.call_id, index=index, stored=True, role=u["role"], text=u["text"],
                     start_s=u["start_s"], end_s=u["end_s"])

    marks: dict[int, list[str]] = {}
    flags = []
    for f in sorted(rows["flags"], key=lambda f: (SEVERITY_ORDER.get(f["severity"], 3),
                                                  f["start_s"] if f["start_s"] is not None else 1e9)):
        fr = FlagRow(call_id=call.call_id, flag_id=f["flag_id"], severity=f["severity"], flag_type=f["flag_type"],
                     reason=f["reason"], start_s=f["start_s"], end_s=f["end_s"], quote=quote(f["utterance_index"]))
        flags.append(EvidenceTarget(kind="flag", target_id=f["flag_id"], label=f["flag_type"],
                                    severity=f["severity"], result=None, start_s=f["start_s"], end_s=f["end_s"],
                                    play_from_s=_play_from(f["start_s"]), flag=fr))
        if f["utterance_index"] is not None:
            marks.setdefault(f["utterance_index"], []).append(f["flag_type"])
    compliance = []
    for r in sorted(rows["compliance"], key=lambda r: (r["result"] != "failed", r["phase"], r["rule_id"])):
        start, end = r["start_s"], r["end_s"]
        u = utts.get(r["utterance_index"]) if r["utterance_index"] is not None else None
        if start is None and u:
            start, end = u["start_s"], u["end_s"]
        ev = EvidenceItem(dataset="compliance", ref=r["rule_id"], note=r["matched_text"] or r["reason"] or None,
                          start_s=start, end_s=end, quote=quote(r["utterance_index"]))
        compliance.append(EvidenceTarget(kind="compliance", target_id=r["rule_id"], label=r["rule_id"],
                                         severity=r["severity"], result=r["result"], start_s=start, end_s=end,
                                         play_from_s=_play_from(start), evidence=(ev,)))
        if r["result"] == "failed" and r["utterance_index"] is not None:
            marks.setdefault(r["utterance_index"], []).append(r["rule_id"])
    items = []
    for r in sorted(rows["call_scores"], key=lambda r: (r["criterion"], r["item"])):
        evidence = []
        quoted: set = set()
        for e in r["evidence"] or []:
            index = e.get("utterance_index")
            start, end = e.get("start_s"), e.get("end_s")
            u = utts.get(index) if index is not None else None
            if start is None and u:
                start, end = u["start_s"], u["end_s"]
            evidence.append(EvidenceItem(dataset=e.get("dataset"), ref=e.get("ref"), note=e.get("note") or None,
                                         start_s=start, end_s=end,
                                         quote=None if index in quoted else quote(index)))
            quoted.add(index)
        start = min((e.start_s for e in evidence if e.start_s is not None), default=None)
        end = max((e.end_s for e in evidence if e.end_s is not None), default=None)
        items.append(EvidenceTarget(kind="item", target_id=f"{r['criterion']}.{r['item']}", label=r["item"],
                                    severity=None, result=None, start_s=start, end_s=end,
                                    play_from_s=_play_from(start), evidence=tuple(evidence), points=r["points"],
                                    max_points=r["max_points"]))
    lines = tuple(Line(index=u["utterance_index"], role=u["role"], speaker=u["speaker"], start_s=u["start_s"],
                       end_s=u["end_s"], text=u["text"], sentiment_label=u["sentiment_label"],
                       mean_probability=u["mean_probability"], marks=tuple(marks.get(u["utterance_index"], ())))
                  for u in sorted(rows["utterances"], key=lambda u: (u["start_s"], u["utterance_index"])))
    row = rows["calls"][0] if rows["calls"] else {}
    info = CallInfo(call_id=call.call_id, started_at=row.get("started_at"), call_type=row.get("call_type"),
                    direction=row.get("direction"), campaign=row.get("campaign"), duration_s=row.get("duration_s"),
                    outcome=row.get("outcome"))
    events = tuple(sorted(rows["events"], key=lambda e: (e["start_s"] if e["start_s"] is not None else 1e9)))
    return CallPage(call=call, info=info, row=row, lines=lines, flags=tuple(flags), compliance=tuple(compliance),
                    items=tuple(items), sentiment=tuple(rows["sentiment"]),
                    metrics=rows["metrics"][0] if rows["metrics"] else None, events=events)


def with_original_text(rows: dict[str, list[dict]], raw: list[dict]) -> dict[str, list[dict]]:
    """The call's rows with each utterance's text replaced by its original (`raw`: the call's rows of the
    restricted `utterances_raw`, `qa_pipeline.privacy.restricted.read_raw_utterances`), for a page built for one
    user who holds the unredacted permission (never cached: `CallPages` is shared by every user). Utterances without
    an original keep their stored (redacted) text."""
    original = {r["utterance_index"]: r["text"] for r in raw}
    utts = [{**u, "text": original[u["utterance_index"]]} if u["utterance_index"] in original else u
            for u in rows["utterances"]]
    return {**rows, "utterances": utts}


class CallPages:
    """Built call pages by call_id (an LRU of `max_entries`): the evaluation's htmx updates re-render the panel
    without reading the datasets again. Cleared by every sync that changed the index and after a swap."""

    def __init__(self, datasets: Datasets, *, max_entries: int = 256):
        import collections

        self.datasets = datasets
        self.max_entries = max_entries
        self._cache: collections.OrderedDict[str, CallPage] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, call: CallIndex) -> CallPage:
        with self._lock:
            page = self._cache.get(call.call_id)
            if page is not None:
                self._cache.move_to_end(call.call_id)
        if page is None or page.call.call_date != call.call_date:
            page = build_call_page(call, self.datasets.call_rows(call))
            with self._lock:
                self._cache[call.call_id] = page
                while len(self._cache) > self.max_entries:
                    self._cache.popitem(last=False)
        return page

    def forget(self, call_id: str) -> None:
        with self._lock:
            self._cache.pop(call_id, None)

    def clear(self, *_args) -> None:
        with self._lock:
            self._cache.clear()

    def flag_ids(self, call: CallIndex) -> set[str]:
        """The flag ids stored for the call now (read from its date partition, not the cache)."""
        with self.datasets.queries() as q:
            t = q.table("flags", ["flag_id"], where="call_id = $id", params={"id": call.call_id},
                        partitions=[call.call_date])
        return set(t.column("flag_id").to_pylist())
