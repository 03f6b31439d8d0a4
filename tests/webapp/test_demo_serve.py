"""`qa-pipeline serve` on the demo data shows the demo's flags ready for review, checked on a subset: two calls of
the demo corpus (a complaint and an order) processed as `qa-pipeline demo` processes them (the demo's calls folder
and its configuration, the calls folder's manifest), scored, then the app started the way `serve --data` starts it
(no --calls: it finds that the calls come from the demo folder and plays them from there). The full demo (25 calls,
about 4 minutes) was checked by hand the same way: see README, QA review app.

Slow: the bundled ASR model transcribes the two calls (about 20 s)."""

from __future__ import annotations

import re

import pytest

from tests.webapp.conftest import PASSWORD, form_token

pytestmark = pytest.mark.slow

SUBSET = ("demo-017.opus", "demo-002.opus")  # A01 north: a complaint; A02 north: an order


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    from qa_pipeline.cli import DEMO_CALLS, DEMO_CONFIG
    from qa_pipeline.config import load_config
    from qa_pipeline.pipeline.resources import ResourcePool
    from qa_pipeline.pipeline.runner import process_path
    from qa_pipeline.scoring.score import rescore
    from qa_pipeline.store.folder import make_private_dirs

    data = tmp_path_factory.mktemp("demo") / "qa-data"
    config = load_config(str(DEMO_CONFIG))
    pool = ResourcePool()
    make_private_dirs(data)  # as run_folder does first
    for name in SUBSET:
        outcome = process_path(str(DEMO_CALLS / name), str(DEMO_CALLS), str(data), config, pool)
        assert outcome.status == "done", outcome
    rescore(data)
    return data


def test_serve_on_the_demo_data_lists_its_flags_for_review(demo_data):
    from fastapi.testclient import TestClient

    from qa_pipeline.cli import DEMO_CALLS
    from qa_pipeline.store.folder import read_dataset
    from webapp.app import create_app
    from webapp.config import AppSettings
    from webapp.users import NewUser, add_user

    flags = read_dataset(demo_data, "flags").to_pylist()
    assert {f["call_id"] for f in flags} <= {"demo-017", "demo-002"}
    assert any(f["flag_type"] == "customer_complaint" and f["call_id"] == "demo-017" for f in flags)
    # as `qa-pipeline serve --data DATA` builds it: no --calls, the default database in the data folder
    app = create_app(AppSettings(data_dir=demo_data, argon2_time_cost=1, argon2_memory_kib=1024, sync_interval_s=0))
    with TestClient(app) as c:
        st = app.state.qa
        assert st.calls_roots == (DEMO_CALLS.resolve(),) and st.audio_note is None
        with st.db.write() as s:
            add_user(s, NewUser(username="admin", role="admin", password=PASSWORD), st.passwords, min_length=10)
        page = c.get("/login")
        assert c.post("/login", data={"username": "admin", "password": PASSWORD,
                                      "csrf_token": form_token(page.text)}).status_code == 200
        queue = c.get("/").text
        # every flag of the demo calls is in the queue, unreviewed, with a link to its call page
        for f in flags:
            assert f"/calls/{f['call_id']}#t-flag-{re.sub(r'[^A-Za-z0-9_-]', '_', f['flag_id'])}" in queue, f
        assert "customer complaint" in queue and "unreviewed" in queue
        total = int(re.search(r"(\d+) items? to review", queue).group(1))
        assert total >= len(flags)
        complaint = next(f for f in flags if f["flag_type"] == "customer_complaint")
        call = c.get(f"/calls/{complaint['call_id']}").text
        assert "Evaluation" in call and "Confirm: justified" in call  # ready for review
        audio = re.search(r'src="(/audio/[^"]+)"', call).group(1).replace("&amp;", "&")
        r = c.get(audio, headers={"range": "bytes=0-1023"})
        assert r.status_code == 206 and len(r.content) == 1024  # played from the demo folder
        assert c.get(f"/calls/{complaint['call_id']}/peaks.json").json()["duration"] > 60
