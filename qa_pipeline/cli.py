"""Command line: `qa-pipeline run CALLS_DIR --data DATA_DIR [--config FILE]` and `qa-pipeline demo`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import __version__
from .config import load_config
from .errors import QAPipelineError

DEMO_CALLS = Path(__file__).resolve().parent.parent / "demo" / "calls"


def _run(calls_dir: Path, data_dir: Path, config_path: str | None, *, device: str | None, workers: int | None,
         force: bool, rubric: str | None = None) -> int:
    from tqdm import tqdm

    from .ingest import discover
    from .runner import run_folder

    overrides = {}
    if device:
        overrides["asr.device"] = device
    if workers:
        overrides["workers"] = workers
    config = load_config(config_path, overrides)
    total = len(discover(calls_dir, config.ingest))
    bar = tqdm(total=total, unit="call", desc="calls", file=sys.stderr)

    def progress(o):
        bar.update(1)
        bar.set_postfix_str(f"{Path(o.path).name}: {o.status}")
        if o.status == "failed":
            bar.write(f"FAILED {o.path}: {o.message}")

    summary = run_folder(calls_dir, data_dir, config, progress=progress, force=force)
    bar.close()
    print(summary.text())
    if summary.count("done") or summary.count("reanalysed") or not (Path(data_dir) / "call_scores").exists():
        from .scoring import rescore as _rescore

        scored = _rescore(data_dir, rubric)
        print(f"scores: {scored['calls']} calls scored with rubric {scored['rubric_version']}; "
              f"weeks {', '.join(scored['weeks']) or '-'}")
    print(f"datasets: {data_dir.resolve()}/{{calls,utterances,words,metrics,failures}}")
    return 1 if summary.count("failed") else 0


def _demo_reports(data_dir: Path) -> int:
    """After the demo run: one weekly report per demo week, and where to find everything."""
    from .storage import read_dataset

    weeks = sorted(set(read_dataset(data_dir, "scorecards_weekly", ["iso_week"]).column("iso_week").to_pylist()))
    try:
        from .report import write_weekly_report
    except ImportError:  # report module not available
        weeks = []
    for week in weeks:
        out = write_weekly_report(data_dir, week, Path(data_dir) / "reports" / f"weekly-{week}.html")
        print(f"weekly report {week}: {out.resolve()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qa-pipeline", description="Offline call-center speech analytics and QA")
    parser.add_argument("--version", action="version", version=f"qa-pipeline {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="process a folder of recorded calls into Parquet datasets")
    run.add_argument("calls_dir", type=Path)
    run.add_argument("--data", type=Path, required=True, help="data folder for the datasets")
    run.add_argument("--config", help="YAML config file")
    run.add_argument("--device", choices=["cpu", "cuda"], help="overrides asr.device")
    run.add_argument("--workers", type=int, help="parallel worker processes (each loads the models once)")
    run.add_argument("--force", action="store_true", help="reprocess calls already done with this config")
    run.add_argument("--rubric", help="rubric YAML for the scores (default: the job-description rubric)")
    rescore = sub.add_parser("rescore", help="recompute call scores and weekly scorecards from stored data")
    rescore.add_argument("--data", type=Path, required=True)
    rescore.add_argument("--rubric", help="rubric YAML (default: the job-description rubric)")
    reviews = sub.add_parser("reviews", help="QA verdicts")
    reviews_sub = reviews.add_subparsers(dest="reviews_command", required=True)
    rimport = reviews_sub.add_parser("import", help="append verdicts from a CSV (validated, never overwritten)")
    rimport.add_argument("file", type=Path)
    rimport.add_argument("--data", type=Path, required=True)
    rimport.add_argument("--rubric")
    complaints = sub.add_parser("complaints", help="complaints from other divisions")
    complaints_sub = complaints.add_subparsers(dest="complaints_command", required=True)
    cimport = complaints_sub.add_parser("import", help="import a CSV or Parquet of date, agent, division, text, justified")
    cimport.add_argument("file", type=Path)
    cimport.add_argument("--data", type=Path, required=True)
    cimport.add_argument("--rubric")
    report = sub.add_parser("report", help="reports")
    report_sub = report.add_subparsers(dest="report_command", required=True)
    weekly = report_sub.add_parser("weekly", help="self-contained HTML weekly scorecard report per team")
    weekly.add_argument("--data", type=Path, required=True)
    weekly.add_argument("--week", required=True, help="ISO week, e.g. 2026-W48")
    weekly.add_argument("--out", type=Path, required=True)
    demo = sub.add_parser("demo", help="process the bundled demo calls")
    demo.add_argument("--data", type=Path, default=Path("qa-data"))
    demo.add_argument("--config")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        if args.command == "run":
            return _run(args.calls_dir, args.data, args.config, device=args.device, workers=args.workers,
                        force=args.force, rubric=args.rubric)
        if args.command == "rescore":
            from .scoring import rescore as _rescore

            summary = _rescore(args.data, args.rubric)
            print(f"rescored {summary['calls']} calls ({summary['score_rows']} item scores, rubric "
                  f"{summary['rubric_version']}); weekly scorecards for {', '.join(summary['weeks']) or 'no week'}")
            return 0
        if args.command == "reviews":
            from .scoring import import_reviews, rescore as _rescore

            result = import_reviews(args.data, args.file)
            _rescore(args.data, args.rubric)
            print(f"imported {result['imported']} verdicts ({result['skipped_existing']} already there); scores updated")
            return 0
        if args.command == "complaints":
            from .scoring import import_division_complaints, rescore as _rescore

            result = import_division_complaints(args.data, args.file)
            _rescore(args.data, args.rubric)
            print(f"imported {result['rows']} complaints; scores updated")
            return 0
        if args.command == "report":
            from .report import write_weekly_report

            out = write_weekly_report(args.data, args.week, args.out)
            print(f"weekly report: {out.resolve()}")
            return 0
        if args.command == "demo":
            if not DEMO_CALLS.is_dir():
                print(f"error: demo corpus not found at {DEMO_CALLS}", file=sys.stderr)
                return 2
            status = _run(DEMO_CALLS, args.data, args.config, device=None, workers=None, force=False)
            return _demo_reports(args.data) or status
    except QAPipelineError as e:
        print(f"error [{e.code}]: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
