"""The review app's pages, queue index and commands: the queue (filters, order, paging, htmx partial), the call
page (shared partials, transcript, evidence buttons, audio with Range, server-side peaks), the incremental sync
and fragility, `qa-pipeline serve|users|db`, the vendored front-end files."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.webapp.conftest import CALL_DATE, PASSWORD, make_settings, signed_in

ROOT = Path(__file__).resolve().parents[2]


# ---- the queue -----------------------------------------------------------------------------------------------

def test_queue_lists_flags_and_lost_items_by_severity_then_fragility(client, app, tiny):
    from webapp.models import ReviewQueueItem

    with app.state.qa.db.read() as s:
        items = s.scalars(select(ReviewQueueItem)).all()
    kinds = sorted((i.target_type, i.flag_type or i.target_id) for i in items)
    # 3 flags, and the one item that lost points (alpha-2's agent name); items scored in full are not queued
    assert kinds == [("flag", "customer_complaint"), ("flag", "customer_complaint"), ("flag", "script_deviation"),
                     ("item", "quality.agent_name")]
    signed_in(client, "admin")
    page = client.get("/").text
    rows = re.findall(r'<tr>\s*<td><span class="sev (\w+)">.*?value="([0-9.]+)"', page, re.S)
    severities = [s for s, _ in rows]
    assert severities == sorted(severities, key=["high", "medium", "low"].index)
    highs = [float(f) for s, f in rows if s == "high"]
    assert highs == sorted(highs, reverse=True) and len(highs) == 2
    assert "4 items to review" in page


def test_fragility_comes_from_word_probabilities_and_role_confidence(app, client, tiny):
    from webapp.models import ReviewQueueItem
    from webapp.sync import fragility

    with app.state.qa.db.read() as s:
        by_call = {(i.call_id, i.target_type): i for i in s.scalars(select(ReviewQueueItem))}
    complaint = by_call[(tiny.ids["alpha-1"], "flag")]  # its evidence words were transcribed at p = 0.3
    assert complaint.asr_mean_prob == pytest.approx(0.3) and complaint.fragility == pytest.approx(0.7)
    beta = by_call[(tiny.ids["beta-1"], "flag")]  # clean words, but the roles are a guess (0.55)
    assert beta.role_confidence == pytest.approx(0.55) and beta.fragility == pytest.approx(0.45, abs=1e-3)
    no_span = by_call[(tiny.ids["alpha-2"], "flag")]  # a phrase never said: the call's words overall
    assert no_span.start_s is None and no_span.asr_mean_prob == pytest.approx(0.95)
    assert fragility(None, None, None) == 0.0 and fragility(0.9, 0.5, 1.0) == pytest.approx(0.3)


def test_queue_filters_and_htmx_partial(client, tiny):
    signed_in(client, "admin")
    r = client.get("/", params={"severity": "medium", "kind": "flag"})
    assert "1 item to review (filtered)" in r.text and "script deviation" in r.text
    assert client.get("/", params={"team": "alpha", "state": "unreviewed"}).text.count("open</a>") == 3
    assert "Nothing to review" in client.get("/", params={"week": "2026-W01"}).text
    assert "Nothing to review" in client.get("/", params={"language": "it"}).text
    assert client.get("/", params={"criterion": "quality"}).text.count("open</a>") == 1
    assert client.get("/", params={"agent": "a2"}).text.count("open</a>") == 2
    # junk values are ignored, not errors
    assert client.get("/", params={"severity": "<x>", "week": "x", "page": "-3", "per_page": "7"}).status_code == 200
    partial = client.get("/", params={"team": "alpha"}, headers={"hx-request": "true"})
    assert partial.text.lstrip().startswith('<div id="queue-rows">') and "<html" not in partial.text


def test_queue_paging_is_server_side(app, client):
    from webapp.models import ReviewQueueItem, User
    from webapp.queue import QueueFilters, queue_page

    st = app.state.qa
    with st.db.write() as s:
        s.add_all([ReviewQueueItem(call_id=f"c{i:04d}", call_date=CALL_DATE, target_type="flag", target_id=f"f{i}",
                                   team="alpha", agent_id="a1", severity=("high", "low")[i % 2],
                                   severity_rank=i % 2 * 2, fragility=(i % 10) / 10, review_state="unreviewed")
                   for i in range(120)])
    with st.db.read() as s:
        admin = s.scalar(select(User).where(User.username == "admin"))
        f = QueueFilters.from_params({"per_page": "25", "team": "alpha"})
        first, last = queue_page(s, admin, f), queue_page(s, admin, QueueFilters.from_params(
            {"per_page": "25", "team": "alpha", "page": "99"}))
    assert first.total == 123 and first.pages == 5 and len(first.items) == 25
    assert last.page == 5 and len(last.items) == 123 - 100
    ranks = [(i.severity_rank, -i.fragility) for i in first.items]
    assert ranks == sorted(ranks)
    signed_in(client, "admin")
    html = client.get("/", params={"team": "alpha", "per_page": "25", "page": "2"}).text
    assert "page 2 of 5" in html and "page=3" in html and "page=1" not in html  # page 1 is the plain URL


# ---- the call page -------------------------------------------------------------------------------------------

def test_call_page_uses_the_shared_partials(client, tiny):
    signed_in(client, "rev-alpha")
    html = client.get(f"/calls/{tiny.ids['alpha-1']}").text
    assert '<div class="quote"><span class="role customer">customer</span>' in html  # partials/quote.html
    assert '<ul class="ev">' in html  # partials/evidence.html
    assert "Tue 24 Nov 09:30 UTC · complaint · inbound · energy-inbound" in html  # partials/call.html
    assert '<span class="sev high">high</span>' in html  # partials/flags.html
    # transcript lines seek; evidence plays from a second before its span
    assert re.search(r'<li id="u-1" data-start="1.6" data-end="2.6" data-seek="1.6"', html)
    assert 'data-seek="0.6000000000000001"' in html or 'data-seek="0.6"' in html  # the complaint at 1.6 s
    assert re.search(r'<audio id="player" controls preload="metadata" src="/audio/[0-9a-f]{64}\?view=', html)
    assert '<script src="/static/vendor/wavesurfer.min.js" defer></script>' in html


def test_audio_supports_range_requests(client, tiny):
    signed_in(client, "admin")
    page = client.get(f"/calls/{tiny.ids['alpha-1']}").text
    url = re.search(r'src="(/audio/[^"]+)"', page).group(1).replace("&amp;", "&")
    whole = client.get(url)
    size = (tiny.calls / "alpha-1.wav").stat().st_size
    assert whole.status_code == 200 and whole.headers["content-type"] == "audio/wav"
    assert whole.headers["accept-ranges"] == "bytes" and len(whole.content) == size
    part = client.get(url, headers={"range": "bytes=100-199"})
    assert part.status_code == 206 and part.headers["content-range"] == f"bytes 100-199/{size}"
    assert part.content == (tiny.calls / "alpha-1.wav").read_bytes()[100:200]
    assert client.get(url, headers={"range": f"bytes={size + 10}-"}).status_code == 416
    assert client.get(url.split("?")[0]).status_code == 403  # no view: open the page first


def test_peaks_are_computed_on_the_server_and_cached(client, app, tiny):
    signed_in(client, "admin")
    call_id = tiny.ids["alpha-1"]
    r = client.get(f"/calls/{call_id}/peaks.json")
    peaks = r.json()
    assert r.headers["content-type"] == "application/json"
    assert peaks["duration"] == pytest.approx(4.0) and len(peaks["channels"]) == 2  # stereo: one per channel
    assert len(peaks["channels"][0]) == 80 and 0.25 < max(peaks["channels"][0]) <= 0.45  # 20 per second
    cached = tiny.data / "_app" / "peaks" / "original" / f"{call_id}.json"
    assert cached.is_file() and json.loads(cached.read_text())["channels"] == peaks["channels"]
    cached.write_text(cached.read_text().replace('"duration":4.0', '"duration":4.5'))
    assert client.get(f"/calls/{call_id}/peaks.json").json()["duration"] == 4.5  # served from the cache


def test_demo_data_serves_the_demo_calls_folder(tiny, monkeypatch):
    from fastapi.testclient import TestClient

    import webapp.app as webapp_app

    monkeypatch.setattr(webapp_app, "demo_calls_dir", lambda: tiny.calls)
    app = webapp_app.create_app(make_settings(tiny, calls_roots=None))
    with TestClient(app):
        assert app.state.qa.calls_roots == (tiny.calls.resolve(),)
    monkeypatch.setattr(webapp_app, "demo_calls_dir", lambda: tiny.data)  # not where these calls come from
    app = webapp_app.create_app(make_settings(tiny, calls_roots=None))
    with TestClient(app):
        assert app.state.qa.calls_roots == () and "--calls" in app.state.qa.audio_note


# ---- the index follows the datasets ----------------------------------------------------------------------------

def test_sync_rereads_only_changed_dates(app, client, tiny):
    from qa_pipeline.store.folder import remove_key, write_rows
    from tests.webapp.conftest import STARTED, cid
    from webapp.models import CallIndex, ReviewQueueItem

    st = app.state.qa
    assert st.syncer.sync().partitions == 0  # nothing changed since start
    new = cid("new")
    write_rows(tiny.data, "flags", "2026-11-25", new, [dict(call_id=new, flag_id="n1", flag_type="dead_air",
                                                           severity="low", reason="long silence")])
    write_rows(tiny.data, "calls", "2026-11-25", new, [dict(
        call_id=new, audio_sha256=new, path="x.wav", agent_id="a1", team="alpha", mode="stereo", duration_s=1.0,
        channels=2, config_hash="x", pipeline_version="0", status="ok", processed_at=STARTED,
        started_at=STARTED + dt.timedelta(days=1), language="en")])
    r = st.syncer.sync()
    assert (r.partitions, r.calls, r.items) == (1, 1, 1)
    remove_key(tiny.data, "flags", tiny.ids["alpha-2"])  # a rerun removed a call's flags
    r = st.syncer.sync()
    assert r.partitions == 1 and r.calls == 3
    with st.db.read() as s:
        assert s.scalar(select(func.count()).select_from(ReviewQueueItem)
                        .where(ReviewQueueItem.call_id == tiny.ids["alpha-2"])) == 1  # its lost item remains
    for ds in ("calls", "flags"):
        remove_key(tiny.data, ds, new)
    (tiny.data / "calls" / "call_date=2026-11-25").rmdir()
    (tiny.data / "flags" / "call_date=2026-11-25").rmdir()
    assert st.syncer.sync().removed == 1
    with st.db.read() as s:
        assert s.get(CallIndex, new) is None


def test_review_state_follows_the_evaluations(app, client, tiny):
    from webapp.models import Evaluation, ReviewQueueItem, User, Verdict
    from webapp.queue import refresh_review_state

    st = app.state.qa
    call_id = tiny.ids["alpha-1"]
    with st.db.write() as s:
        rev = s.scalar(select(User).where(User.username == "rev-alpha"))
        ev = Evaluation(call_id=call_id, reviewer_id=rev.id, state="submitted")
        ev.verdicts = [Verdict(target_type="flag", target_id=f"{call_id[:8]}-f1", auto_answer="raised",
                               human_answer="confirmed", by_user_id=rev.id)]
        s.add(ev)
        s.flush()
        refresh_review_state(s, [call_id])
    st.syncer.sync(full=True)  # a resync keeps the state
    with st.db.read() as s:
        states = {i.target_id: i.review_state for i in s.scalars(select(ReviewQueueItem)
                                                                  .where(ReviewQueueItem.call_id == call_id))}
    assert states == {f"{call_id[:8]}-f1": "submitted"}
    signed_in(client, "admin")
    assert client.get("/", params={"state": "submitted"}).text.count("open</a>") == 1


# ---- commands --------------------------------------------------------------------------------------------------

def test_users_and_db_commands(tiny, monkeypatch, capsys):
    from flows.cli import main as qa_pipeline
    from webapp.db import head_revision

    data = str(tiny.data)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert qa_pipeline(["users", "add", "Boss", "--role", "admin", "--data", data, "--password-stdin",
                        "--display-name", "The Boss"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert qa_pipeline(["users", "add", "ann", "--role", "qa_reviewer", "--team", "alpha", "--team", "beta",
                        "--unredacted", "--data", data, "--password-stdin"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert qa_pipeline(["users", "add", "bob", "--role", "agent", "--data", data, "--password-stdin"]) == 2
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert qa_pipeline(["users", "add", "cat", "--role", "manager", "--data", data, "--password-stdin"]) == 2
    monkeypatch.setattr("sys.stdin", io.StringIO("another good password\n"))
    assert qa_pipeline(["users", "passwd", "ann", "--data", data, "--password-stdin"]) == 0
    assert qa_pipeline(["users", "disable", "boss", "--data", data]) == 0
    capsys.readouterr()
    assert qa_pipeline(["users", "list", "--data", data]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].split("\t")[:6] == ["ann", "qa_reviewer", "alpha,beta", "-", "unredacted", "active"]
    assert listed[1].split("\t")[:6] == ["boss", "admin", "-", "-", "redacted", "disabled"]
    assert qa_pipeline(["db", "upgrade", "--data", data]) == 0
    assert qa_pipeline(["db", "sync", "--data", data]) == 0
    assert "3 calls, 4 items" in capsys.readouterr().out
    assert qa_pipeline(["db", "current", "--db", f"sqlite:///{tiny.data / 'review.sqlite3'}"]) == 0
    assert capsys.readouterr().out.strip() == head_revision()
    with pytest.raises(SystemExit):
        qa_pipeline(["users", "add", "x", "--role", "janitor", "--data", data])

    from webapp.db import Database
    from webapp.security import Passwords
    from webapp.users import get_user

    db = Database(f"sqlite:///{tiny.data / 'review.sqlite3'}")
    with db.read() as s:
        ann = get_user(s, "ANN")
        assert Passwords().verify(ann.password_hash, "another good password") and ann.can_view_unredacted
        assert ann.password_hash.startswith("$argon2id$")
    db.dispose()


def test_serve_command_runs_uvicorn(tiny, monkeypatch):
    import uvicorn

    from flows.cli import main as qa_pipeline

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    assert qa_pipeline(["serve", "--data", str(tiny.data), "--port", "8123", "--calls", str(tiny.calls)]) == 0
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8123
    assert seen["app"].state.qa.settings.calls_roots == (tiny.calls,)


def test_library_cli_is_unaware_of_the_app():
    text = (ROOT / "qa_pipeline" / "cli.py").read_text(encoding="utf-8")
    assert "webapp" not in text and "serve" not in text


# ---- front-end files -------------------------------------------------------------------------------------------

def test_vendored_files_match_their_recorded_sums(client):
    from webapp.templating import STATIC_DIR

    vendor = STATIC_DIR / "vendor"
    readme = (vendor / "README.md").read_text(encoding="utf-8")
    sums = dict((name, digest) for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", readme, re.M))
    assert set(sums) == {p.name for p in vendor.glob("*.js")}
    for name, digest in sums.items():
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name
    assert (vendor / "htmx.LICENSE.txt").is_file() and (vendor / "wavesurfer.LICENSE.txt").is_file()
    signed_in(client, "admin")
    r = client.get("/static/vendor/htmx.min.js")
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    assert client.get("/static/report.css").text == (ROOT / "qa_pipeline/render/templates/report.css").read_text()
