"""Locks on the data folder (issue 12, item 5): two rescores, two imports, or an import and a rescore at once do not
delete each other's partitions or lose rows. Raced for real: two processes, the first held at the worst moment
(after it read, before it wrote) while the second runs."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from qa_pipeline.errors import QAPipelineError
from qa_pipeline.scoring.score import load_rubric
from qa_pipeline.store.folder import DataFolder, read_dataset, replace_partitions
from qa_pipeline.store.queries import Queries
from tests.scoring.test_verdicts import template  # noqa: F401  (the scored data folder, made once per module)

ROOT = Path(__file__).resolve().parents[2]
HOLD_S = 4.0  # how long the first process waits, at its worst moment, for the second to finish


@pytest.fixture()
def data(template, tmp_path):  # noqa: F811
    return shutil.copytree(template, tmp_path / "data")


def _rubric(tmp_path, version="test-2"):
    path = tmp_path / f"rubric-{version}.yaml"
    text = Path(load_rubric().path).read_text()
    path.write_text(text.replace("weight: 0.35", "weight: 2.0").replace('version: "2026.11-1"', f'version: "{version}"'))
    return path


# ---- the racers (module level: they run in spawned processes) -------------------------------------------------

def _held_after_cards(data, rubric, inside, done):
    """rescore, held after it computed the weekly scorecards (call scores written, reviews read), before it
    writes them."""
    from qa_pipeline.scoring import score

    real = score.weekly_scorecards

    def held(q, r):
        cards = real(q, r)
        inside.set()
        done.wait(HOLD_S)
        return cards

    score.weekly_scorecards = held
    score.rescore(data, rubric)


def _held_before_complaints_write(data, path, inside, done):
    """import_division_complaints, held after it read the stored complaints, before it writes the month."""
    from qa_pipeline.scoring.score import import_division_complaints
    from qa_pipeline.store import folder

    real = folder.DataFolder.write_parquet

    def held(self, dataset, *args, **kwargs):
        if dataset == "division_complaints":
            inside.set()
            done.wait(HOLD_S)
        return real(self, dataset, *args, **kwargs)

    folder.DataFolder.write_parquet = held
    import_division_complaints(data, path)


def _rescore(data, rubric):
    from qa_pipeline.scoring.score import rescore

    rescore(data, rubric)


def _import_reviews_and_rescore(data, path):
    from qa_pipeline.cli import main

    assert main(["reviews", "import", str(path), "--data", str(data)]) == 0


def _import_complaints(data, path):
    from qa_pipeline.scoring.score import import_division_complaints

    import_division_complaints(data, path)


def _second(fn, args, inside, done):
    inside.wait(120)
    try:
        fn(*args)
    finally:
        done.set()


def _race(first, first_args, second, second_args):
    """Run `first` in one process and, once it is held at its worst moment, `second` in another."""
    ctx = mp.get_context("spawn")
    inside, done = ctx.Event(), ctx.Event()
    a = ctx.Process(target=first, args=(*first_args, inside, done))
    b = ctx.Process(target=_second, args=(second, second_args, inside, done))
    a.start()
    b.start()
    a.join(180)
    b.join(180)
    assert (a.exitcode, b.exitcode) == (0, 0)


def _consistent(data) -> set[str]:
    """The rubric versions of call_scores, scorecards_weekly and calibration: one and the same, every week there."""
    with Queries(data) as q:
        scores = set(q.fetch("SELECT DISTINCT rubric_version FROM call_scores").column(0).to_pylist())
        cards = q.fetch("SELECT agent_id, iso_week, rubric_version, week FROM scorecards_weekly").to_pylist()
        cal = set(q.fetch("SELECT DISTINCT rubric_version FROM calibration").column(0).to_pylist())
    assert len(scores) == 1 and {c["rubric_version"] for c in cards} == scores and cal <= scores, (scores, cards, cal)
    keys = [(c["agent_id"], c["iso_week"]) for c in cards]
    assert len(keys) == len(set(keys)), "a scorecard twice"
    assert sorted(set(keys)) == [("007", "2026-W48"), ("A01", "2026-W47"), ("A01", "2026-W48"), ("A02", "2026-W48")]
    return scores


# ---- races between processes ----------------------------------------------------------------------------------

def test_two_rescores_at_once_leave_one_consistent_set_of_scores(data, tmp_path):
    other = _rubric(tmp_path)
    _race(_held_after_cards, (data, str(other)), _rescore, (data, None))
    assert _consistent(data) == {load_rubric().version}  # the second ran after the first, whole
    _race(_held_after_cards, (data, None), _rescore, (data, str(other)))
    assert _consistent(data) == {"test-2"}


def test_a_reviews_import_racing_a_rescore_loses_no_verdict(data, tmp_path):
    flag = next(f for f in read_dataset(data, "flags").to_pylist()
                if f["call_id"] == "w48-bad" and f["flag_type"] == "customer_complaint")
    verdicts = tmp_path / "v.csv"
    verdicts.write_text("call_id,flag_id,item,verdict,reviewer,reviewed_at\n"
                        f"w48-bad,{flag['flag_id']},,justified,qa1,2026-11-26T10:00:00Z\n"
                        "w48-good,,quality.courtesy,met,qa1,2026-11-26T10:01:00Z\n")
    _race(_held_after_cards, (data, None), _import_reviews_and_rescore, (data, verdicts))
    assert read_dataset(data, "reviews").num_rows == 2
    cards = {(r["agent_id"], r["iso_week"]): r for r in read_dataset(data, "scorecards_weekly").to_pylist()}
    assert cards[("A02", "2026-W48")]["justified_customer_complaints"] == 1  # the verdict counts
    _consistent(data)


def test_two_complaint_imports_at_once_lose_no_complaint(data, tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("date,agent,division,text,justified\n2026-11-25,A01,billing,wrong tariff,true\n")
    b.write_text("date,agent,division,text,justified\n2026-11-26,A02,logistics,lost parcel,true\n")
    _race(_held_before_complaints_write, (data, a), _import_complaints, (data, b))
    rows = read_dataset(data, "division_complaints").to_pylist()
    assert sorted((r["agent_id"], r["division"]) for r in rows) == [("A01", "billing"), ("A02", "logistics")]


# ---- the lock itself ------------------------------------------------------------------------------------------

HOLDER = """
import sys, time
from qa_pipeline.store.folder import DataFolder
lock = DataFolder(sys.argv[1]).lock(sys.argv[2], timeout_s=5, ttl_s=float(sys.argv[3]))
lock.__enter__()
print("held", flush=True)
time.sleep(120)
"""


def _hold_in_a_process(location: str, name: str = "datasets", ttl_s: float = 60.0) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, location, name, str(ttl_s)], stdout=subprocess.PIPE,
                            text=True, cwd=ROOT, env=os.environ.copy())
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_lock_held_by_another_process_times_out_with_a_code_and_dies_with_its_holder(tmp_path):
    folder = DataFolder(tmp_path / "data")
    proc = _hold_in_a_process(str(tmp_path / "data"))
    try:
        t0 = time.monotonic()
        with pytest.raises(QAPipelineError) as e:
            with folder.lock("datasets", timeout_s=0.5):
                pass
        assert e.value.code == "E705" and 0.4 < time.monotonic() - t0 < 5
        assert f"pid {proc.pid}" in str(e.value) and "datasets" in str(e.value)
        with folder.lock("other-name", timeout_s=0.5):  # another name is another lock
            pass
    finally:
        proc.kill()
        proc.wait()
    t0 = time.monotonic()
    with folder.lock("datasets", timeout_s=10):  # the OS released it with its process
        assert time.monotonic() - t0 < 3
    assert (tmp_path / "data" / "_locks" / "datasets.lock").exists()


def test_replace_partitions_waits_for_the_lock(tmp_path, monkeypatch):
    location = str(tmp_path / "data")
    proc = _hold_in_a_process(location)
    monkeypatch.setenv("QA_LOCK_TIMEOUT_S", "0.5")
    row = dict(failure_id="f1", path="x", stage="s", error_code="E999", message="m",
               failed_at=dt.datetime.now(dt.timezone.utc))
    try:
        with pytest.raises(QAPipelineError) as e:
            replace_partitions(location, "failures", {"2026-11-24": [row]})
        assert e.value.code == "E705" and read_dataset(location, "failures").num_rows == 0
    finally:
        proc.kill()
        proc.wait()
    replace_partitions(location, "failures", {"2026-11-24": [row]})
    assert read_dataset(location, "failures").num_rows == 1


def test_the_lock_is_reentrant_in_a_thread_and_exclusive_between_threads(tmp_path):
    location = tmp_path / "data"
    errors: list = []

    def contend():
        try:
            with DataFolder(location).lock("datasets", timeout_s=0.3):
                errors.append("acquired while held")
        except QAPipelineError as e:
            errors.append(e.code)

    with DataFolder(location).lock("datasets"):
        with DataFolder(location).lock("datasets", timeout_s=0.1):  # the same thread again: re-entered
            t = threading.Thread(target=contend)
            t.start()
            t.join()
        assert errors == ["E705"]
        t = threading.Thread(target=contend)  # still held by the outer block
        t.start()
        t.join()
        assert errors == ["E705", "E705"]
    t = threading.Thread(target=contend)
    t.start()
    t.join()
    assert errors[-1] == "acquired while held"


# ---- object storage: a lease made with a conditional write ------------------------------------------------------

@pytest.fixture(scope="module")
def s3():
    s3fs = pytest.importorskip("s3fs")
    moto_server = pytest.importorskip("moto.server")
    from tests.store.test_storage_s3 import _free_port

    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    mp_ = pytest.MonkeyPatch()
    for k, v in {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "test",
                 "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        mp_.setenv(k, v)
    s3fs.S3FileSystem.clear_instance_cache()
    s3fs.S3FileSystem().mkdir("qa-lock-test")
    yield "s3://qa-lock-test"
    s3fs.S3FileSystem.clear_instance_cache()
    mp_.undo()
    server.stop()


def test_s3_lease_is_exclusive_renewed_and_released(s3):
    location = f"{s3}/lease"
    folder = DataFolder(location)
    outcome: list = []

    def contend(timeout_s):
        try:
            with DataFolder(location).lock("datasets", timeout_s=timeout_s):
                outcome.append("acquired")
        except QAPipelineError as e:
            outcome.append(e.code)

    with folder.lock("datasets", timeout_s=5, ttl_s=1.5):
        lease = json.loads(folder.read_bytes("_locks/datasets.json"))
        assert lease["pid"] == os.getpid() and lease["owner"]
        t = threading.Thread(target=contend, args=(3.0,))  # longer than the ttl: the holder keeps renewing it
        t.start()
        t.join()
        assert outcome == ["E705"]
    assert not folder.exists("_locks/datasets.json")
    contend(1.0)
    assert outcome[-1] == "acquired"


def test_s3_lease_of_a_dead_holder_expires(s3):
    location = f"{s3}/dead"
    folder = DataFolder(location)
    proc = _hold_in_a_process(location, ttl_s=2.0)
    proc.kill()
    proc.wait()
    with pytest.raises(QAPipelineError) as e:
        with folder.lock("datasets", timeout_s=0.3):
            pass
    assert e.value.code == "E705" and f"pid {proc.pid}" in str(e.value)
    t0 = time.monotonic()
    with folder.lock("datasets", timeout_s=10):  # taken over once the dead holder's lease expired
        assert time.monotonic() - t0 < 6
        assert json.loads(folder.read_bytes("_locks/datasets.json"))["pid"] == os.getpid()
