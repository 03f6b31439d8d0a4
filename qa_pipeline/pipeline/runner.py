"""Run a folder of calls into a data folder: skip what is done, isolate each call's failure, write atomically.

This is the library's batch loop; the Prefect flows (flows/) and the CLI both drive it one call at a time through
`process_path`, which takes and returns only paths, ids and small summaries."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import socket
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from qa_pipeline.config import IngestOptions, PipelineConfig
from qa_pipeline.errors import Errors, IngestError, QAPipelineError
from qa_pipeline.pipeline.audio_redaction import redact_call_audio
from qa_pipeline.pipeline.ingest import discover
from qa_pipeline.pipeline.process import process_call, reanalyse_stored
from qa_pipeline.pipeline.resources import ResourcePool, Resources
from qa_pipeline.pipeline.rows import CallResult, call_date_of
from qa_pipeline.privacy.restricted import raw_texts, remove_raw_utterances, write_raw_utterances
from qa_pipeline.store.folder import (
    DataFolder,
    is_uri,
    make_private_dirs,
    partition_of,
    read_dataset,
    remove_key,
    write_rows,
)
from qa_pipeline.store.keys import file_key
from qa_pipeline.store.schema import ANALYSIS_DATASETS
from qa_pipeline.types import CallMeta

log = logging.getLogger("qa_pipeline")


@dataclass(frozen=True, slots=True)
class Outcome:
    path: str
    status: str  # done / skipped / reanalysed / waiting (still being written: next run) / failed
    call_id: str | None = None
    audio_s: float = 0.0
    message: str = ""


@dataclass
class RunSummary:
    outcomes: list[Outcome] = field(default_factory=list)
    wall_s: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def audio_s(self) -> float:
        return sum(o.audio_s for o in self.outcomes if o.status == "done")

    def text(self) -> str:
        hours = self.audio_s / 3600
        speed = self.audio_s / self.wall_s if self.wall_s > 0 else 0.0
        again = f", re-analysed {self.count('reanalysed')}" if self.count("reanalysed") else ""
        waiting = f", waiting {self.count('waiting')}" if self.count("waiting") else ""
        return (
            f"done {self.count('done')}, skipped {self.count('skipped')}{again}{waiting}, "
            f"failed {self.count('failed')}; "
            f"audio {hours:.2f} h in {self.wall_s:.0f} s wall ({speed:.1f}x realtime)"
        )


def done_index(data_dir: str | Path) -> dict[str, tuple[str, str, str | None]]:
    """audio_sha256 -> (call_id, config_hash, analysis_hash) of every completed call."""
    names = ("audio_sha256", "call_id", "config_hash", "analysis_hash")
    table = read_dataset(data_dir, "calls", list(names))
    return {s: (c, h, a) for s, c, h, a in zip(*(table.column(n).to_pylist() for n in names))}


SKIP, REANALYSE, PROCESS = "skip", "reanalyse", "process"


def plan(kind: str, previous: tuple | None, config: PipelineConfig, *, force: bool = False) -> str:
    """What a found file needs: SKIP (done with this configuration), REANALYSE (transcribed with this
    configuration but analysed with another: re-run only the analysis) or PROCESS. The one place this is decided:
    the library loop and the flow's discovery both call it.

    Args:
        kind: "audio" or "transcript" (an imported transcript has no transcription settings).
        previous: the done-index entry (call_id, config_hash, analysis_hash) of the same content, or None.
    """
    if previous is None or force:
        return PROCESS
    _, config_hash, analysis_hash = previous
    if kind == "transcript":
        return SKIP if analysis_hash == config.analysis_hash() else PROCESS
    if config_hash != config.hash():
        return PROCESS
    return SKIP if analysis_hash == config.analysis_hash() else REANALYSE


def reanalyse(data_dir: str | Path, call_id: str, config: PipelineConfig, resources: Resources) -> None:
    """Re-run only the analysis of a stored call (scripts, lexicons or analysis options changed)."""
    import pyarrow.compute as pc

    def rows(name):
        t = read_dataset(data_dir, name)
        return t.filter(pc.equal(t.column("call_id"), call_id)).to_pylist()

    (call_row,) = rows("calls")
    (m_row,) = rows("metrics")
    raw = raw_texts(data_dir, call_id) if config.privacy.keep_raw_text else {}
    write_result(data_dir, reanalyse_stored(call_row, rows("utterances"), m_row, config, resources,
                                            pii_rows=rows("pii") if raw else None, raw_texts=raw))


PER_CALL_DATASETS = ("calls", "utterances", "words", "metrics", *ANALYSIS_DATASETS, "pii", "redactions")
"""The datasets holding one file per call, keyed by its call_id."""


def write_result(data_dir: str | Path, result: CallResult, *, replaces: dict | None = None) -> None:
    """Every dataset file of one call; the `calls` row last (it marks the call complete). A re-analysis result
    carries no words or metrics: those files stay as they are.

    Args:
        replaces: the stored `calls` row of another recording with this call_id that this call replaces
            (`--replace`): its calls row goes first (it is no longer complete), then every per-call dataset file
            of the id is replaced or removed, in every date partition.
    """
    cid = result.calls["call_id"]
    if replaces is not None:
        log.warning("call_id %s: replacing the stored call (sha256 %s, %s) with %s (sha256 %s)", cid,
                    replaces.get("audio_sha256"), replaces.get("path"), result.calls["path"],
                    result.calls["audio_sha256"])
        remove_key(data_dir, "calls", cid)
    written = {"utterances"}
    write_rows(data_dir, "utterances", result.call_date, cid, result.utterances)
    if result.words or result.metrics:
        write_rows(data_dir, "words", result.call_date, cid, result.words)
        write_rows(data_dir, "metrics", result.call_date, cid, [result.metrics])
        written |= {"words", "metrics"}
    for name, rows in result.analysis.items():
        write_rows(data_dir, name, result.call_date, cid, rows)
        written.add(name)
    if result.pii is not None:  # a processed call (a re-analysis leaves its findings and original text as they are)
        write_rows(data_dir, "pii", result.call_date, cid, result.pii)
        written.add("pii")
        if result.raw_utterances is not None:  # privacy.keep_raw_text: owner-only, <data>/_restricted/
            write_raw_utterances(data_dir, result.call_date, cid, result.raw_utterances)
        else:
            remove_raw_utterances(data_dir, cid)
    elif replaces is not None:
        remove_raw_utterances(data_dir, cid)
    if result.redactions:  # the audio redaction report (its copy is written already)
        write_rows(data_dir, "redactions", result.call_date, cid, result.redactions)
        written.add("redactions")
    if replaces is not None:
        for name in PER_CALL_DATASETS:
            if name != "calls" and name not in written:
                remove_key(data_dir, name, cid)
    write_rows(data_dir, "calls", result.call_date, cid, [result.calls])
    if replaces is not None:  # the refusal of this recording (E120) is resolved
        remove_key(data_dir, "failures", failure_id(result.calls["audio_sha256"], "ingest", Errors.E120.code))


def failure_id(sha_or_path: str, stage: str, code: str) -> str:
    """The key of a failure row: one row per (file content or path, stage, code), so the same failure on a
    rerun replaces its row."""
    return hashlib.sha256(f"{sha_or_path}|{stage}|{code}".encode()).hexdigest()[:20]


def record_failure(
    data_dir: str | Path,
    path: str,
    err: Exception,
    *,
    call_id: str | None = None,
    sha: str | None = None,
    call_date: str = "unknown",
    config_hash: str | None = None,
) -> None:
    known = isinstance(err, QAPipelineError)
    code = err.code if known else Errors.E999.code  # E999: not a coded failure, a bug
    stage = err.stage if known else "pipeline"
    fid = failure_id(sha or path, stage, code)
    message = str(err) if known else Errors.E999.format(kind=type(err).__name__, error=err)
    write_rows(
        data_dir,
        "failures",
        call_date,
        fid,
        [dict(failure_id=fid, path=path, call_id=call_id, audio_sha256=sha, stage=stage, error_code=code,
              message=message, failed_at=dt.datetime.now(dt.timezone.utc), config_hash=config_hash)],
    )


# ---- call identity: one call_id, one content ---------------------------------------------------------------


def _data_fs(data_dir: str | Path):
    """(fsspec filesystem, root path inside it) of a data folder, local or an object-store URI."""
    from fsspec.core import url_to_fs

    fs, root = url_to_fs(str(data_dir))
    if is_uri(str(data_dir)):
        fs.invalidate_cache()  # another process may have written since this one last listed
    return fs, root.rstrip("/")


def stored_call(data_dir: str | Path, call_id: str) -> dict | None:
    """The stored `calls` row (call_id, audio_sha256, path) of `call_id`, or None.

    Reads that call's own file only (`calls/call_date=*/<file key>.parquet`): one small read per call, right
    before its files are written, so it also sees the calls written earlier in the same run or by another
    worker (a snapshot taken at the start of the run would not)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, root = _data_fs(data_dir)
    for path in sorted(fs.glob(f"{root}/calls/{partition_of('calls')}=*/{file_key(call_id)}.parquet")):
        try:
            with fs.open(path, "rb") as f:
                rows = pq.read_table(f, columns=["call_id", "audio_sha256", "path"]).to_pylist()
        except FileNotFoundError:
            continue  # replaced or removed meanwhile
        except (pa.ArrowException, OSError, ValueError, KeyError) as e:
            log.warning("%s cannot be read (%s): call_id %s taken as not stored", path, e, call_id)
            continue
        for row in rows:
            if row["call_id"] == call_id:
                return row
    return None


def bind_call_id(data_dir: str | Path, meta: CallMeta, *, replace: bool = False) -> dict | None:
    """Check that meta.call_id is free or already bound to this content (meta.audio_sha256).

    Returns the stored call this one replaces (another content, `replace` given), else None.

    Raises:
        IngestError: E120, the call_id is bound to other content and `replace` is not given.
    """
    stored = stored_call(data_dir, meta.call_id)
    if stored is None or stored["audio_sha256"] == meta.audio_sha256:
        return None
    if not replace:
        raise IngestError(Errors.E120, call_id=meta.call_id, stored_sha=stored["audio_sha256"],
                          stored_path=stored["path"], sha=meta.audio_sha256)
    return stored


# ---- files that kill the worker: in-progress markers ---------------------------------------------------------

INPROGRESS_DIR = "_inprogress"
_PROCESS_TOKEN = uuid.uuid4().hex  # tells this process from an earlier one that had the same pid (a container)


def _marker_alive(marker: dict) -> bool:
    """True when the marker's writer is another process still running on this machine (another run working on
    the same file: not a crash). A writer on another machine cannot be checked: its attempt counts."""
    pid = marker.get("pid")
    if marker.get("host") != socket.gethostname() or not isinstance(pid, int) or not 0 < pid < 2 ** 31:
        return False
    if pid == os.getpid():  # this process (another thread on the same content), or an earlier life of its pid
        return marker.get("token") == _PROCESS_TOKEN
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True


def begin_attempt(data_dir: str | Path, sha: str, path: str, options: IngestOptions) -> str:
    """Leave `<data>/_inprogress/<sha>.json` (attempts, pid, host, started_at, path) while a file is processed;
    returns its location, for end_attempt. A marker found here is an attempt that never ended: the worker died
    (segfault, out-of-memory kill, kill -9).

    Raises:
        IngestError: E127, the file's attempts reached ingest.max_attempts: it is set aside (the marker stays, so
            every later run records the same failure without touching the file, until the marker is deleted).
    """
    fs, root = _data_fs(data_dir)
    marker = f"{root}/{INPROGRESS_DIR}/{sha}.json"
    shown = f"{str(data_dir).rstrip('/')}/{INPROGRESS_DIR}/{sha}.json"
    try:
        old = json.loads(fs.cat_file(marker))
        old = old if isinstance(old, dict) else {}
    except FileNotFoundError:
        old = None
    except (ValueError, OSError):
        old = {}  # a torn marker: the attempt that wrote it counts
    attempts = 0
    if old is not None:
        try:
            attempts = max(1, int(old.get("attempts", 1)))
        except (TypeError, ValueError):
            attempts = 1
    if attempts >= options.max_attempts and not _marker_alive(old or {}):
        raise IngestError(Errors.E127, path=path, attempts=attempts, pid=(old or {}).get("pid"),
                          host=(old or {}).get("host"), started_at=(old or {}).get("started_at"), marker=shown)
    DataFolder(data_dir).write_text(f"{INPROGRESS_DIR}/{sha}.json", json.dumps({
        "attempts": attempts + 1, "pid": os.getpid(), "host": socket.gethostname(), "token": _PROCESS_TOKEN,
        "path": path, "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}))
    return marker


def end_attempt(data_dir: str | Path, marker: str) -> None:
    """The attempt ended (done, or its failure recorded): its marker goes."""
    fs, _ = _data_fs(data_dir)
    try:
        fs.rm_file(marker)
    except FileNotFoundError:
        pass
    except Exception as e:  # noqa: BLE001 - the call is written: a leftover marker only counts one attempt more
        log.warning("could not remove the in-progress marker %s: %s", marker, e)


def _look(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


# ---- one file ---------------------------------------------------------------------------------------------------


def process_path(path: str, calls_dir: str, data_dir: str, config: PipelineConfig, pool: ResourcePool, *,
                 force: bool = False, done: dict | None = None, source: str | None = None,
                 reraise: Callable[[Exception], bool] | None = None, replace: bool = False,
                 name_unique: bool | None = None) -> Outcome:
    """Process one file of `calls_dir` into `data_dir`; never raises for a bad call (it is recorded).

    A file modified less than ingest.min_age_s ago, or whose size or modification time changes while it is read,
    is left for the next run (outcome "waiting"). While a file is processed its in-progress marker stays in
    `<data>/_inprogress/` (see begin_attempt).

    Args:
        pool: the caller's loaded resources (one pool per process; nothing is loaded per call).
        source: where the file really lives when `path` is a local copy of it (an object-store URI); stored as
            the call's `path`.
        reraise: errors for which it returns True are raised, not recorded (the caller retries transient I/O
            and records the failure itself once retries are spent).
        replace: a call_id stored with other content is replaced by this file (else: E120).
        name_unique: whether the file's name is unique in `calls_dir` (for bare-name manifest rows; None: the
            folder is listed when that matters).
    """
    from qa_pipeline.pipeline import ingest
    from qa_pipeline.pipeline.transcripts import import_transcript

    p = Path(path)
    transcript = p.name.endswith(".transcript.json")
    described: list[CallMeta] = []
    sha = None
    marker = None
    try:
        try:
            first = _look(p)
            age = time.time() - first[1] / 1e9  # a time more than an hour ahead is a wrong clock, not a copy
            if source is None and config.ingest.min_age_s > 0 and -3600.0 < age < config.ingest.min_age_s:
                return Outcome(path, "waiting", None, 0.0, f"modified {max(age, 0.0):.0f} s ago (ingest.min_age_s = "
                                                          f"{config.ingest.min_age_s:g}): left for the next run")
            if transcript:
                sha = ingest.file_sha256(p)
            else:
                manifest = ingest.load_manifest(Path(calls_dir), config.ingest)
                described.append(ingest.describe(p, Path(calls_dir), manifest, config.ingest,
                                                 name_unique=name_unique))
                sha = described[0].audio_sha256
            if _look(p) != first:
                return Outcome(path, "waiting", None, 0.0, "its size or modification time changed while it was "
                                                           "read (still being written?): left for the next run")
        except FileNotFoundError as e:
            raise IngestError(Errors.E104, path=p, when="before it could be read") from e
        except QAPipelineError:
            raise
        except OSError as e:  # permission denied, EIO...: this file's failure, not the run's
            if reraise is not None and reraise(e):
                raise
            raise IngestError(Errors.E126, path=p, error=e) from e
        index = done if done is not None else done_index(data_dir)
        previous = index.get(sha)
        need = plan("transcript" if transcript else "audio", previous, config, force=force)
        if need == SKIP:
            return Outcome(path, "skipped", previous[0], 0.0, "already imported" if transcript else "already processed")
        marker = begin_attempt(data_dir, sha, source or path, config.ingest)
        if need == REANALYSE:
            reanalyse(data_dir, previous[0], config, pool.for_config(config))
            return Outcome(path, "reanalysed", previous[0], 0.0, "analysis changed: re-analysed stored transcript")
        replaces: list[dict | None] = []

        def bind(meta: CallMeta) -> None:
            described.append(meta)
            replaces.append(bind_call_id(data_dir, meta, replace=replace))

        if transcript:
            result = import_transcript(p, config, pool.for_config(config), source=source, check=bind)
            write_result(data_dir, result, replaces=replaces[0])
            return Outcome(path, "done", result.calls["call_id"], 0.0)
        bind(described[0])  # before any decoding: a refused recording costs nothing
        result = process_call(described[0], config, pool.for_config(config), source=source)
        result = redact_call_audio(data_dir, result, str(p), config, pool.for_config(config),
                                   campaign=described[0].campaign)
        write_result(data_dir, result, replaces=replaces[0])
        return Outcome(path, "done", described[0].call_id, result.calls["duration_s"])
    except Exception as e:  # noqa: BLE001 - one bad call must never stop the batch; it is recorded
        if reraise is not None and reraise(e):
            raise
        if isinstance(e, FileNotFoundError):
            e = IngestError(Errors.E104, path=p, when="during processing")
        log.warning("%s failed: %s", path, e, exc_info=not isinstance(e, QAPipelineError))
        meta = described[-1] if described else None
        record_failure(
            data_dir, source or path, e,
            call_id=meta.call_id if meta else None,
            sha=meta.audio_sha256 if meta else sha,
            call_date=call_date_of(meta) if meta else "unknown",
            config_hash=config.hash(),
        )
        return Outcome(path, "failed", meta.call_id if meta else None, 0.0, str(e))
    finally:
        if marker is not None:  # done, or its failure recorded (or raised to be retried): not a crash
            end_attempt(data_dir, marker)


class _WorkerState:
    """The resources of one worker process of `run_folder` (set by its initializer, used by every call it runs)."""

    pool: ResourcePool | None = None


WORKER_MEMORY_GB = 2.5  # what one worker may hold: Whisper models, spaCy, Presidio, the diarizer of a mono call, and
# a long call's audio (a 2-hour stereo call peaked at 1.9 GB in one process)


def auto_workers(config: PipelineConfig, n_calls: int | None) -> int:
    """Worker processes for a folder run when none are configured. On the CPU one per core, each CTranslate2 on
    one thread: the stages around ASR (decoding, PII detection, redaction, roles, analysis) are single-threaded,
    so one process leaves a core idle most of a call (6 real stereo calls of 140 s on 2 cores: one 2-thread
    process 44.1 s, two 1-thread workers 30.1 s, start-up included). At most one per call, and one per
    WORKER_MEMORY_GB of available memory. On a GPU one: the device is what they would share."""
    if config.asr.device != "cpu":
        return 1
    n = usable_cpus()
    try:
        import psutil

        n = min(n, int(psutil.virtual_memory().available / 1e9 // WORKER_MEMORY_GB))
    except ImportError:  # pragma: no cover - psutil comes with Dask
        pass
    if n_calls is not None:
        n = min(n, n_calls)
    return max(1, n)


def usable_cpus() -> int:
    """The cores this process may run on: its affinity mask, within a container's CPU quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(cores, _cgroup_cpus() or cores)


def _cgroup_cpus(path: str = "/sys/fs/cgroup/cpu.max") -> int | None:
    """Whole CPUs a container's CPU quota allows (cgroup v2 `cpu.max`: "QUOTA PERIOD" or "max PERIOD"); None when
    there is no quota: the affinity mask then tells the cores."""
    try:
        quota, period = Path(path).read_text().split()[:2]
        return None if quota == "max" else max(1, int(int(quota) // int(period)))
    except (OSError, ValueError):
        return None


def _worker_init(threads: int) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)
    _WorkerState.pool = ResourcePool()


def _process_in_worker(path: str, calls_dir: str, data_dir: str, config: PipelineConfig, **kw) -> Outcome:
    return process_path(path, calls_dir, data_dir, config, _WorkerState.pool, **kw)


def run_folder(
    calls_dir: str | Path,
    data_dir: str | Path,
    config: PipelineConfig,
    *,
    progress: Callable[[Outcome], None] | None = None,
    force: bool = False,
    pool: ResourcePool | None = None,
    replace: bool = False,
) -> RunSummary:
    """Process every call in `calls_dir`. With config.workers > 1, calls run in parallel worker processes (each
    with its own ResourcePool); `pool`, if given, is used in this process (e.g. models already loaded).
    `replace`: a file whose call_id is stored with other content replaces that call (else it fails, E120)."""
    start = time.perf_counter()
    files = [str(f.path) for f in discover(calls_dir, config.ingest)]
    names = Counter(Path(f).name for f in files)
    make_private_dirs(Path(data_dir))
    summary = RunSummary()
    done = done_index(data_dir)
    workers = config.workers or 1
    if workers <= 1:
        pool = pool or ResourcePool()
        for f in files:
            o = process_path(f, str(calls_dir), str(data_dir), config, pool, force=force, done=done,
                             replace=replace, name_unique=names[Path(f).name] == 1)
            summary.outcomes.append(o)
            if progress:
                progress(o)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        threads = max(1, usable_cpus() // workers)
        cfg = config if config.asr.cpu_threads else _with_threads(config, threads)
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_worker_init, initargs=(threads,)) as executor:
            futures = [executor.submit(_process_in_worker, f, str(calls_dir), str(data_dir), cfg, force=force,
                                       done=done, replace=replace, name_unique=names[Path(f).name] == 1)
                       for f in files]
            for fut in as_completed(futures):
                o = fut.result()
                summary.outcomes.append(o)
                if progress:
                    progress(o)
    summary.wall_s = time.perf_counter() - start
    return summary


def _with_threads(config: PipelineConfig, threads: int) -> PipelineConfig:
    from dataclasses import replace

    return replace(config, asr=replace(config.asr, cpu_threads=threads))
