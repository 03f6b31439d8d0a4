"""Rescore benchmark: N synthetic calls (all datasets a call produces, written as a few large files), then
`rescore` over them, timed, with peak memory, beside a read-only baseline in the same command (reading every dataset
rescoring uses: `baseline_read_all_s` all their columns with pyarrow, `baseline_read_columns_s` only the columns
scoring needs, through the query layer).

Usage: python bench/rescore_bench.py --calls 100000 --out DIR [--data KEEP_DIR]
(--data keeps the synthetic data folder, rescored, e.g. to compare the scores of two versions.)"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from qa_pipeline.scoring.score import rescore
from qa_pipeline.store.schema import DATASETS

RULES = [("opening.greeting", "opening", "major"), ("opening.agent_name", "opening", "major"),
         ("opening.company_name", "opening", "major"), ("needs.discovery", "needs_discovery", "minor"),
         ("closing.next_step", "closing", "minor"), ("closing.thanks", "closing", "major"),
         ("conduct.no_rude_language", "conduct", "critical"), ("conduct.no_commercial_secrets", "conduct", "critical")]
# the columns rescore reads from each dataset (the query layer's baseline)
SCORING_COLUMNS = {
    "calls": ["call_id", "agent_id", "team", "campaign", "direction", "call_type", "started_at", "duration_s", "outcome",
              "status", "call_date"],
    "metrics": ["call_id", "agent_interruptions", "agent_talk_ratio", "agent_wpm", "hold_total_s", "holds"],
    "compliance": ["call_id", "rule_id", "phase", "result", "severity", "reason", "utterance_index", "start_s", "end_s"],
    "events": ["call_id", "event_type", "utterance_index", "start_s", "end_s", "evidence_text"],
    "sentiment": ["call_id", "role", "mean", "start", '"end"'],
    "utterances": ["call_id", "mean_probability", "n_words"],
    "flags": ["call_id", "flag_id", "flag_type"],
}
TYPES = ["information", "order", "complaint", "support", "survey", "telesales_cold", "telesales_warm", "telesales_hot"]


def _write(root: Path, name: str, part: str, value: str, columns: dict) -> None:
    schema = DATASETS[name]
    table = pa.table({f.name: pa.array(columns.get(f.name, [None] * len(next(iter(columns.values())))), f.type)
                      for f in schema}, schema=schema)
    folder = root / name / f"{part}={value}"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / "synthetic.parquet")


def make_data(root: Path, n_calls: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    days = 14
    per_day = np.array_split(np.arange(n_calls), days)
    start = dt.datetime(2026, 11, 16, 8, tzinfo=dt.timezone.utc)
    for d, idx in enumerate(per_day):
        n = len(idx)
        date = (start + dt.timedelta(days=d)).date().isoformat()
        ids = [f"c{i:07d}" for i in idx]
        agents = [f"A{a:03d}" for a in rng.integers(0, 200, n)]
        types = rng.choice(TYPES, n)
        outbound = ["survey", "telesales_cold", "telesales_warm", "telesales_hot"]
        direction = np.where(np.isin(types, outbound), "outbound", "inbound")
        started = [start + dt.timedelta(days=d, seconds=int(s)) for s in rng.integers(0, 36000, n)]
        dur = rng.gamma(4, 60, n)
        _write(root, "calls", "call_date", date, dict(
            call_id=ids, audio_sha256=ids, path=ids, agent_id=agents, team=[f"team{int(a[1:]) % 10}" for a in agents],
            campaign=rng.choice(["energy", "broadband-sales"], n).tolist(), direction=direction.tolist(),
            call_type=types.tolist(), started_at=started, mode=["stereo"] * n, duration_s=dur.tolist(),
            channels=[2] * n, config_hash=["x"] * n, pipeline_version=["bench"] * n, status=["ok"] * n,
            processed_at=started, outcome=rng.choice(["order_taken", "information_given", None], n).tolist()))
        _write(root, "metrics", "call_date", date, dict(
            call_id=ids, duration_s=dur.tolist(), agent_interruptions=rng.integers(0, 4, n).tolist(),
            agent_talk_ratio=rng.uniform(0.2, 0.8, n).tolist(), agent_wpm=rng.normal(150, 30, n).tolist(),
            hold_total_s=rng.choice([0.0, 45.0, 120.0], n, p=[0.8, 0.15, 0.05]).tolist(), holds=[[]] * n))
        r = len(RULES)
        results = rng.choice(["passed", "failed"], n * r, p=[0.85, 0.15])
        _write(root, "compliance", "call_date", date, dict(
            call_id=np.repeat(ids, r).tolist(), script_id=["default-en"] * (n * r), script_version=["1"] * (n * r),
            rule_id=[x[0] for x in RULES] * n, phase=[x[1] for x in RULES] * n, result=results.tolist(),
            severity=[x[2] for x in RULES] * n, reason=np.where(results == "failed", "not said", "said").tolist(),
            utterance_index=rng.integers(0, 20, n * r).tolist(), start_s=rng.uniform(0, 100, n * r).tolist(),
            end_s=rng.uniform(100, 200, n * r).tolist()))
        ev = rng.choice(["complaint_raised", "objection_raised", "objection_handled", "order_taken",
                         "apology_on_behalf_of_company", "transfer_to_quality"], n * 3)
        _write(root, "events", "call_date", date, dict(
            call_id=np.repeat(ids, 3).tolist(), event_type=ev.tolist(), utterance_index=rng.integers(0, 20, n * 3).tolist(),
            start_s=rng.uniform(0, 200, n * 3).tolist(), evidence_text=["synthetic"] * (n * 3)))
        _write(root, "sentiment", "call_date", date, dict(
            call_id=np.repeat(ids, 2).tolist(), role=["agent", "customer"] * n, mean=rng.uniform(-1, 1, 2 * n).tolist(),
            start=rng.uniform(-1, 1, 2 * n).tolist(), end=rng.uniform(-1, 1, 2 * n).tolist(), escalations=[[]] * (2 * n)))
        u = 20
        _write(root, "utterances", "call_date", date, dict(
            call_id=np.repeat(ids, u).tolist(), utterance_index=np.tile(np.arange(u), n).tolist(),
            speaker=["ch0"] * (n * u), role=np.tile(["agent", "customer"], n * u // 2).tolist(),
            start_s=[0.0] * (n * u), end_s=[1.0] * (n * u), text=["synthetic words"] * (n * u),
            mean_probability=rng.uniform(0.5, 1, n * u).tolist(), n_words=rng.integers(1, 30, n * u).tolist()))
        _write(root, "flags", "call_date", date, dict(call_id=ids, flag_id=ids, flag_type=["customer_complaint"] * n,
                                                        severity=["medium"] * n, reason=["synthetic"] * n))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--out", type=Path, default=Path("bench/results"))
    ap.add_argument("--data", type=Path, help="write the synthetic data folder here and keep it (default: a temp dir)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp) / "data"
        t0 = time.perf_counter()
        make_data(data, args.calls)
        gen_s = time.perf_counter() - t0
        # baseline, same command and data: just reading every dataset rescore reads (the I/O floor)
        t0 = time.perf_counter()
        from qa_pipeline.store.folder import read_dataset

        rows_read = sum(read_dataset(data, name).num_rows for name in
                        ("calls", "metrics", "compliance", "events", "sentiment", "utterances", "flags"))
        read_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        from qa_pipeline.store.queries import Queries

        with Queries(data) as q:
            for name, cols in SCORING_COLUMNS.items():
                q.fetch(f"SELECT {', '.join(cols)} FROM {name}")
        read_columns_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        summary = rescore(data)
        wall = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {"calls": args.calls, "score_rows": summary["score_rows"], "scorecards": summary["scorecards"],
              "generate_s": round(gen_s, 1), "rescore_s": round(wall, 1),
              "calls_per_s": round(args.calls / wall), "peak_rss_mb": round(peak_mb),
              "baseline_read_all_s": round(read_s, 1), "rows_read": rows_read,
              "baseline_read_columns_s": round(read_columns_s, 1),
              "rescore_vs_read": round(wall / read_s, 2) if read_s else None}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rescore.json").write_text(json.dumps(result, indent=2))
    print(f"| rescore | {args.calls:,} calls | {summary['score_rows']:,} item scores | {summary['scorecards']:,} weekly "
          f"scorecards | {wall:.1f} s ({result['calls_per_s']:,} calls/s) | {result['rescore_vs_read']}x the time to "
          f"read the datasets ({read_s:.1f} s) | peak RSS {peak_mb:.0f} MB |")


if __name__ == "__main__":
    main()
