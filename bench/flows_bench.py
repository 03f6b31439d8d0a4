"""Throughput of the process_calls flow with 1 worker and with 2 worker processes on this machine (`make bench`):
the thread runner (one process), the local process pool (what `qa-pipeline run` uses with several cores) and a
Dask LocalCluster, run one after another on the same calls.

    python bench/flows_bench.py [--calls DIR] [--limit N] [--out bench/results]

Each configuration processes the same calls into a fresh data folder; calls/hour counts processed calls over the
flow's wall time, model loading included (once per worker process). The first run starts Prefect's temporary
server (not counted)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=Path, default=ROOT / "demo" / "calls")
    parser.add_argument("--limit", type=int, default=4, help="calls to process per configuration")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from flows.process_calls import ensure_api, run_process_calls
    from qa_pipeline.config import load_config
    from qa_pipeline.pipeline.ingest import discover

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    files = [f.path for f in discover(args.calls, load_config(None).ingest) if f.kind == "audio"][: args.limit]
    if not files:
        print(f"no audio calls in {args.calls}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="qa-bench-"))
    calls = work / "calls"
    calls.mkdir()
    for f in files:
        shutil.copy(f, calls / f.name)
    manifest = args.calls / "calls.csv"
    if manifest.is_file():
        shutil.copy(manifest, calls / "calls.csv")
    ensure_api()
    import logging

    logging.getLogger("distributed").setLevel(logging.WARNING)
    results = []
    for workers, runner in ((1, "thread"), (2, "process"), (2, "dask")):
        threads = max(1, cores // workers)
        summary = run_process_calls(str(calls), str(work / f"data-{runner}"), task_runner=runner, workers=workers,
                                    overrides={"asr.cpu_threads": threads})
        c = summary["counts"]
        results.append({"workers": workers, "task_runner": runner, "cpu_threads_per_worker": threads,
                        "calls": c["done"], "failed": c["failed"], "audio_s": summary["audio_s"],
                        "wall_s": summary["wall_s"], "calls_per_hour": summary["calls_per_hour"],
                        "x_realtime": round(summary["audio_s"] / summary["wall_s"], 2) if summary["wall_s"] else 0,
                        "stage_seconds": summary["stage_seconds"]})
        print(f"{workers} worker(s) [{runner}]: {c['done']} calls ({summary['audio_s'] / 60:.1f} min audio) in "
              f"{summary['wall_s']:.0f} s -> {summary['calls_per_hour']:.0f} calls/hour, "
              f"{results[-1]['x_realtime']}x realtime")
    speedups = {r["task_runner"]: round(r["calls_per_hour"] / results[0]["calls_per_hour"], 2)
                if results[0]["calls_per_hour"] else 0 for r in results[1:]}
    print(f"2 workers / 1 worker on {cores} cores: " + ", ".join(f"{k} {v:.2f}x" for k, v in speedups.items()))
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "flows_bench.json"
    out.write_text(json.dumps({"cores": cores, "calls_dir": str(args.calls), "results": results,
                               "speedup_2_vs_1": speedups}, indent=1))
    print(f"written {out}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
