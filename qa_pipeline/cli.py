"""Command line: `qa-pipeline run CALLS_DIR --data DATA_DIR [--config FILE] [--task-runner RUNNER]`,
`qa-pipeline migrate --data DATA_DIR`, `qa-pipeline demo` and the scoring commands.

The library never imports Prefect: the `qa-pipeline` command is `flows.cli:main`, which calls `main` here with an
`orchestrator` (a loader of flows/process_calls.py) so that `run` goes through the `process_calls` flow in this
process. Without one (`python -m qa_pipeline.cli`), or with `--task-runner none`, `run` uses the library's own
loop."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable

from qa_pipeline import __version__
from qa_pipeline.config import load_config
from qa_pipeline.errors import ConfigError, Errors, QAPipelineError

log = logging.getLogger("qa_pipeline")

DEMO_CALLS = Path(__file__).resolve().parent.parent / "demo" / "calls"
DEMO_CONFIG = DEMO_CALLS.parent / "config.yaml"


def _run(calls_dir: Path | str, data_dir: Path | str, config_path: str | None, *, device: str | None,
         workers: int | None, force: bool, rubric: str | None = None, task_runner: str | None = None,
         verbose: bool = False, orchestrator: Callable[[], Any] | None = None, replace: bool = False) -> int:
    """Process a calls folder; `task_runner` is None/thread/process/dask/dask=ADDRESS (the process_calls flow, in
    this process; needs `orchestrator`; None = process with several workers, else thread) or `none` (the
    library's own loop, no Prefect). `replace`: a recording whose call_id is stored with other content replaces
    that call (else it fails with E120)."""
    from tqdm import tqdm

    from qa_pipeline.pipeline.ingest import discover
    from qa_pipeline.store.folder import is_uri

    overrides = {}
    if device:
        overrides["asr.device"] = device
    if workers:
        overrides["workers"] = workers
    config = load_config(config_path, overrides)
    remote = is_uri(str(calls_dir)) or is_uri(str(data_dir))
    total = None if is_uri(str(calls_dir)) else len(discover(calls_dir, config.ingest))
    n_workers = workers or config.workers
    if orchestrator is None:
        if task_runner not in (None, "none"):
            raise ConfigError(Errors.E660, runner=task_runner)
        task_runner = "none"
    if task_runner in (None, "none", "process") and n_workers is None:
        from qa_pipeline.pipeline.runner import auto_workers

        n_workers = auto_workers(config, total)
        config = dataclasses.replace(config, workers=n_workers)
        if n_workers > 1:
            print(f"{n_workers} worker processes, one per core (set --workers 1 for one)", file=sys.stderr)
    n_workers = n_workers or 1
    if task_runner is None and n_workers > 1:
        task_runner = "process"  # several worker processes, each with its own models (threads would share one)
    runner = None  # the `process` runner, started while Prefect's API starts
    if task_runner != "none":
        # before Prefect is imported: it reads its settings once
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO" if verbose else "WARNING")
        flows_module = orchestrator()
        languages = _languages(calls_dir, config)
        if n_workers > 1 and not config.asr.cpu_threads:
            # the flow's tasks load the config from the file plus these overrides, once per worker process
            from qa_pipeline.pipeline.runner import usable_cpus

            overrides["asr.cpu_threads"] = max(1, usable_cpus() // n_workers)

        def warm() -> None:  # the thread runner's tasks run in this process: load what they need meanwhile
            flows_module.warm_worker(config_path, overrides, languages)

        if task_runner == "process":
            try:
                runner = flows_module.make_task_runner("process", workers=n_workers, config_path=config_path,
                                                       overrides=overrides, languages=languages)
            except ValueError as e:
                raise ConfigError(Errors.E662, error=e) from e
            warm = runner.start  # its worker processes load their models
        task_runner = _flow_ready(flows_module, task_runner, verbose=verbose, remote=remote, warm=warm)
        if task_runner == "none" and runner is not None:
            runner.shutdown()
            config = dataclasses.replace(config, workers=n_workers)
    if remote and task_runner == "none":
        raise ConfigError(Errors.E661)
    bar = tqdm(total=total, unit="call", desc="calls", file=sys.stderr)

    def progress(o):
        status, path, message = (o["status"], o["path"], o["message"]) if isinstance(o, dict) else (
            o.status, o.path, o.message)
        bar.update(1)
        bar.set_postfix_str(f"{Path(path).name}: {status}")
        if status == "failed":
            bar.write(f"FAILED {path}: {message}")

    if task_runner == "none":
        from qa_pipeline.pipeline.runner import run_folder

        summary = run_folder(calls_dir, data_dir, config, progress=progress, force=force, replace=replace)
        bar.close()
        print(summary.text())
        _print_run_hints(data_dir, [o.call_id for o in summary.outcomes if o.status == "done" and o.call_id])
        failed = summary.count("failed")
        if summary.count("done") or summary.count("reanalysed") or not (Path(data_dir) / "call_scores").exists():
            from qa_pipeline.scoring.score import rescore as _rescore

            scored = _rescore(data_dir, rubric)
        else:
            scored = None
    else:
        run_process_calls = flows_module.run_process_calls
        result = run_process_calls(str(calls_dir), str(data_dir), config_path=config_path, overrides=overrides,
                                   force=force, rubric=rubric, task_runner=runner or task_runner,
                                   workers=n_workers, progress=progress, replace=replace, languages=languages)
        bar.close()
        print(_flow_summary_text(result))
        _print_run_hints(data_dir, [o["call_id"] for o in result.get("outcomes", ())
                                    if o.get("status") == "done" and o.get("call_id")])
        failed = result["counts"]["failed"]
        scored = result["scores"]
    if scored:
        print(f"scores: {scored['calls']} calls scored with rubric {scored['rubric_version']}; "
              f"weeks {', '.join(scored['weeks']) or '-'}")
        _print_orphaned(scored)
    where = data_dir if is_uri(str(data_dir)) else Path(data_dir).resolve()
    from qa_pipeline.store.schema import DATASETS

    print(f"datasets: {where}/ ({', '.join(DATASETS)})")
    return 1 if failed else 0


def _flow_ready(flows_module, task_runner: str | None, *, verbose: bool, remote: bool,
                warm: Callable[[], None] | None = None) -> str:
    """`task_runner` if the Prefect API (configured, or the temporary local one) is up, else `none` with a
    warning: a local run must not depend on the orchestrator. `warm` (the thread runner's model loading) runs
    while Prefect's temporary API starts up, so that its seconds are not added to the run's."""
    start_api, make_task_runner = flows_module.start_api, flows_module.make_task_runner
    if not verbose:
        logging.getLogger("distributed").setLevel(logging.WARNING)  # Dask's cluster start-up chatter
    try:
        make_task_runner(task_runner)  # validates the spec before anything starts
    except ValueError as e:
        raise ConfigError(Errors.E662, error=e) from e
    pending = start_api()
    local = (task_runner or "thread") in ("thread", "process")  # this machine's processes run the calls
    if warm is not None and local:
        try:
            warm()
        except Exception as e:  # noqa: BLE001 - loading ahead is an optimisation: each call meets the error
            log.debug("loading ahead failed: %s", e)  # again, and is recorded in failures with it
    try:
        pending.result()
    except (RuntimeError, OSError) as e:
        if remote or not local:
            raise ConfigError(Errors.E663, error=e) from e
        log.warning("Prefect API unavailable (%s): running the calls without the flow", e)
        return "none"
    return task_runner or "thread"


def _languages(calls_dir, config) -> tuple[str | None, ...]:
    """The languages the calls folder's manifest declares (None for rows without one, or no manifest: detected),
    for loading their models ahead; ("en",) for an object-store folder."""
    from qa_pipeline.pipeline.ingest import load_manifest
    from qa_pipeline.store.folder import is_uri

    if is_uri(str(calls_dir)):
        return (config.asr.language or "en",)
    try:
        manifest = load_manifest(Path(calls_dir), config.ingest)
    except QAPipelineError:
        return (config.asr.language,)
    languages = tuple(dict.fromkeys(lang or config.asr.language for lang in manifest.languages()))
    return languages or (config.asr.language,)


def run_hints(data_dir, call_ids: list[str]) -> list[str]:
    """Advice after a run, from the calls it processed: the configuration that would make QA's results surer."""
    from qa_pipeline.errors import W_LOW_ROLE_CONFIDENCE
    from qa_pipeline.store.folder import read_dataset

    ids = set(call_ids)
    if not ids:
        return []
    hints = []
    calls = [r for r in read_dataset(data_dir, "calls", ["call_id", "flags"]).to_pylist() if r["call_id"] in ids]
    unsure = sum(any(f.startswith(W_LOW_ROLE_CONFIDENCE[:4]) for f in (r["flags"] or ())) for r in calls)
    if calls and unsure > len(calls) / 2:
        hints.append(f"roles were uncertain on {unsure} of {len(calls)} calls: if your recorder puts the agent on a "
                     "fixed channel, set audio.agent_channel: left|right")
    rows = read_dataset(data_dir, "compliance", ["call_id", "rule_id", "result", "match_method"]).to_pylist()
    fallback = {r["call_id"] for r in rows if r["call_id"] in ids and r["rule_id"] == "opening.company_name"
                and r["result"] == "passed" and r["match_method"] == "organisation"}
    if fallback:
        hints.append(f"opening.company_name passed on {len(fallback)} calls only because an organisation was named: "
                     "list your company names in the config (analysis.companies: [Your Company], or per campaign "
                     "{campaign: [names]}) so that the name itself is checked")
    return hints


def _print_run_hints(data_dir, call_ids: list[str]) -> None:
    try:
        hints = run_hints(data_dir, call_ids)
    except QAPipelineError as e:  # advice only: never fail a finished run over it
        log.warning("run hints unavailable: %s", e)
        return
    for line in hints:
        print(line)


def _print_orphaned(summary: dict | None) -> None:
    n = (summary or {}).get("orphaned_verdicts")
    if n:
        print(f"{n} verdict{'s' if n != 1 else ''} whose finding is gone (the flag, scored item or call is no longer "
              "there): kept, listed in the weekly report; a justified complaint among them still counts")


def _flow_summary_text(result: dict) -> str:
    c = result["counts"]
    again = f", re-analysed {c['reanalysed']}" if c["reanalysed"] else ""
    again += f", waiting {c['waiting']}" if c.get("waiting") else ""
    wall = result["wall_s"]
    speed = result["audio_s"] / wall if wall > 0 else 0.0
    return (f"done {c['done']}, skipped {c['skipped']}{again}, failed {c['failed']}; "
            f"audio {result['audio_s'] / 3600:.2f} h in {wall:.0f} s wall ({speed:.1f}x realtime)")


def _demo_reports(data_dir: Path) -> int:
    """After the demo run: one weekly report per demo week, and where to find everything."""
    from qa_pipeline.store.folder import read_dataset

    weeks = sorted(set(read_dataset(data_dir, "scorecards_weekly", ["iso_week"]).column("iso_week").to_pylist()))
    try:
        from qa_pipeline.render.report import write_weekly_report
    except ImportError:  # report module not available
        weeks = []
    for week in weeks:
        out = write_weekly_report(data_dir, week, Path(data_dir) / "reports" / f"weekly-{week}.html")
        print(f"weekly report {week}: {out.resolve()}")
    return 0


def _models(config_path: str | None, *, verify: bool) -> int:
    """`qa-pipeline models`: a table of the manifest's models and the config's local ones; 1 when a model the
    config uses is missing or (with `verify`) differs from the manifest, naming what to reinstall."""
    from qa_pipeline.speech.weights import MANIFEST, installed_models

    statuses = installed_models(load_config(config_path), verify=verify)
    rows = [("model", "stage", "package", "licence", "files", "in use")]
    for s in statuses:
        in_use = f"yes: {s.selected_by}" if s.in_use else f"no: {s.selected_by}" if not s.used else "no"
        rows.append((s.name, s.stage, s.source, s.licence, s.checksum, in_use))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for i, row in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])
        if i:
            s = statuses[i - 1]
            where = "(none)" if s.path is None else str(s.path)
            if s.joined and s.path is not None and not s.path.exists():
                where += " (joined on first use)"
            print(f"  loads from {where}")
            for problem in s.problems:
                print(f"  ! {problem}")
    print(f"manifest: {MANIFEST}" + ("" if verify else "; sizes checked, --verify checks the SHA-256 of every file"))
    failed = [s for s in statuses if s.in_use and not s.ok]
    if failed:
        fixes = list(dict.fromkeys(s.fix for s in failed if s.fix))
        message = Errors.E306.format(count=len(failed), models=", ".join(s.name for s in failed),
                                     commands="; ".join(fixes) or "see the problems above")
        print(f"error [{Errors.E306.code}]: {message}", file=sys.stderr)
        return 1
    if verify:
        print(f"all {sum(s.in_use for s in statuses)} models in use verified")
    return 0


def _location(value: str) -> Path | str:
    """A local path, or an object-store URI kept as text (Path would fold its `//`)."""
    return value if "://" in value and not value.startswith("file://") else Path(value)


def main(argv: list[str] | None = None, *, orchestrator: Callable[[], Any] | None = None) -> int:
    """The CLI. `orchestrator` returns the module with `run_process_calls`, `ensure_api` and `make_task_runner`
    (flows/process_calls.py), loaded only when a run needs it."""
    parser = argparse.ArgumentParser(prog="qa-pipeline", description="Offline call-center speech analytics and QA")
    parser.add_argument("--version", action="version", version=f"qa-pipeline {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="process a folder of recorded calls into Parquet datasets")
    run.add_argument("calls_dir", type=_location, help="folder of recordings, or an object-store URI (s3://...)")
    run.add_argument("--data", type=_location, required=True,
                     help="data folder for the datasets, or an object-store URI (s3://bucket/prefix)")
    run.add_argument("--config", help="YAML config file")
    run.add_argument("--device", choices=["cpu", "cuda"], help="overrides asr.device")
    run.add_argument("--workers", type=int, help="parallel worker processes (each loads the models once)")
    run.add_argument("--force", action="store_true", help="reprocess calls already done with this config")
    run.add_argument("--replace", action="store_true",
                     help="a recording or transcript whose call_id is already stored with other content replaces "
                          "that call, its rows in every dataset (without it: refused, E120)")
    run.add_argument("--rubric", help="rubric YAML for the scores (default: the job-description rubric)")
    run.add_argument("--task-runner", metavar="RUNNER", default=None,
                     help="where the per-call tasks of the process_calls flow run: process (the default on a "
                          "CPU with several cores: --workers local processes, one per core unless given), thread "
                          "(the default with one worker: this process), dask (a local Dask cluster of --workers "
                          "processes), dask=ADDRESS (a running Dask scheduler, e.g. dask=tcp://10.0.0.5:8786), or "
                          "none (no Prefect: the library loop, also one process per core)")
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
    migrate = sub.add_parser("migrate", help="bring a data folder to this version's dataset schema (or say why not)")
    migrate.add_argument("--data", type=Path, required=True)
    migrate.add_argument("--dry-run", action="store_true", help="only check")
    models = sub.add_parser("models", help="the models in use: package, version, licence, where each loads from")
    models.add_argument("--config", help="YAML config file (which models it selects)")
    models.add_argument("--verify", action="store_true",
                        help="check every file's SHA-256 against the model manifest (a few seconds)")
    demo = sub.add_parser("demo", help="process the bundled demo calls")
    demo.add_argument("--data", type=Path, default=Path("qa-data"))
    demo.add_argument("--config")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        if args.command == "run":
            return _run(args.calls_dir, args.data, args.config, device=args.device, workers=args.workers,
                        force=args.force, rubric=args.rubric, task_runner=args.task_runner, verbose=args.verbose,
                        orchestrator=orchestrator, replace=args.replace)
        if args.command == "rescore":
            from qa_pipeline.scoring.score import rescore as _rescore

            summary = _rescore(args.data, args.rubric)
            print(f"rescored {summary['calls']} calls ({summary['score_rows']} item scores, rubric "
                  f"{summary['rubric_version']}); weekly scorecards for {', '.join(summary['weeks']) or 'no week'}")
            _print_orphaned(summary)
            return 0
        if args.command in ("reviews", "complaints"):
            from qa_pipeline.scoring.score import import_division_complaints, import_reviews
            from qa_pipeline.scoring.score import rescore as _rescore
            from qa_pipeline.store.folder import DataFolder
            from qa_pipeline.store.lock import DATASETS_LOCK

            folder = DataFolder(args.data)
            with folder.lock(DATASETS_LOCK):  # the import and the scores that follow it, as one
                if args.command == "reviews":
                    result = import_reviews(folder, args.file)
                    done = f"imported {result['imported']} verdicts ({result['skipped_existing']} already there)"
                else:
                    result = import_division_complaints(folder, args.file)
                    done = f"imported {result['rows']} complaints ({result['replaced']} earlier versions replaced)"
                summary = _rescore(folder, args.rubric)
            print(f"{done}; scores updated")
            _print_orphaned(summary)
            return 0
        if args.command == "report":
            from qa_pipeline.render.report import write_weekly_report

            out = write_weekly_report(args.data, args.week, args.out)
            print(f"weekly report: {out.resolve()}")
            return 0
        if args.command == "migrate":
            from qa_pipeline.store.migrate import migrate as _migrate
            from qa_pipeline.store.schema import SCHEMA_VERSION

            found = _migrate(args.data, dry_run=args.dry_run)
            files = sum(n for by_v in found.values() for n in by_v.values())
            print(f"{args.data}: {files} files in {len(found)} datasets, now at schema version {SCHEMA_VERSION}")
            return 0
        if args.command == "models":
            return _models(args.config, verify=args.verify)
        if args.command == "demo":
            if not DEMO_CALLS.is_dir():
                print(f"error: demo corpus not found at {DEMO_CALLS}", file=sys.stderr)
                return 2
            config = args.config or (str(DEMO_CONFIG) if DEMO_CONFIG.is_file() else None)
            status = _run(DEMO_CALLS, args.data, config, device=None, workers=None, force=False,
                          verbose=args.verbose, orchestrator=orchestrator)
            return _demo_reports(args.data) or status
    except QAPipelineError as e:
        print(f"error [{e.code}]: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
