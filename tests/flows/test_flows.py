"""The Prefect flows (issue 5): registration, task runner specs, retry policy, and real runs under one session-wide
Prefect test server: in-process and on a Dask LocalCluster, which must write the same rows."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import make_stereo_calls

ROOT = Path(__file__).resolve().parents[2]
# columns that legitimately differ between two runs of the same calls
VOLATILE = {"processed_at", "stage_seconds", "path", "failed_at"}
# the same CPU thread count in both runs: a different count reorders float sums (language_probability moves in
# the 3rd decimal); Dask workers would otherwise get OMP_NUM_THREADS=1 and this process the CTranslate2 default
SAME_THREADS = {"asr.cpu_threads": 1}


def _transcripts(calls: Path) -> None:
    from tests.analysis.test_analysis import COMPLIANT_ORDER, RUDE_COMPLAINT
    from tests.scoring.test_scoring import _write

    calls.mkdir(parents=True, exist_ok=True)
    _write(calls, "t-good", COMPLIANT_ORDER, "A01", "2026-11-24T10:00:00+01:00")
    _write(calls, "t-bad", RUDE_COMPLAINT, "A02", "2026-11-24T11:00:00+01:00", "complaint")
    (calls / "broken.transcript.json").write_text('{"call_id": "x", "utterances": [{"speaker": "boss"}]}')


def _rows(data, dataset: str) -> list[dict]:
    from qa_pipeline.store.folder import read_dataset

    rows = [{k: v for k, v in r.items() if k not in VOLATILE} for r in read_dataset(data, dataset).to_pylist()]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def _assert_same_rows(data, reference) -> None:
    """Every dataset a run writes holds the same rows in `data` as in `reference`."""
    for dataset in ("calls", "utterances", "words", "metrics", "compliance", "sentiment", "failures", "call_scores"):
        a, b = _rows(data, dataset), _rows(reference, dataset)
        assert len(a) == len(b), dataset
        for x, y in zip(a, b):
            assert x == y, (dataset, {k: (x[k], y.get(k)) for k in x if x[k] != y.get(k)})


def test_flows_are_registered_and_prefect_yaml_points_at_them():
    import importlib

    import flows
    from flows.process_calls import process_calls

    assert process_calls.name == "process-calls"
    assert flows.weekly_scorecards.name == "weekly-scorecards"
    assert flows.rescore.name == "rescore"
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    names = {d["name"]: d for d in spec["deployments"]}
    assert {"nightly-ingest", "weekly-scorecards", "rescore"} <= set(names)
    for d in spec["deployments"]:
        module, _, attr = d["entrypoint"].partition(":")
        obj = getattr(importlib.import_module(module.removesuffix(".py").replace("/", ".")), attr)
        assert hasattr(obj, "fn"), f"{d['entrypoint']} is not a flow"
        assert d["work_pool"]["name"] == "qa-process-pool"
    assert names["nightly-ingest"]["schedules"][0]["cron"] == "0 2 * * *"
    assert names["weekly-scorecards"]["schedules"][0]["cron"] == "0 6 * * 1"


def test_task_runner_specs():
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    from flows import make_task_runner

    assert isinstance(make_task_runner(None), ThreadPoolTaskRunner)
    local = make_task_runner("dask", workers=3)
    assert isinstance(local, DaskTaskRunner) and local.cluster_kwargs["n_workers"] == 3
    remote = make_task_runner("dask=tcp://10.0.0.5:8786")
    assert remote.address == "tcp://10.0.0.5:8786"
    with pytest.raises(ValueError, match="accepted: thread, process, dask, dask=ADDRESS"):
        make_task_runner("ray")


def test_the_local_process_pool_travels_unstarted():
    """The `process` runner: n worker processes sharing the cores; Prefect sends the flow, and so its runner,
    with every task: the started pool (its queue cannot be pickled) travels as an unstarted plain one."""
    import cloudpickle
    from prefect.task_runners import ProcessPoolTaskRunner

    from flows import make_task_runner
    from flows.process_calls import LocalProcessRunner

    runner = make_task_runner("process", workers=2, config_path=None, overrides={"asr.cpu_threads": 1},
                              languages=("en",))
    assert isinstance(runner, LocalProcessRunner) and runner._max_workers == 2
    assert runner.duplicate() is runner  # the flow runs on the pool started before it
    with runner:
        twin = cloudpickle.loads(cloudpickle.dumps(runner))
        assert type(twin) is ProcessPoolTaskRunner and twin._max_workers == 2 and twin._executor is None
    assert runner._executor is None  # stopped when the flow's `with` ends


def test_only_transient_io_is_retried():
    from flows.tasks import IO_RETRIES, is_transient_io
    from qa_pipeline.errors import AudioDecodeError, IngestError

    assert is_transient_io(ConnectionResetError())
    assert is_transient_io(TimeoutError())
    assert is_transient_io(OSError(errno.EIO, "Input/output error"))
    assert not is_transient_io(FileNotFoundError("gone"))
    assert not is_transient_io(PermissionError("no"))
    assert not is_transient_io(OSError(errno.ENOSPC, "disk full"))
    assert not is_transient_io(AudioDecodeError("bad file"))  # deterministic: never retried
    assert not is_transient_io(IngestError("bad sidecar"))
    assert not is_transient_io(ValueError("bug"))
    assert IO_RETRIES["retries"] >= 1 and callable(IO_RETRIES["retry_condition_fn"])


def test_process_path_reraises_only_what_it_is_told(tmp_path, pipeline_config):
    """The flow's hook into the library: transient I/O propagates (to be retried), the rest is recorded."""
    from qa_pipeline.pipeline.resources import ResourcePool
    from qa_pipeline.pipeline.runner import process_path
    from qa_pipeline.store.folder import read_dataset

    pool = ResourcePool()

    calls = tmp_path / "calls"
    _transcripts(calls)
    data = tmp_path / "data"
    boom = ConnectionResetError("network went away")

    import qa_pipeline.pipeline.runner as runner

    real = runner.write_result

    def flaky(*a, **k):
        raise boom

    runner.write_result = flaky
    try:
        with pytest.raises(ConnectionResetError):
            process_path(str(calls / "t-good.transcript.json"), str(calls), str(data), pipeline_config, pool,
                         reraise=lambda e: isinstance(e, ConnectionError))
        o = process_path(str(calls / "t-good.transcript.json"), str(calls), str(data), pipeline_config, pool,
                         source="s3://bucket/calls/t-good.transcript.json")
    finally:
        runner.write_result = real
    assert o.status == "failed"
    assert read_dataset(data, "failures", ["path"]).column("path").to_pylist() == [
        "s3://bucket/calls/t-good.transcript.json"]


@pytest.fixture(scope="module")
def flow_corpus(tmp_path_factory, jfk_clip):
    calls = tmp_path_factory.mktemp("flow") / "calls"
    _transcripts(calls)
    make_stereo_calls(calls, jfk_clip, 1)
    return calls


@pytest.fixture(scope="module")
def in_process_run(prefect_api, flow_corpus, tmp_path_factory):
    from flows import run_process_calls

    data = tmp_path_factory.mktemp("flow") / "data"
    seen = []
    summary = run_process_calls(str(flow_corpus), str(data), overrides=SAME_THREADS, progress=seen.append)
    return data, summary, seen


@pytest.mark.slow
def test_process_calls_flow_in_process(in_process_run, flow_corpus, prefect_api):
    from prefect.client.orchestration import get_client

    from flows import run_process_calls
    from qa_pipeline.store.folder import read_dataset

    data, summary, seen = in_process_run
    assert summary["counts"] == {"done": 3, "skipped": 0, "reanalysed": 0, "failed": 1}
    assert len(seen) == 4 and {o["status"] for o in seen} == {"done", "failed"}
    calls = read_dataset(data, "calls").to_pylist()
    assert len(calls) == 3
    audio = [c for c in calls if c["mode"] != "transcript"]
    assert audio and {"decode", "vad", "asr"} <= dict(audio[0]["stage_seconds"]).keys()  # per-stage timings
    assert summary["stage_seconds"]["asr"] > 0 and summary["scores"]["calls"] == 3
    assert read_dataset(data, "failures", ["path"]).column("path").to_pylist()[0].endswith("broken.transcript.json")
    (run_file,) = (data / "_runs").glob("*.json")
    assert json.loads(run_file.read_text())["counts"]["done"] == 3
    with get_client(sync_client=True) as client:
        artifact = client.read_latest_artifacts()
    assert any(a.key == "process-calls-summary" and "| 3 | 0 | 0 | 1 |" in (a.data or "") for a in artifact)
    # a rerun discovers nothing new: no per-call task for done calls, the broken file fails again
    again = run_process_calls(str(flow_corpus), str(data), overrides=SAME_THREADS)
    assert again["counts"] == {"done": 0, "skipped": 3, "reanalysed": 0, "failed": 1}
    assert len(read_dataset(data, "calls")) == 3


@pytest.mark.slow
def test_dask_local_cluster_writes_the_same_rows(in_process_run, flow_corpus, tmp_path, prefect_api):
    from flows import run_process_calls

    data, _, _ = in_process_run
    dask_data = tmp_path / "data"
    summary = run_process_calls(str(flow_corpus), str(dask_data), overrides=SAME_THREADS, task_runner="dask",
                                workers=2)
    assert summary["counts"]["done"] == 3 and summary["counts"]["failed"] == 1
    _assert_same_rows(dask_data, data)


@pytest.mark.slow
def test_local_process_pool_starts_before_the_flow_and_writes_the_same_rows(in_process_run, flow_corpus, tmp_path,
                                                                           prefect_api):
    """The default local run with several workers (`qa-pipeline run`): the worker processes start, and load their
    models, before the flow runs; the calls spread over them; the rows are those of one process."""
    from flows import make_task_runner, run_process_calls

    data, _, _ = in_process_run
    out = tmp_path / "data"
    runner = make_task_runner("process", workers=2, overrides=SAME_THREADS, languages=("en",))
    runner.start()
    assert len(runner._executor._processes) == 2  # launched before the flow
    summary = run_process_calls(str(flow_corpus), str(out), overrides=SAME_THREADS, task_runner=runner)
    assert runner._executor is None  # stopped with the run
    assert summary["counts"]["done"] == 3 and summary["counts"]["failed"] == 1
    _assert_same_rows(out, data)


@pytest.mark.slow
def test_scorecard_and_rescore_flows(in_process_run, prefect_api):
    import datetime as dt

    from flows import rescore, weekly_scorecards
    from flows.scorecards import last_full_week

    data, _, _ = in_process_run
    assert last_full_week(dt.date(2026, 12, 1)) == "2026-W48"
    out = weekly_scorecards(str(data), week="2026-W48")
    assert out["week"] == "2026-W48" and out["agents"] == 2
    assert rescore(str(data))["calls"] == 3
