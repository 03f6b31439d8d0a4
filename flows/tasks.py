"""Thin Prefect tasks over `qa_pipeline`. They pass paths, ids and small dicts, never audio or tables.

Retries are for transient I/O only (a network blip while fetching a call from object storage, a flaky NFS write):
`retry_condition_fn` lets every other error through at once. A bad recording is not an error here at all: the
library records it in the `failures` dataset and the task returns a "failed" outcome, so the flow goes on."""

from __future__ import annotations

import errno
import logging
import os
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from flows.objects import (
    Staging,
    StoredObject,
    clean_stale_staging,
    list_objects,
    load_index,
    local_path,
    record_object,
    relative_key,
)
from qa_pipeline import QAPipelineError, load_config
from qa_pipeline.config import PipelineConfig
from qa_pipeline.errors import Errors, IngestError
from qa_pipeline.pipeline.ingest import discover, file_sha256
from qa_pipeline.pipeline.resources import ResourcePool
from qa_pipeline.pipeline.runner import SKIP, Outcome, done_index, plan, process_path, record_failure
from qa_pipeline.store.folder import DataFolder, clean_stale_temp_files, is_uri

_TRANSIENT_ERRNOS = {
    errno.EIO, errno.EAGAIN, errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED,
    errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EPIPE, errno.ESTALE,
}
# network errors of the object-store clients, by name (botocore / aiohttp are optional imports)
_TRANSIENT_NAMES = {
    "EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError",
    "ClientOSError", "ServerDisconnectedError", "ServerTimeoutError",
}


def is_transient_io(exc: BaseException) -> bool:
    """True for I/O errors worth retrying; never for a coded pipeline error or a missing/forbidden file."""
    if isinstance(exc, QAPipelineError):
        return False
    if isinstance(exc, (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)):
        return False
    if isinstance(exc, (ConnectionError, TimeoutError)) or type(exc).__name__ in _TRANSIENT_NAMES:
        return True
    return isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS


def _retry_on_transient_io(task, task_run, state) -> bool:
    try:
        state.result()
    except Exception as e:  # noqa: BLE001 - inspecting the failure, not handling it
        return is_transient_io(e)
    return False


IO_RETRIES = dict(
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),  # 2, 4, 8 s
    retry_jitter_factor=0.5,
    retry_condition_fn=_retry_on_transient_io,
)


def config_of(config_path: str | None, overrides: dict | None) -> PipelineConfig:
    """The PipelineConfig of a task, from a path and small overrides (tasks pass these, never the object)."""
    return load_config(config_path, dict(overrides or {}))


# The loaded models and analysis resources of this worker process, shared by its task threads (the pool is
# thread-safe and keyed by what selects the weights), so a worker loads each model once, not once per call.
_WORKER_POOL = ResourcePool()


def worker_pool() -> ResourcePool:
    """This process's pool. A function, so that Dask pickles tasks by reference to it, never the pool itself."""
    return _WORKER_POOL


def init_process_worker(threads: int, config_path: str | None, overrides: dict | None,
                        languages: tuple[str | None, ...]) -> None:
    """A local worker process's start (the `process` task runner's initializer): the math libraries get their
    share of the cores, then the models and analysis resources load at once, while the other workers start, not
    on the first call. A failed load is met again, and recorded, by the call that needs it."""
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[k] = str(threads)
    try:
        worker_pool().warm(config_of(config_path, overrides), languages)
    except Exception as e:  # noqa: BLE001 - loading ahead is an optimisation (see above)
        logging.getLogger("qa_pipeline").debug("loading ahead failed: %s", e)


# ---- discovery ------------------------------------------------------------------------------------------------


@task(name="discover-calls", cache_policy=NO_CACHE, **IO_RETRIES)
def discover_calls(calls_dir: str, data_dir: str, config_path: str | None = None, overrides: dict | None = None,
                   *, force: bool = False) -> dict:
    """New work in `calls_dir`: {"todo": [item], "skipped": [outcome]}. Also removes dead writers' temp files.

    An item is {"path", "source", "previous"}: `previous` is the done-index entry of the same audio (so the task can
    re-analyse instead of re-transcribe), None for a new call. Object-store calls are listed here and hashed by the
    per-call task after it fetched them."""
    config = config_of(config_path, overrides)
    removed = clean_stale_temp_files(data_dir)
    clean_stale_staging()
    if is_uri(calls_dir):
        return _discover_objects(calls_dir, data_dir, config, force=force) | {
            "stale_temp_files_removed": len(removed)}
    done = done_index(data_dir)
    todo, skipped = [], []
    found_files = discover(calls_dir, config.ingest)
    names = Counter(f.path.name for f in found_files)  # bare-name manifest rows need a unique name
    for found in found_files:
        path = str(found.path)
        unique = names[found.path.name] == 1
        try:
            sha = file_sha256(found.path)
        except OSError:  # vanished, permission denied, EIO: its task records it (after retrying transient I/O)
            todo.append({"path": path, "source": None, "previous": None, "name_unique": unique})
            continue
        previous = done.get(sha)
        need = plan("transcript" if found.kind == "transcript" else "audio", previous, config, force=force)
        if need == SKIP:
            skipped.append({"path": path, "status": "skipped", "call_id": previous[0], "audio_s": 0.0,
                            "message": "already processed"})
        else:
            todo.append({"path": path, "source": None, "previous": list(previous) if previous else None,
                         "sha": sha, "need": need, "name_unique": unique})
    return {"todo": todo, "skipped": skipped, "stale_temp_files_removed": len(removed)}


def _discover_objects(calls_dir: str, data_dir: str, config: PipelineConfig, *, force: bool) -> dict:
    """Object-store calls: an object whose size and ETag match what was fetched before, and whose content is done
    with this configuration, is skipped without being downloaded again."""
    from fsspec.core import url_to_fs

    fs, root = url_to_fs(calls_dir)
    protocol = calls_dir.split("://", 1)[0]
    objects = list_objects(fs, root.rstrip("/"), protocol, extensions={e.lower() for e in config.ingest.audio_extensions})
    index = load_index(DataFolder(data_dir)) if objects else {}
    done = done_index(data_dir) if index else {}
    todo, skipped = [], []
    for obj in objects:
        entry = index.get(obj.uri)
        previous = done.get(entry["sha256"]) if obj.same_as(entry) else None
        kind = "transcript" if obj.uri.endswith(".transcript.json") else "audio"
        if previous is not None and plan(kind, previous, config, force=force) == SKIP:
            skipped.append({"path": obj.uri, "status": "skipped", "call_id": previous[0], "audio_s": 0.0,
                            "message": "already processed (object unchanged: not downloaded)"})
            continue
        todo.append({"path": obj.uri, "source": obj.uri, "previous": None, "size": obj.size, "etag": obj.etag})
    return {"todo": todo, "skipped": skipped}


# ---- one call -------------------------------------------------------------------------------------------------


def _fetch(uri: str, calls_dir: str, staging: Path, config: PipelineConfig) -> Path:
    """Copy one call (and its manifest and sidecar, if any) from object storage to `staging`, keeping its
    path relative to `calls_dir` so manifest rows still match. Returns the local file.

    Raises:
        IngestError: E130 for a key that would land outside `staging` (`..`, empty or absolute segments).
    """
    from fsspec.core import url_to_fs

    fs, root = url_to_fs(calls_dir)
    root = root.rstrip("/")
    _, key = url_to_fs(uri)
    local = local_path(staging, relative_key(root, key))
    local.parent.mkdir(parents=True, exist_ok=True)
    fs.get_file(key, str(local))
    extras = [f"{root}/{config.ingest.manifest_name}", key + ".json", os.path.splitext(key)[0] + ".json"]
    for extra in extras:
        if extra != key and fs.exists(extra):
            target = local_path(staging, relative_key(root, extra))
            target.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(extra, str(target))
    return local


@task(name="process-call", cache_policy=NO_CACHE, task_run_name="process {item[path]}", **IO_RETRIES)
def process_one(item: dict, calls_dir: str, data_dir: str, config_path: str | None = None,
                overrides: dict | None = None, *, force: bool = False, replace: bool = False) -> dict:
    """Decode, transcribe, analyse and write one call; returns its outcome (path, status, call_id, audio_s, message).
    `replace`: a call_id stored with other content is replaced by this call (else it fails, E120).

    Idempotent: the call's files are replaced whole, so a retry or a rerun never duplicates a row."""
    config = config_of(config_path, overrides)
    previous = item.get("previous")
    if item.get("source"):
        with Staging() as tmp:
            try:
                local = _fetch(item["source"], calls_dir, tmp, config)
            except IngestError as e:  # a refused key: recorded like any bad call, the batch goes on
                record_failure(data_dir, item["source"], e, config_hash=config.hash())
                return asdict(Outcome(item["source"], "failed", None, 0.0, str(e)))
            outcome = process_path(str(local), str(tmp), data_dir, config, worker_pool(), force=force,
                                   source=item["source"], reraise=is_transient_io, replace=replace,
                                   name_unique=item.get("name_unique"))
            if outcome.status != "failed" and item.get("size") is not None:
                record_object(DataFolder(data_dir), StoredObject(item["source"], item["size"], item.get("etag")),
                              file_sha256(local))
    else:
        done = {item["sha"]: tuple(previous)} if item.get("sha") and previous else ({} if item.get("sha") else None)
        outcome = process_path(item["path"], calls_dir, data_dir, config, worker_pool(), force=force, done=done,
                               reraise=is_transient_io, replace=replace, name_unique=item.get("name_unique"))
    return asdict(outcome)


@task(name="record-failure", cache_policy=NO_CACHE, **IO_RETRIES)
def record_task_failure(path: str, data_dir: str, message: str, config_path: str | None = None,
                        overrides: dict | None = None) -> dict:
    """A call whose I/O retries were spent: record it in `failures` like any other failed call."""
    err = QAPipelineError(Errors.E105, path=path, error=message, stage="io")
    record_failure(data_dir, path, err, config_hash=config_of(config_path, overrides).hash())
    return {"path": path, "status": "failed", "call_id": None, "audio_s": 0.0, "message": str(err)}


# ---- after the batch ------------------------------------------------------------------------------------------


@task(name="score-calls", cache_policy=NO_CACHE, **IO_RETRIES)
def score_task(data_dir: str, rubric: str | None = None) -> dict:
    """Recompute call scores and weekly scorecards from the stored datasets (qa_pipeline.scoring.score.rescore)."""
    from qa_pipeline.scoring.score import rescore

    return rescore(data_dir, rubric)


@task(name="stage-timings", cache_policy=NO_CACHE, **IO_RETRIES)
def stage_timings(data_dir: str, call_ids: list[str]) -> dict[str, dict[str, float]]:
    """call_id -> {stage: seconds} of the given calls, from `calls.stage_seconds`."""
    from qa_pipeline.store.folder import read_dataset

    wanted = set(call_ids)
    if not wanted:
        return {}
    table = read_dataset(data_dir, "calls", ["call_id", "stage_seconds"])
    return {c: dict(s or []) for c, s in zip(table.column("call_id").to_pylist(),
                                             table.column("stage_seconds").to_pylist()) if c in wanted}
