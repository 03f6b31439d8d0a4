"""QA verdicts and division complaints survive reprocessing and re-imports (issue 12, item 4): a verdict whose
finding is gone is kept, counted and listed (a justified complaint among them still counts), a verdict dated in the
future is refused, the same file imported twice adds nothing, ids stay strings ("007"), an edited division
complaint replaces its earlier version."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from qa_pipeline.config import IngestOptions, load_config
from qa_pipeline.errors import QAPipelineError
from qa_pipeline.pipeline.ingest import load_manifest
from qa_pipeline.pipeline.runner import run_folder
from qa_pipeline.render.report import render_weekly_report
from qa_pipeline.scoring.score import import_division_complaints, import_reviews, rescore
from qa_pipeline.store.folder import DataFolder, read_dataset
from qa_pipeline.store.queries import Queries
from tests.analysis.test_analysis import COMPLIANT_ORDER, RUDE_COMPLAINT
from tests.scoring.test_scoring import _write

UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """Scored data made once: A01 (w47-good, w48-good), A02 (w48-bad: a rude complaint call, w48-good2) and the
    operator "007" (call "007")."""
    root = tmp_path_factory.mktemp("verdicts")
    calls = root / "calls"
    calls.mkdir()
    _write(calls, "w47-good", COMPLIANT_ORDER, "A01", "2026-11-17T10:00:00+01:00")
    _write(calls, "w48-good", COMPLIANT_ORDER, "A01", "2026-11-24T10:00:00+01:00")
    _write(calls, "w48-bad", RUDE_COMPLAINT, "A02", "2026-11-24T11:00:00+01:00", "complaint")
    _write(calls, "w48-good2", COMPLIANT_ORDER, "A02", "2026-11-25T11:00:00+01:00")
    _write(calls, "007", COMPLIANT_ORDER, "007", "2026-11-25T12:00:00+01:00")
    data = root / "data"
    run_folder(calls, data, load_config(None))
    rescore(data)
    return data


@pytest.fixture()
def data(template, tmp_path):
    return shutil.copytree(template, tmp_path / "data")


def _cards(data):
    return {(r["agent_id"], r["iso_week"]): r for r in read_dataset(data, "scorecards_weekly").to_pylist()}


def _complaint_flag(data, call_id="w48-bad"):
    return next(f for f in read_dataset(data, "flags").to_pylist()
                if f["call_id"] == call_id and f["flag_type"] == "customer_complaint")


def _keep_only(data, dataset, call_id, keep):
    """Rewrite one call's file of `dataset` with only the rows `keep` accepts (what a re-analysis that no longer
    finds something leaves)."""
    folder = DataFolder(data)
    rows = [r for r in folder.read_dataset(dataset).to_pylist() if r["call_id"] == call_id]
    date = rows[0]["call_date"]
    folder.write_parquet(dataset, date, call_id, [{k: v for k, v in r.items() if k != "call_date"}
                                                  for r in rows if keep(r)])


def _csv(path, text):
    path.write_text(text, encoding="utf-8")
    return path


# ---- verdicts whose finding is gone -----------------------------------------------------------------------------

def test_a_verdict_whose_finding_is_gone_is_kept_counted_listed_and_a_justified_complaint_still_counts(data, tmp_path):
    flag = _complaint_flag(data)
    _csv(tmp_path / "v.csv",
         "call_id,flag_id,item,verdict,reviewer,reviewed_at,comment\n"
         f"w48-bad,{flag['flag_id']},,justified,qa1,2026-11-26T10:00:00+00:00,customer was overcharged\n"
         "w48-bad,,quality.complaint_handling,not_met,qa2,2026-11-26T10:05:00+00:00,\n"
         "w48-good,,quality.script_compliance,met,qa1,2026-11-26T10:06:00+00:00,\n")
    import_reviews(data, tmp_path / "v.csv")
    summary = rescore(data)
    assert summary["orphaned_verdicts"] == 0
    before = _cards(data)[("A02", "2026-W48")]
    assert before["justified_customer_complaints"] == 1 and before["customer_complaints"] == 50

    # a re-analysis no longer finds the complaint: its flag, and the complaint events the item was scored on, go
    _keep_only(data, "flags", "w48-bad", lambda r: r["flag_type"] != "customer_complaint")
    _keep_only(data, "events", "w48-bad", lambda r: r["event_type"] not in (
        "complaint_raised", "apology_on_behalf_of_company", "transfer_to_quality"))
    summary = rescore(data)
    assert summary["orphaned_verdicts"] == 2
    assert read_dataset(data, "reviews").num_rows == 3  # never dropped
    with Queries(data) as q:
        gone = {r["target"]: r for r in q.orphaned_reviews().to_pylist()}
    assert set(gone) == {flag["flag_id"], "quality.complaint_handling"}
    f = gone[flag["flag_id"]]
    assert (f["call_id"], f["target_type"], f["verdict"], f["reviewer"], f["gone"], f["flag_type"]) == (
        "w48-bad", "flag", "justified", "qa1", "flag", "customer_complaint")
    assert f["reviewed_at"] == dt.datetime(2026, 11, 26, 10, tzinfo=UTC)
    assert gone["quality.complaint_handling"]["gone"] == "item"
    # the justified complaint still counts for the operator and week of its call
    after = _cards(data)[("A02", "2026-W48")]
    assert after["justified_customer_complaints"] == 1 and after["customer_complaints"] == 50
    with Queries(data) as q:
        row = q.customer_complaints(week="2026-W48", status="justified").to_pylist()
    assert [(r["flag_id"], r["agent_id"], r["orphaned"]) for r in row] == [(flag["flag_id"], "A02", True)]

    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", render_weekly_report(data, "2026-W48")))
    assert "2 verdicts whose finding is gone" in text
    listed = text[text.index("2 verdicts whose finding is gone"):]
    for value in ("w48-bad", flag["flag_id"], "quality.complaint_handling", "justified", "not_met", "qa1", "qa2",
                  "2026-11-26"):
        assert value in listed
    assert "finding gone" in text  # the counted complaint is in the week's complaints, marked


def test_a_verdict_on_a_call_no_longer_stored_is_listed_as_orphaned(data, tmp_path):
    flag = _complaint_flag(data)
    _csv(tmp_path / "v.csv", "call_id,flag_id,verdict,reviewer,reviewed_at\n"
                             f"w48-bad,{flag['flag_id']},justified,qa1,2026-11-26T10:00:00Z\n")
    import_reviews(data, tmp_path / "v.csv")
    for ds in ("calls", "flags"):
        DataFolder(data).remove_key(ds, "w48-bad")
    assert rescore(data)["orphaned_verdicts"] == 1
    with Queries(data) as q:
        assert [(r["call_id"], r["gone"]) for r in q.orphaned_reviews().to_pylist()] == [("w48-bad", "call")]


# ---- reviewed_at, idempotent imports ----------------------------------------------------------------------------

def test_a_verdict_dated_in_the_future_is_refused_and_nothing_is_imported(data, tmp_path):
    now = dt.datetime.now(UTC)
    flag = _complaint_flag(data)
    soon = (now + dt.timedelta(minutes=2)).isoformat()  # within the clock-skew allowance
    later = (now + dt.timedelta(hours=1)).isoformat()
    _csv(tmp_path / "v.csv", "call_id,flag_id,item,verdict,reviewer,reviewed_at\n"
                             f"w48-bad,{flag['flag_id']},,justified,qa1,{soon}\n"
                             f"w48-good,,quality.courtesy,met,qa1,{later}\n")
    with pytest.raises(QAPipelineError, match="in the future") as e:
        import_reviews(data, tmp_path / "v.csv")
    assert e.value.code == "E631" and "line 3" in str(e.value) and "line 2" not in str(e.value)
    assert read_dataset(data, "reviews").num_rows == 0
    _csv(tmp_path / "ok.csv", "call_id,flag_id,verdict,reviewer,reviewed_at\n"
                              f"w48-bad,{flag['flag_id']},justified,qa1,{soon}\n")
    assert import_reviews(data, tmp_path / "ok.csv")["imported"] == 1


def test_the_same_csv_imported_twice_adds_nothing(data, tmp_path):
    flag = _complaint_flag(data)
    with_times = _csv(tmp_path / "a.csv", "call_id,flag_id,item,verdict,reviewer,reviewed_at,comment\n"
                      f"w48-bad,{flag['flag_id']},,justified,qa1,2026-11-26T10:00:00+00:00,overcharged\n"
                      f"w48-bad,{flag['flag_id']},,justified,qa1,2026-11-26T10:00:00+00:00,overcharged\n"
                      "w48-good,,quality.courtesy,met,qa1,2026-11-26T11:00:00+01:00,\n")
    assert import_reviews(data, with_times)["imported"] == 2  # a row repeated in the file is one verdict
    assert import_reviews(data, with_times)["imported"] == 0
    # the same time written another way is the same verdict
    _csv(tmp_path / "b.csv", "call_id,item,verdict,reviewer,reviewed_at\n"
                             "w48-good,quality.courtesy,met,qa1,2026-11-26T10:00:00Z\n")
    assert import_reviews(data, tmp_path / "b.csv")["imported"] == 0
    # without reviewed_at (stamped at import): a verdict that says again what the reviewer said last adds nothing
    no_times = _csv(tmp_path / "c.csv", "call_id,item,verdict,reviewer,comment\n"
                                        "w48-good2,quality.courtesy,not_met,qa2,rude\n")
    assert import_reviews(data, no_times)["imported"] == 1
    assert import_reviews(data, no_times)["imported"] == 0
    assert read_dataset(data, "reviews").num_rows == 3
    ids = read_dataset(data, "reviews").column("review_id").to_pylist()
    assert len(set(ids)) == 3
    # a changed mind is a new verdict; then the first one again is one more (the latest counts)
    _csv(tmp_path / "d.csv", "call_id,item,verdict,reviewer\nw48-good2,quality.courtesy,met,qa2\n")
    assert import_reviews(data, tmp_path / "d.csv")["imported"] == 1
    assert import_reviews(data, no_times)["imported"] == 1
    with Queries(data) as q:
        latest = {r["target"]: r["verdict"] for r in q.latest_reviews(call_ids=["w48-good2"]).to_pylist()}
    assert latest == {"quality.courtesy": "not_met"}


def test_two_different_verdicts_by_one_reviewer_at_one_time_are_refused(data, tmp_path):
    _csv(tmp_path / "v.csv", "call_id,item,verdict,reviewer,reviewed_at\n"
                             "w48-good,quality.courtesy,met,qa1,2026-11-26T10:00:00Z\n"
                             "w48-good,quality.courtesy,not_met,qa1,2026-11-26T10:00:00Z\n")
    with pytest.raises(QAPipelineError, match="line 3") as e:
        import_reviews(data, tmp_path / "v.csv")
    assert e.value.code == "E631" and read_dataset(data, "reviews").num_rows == 0


# ---- ids stay strings -------------------------------------------------------------------------------------------

def test_operator_and_call_ids_stay_strings_in_every_import(data, tmp_path):
    # manifest
    calls = tmp_path / "calls"
    calls.mkdir()
    (calls / "calls.csv").write_text("file,call_id,agent_id,team\n001.wav,0042,007,01\n", encoding="utf-8")
    row = load_manifest(calls, IngestOptions()).by_path["001.wav"]
    assert (row["call_id"], row["agent_id"], row["team"]) == ("0042", "007", "01")
    # reviews
    _csv(tmp_path / "v.csv", "call_id,item,verdict,reviewer,reviewed_at\n"
                             "007,quality.courtesy,met,007,2026-11-26T10:00:00Z\n")
    assert import_reviews(data, tmp_path / "v.csv")["imported"] == 1
    r = read_dataset(data, "reviews").to_pylist()[0]
    assert (r["call_id"], r["reviewer"]) == ("007", "007")
    # division complaints, CSV
    _csv(tmp_path / "d.csv", "date,agent,division,text,justified\n2026-11-25,007,0815,wrong tariff,true\n")
    import_division_complaints(data, tmp_path / "d.csv")
    d = read_dataset(data, "division_complaints").to_pylist()
    assert [(x["agent_id"], x["division"]) for x in d] == [("007", "0815")]
    rescore(data)
    assert _cards(data)[("007", "2026-W48")]["justified_division_complaints"] == 1
    assert ("7", "2026-W48") not in _cards(data)


def test_a_parquet_of_complaints_with_numeric_agents_is_refused(data, tmp_path):
    pq.write_table(pa.table({"date": [dt.date(2026, 11, 25)], "agent": [7], "division": ["billing"],
                             "text": ["x"], "justified": [True]}), tmp_path / "d.parquet")
    with pytest.raises(QAPipelineError, match="agent") as e:
        import_division_complaints(data, tmp_path / "d.parquet")
    assert e.value.code == "E631" and read_dataset(data, "division_complaints").num_rows == 0
    pq.write_table(pa.table({"date": [dt.date(2026, 11, 25)], "agent": ["007"], "division": ["billing"],
                             "text": ["x"], "justified": [True]}), tmp_path / "ok.parquet")
    import_division_complaints(data, tmp_path / "ok.parquet")
    assert read_dataset(data, "division_complaints").column("agent_id").to_pylist() == ["007"]


# ---- division complaints have an identity ------------------------------------------------------------------------

def test_an_edited_division_complaint_replaces_its_earlier_version(data, tmp_path):
    first = _csv(tmp_path / "d1.csv", "date,agent,division,text,justified\n"
                                      "2026-11-25,A01,billing,wrong tariff,true\n"
                                      "2026-11-25,A01,logistics,rude on the phone,false\n")
    import_division_complaints(data, first)
    import_division_complaints(data, first)
    assert read_dataset(data, "division_complaints").num_rows == 2
    # the billing complaint is reworded and judged again: it replaces the first version
    _csv(tmp_path / "d2.csv", "date,agent,division,text,justified\n"
                              "2026-11-25,A01,billing,wrong tariff entered twice,false\n")
    import_division_complaints(data, tmp_path / "d2.csv")
    assert read_dataset(data, "division_complaints").num_rows == 2
    rows = {r["division"]: r for r in read_dataset(data, "division_complaints").to_pylist()}
    assert rows["billing"]["text"] == "wrong tariff entered twice"
    assert rows["billing"]["justified"] is False
    rescore(data)
    assert _cards(data)[("A01", "2026-W48")]["justified_division_complaints"] == 0


def test_a_complaint_id_column_identifies_complaints_across_edits_of_any_field(data, tmp_path):
    _csv(tmp_path / "d1.csv", "complaint_id,date,agent,division,text,justified\n"
                              "DC-1,2026-11-25,A01,billing,wrong tariff,true\n"
                              "DC-2,2026-11-25,A01,billing,second complaint the same day,true\n")
    import_division_complaints(data, tmp_path / "d1.csv")
    assert read_dataset(data, "division_complaints").num_rows == 2
    # DC-1 was dated wrong (another month): it moves, it is not counted twice
    _csv(tmp_path / "d2.csv", "complaint_id,date,agent,division,text,justified\n"
                              "DC-1,2026-12-01,A01,billing,wrong tariff,true\n")
    import_division_complaints(data, tmp_path / "d2.csv")
    rows = read_dataset(data, "division_complaints").to_pylist()
    assert sorted((r["complaint_id"], r["date"].isoformat(), r["month"]) for r in rows) == [
        ("DC-1", "2026-12-01", "2026-12"), ("DC-2", "2026-11-25", "2026-11")]


def test_complaints_without_ids_that_share_date_agent_and_division_are_refused(data, tmp_path):
    _csv(tmp_path / "d.csv", "date,agent,division,text,justified\n"
                             "2026-11-25,A01,billing,one,true\n2026-11-25,A01,billing,two,true\n")
    with pytest.raises(QAPipelineError, match="complaint_id") as e:
        import_division_complaints(data, tmp_path / "d.csv")
    assert e.value.code == "E631" and read_dataset(data, "division_complaints").num_rows == 0


def test_a_complaint_stored_by_an_earlier_version_is_replaced_by_its_edit(data, tmp_path):
    # earlier versions keyed a complaint by its text too: a 20-hex id
    DataFolder(data).write_parquet("division_complaints", "2026-11", "complaints", [dict(
        complaint_id="0123456789abcdef0123", date=dt.date(2026, 11, 25), agent_id="A01", division="billing",
        text="wrong tariff", justified=True, source="old.csv")])
    _csv(tmp_path / "d.csv", "date,agent,division,text,justified\n2026-11-25,A01,billing,wrong tariff (edited),false\n")
    import_division_complaints(data, tmp_path / "d.csv")
    rows = read_dataset(data, "division_complaints").to_pylist()
    assert [(r["text"], r["justified"]) for r in rows] == [("wrong tariff (edited)", False)]


def test_bad_complaint_rows_are_refused_with_their_lines(data, tmp_path):
    _csv(tmp_path / "d.csv", "date,agent,division,text,justified\n"
                             "25/11/2026,A01,billing,x,true\n2026-11-25,,billing,x,true\n2026-11-26,A01,billing,x,maybe\n")
    with pytest.raises(QAPipelineError) as e:
        import_division_complaints(data, tmp_path / "d.csv")
    assert e.value.code == "E631" and all(f"line {n}" in str(e.value) for n in (2, 3, 4))
    assert read_dataset(data, "division_complaints").num_rows == 0
    json.dumps(e.value.fields)  # plain values only


def test_complaints_of_several_months_in_one_file_are_all_kept(data, tmp_path):
    _csv(tmp_path / "d.csv", "date,agent,division,text,justified\n"
                             "2026-11-25,A01,billing,wrong tariff,true\n2026-12-02,A02,billing,wrong address,true\n")
    import_division_complaints(data, tmp_path / "d.csv")
    rows = read_dataset(data, "division_complaints").to_pylist()
    assert sorted((r["agent_id"], r["month"]) for r in rows) == [("A01", "2026-11"), ("A02", "2026-12")]


def test_the_kind_of_a_flag_is_read_back_from_its_id_in_sql():
    from qa_pipeline.analysis.flags import Flag
    from qa_pipeline.pipeline.rows import flag_ids
    from qa_pipeline.store.keys import flag_kind_sql

    flags = [Flag("customer_complaint", "medium", f"complaint {n}", n, 10.0 * n, 10.0 * n + 5) for n in range(4)]
    flags.append(Flag("script_deviation", "medium", "no greeting", 0, 0.5, 2.0, "opening.greeting"))
    ids = flag_ids("c'1", flags)
    with Queries(DataFolder("/nonexistent")) as q:
        kinds = q.fetch("SELECT list_transform($ids, lambda i: " + flag_kind_sql("$call", "i", "customer_complaint")
                        + ") AS k", {"ids": ids, "call": "c'1"}).column("k")[0].as_py()
    assert kinds == [True, True, True, True, False]
