"""Run a folder of calls into a data folder: skip what is done, isolate each call's failure, write atomically.

This is the library's batch loop; the Prefect flows (flows/) and the CLI both drive it one call at a time through
`process_path`, which takes and returns only paths, ids and small summaries."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from qa_pipeline.config import PipelineConfig
from qa_pipeline.errors import Errors, IngestError, QAPipelineError
from qa_pipeline.pipeline.ingest import describe, discover, load_manifest
from qa_pipeline.pipeline.process import process_call, reanalyse_stored
from qa_pipeline.pipeline.resources import ResourcePool, Resources
from qa_pipeline.pipeline.rows import CallResult, call_date_of
from qa_pipeline.store.folder import read_dataset, write_rows

log = logging.getLogger("qa_pipeline")


@dataclass(frozen=True, slots=True)
class Outcome:
    path: str
    status: str  # done / skipped / failed
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
        return (
            f"done {self.count('done')}, skipped {self.count('skipped')}{again}, failed {self.count('failed')}; "
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
    write_result(data_dir, reanalyse_stored(call_row, rows("utterances"), m_row, config, resources))


def write_result(data_dir: str | Path, result: CallResult) -> None:
    """Every dataset file of one call; the `calls` row last (it marks the call complete). A re-analysis result
    carries no words or metrics: those files stay as they are."""
    cid = result.calls["call_id"]
    write_rows(data_dir, "utterances", result.call_date, cid, result.utterances)
    if result.words or result.metrics:
        write_rows(data_dir, "words", result.call_date, cid, result.words)
        write_rows(data_dir, "metrics", result.call_date, cid, [result.metrics])
    for name, rows in result.analysis.items():
        write_rows(data_dir, name, result.call_date, cid, rows)
    write_rows(data_dir, "calls", result.call_date, cid, [result.calls])


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
    # one row per (file content or path, stage, code): the same failure on a rerun replaces its row
    failure_id = hashlib.sha256(f"{sha or path}|{stage}|{code}".encode()).hexdigest()[:20]
    message = str(err) if known else Errors.E999.format(kind=type(err).__name__, error=err)
    write_rows(
        data_dir,
        "failures",
        call_date,
        failure_id,
        [dict(failure_id=failure_id, path=path, call_id=call_id, audio_sha256=sha, stage=stage, error_code=code,
              message=message, failed_at=dt.datetime.now(dt.timezone.utc), config_hash=config_hash)],
    )


def process_path(path: str, calls_dir: str, data_dir: str, config: PipelineConfig, pool: ResourcePool, *,
                 force: bool = False, done: dict | None = None, source: str | None = None,
                 reraise: Callable[[Exception], bool] | None = None) -> Outcome:
    """Process one file of `calls_dir` into `data_dir`; never raises for a bad call (it is recorded).

    Args:
        pool: the caller's loaded resources (one pool per process; nothing is loaded per call).
        source: where the file really lives when `path` is a local copy of it (an object-store URI); stored as
            the call's `path`.
        reraise: errors for which it returns True are raised, not recorded (the caller retries transient I/O
            and records the failure itself once retries are spent).
    """
    from qa_pipeline.pipeline.ingest import file_sha256
    from qa_pipeline.pipeline.transcripts import import_transcript

    p = Path(path)
    meta = None
    try:
        if p.name.endswith(".transcript.json"):
            index = done if done is not None else done_index(data_dir)
            previous = index.get(file_sha256(p))
            if plan("transcript", previous, config, force=force) == SKIP:
                return Outcome(path, "skipped", previous[0], 0.0, "already imported")
            result = import_transcript(p, config, pool.for_config(config), source=source)
            write_result(data_dir, result)
            return Outcome(path, "done", result.calls["call_id"], 0.0)
        manifest = load_manifest(Path(calls_dir), config.ingest)
        try:
            meta = describe(p, Path(calls_dir), manifest, config.ingest)
        except FileNotFoundError as e:
            raise IngestError(Errors.E104, path=p, when="before it could be read") from e
        index = done if done is not None else done_index(data_dir)
        previous = index.get(meta.audio_sha256)
        need = plan("audio", previous, config, force=force)
        if need == SKIP:
            return Outcome(path, "skipped", previous[0], 0.0, "already processed")
        if need == REANALYSE:
            reanalyse(data_dir, previous[0], config, pool.for_config(config))
            return Outcome(path, "reanalysed", previous[0], 0.0, "analysis changed: re-analysed stored transcript")
        result = process_call(meta, config, pool.for_config(config), source=source)
        write_result(data_dir, result)
        return Outcome(path, "done", meta.call_id, result.calls["duration_s"])
    except Exception as e:  # noqa: BLE001 - one bad call must never stop the batch; it is recorded
        if reraise is not None and reraise(e):
            raise
        if isinstance(e, FileNotFoundError):
            e = IngestError(Errors.E104, path=p, when="during processing")
        log.warning("%s failed: %s", path, e, exc_info=not isinstance(e, QAPipelineError))
        record_failure(
            data_dir, source or path, e,
            call_id=meta.call_id if meta else None,
            sha=meta.audio_sha256 if meta else None,
            call_date=call_date_of(meta) if meta else "unknown",
            config_hash=config.hash(),
        )
        return Outcome(path, "failed", meta.call_id if meta else None, 0.0, str(e))


class _WorkerState:
    """The resources of one worker process of `run_folder` (set by its initializer, used by every call it runs)."""

    pool: ResourcePool | None = None


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
) -> RunSummary:
    """Process every call in `calls_dir`. With config.workers > 1, calls run in parallel worker processes (each
    with its own ResourcePool); `pool`, if given, is used in this process (e.g. models already loaded)."""
    start = time.perf_counter()
    files = [str(f.path) for f in discover(calls_dir, config.ingest)]
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    summary = RunSummary()
    done = done_index(data_dir)
    if config.workers <= 1:
        pool = pool or ResourcePool()
        for f in files:
            o = process_path(f, str(calls_dir), str(data_dir), config, pool, force=force, done=done)
            summary.outcomes.append(o)
            if progress:
                progress(o)
    else:
        from concurrent.futures import ProcessPoolExecutor, as_completed
        import multiprocessing

        threads = max(1, (os.cpu_count() or 2) // config.workers)
        cfg = config if config.asr.cpu_threads else _with_threads(config, threads)
        with ProcessPoolExecutor(config.workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_worker_init, initargs=(threads,)) as executor:
            futures = [executor.submit(_process_in_worker, f, str(calls_dir), str(data_dir), cfg, force=force,
                                       done=done) for f in files]
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
