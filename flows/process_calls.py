"""The `process_calls` flow: discover new calls, process each as a mapped task, score, summarise.

Thin over the library: every step is a `qa_pipeline` function (see flows/tasks.py). Where the per-call tasks run
is the task runner's business: threads of this process (`thread`), local worker processes (`process`, what the CLI
uses with several workers), a Dask LocalCluster of worker processes (`dask`) or an existing Dask cluster
(`dask=tcp://scheduler:8786`). Each worker process loads the models once: the `process` runner's as they start,
the others on their first call.

    python -m flows.process_calls CALLS_DIR DATA_DIR [--task-runner dask]
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.futures import as_completed
from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner

from flows.tasks import (
    config_of,
    discover_calls,
    process_one,
    record_task_failure,
    score_task,
    stage_timings,
    worker_pool,
)
from qa_pipeline.pipeline.runner import usable_cpus

# In-process callers (the CLI's progress bar) get each outcome as it completes; not a flow parameter, since
# parameters must be serializable and a deployment has no one to call back.
_progress: Callable[[dict], None] | None = None


def make_task_runner(spec: str | None = None, *, workers: int = 1, config_path: str | None = None,
                     overrides: dict | None = None, languages: tuple[str | None, ...] = ("en",)):
    """Build the task runner named by `spec`.

    Args:
        spec: `thread` (default: this process, `workers` threads), `process` (`workers` local processes, see
            LocalProcessRunner; `config_path`, `overrides` and `languages` say which models each loads as it
            starts), `dask` (a LocalCluster of `workers` processes, at least 2) or `dask=ADDRESS` (the scheduler
            of a running Dask cluster, e.g. tcp://10.0.0.5:8786).

    Raises:
        ValueError: an unknown spec; the message lists the accepted forms.
    """
    spec = (spec or "thread").strip()
    if spec == "thread":
        return ThreadPoolTaskRunner(max_workers=max(1, workers))
    if spec == "process":
        n = max(1, workers)
        return LocalProcessRunner(n, max(1, usable_cpus() // n), config_path, overrides, tuple(languages))
    if spec == "dask" or spec.startswith("dask="):
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError as e:
            raise ValueError("--task-runner dask needs prefect-dask: pip install 'qa-pipeline[flows]'") from e
        address = spec.partition("=")[2]
        if address:
            return DaskTaskRunner(address=address)
        n = max(2, workers)
        # One task thread per worker process: each process holds its own models. The math libraries get this
        # process's thread settings: Dask would pin them to 1, and a different thread count reorders float sums,
        # so the same call would come out slightly different (language_probability moved in the 3rd decimal).
        # To share the cores between local workers, set asr.cpu_threads (the CLI does) or OMP_NUM_THREADS.
        # (Dask's nanny takes these from this process's environment when set, before it spawns the workers;
        # setting them to the core count here is what the libraries already do by default.)
        cores = str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
        for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ.setdefault(k, cores)
        return DaskTaskRunner(cluster_class="distributed.LocalCluster",
                              cluster_kwargs={"n_workers": n, "threads_per_worker": 1, "processes": True,
                                              "dashboard_address": None})
    raise ValueError(f"unknown task runner {spec!r}; accepted: thread, process, dask, dask=ADDRESS (e.g. dask=tcp://host:8786)")


class LocalProcessRunner(ProcessPoolTaskRunner):
    """Prefect's process pool for a local run: `workers` processes, each with its share of the cores and its own
    models (flows.tasks.init_process_worker), the per-call tasks spread over them. `start()` launches them, and
    they load their models, before the flow runs: while Prefect's temporary API starts (seconds of its own), not
    after. The flow's run uses this started pool (`duplicate` is itself), which the run's end shuts down."""

    def __init__(self, workers: int, threads: int, config_path: str | None, overrides: dict | None,
                 languages: tuple[str | None, ...]):
        from flows.tasks import init_process_worker

        super().__init__(max_workers=workers, initializer=init_process_worker,
                         initargs=(threads, config_path, overrides, languages))
        self._users = 0

    def start(self) -> None:
        """Launch the worker processes now (each loads its models at once); idempotent."""
        if self._users:
            return
        self.__enter__()
        for _ in range(self._max_workers):  # one trivial job per worker: the pool starts processes on demand
            self._executor.submit(os.getpid)

    def duplicate(self) -> LocalProcessRunner:
        return self

    def __reduce__(self):
        # the flow, and with it its task runner, travels with every task to the workers (Prefect's context) and
        # is not used there; a started pool holds a queue that cannot travel: an unstarted plain one stands in
        return ProcessPoolTaskRunner, (self._max_workers,)

    def __enter__(self) -> LocalProcessRunner:
        self._users += 1
        if self._users == 1:
            super().__enter__()
        return self

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        self._users -= 1
        if self._users <= 0:
            self._users = 0
            super().__exit__(exc_type, exc_value, traceback)

    def shutdown(self) -> None:
        """Stop the workers whoever started them (a run that ended before its flow did)."""
        if self._users:
            self._users = 1
            self.__exit__(None, None, None)


def ensure_api(*, start_timeout_s: int = 180) -> str:
    """The Prefect API this process reports to, exported as PREFECT_API_URL for worker processes.

    With none configured, Prefect's temporary local server is started here (with a patient timeout: it takes
    tens of seconds on a busy machine), and Dask workers spawned later report to that same server."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        from prefect.server.api.server import SubprocessASGIServer

        server = SubprocessASGIServer()
        server.start(timeout=start_timeout_s)
        url = server.api_url
    os.environ["PREFECT_API_URL"] = url
    return url


def start_api() -> Future:
    """`ensure_api` in a background thread: the temporary server starts (seconds of its own process's CPU) while
    this process loads its models (`warm_worker`); the future's result is the API's URL or its start-up error."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefect-api-start")
    future = pool.submit(ensure_api)
    pool.shutdown(wait=False)
    return future


def warm_worker(config_path: str | None, overrides: dict | None, languages=("en",)) -> None:
    """Load this process's models and analysis resources (the thread runner's tasks run here and share them)."""
    worker_pool().warm(config_of(config_path, overrides), languages)


@flow(name="process-calls", task_runner=ThreadPoolTaskRunner(max_workers=1))
def process_calls(
    calls_dir: str,
    data_dir: str,
    config_path: str | None = None,
    overrides: dict | None = None,
    force: bool = False,
    score: bool = True,
    rubric: str | None = None,
    replace: bool = False,
) -> dict:
    """Process every new call of `calls_dir` into `data_dir`, then rescore. Returns the run summary.

    Args:
        calls_dir: local folder or object-store URI (s3://bucket/calls) of recordings and transcript imports.
        data_dir: local folder or object-store URI of the datasets.
        config_path: YAML config; `overrides` are dotted keys (`{"asr.device": "cuda"}`).
        force: reprocess calls already done with this config.
        score: recompute scores and scorecards when anything changed.
        rubric: rubric YAML for the scores (default: the job-description rubric).
        replace: a recording whose call_id is stored with other content replaces that call (else: E120).
    """
    log = get_run_logger()
    start = time.perf_counter()
    started_at = dt.datetime.now(dt.timezone.utc)
    found = discover_calls(calls_dir, data_dir, config_path, overrides, force=force)
    outcomes: list[dict] = list(found["skipped"])
    for o in found["skipped"]:
        _report(o)
    log.info("%d calls to process, %d already done", len(found["todo"]), len(found["skipped"]))
    futures = {process_one.submit(item, calls_dir, data_dir, config_path, overrides, force=force, replace=replace):
               item for item in found["todo"]}
    for fut in as_completed(list(futures)):
        try:
            outcome = fut.result()
        except Exception as e:  # noqa: BLE001 - I/O retries spent: record the call, go on with the others
            item = futures[fut]
            outcome = record_task_failure(item.get("source") or item["path"], data_dir, f"{type(e).__name__}: {e}",
                                          config_path, overrides)
        outcomes.append(outcome)
        _report(outcome)
    changed = any(o["status"] in ("done", "reanalysed") for o in outcomes)
    scores = None
    if score and (changed or not _has_scores(data_dir)):
        scores = score_task(data_dir, rubric)
    forgotten = retention_step(data_dir, config_path, overrides, rubric)  # privacy.retention_days: old calls go
    if forgotten:
        log.info("retention: %d call(s) older than privacy.retention_days erased", len(forgotten))
        gone = set(forgotten)
        outcomes = [{**o, "call_id": "forgotten", "path": "forgotten"} if o.get("call_id") in gone else o
                    for o in outcomes]
    done_ids = [o["call_id"] for o in outcomes if o["status"] == "done" and o["call_id"] not in (None, "forgotten")]
    timings = stage_timings(data_dir, done_ids)
    summary = _summary(outcomes, timings, scores, wall_s=time.perf_counter() - start, started_at=started_at,
                       calls_dir=calls_dir, data_dir=data_dir, stale=found["stale_temp_files_removed"])
    _publish(summary)
    return summary


def retention_step(data_dir: str, config_path: str | None, overrides: dict | None, rubric: str | None) -> list[str]:
    """Erase the calls older than privacy.retention_days (`qa-pipeline forget --before`, with the review
    database's anonymiser when DATA/review.sqlite3 or $QA_REVIEW_DB is there); returns their ids."""
    import os

    from qa_pipeline.config import load_config
    from qa_pipeline.pipeline.forget import apply_retention

    config = load_config(config_path, overrides or {})
    if not config.privacy.retention_days:
        return []

    def erase(data, ids):
        from webapp.erasure import forget_calls

        forget_calls(data, ids, db_url=os.environ.get("QA_REVIEW_DB"), rubric=rubric,
                     reason=f"retention: older than {config.privacy.retention_days} days", actor="nightly flow")

    return apply_retention(data_dir, config, rubric=rubric, erase=erase)


@flow(name="nightly-ingest")
def nightly_ingest(calls_dir: str, data_dir: str, config_path: str | None = None, task_runner: str = "thread",
                   workers: int = 1, rubric: str | None = None) -> dict:
    """Deployment entry point: `process_calls` as a subflow on the task runner named by `task_runner`."""
    runner = make_task_runner(task_runner, workers=workers, config_path=config_path)
    return process_calls.with_options(task_runner=runner)(calls_dir, data_dir, config_path, rubric=rubric)


def run_process_calls(calls_dir: str, data_dir: str, *, config_path: str | None = None,
                      overrides: dict | None = None, force: bool = False, rubric: str | None = None,
                      task_runner: str | None = None, workers: int = 1,
                      progress: Callable[[dict], None] | None = None, replace: bool = False,
                      languages: tuple[str | None, ...] = ("en",)) -> dict:
    """Run `process_calls` in this process (the CLI's path): `progress` gets every outcome as it completes.
    `languages`: those the calls are in (None: unknown), whose models the `process` runner's workers load at once."""
    global _progress
    runner = task_runner if isinstance(task_runner, TaskRunner) else make_task_runner(
        task_runner, workers=workers, config_path=config_path, overrides=overrides, languages=languages)
    _progress = progress
    try:
        ensure_api()  # at once when the CLI started it already (start_api)
        return process_calls.with_options(task_runner=runner)(
            str(calls_dir), str(data_dir), config_path, overrides, force=force, rubric=rubric, replace=replace)
    finally:
        _progress = None
        if isinstance(runner, LocalProcessRunner):
            runner.shutdown()


def _report(outcome: dict) -> None:
    if _progress is not None:
        _progress(outcome)


def _has_scores(data_dir: str) -> bool:
    from qa_pipeline.store.folder import is_uri, read_dataset

    if not is_uri(data_dir):
        return (Path(data_dir) / "call_scores").exists()
    return read_dataset(data_dir, "call_scores", ["call_id"]).num_rows > 0


def _summary(outcomes, timings, scores, *, wall_s, started_at, calls_dir, data_dir, stale) -> dict:
    counts = {s: sum(1 for o in outcomes if o["status"] == s) for s in ("done", "skipped", "reanalysed", "failed")}
    waiting = sum(1 for o in outcomes if o["status"] == "waiting")  # still being written: the next run takes them
    if waiting:
        counts["waiting"] = waiting
    stage_totals: dict[str, float] = {}
    for stages in timings.values():
        for name, seconds in stages.items():
            stage_totals[name] = round(stage_totals.get(name, 0.0) + seconds, 3)
    audio_s = sum(o["audio_s"] for o in outcomes if o["status"] == "done")
    return {
        "started_at": started_at.isoformat(), "calls_dir": str(calls_dir), "data_dir": str(data_dir),
        "counts": counts, "audio_s": round(audio_s, 3), "wall_s": round(wall_s, 3),
        "calls_per_hour": round(counts["done"] / wall_s * 3600, 1) if wall_s > 0 else 0.0,
        "stage_seconds": stage_totals, "stale_temp_files_removed": stale,
        "failed": [{"path": o["path"], "message": o["message"]} for o in outcomes if o["status"] == "failed"],
        "outcomes": outcomes, "scores": scores,
    }


def summary_markdown(summary: dict) -> str:
    c = summary["counts"]
    lines = [
        f"# process-calls run {summary['started_at']}",
        "",
        f"`{summary['calls_dir']}` → `{summary['data_dir']}`",
        "",
        "| done | skipped | re-analysed | failed | audio (h) | wall (s) | calls/hour |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {c['done']} | {c['skipped']} | {c['reanalysed']} | {c['failed']} | {summary['audio_s'] / 3600:.2f} "
        f"| {summary['wall_s']:.0f} | {summary['calls_per_hour']:.0f} |",
    ]
    if summary["stage_seconds"]:
        lines += ["", "## Seconds per stage (all calls processed)", "", "| stage | seconds |", "|---|---:|"]
        lines += [f"| {k} | {v:.1f} |" for k, v in sorted(summary["stage_seconds"].items(), key=lambda kv: -kv[1])]
    if summary["failed"]:
        lines += ["", "## Failed calls", "", "| file | error |", "|---|---|"]
        lines += [f"| `{f['path']}` | {f['message'].replace('|', '/')} |" for f in summary["failed"]]
    if summary.get("scores"):
        s = summary["scores"]
        lines += ["", f"Scores: {s.get('calls')} calls with rubric {s.get('rubric_version')}; "
                      f"weeks {', '.join(s.get('weeks') or []) or '-'}"]
    return "\n".join(lines) + "\n"


def _publish(summary: dict) -> None:
    """The run summary as a Prefect markdown artifact and a JSON file under `<data>/_runs/` (local or S3)."""
    create_markdown_artifact(key="process-calls-summary", markdown=summary_markdown(summary),
                             description="qa-pipeline run summary")
    from qa_pipeline.store.folder import DataFolder

    name = summary["started_at"].replace(":", "").replace("+", "Z")
    DataFolder(summary["data_dir"]).write_text(f"_runs/{name}.json", json.dumps(summary, indent=1, default=str))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("calls_dir")
    parser.add_argument("data_dir")
    parser.add_argument("--config")
    parser.add_argument("--task-runner", default="thread")
    parser.add_argument("--workers", type=int, default=1)
    a = parser.parse_args()
    print(json.dumps(run_process_calls(a.calls_dir, a.data_dir, config_path=a.config, task_runner=a.task_runner,
                                       workers=a.workers)["counts"]))
