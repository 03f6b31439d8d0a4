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
         force: bool) -> int:
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
    print(f"datasets: {data_dir.resolve()}/{{calls,utterances,words,metrics,failures}}")
    return 1 if summary.count("failed") else 0


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
    demo = sub.add_parser("demo", help="process the bundled demo calls")
    demo.add_argument("--data", type=Path, default=Path("qa-data"))
    demo.add_argument("--config")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        if args.command == "run":
            return _run(args.calls_dir, args.data, args.config, device=args.device, workers=args.workers,
                        force=args.force)
        if args.command == "demo":
            if not DEMO_CALLS.is_dir():
                print(f"error: demo corpus not found at {DEMO_CALLS}", file=sys.stderr)
                return 2
            return _run(DEMO_CALLS, args.data, args.config, device=None, workers=None, force=False)
    except QAPipelineError as e:
        print(f"error [{e.code}]: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
