"""What the review app's rescoring costs after a verdict (`webapp.rescoring.rescore_scorecards`: the weekly scorecards
and the calibration recomputed through the query layer, only the changed weeks rewritten), against a full
`qa-pipeline rescore`, on N synthetic calls (bench/rescore_bench.py's generator).

Two layouts of `calls` and `flags`, which the rescoring reads through the customer-complaint views: "packed" (a few
large files, as the rescore bench writes them) and "per call" (one file per call, as the pipeline writes them);
`call_scores` is always one file per date (as `rescore` writes it) and every verdict one file (as the app and
`reviews import` write them).

Usage: python bench/verdict_rescore_bench.py --calls 10000 [--reviews 200] [--out bench/results]"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # webapp/, as the other benches import flows/

from rescore_bench import make_data  # noqa: E402

from qa_pipeline.scoring.score import rescore  # noqa: E402
from qa_pipeline.store.folder import DataFolder  # noqa: E402


def split_per_call(folder: DataFolder, dataset: str) -> int:
    """Rewrite a packed dataset as one file per call (the pipeline's layout); returns the number of files."""
    n = 0
    for rel in folder.dataset_files(dataset):
        date = rel.split("/")[1].split("=", 1)[1]
        table = pq.read_table(folder.path(rel))
        ids = table.column("call_id").to_pylist()
        rows = table.to_pylist()
        by_call: dict[str, list] = {}
        for cid, r in zip(ids, rows):
            by_call.setdefault(cid, []).append(r)
        for cid, rs in by_call.items():
            folder.write_parquet(dataset, date, cid, rs)
            n += 1
        folder.remove(rel)
    return n


def add_reviews(folder: DataFolder, n: int) -> None:
    from webapp.rescoring import review_id

    flags = pq.read_table(folder.path(folder.dataset_files("flags")[0]), columns=["call_id", "flag_id"]).to_pylist()
    date = folder.dataset_files("flags")[0].split("/")[1].split("=", 1)[1]
    when = dt.datetime(2026, 11, 30, tzinfo=dt.timezone.utc)
    for i, f in enumerate(flags[:n]):
        at = when + dt.timedelta(seconds=i)
        row = dict(review_id=review_id(f["call_id"], f["flag_id"], "bench", at), call_id=f["call_id"],
                   target_type="flag", target=f["flag_id"], verdict="justified" if i % 2 else "unjustified",
                   reviewer="bench", reviewed_at=at, comment=None, source="bench")
        folder.write_parquet("reviews", date, row["review_id"], [row])


def timed(fn, *args, **kw) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return round(time.perf_counter() - t0, 2), out


def main() -> None:
    from webapp.rescoring import rescore_scorecards

    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=10_000)
    ap.add_argument("--reviews", type=int, default=200)
    ap.add_argument("--out", type=Path, default=Path("bench/results"))
    ap.add_argument("--packed-only", action="store_true", help="skip the per-call layout (its split is slow)")
    args = ap.parse_args()
    result: dict = {"calls": args.calls, "reviews": args.reviews}
    with tempfile.TemporaryDirectory() as tmp:
        folder = DataFolder(Path(tmp) / "data")
        make_data(Path(folder.root), args.calls)
        result["full_rescore_packed_s"], _ = timed(rescore, folder)
        add_reviews(folder, args.reviews)
        result["verdict_rescore_packed_s"], r = timed(rescore_scorecards, folder, None)
        result["weeks_rewritten_packed"] = r["weeks"]
        result["verdict_rescore_packed_again_s"], _ = timed(rescore_scorecards, folder, None)
        if args.packed_only:
            return _write(args, result)
        t0 = time.perf_counter()
        files = split_per_call(folder, "calls") + split_per_call(folder, "flags")
        result["split_files"], result["split_s"] = files, round(time.perf_counter() - t0, 1)
        result["verdict_rescore_per_call_s"], _ = timed(rescore_scorecards, folder, None)
        result["verdict_rescore_per_call_again_s"], _ = timed(rescore_scorecards, folder, None)
    _write(args, result)


def _write(args, result: dict) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    name = "verdict_rescore_packed.json" if args.packed_only else "verdict_rescore.json"
    (args.out / name).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
