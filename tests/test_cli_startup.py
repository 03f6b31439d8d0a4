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


def test_a_server_that_does_not_start_leaves_the_run_to_the_library():
    flows = _FakeFlows(RuntimeError("Timed out while attempting to connect to ephemeral Prefect API server."))
    assert _flow_ready(flows, "thread", verbose=False, remote=False, warm=flows.warm) == "none"


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
def test_warm_loads_the_analysis_and_privacy_resources():
    config = load_config(None, {"asr.english_model": "bundled:tiny.en"})
    pool = ResourcePool()
    pool.warm(config, ("en",))
    resources = pool.for_config(config)
    assert "en" in resources.analysis._nlp and resources.analysis._matchers  # spaCy and the scripts' matchers
    assert resources.privacy._analyzer is not None  # Presidio
