"""Erasure (`qa-pipeline forget`: qa_pipeline/pipeline/forget.py, webapp/erasure.py): every place a call can live
in a data folder, filled by the components that write there (datasets, scores, reviews, failures, pii, redactions,
redacted audio, the app's database and peaks cache, the weekly report, a coaching pack, run summaries, markers,
the object index, quarantine), then `forget`, then every byte of every file searched for the call's id and file
key. The other calls stay; the database keeps its counts; an audit entry names only the id's hash."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from tests.render.test_coaching import add_redacted_copies
from tests.webapp.conftest import CALL_DATE, WEEK, add_users, build_tiny_data, make_settings, score_tiny, signed_in


def _all_files(*roots: Path) -> list[Path]:
    return [p for r in roots if r.exists() for p in r.rglob("*") if p.is_file()]


def _holding(files, needles: list[bytes]) -> list[str]:
    """The files whose name or bytes hold one of the needles."""
    return sorted(str(p) for p in files if any(n in p.read_bytes() or n in str(p).encode() for n in needles))


@pytest.fixture
def lived_in(tmp_path):
    """The tiny data folder after a full life: processed, redacted, scored, reviewed in the app, reported,
    packed, with a failure, a marker, a run summary, an object-index entry and a quarantined file."""
    from fastapi.testclient import TestClient

    from qa_pipeline.config import IngestOptions
    from qa_pipeline.errors import Errors, IngestError
    from qa_pipeline.pipeline.runner import begin_attempt, record_failure
    from qa_pipeline.render.coaching import build_pack
    from qa_pipeline.render.report import write_weekly_report
    from qa_pipeline.scoring.score import import_reviews
    from qa_pipeline.store.folder import DataFolder
    from webapp.app import create_app
    from webapp.models import CoachingMark, Comment, Evaluation, User, Verdict

    tiny = build_tiny_data(tmp_path)
    score_tiny(tiny)
    add_redacted_copies(tiny)
    gone, kept = tiny.ids["alpha-1"], tiny.ids["alpha-2"]
    folder = DataFolder(tiny.data)
    # the app: a reviewer opens and plays both calls (audit, call views, peaks cache), evaluates, comments, marks
    app = create_app(make_settings(tiny))
    with TestClient(app) as c:
        add_users(app)
        signed_in(c, "rev-alpha")
        for cid in (gone, kept):
            page = c.get(f"/calls/{cid}")
            view = page.text.split(f"/audio/{cid}?view=")[1].split('"')[0]
            assert c.get(f"/audio/{cid}?view={view}").status_code == 200
            assert c.get(f"/calls/{cid}/peaks.json").status_code == 200
        st = app.state.qa
        with st.db.write() as s:
            rev = s.query(User).filter_by(username="rev-alpha").one()
            for cid in (gone, kept):
                ev = Evaluation(call_id=cid, reviewer_id=rev.id, state="submitted")
                s.add(ev)
                s.flush()
                s.add(Verdict(evaluation_id=ev.id, target_type="item", target_id="quality.courtesy",
                              human_answer="fail", comment=f"the customer Mario Rossi on {cid}", by_user_id=rev.id,
                              evidence_start_s=1.0, evidence_end_s=2.0))
                s.add(Comment(call_id=cid, author_id=rev.id, body=f"note about {cid}", evaluation_id=ev.id))
                s.add(CoachingMark(trainer_id=rev.id, call_id=cid, agent_id="a1", start_s=0.2, end_s=1.4,
                                   criterion="quality", kind="example", note=f"good opening {cid}"))
    # verdicts exported to the reviews dataset, then the scores, the weekly report, a coaching pack
    csv = tmp_path / "reviews.csv"
    csv.write_text("call_id,item,verdict,reviewer,reviewed_at,comment\n"
                   f"{gone},quality.courtesy,not_met,rev,2026-11-25T10:00:00Z,about {gone}\n"
                   f"{kept},quality.courtesy,met,rev,2026-11-25T10:00:00Z,fine\n")
    import_reviews(folder, csv)
    score_tiny(tiny)
    write_weekly_report(tiny.data, WEEK, tiny.data / "reports" / f"weekly-{WEEK}.html")
    pack = build_pack(tiny.data, tmp_path / "packs" / "alpha", team="alpha").parent
    kept_pack = build_pack(tiny.data, tmp_path / "packs" / "a2", agent="a2").parent
    # a failure row naming it, an in-progress marker, a run summary, an object-index entry, a quarantined file
    record_failure(tiny.data, str(tiny.calls / "alpha-1.wav"), IngestError(Errors.E126, path="alpha-1.wav",
                                                                            error="EIO"), call_id=gone, sha=gone,
                   call_date=CALL_DATE)
    begin_attempt(tiny.data, gone, str(tiny.calls / "alpha-1.wav"), IngestOptions())
    folder.write_text("_runs/2026-11-24T120000Z.json", json.dumps({"outcomes": [
        {"path": str(tiny.calls / "alpha-1.wav"), "status": "done", "call_id": gone},
        {"path": str(tiny.calls / "alpha-2.wav"), "status": "done", "call_id": kept}]}))
    folder.write_text("_objects/abc.json", json.dumps({"uri": "s3://b/alpha-1.wav", "sha256": gone}))
    folder.write_bytes(f"_quarantine/events/call_date={CALL_DATE}/{gone}.parquet.20261124T1.quarantined", b"junk")
    return tiny, gone, kept, pack, kept_pack


def test_forget_leaves_nothing_behind(lived_in, capsys):
    from flows.cli import main
    from qa_pipeline.store.folder import read_dataset
    from qa_pipeline.store.keys import file_key

    tiny, gone, kept, pack, kept_pack = lived_in
    needles = [gone.encode(), file_key(gone).encode()]
    before = _holding(_all_files(tiny.data, pack.parent), needles)
    places = {re.sub(r"call_date=[^/]+|\d{8}T\d+|[0-9a-f]{64}", "*", str(Path(p).relative_to(
        tiny.data if p.startswith(str(tiny.data)) else pack.parent.parent))) for p in before}
    # every kind of place a call lives was filled (the test is only as good as this list)
    for expected in ("calls/*/*.parquet", "utterances/*/*.parquet", "words/*/*.parquet", "flags/*/*.parquet",
                     "compliance/*/*.parquet", "sentiment/*/*.parquet", "pii/*/*.parquet",
                     "redactions/*/*.parquet", "call_scores/*/", "reviews/*/", "failures/*/",
                     "redacted_audio/2026-11-24/*.opus", "_app/peaks/redacted/*.json", "review.sqlite3",
                     f"reports/weekly-{WEEK}.html", "_inprogress/*.json", "_runs/", "_objects/abc.json",
                     "_quarantine/events/*/"):
        pattern = re.escape(expected).replace(r"\*", "[^/]*")
        assert any(re.match(pattern, p) for p in places), (expected, sorted(places))
    rc = main(["forget", "--call", gone, "--data", str(tiny.data)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "NOT deleted" in out and str(tiny.calls / "alpha-1.wav") in out  # the source is not ours
    assert "coaching packs deleted" in out and "review database:" in out
    left = _holding(_all_files(tiny.data, pack.parent), needles)
    assert left == [], left
    # a pack names no call id (its registry holds the hashes): both packs held alpha-1 (a2's as a peer's pass)
    assert not pack.exists() and not kept_pack.exists()
    assert json.loads((tiny.data / "_packs" / "registry.json").read_text()) == []
    assert (tiny.calls / "alpha-1.wav").is_file()
    # the other calls are all there; the week's report is written again
    assert {r["call_id"] for r in read_dataset(tiny.data, "calls").to_pylist()} == {kept, tiny.ids["beta-1"]}
    assert kept in {r["call_id"] for r in read_dataset(tiny.data, "reviews").to_pylist()}
    assert (tiny.data / "reports" / f"weekly-{WEEK}.html").is_file()
    # the audit entry names the hash only
    import hashlib

    (entry,) = [json.loads(p.read_text()) for p in (tiny.data / "_audit").glob("forget-*.json")]
    assert entry["call_id_sha256"] == [hashlib.sha256(gone.encode()).hexdigest()]
    # the database keeps its counts, without text or link; the app's audit log says it happened
    from sqlalchemy import create_engine, text

    eng = create_engine(f"sqlite:///{tiny.data / 'review.sqlite3'}")
    with eng.connect() as conn:
        assert conn.execute(text("select count(*) from evaluations")).scalar() == 2
        assert conn.execute(text("select count(*) from verdicts where comment is null")).scalar() == 1
        assert conn.execute(text("select count(*) from coaching_marks")).scalar() == 2
        assert conn.execute(text("select count(*) from comments where body = ''")).scalar() == 1
        assert conn.execute(text("select count(*) from audit_log where action = 'forgotten'")).scalar() == 1
        assert conn.execute(text("select count(*) from call_index")).scalar() == 2
    eng.dispose()
    # the audit log is still append-only afterwards
    eng = create_engine(f"sqlite:///{tiny.data / 'review.sqlite3'}")
    with pytest.raises(Exception, match="append-only"):
        with eng.begin() as conn:
            conn.execute(text("update audit_log set action = 'x'"))
    eng.dispose()


def test_forget_before_a_date_and_unknown_calls(tmp_path, capsys):
    from flows.cli import main
    from qa_pipeline.store.folder import read_dataset

    tiny = build_tiny_data(tmp_path)
    score_tiny(tiny)
    assert main(["forget", "--call", "no-such-call", "--data", str(tiny.data)]) == 2
    assert "E650" in capsys.readouterr().err
    assert main(["forget", "--before", "24/11/2026", "--data", str(tiny.data)]) == 2
    assert "E651" in capsys.readouterr().err
    assert main(["forget", "--before", CALL_DATE, "--data", str(tiny.data)]) == 0
    assert "nothing to erase" in capsys.readouterr().out
    assert main(["forget", "--before", "2026-11-25", "--data", str(tiny.data)]) == 0
    assert read_dataset(tiny.data, "calls").num_rows == 0
    assert read_dataset(tiny.data, "call_scores").num_rows == 0


def test_retention_erases_old_calls_in_the_nightly_flow_step(tmp_path):
    from qa_pipeline.config import PipelineConfig, PrivacyOptions
    from qa_pipeline.pipeline.forget import apply_retention
    from qa_pipeline.store.folder import read_dataset

    tiny = build_tiny_data(tmp_path)
    config = PipelineConfig(privacy=PrivacyOptions(retention_days=30))
    today = dt.date(2026, 12, 20)
    assert apply_retention(tiny.data, config, today=today) == []  # 2026-11-24 is 26 days old
    gone = apply_retention(tiny.data, config, today=dt.date(2026, 12, 30))
    assert sorted(gone) == sorted(tiny.ids.values())
    assert read_dataset(tiny.data, "calls").num_rows == 0
    assert apply_retention(tiny.data, PipelineConfig(), today=dt.date(2030, 1, 1)) == []  # no retention set


def test_the_flows_retention_step_erases_with_the_database(tmp_path):
    from flows.process_calls import retention_step
    from qa_pipeline.store.folder import read_dataset

    tiny = build_tiny_data(tmp_path)
    cfg = tmp_path / "config.yaml"
    cfg.write_text("privacy:\n  retention_days: 1\n")
    assert retention_step(str(tiny.data), None, None, None) == []  # no retention configured
    gone = retention_step(str(tiny.data), str(cfg), None, None)
    assert sorted(gone) == sorted(tiny.ids.values()) and read_dataset(tiny.data, "calls").num_rows == 0
    assert list((tiny.data / "_audit").glob("forget-*.json"))
