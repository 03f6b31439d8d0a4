"""Scoring against the rubric, weekly scorecards, QA verdicts and calibration, on imported transcripts."""

import json

import pytest

from qa_pipeline.config import load_config
from qa_pipeline.errors import QAPipelineError
from qa_pipeline.pipeline.runner import run_folder
from qa_pipeline.scoring.score import (
    RubricError,
    cohen_kappa,
    import_division_complaints,
    import_reviews,
    load_rubric,
    rescore,
)
from qa_pipeline.store.folder import read_dataset
from tests.analysis.test_analysis import COMPLIANT_ORDER, RUDE_COMPLAINT


def _write(calls, call_id, lines, agent, started, call_type="order", team="north"):
    doc = {"call_id": call_id, "agent_id": agent, "team": team, "campaign": "energy", "direction": "inbound",
           "call_type": call_type, "started_at": started, "language": "en",
           "utterances": [{"speaker": r, "start": s, "end": e, "text": t} for r, s, e, t in lines]}
    (calls / f"{call_id}.transcript.json").write_text(json.dumps(doc))


@pytest.fixture()
def scored(tmp_path):
    calls = tmp_path / "calls"
    calls.mkdir()
    _write(calls, "w47-good", COMPLIANT_ORDER, "A01", "2026-11-17T10:00:00+01:00")
    _write(calls, "w48-good", COMPLIANT_ORDER, "A01", "2026-11-24T10:00:00+01:00")
    _write(calls, "w48-bad", RUDE_COMPLAINT, "A02", "2026-11-24T11:00:00+01:00", "complaint")
    _write(calls, "w48-good2", COMPLIANT_ORDER, "A02", "2026-11-25T11:00:00+01:00")
    data = tmp_path / "data"
    run_folder(calls, data, load_config(None))
    rescore(data)
    return calls, data


def _cards(data):
    return {(r["agent_id"], r["iso_week"]): r for r in read_dataset(data, "scorecards_weekly").to_pylist()}


def test_call_scores_carry_evidence_of_each_deduction(scored):
    _, data = scored
    rows = read_dataset(data, "call_scores").to_pylist()
    bad = {(r["criterion"], r["item"]): r for r in rows if r["call_id"] == "w48-bad"}
    comp = bad[("quality", "script_compliance")]
    assert comp["points"] < comp["max_points"]
    refs = {e["ref"] for e in comp["evidence"]}
    assert {"opening.agent_name", "conduct.no_rude_language"} <= refs
    rude = next(e for e in comp["evidence"] if e["ref"] == "conduct.no_rude_language")
    assert rude["utterance_index"] == 2 and rude["start_s"] >= 9.5
    assert bad[("quality", "courtesy")]["points"] == 0
    handling = bad[("quality", "complaint_handling")]
    assert handling["points"] == 0 and any(e["ref"] == "complaint_raised" for e in handling["evidence"])
    good = {(r["criterion"], r["item"]): r for r in rows if r["call_id"] == "w48-good"}
    assert good[("quality", "script_compliance")]["points"] == good[("quality", "script_compliance")]["max_points"]
    assert good[("tasks_completed", "outcome_achieved")]["points"] == 1
    assert good[("quality", "complaint_handling")]["points"] is None  # not applicable
    assert {r["rubric_version"] for r in rows} == {load_rubric().version}


def test_weekly_scorecards_rank_and_change(scored):
    _, data = scored
    cards = _cards(data)
    assert set(cards) == {("A01", "2026-W47"), ("A01", "2026-W48"), ("A02", "2026-W48")}
    a1, a2 = cards[("A01", "2026-W48")], cards[("A02", "2026-W48")]
    assert a1["calls"] == 1 and a2["calls"] == 2
    assert a1["quality"] > a2["quality"]
    assert a1["rank_in_team"] == 1 and a2["rank_in_team"] == 2
    assert a1["change_from_previous_week"] == pytest.approx(a1["overall"] - cards[("A01", "2026-W47")]["overall"], abs=0.15)
    assert a2["pending_customer_complaints"] == 1 and a2["customer_complaints"] == 100  # pending does not count


def test_changing_a_weight_rescores_without_reprocessing(scored, tmp_path):
    calls, data = scored
    before_calls = read_dataset(data, "calls").to_pylist()
    before = _cards(data)[("A02", "2026-W48")]["overall"]
    rubric = tmp_path / "rubric.yaml"
    text = load_rubric().path
    edited = open(text).read().replace("weight: 0.35", "weight: 2.0")
    rubric.write_text(edited.replace('version: "2026.11-1"', 'version: "test-2"'))
    summary = rescore(data, rubric)
    assert summary["rubric_version"] == "test-2"
    after = _cards(data)[("A02", "2026-W48")]
    assert after["overall"] != before and after["rubric_version"] == "test-2"
    assert read_dataset(data, "calls").to_pylist() == before_calls  # nothing re-transcribed or re-imported


def test_reviews_import_validates_appends_and_counts_justified_complaints(scored, tmp_path):
    _, data = scored
    flag = next(f for f in read_dataset(data, "flags").to_pylist()
                if f["call_id"] == "w48-bad" and f["flag_type"] == "customer_complaint")
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("call_id,flag_id,verdict,reviewer\nw48-bad,nope,justified,qa1\n"
                       "w48-bad," + flag["flag_id"] + ",maybe,qa1\n")
    with pytest.raises(QAPipelineError, match="2 invalid row"):
        import_reviews(data, bad_csv)
    assert read_dataset(data, "reviews").num_rows == 0
    good_csv = tmp_path / "good.csv"
    good_csv.write_text(
        "call_id,flag_id,item,verdict,reviewer,reviewed_at,comment\n"
        f"w48-bad,{flag['flag_id']},,justified,qa1,2026-11-26T10:00:00+00:00,customer was overcharged\n"
        "w48-good,,quality.script_compliance,met,qa1,2026-11-26T10:05:00+00:00,\n"
        "w48-bad,,quality.script_compliance,not_met,qa1,2026-11-26T10:06:00+00:00,\n")
    assert import_reviews(data, good_csv)["imported"] == 3
    assert import_reviews(data, good_csv)["imported"] == 0  # same verdicts again: nothing added
    assert read_dataset(data, "reviews").num_rows == 3
    rescore(data)
    card = _cards(data)[("A02", "2026-W48")]
    assert card["justified_customer_complaints"] == 1 and card["customer_complaints"] == 50
    cal = {r["item"]: r for r in read_dataset(data, "calibration").to_pylist()}
    assert cal["quality.script_compliance"]["n"] == 2 and cal["quality.script_compliance"]["agreement"] == 1.0
    assert cal["customer_complaint"]["agreement"] == 1.0


def test_division_complaints(scored, tmp_path):
    _, data = scored
    f = tmp_path / "div.csv"
    f.write_text("date,agent,division,text,justified\n2026-11-25,A01,billing,wrong tariff entered,true\n"
                 "2026-11-25,A01,logistics,rude on the phone,false\n")
    import_division_complaints(data, f)
    import_division_complaints(data, f)  # idempotent
    assert read_dataset(data, "division_complaints").num_rows == 2
    rescore(data)
    card = _cards(data)[("A01", "2026-W48")]
    assert card["justified_division_complaints"] == 1 and card["divisions_complaints"] == 50


def test_rubric_validation(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("version: x\ncriteria:\n  quality:\n    weight: -1\n")
    with pytest.raises(RubricError, match="quality.weight"):
        load_rubric(p)
    p.write_text("version: x\ncriteria:\n  happiness:\n    weight: 1\n")
    with pytest.raises(RubricError, match="unknown criteria"):
        load_rubric(p)


def test_thresholds_live_in_the_rubric_and_are_type_checked(tmp_path):
    th = load_rubric().thresholds  # the defaults file states today's values
    assert (th.max_interruptions, th.talk_ratio_min, th.talk_ratio_max) == (1, 0.3, 0.7)
    assert (th.wpm_min, th.wpm_max, th.min_word_probability) == (110, 190, 0.7)
    assert (th.negative_customer_at, th.calm_agent_min) == (-0.25, 0.0)
    assert th.severity_weights == {"critical": 3.0, "major": 2.0, "minor": 1.0, "info": 0.5}
    p = tmp_path / "r.yaml"
    p.write_text("version: x\ncriteria:\n  quality:\n    weight: 1\n    items:\n"
                 "      clarity: {max_points: 1, wpm_min: fast}\n")
    with pytest.raises(RubricError) as e:
        load_rubric(p)
    assert "criteria.quality.items.clarity.wpm_min must be a number" in str(e.value) and str(p) in str(e.value)
    with pytest.raises(RubricError, match=r"listening.max_interruptions must be a integer.*'two' \(str\)"):
        load_rubric(overrides={"quality.items.listening.max_interruptions": "two"})
    with pytest.raises(RubricError, match="severity_weights must be a mapping"):
        load_rubric(overrides={"quality.items.script_compliance.severity_weights": [3, 2]})
    with pytest.raises(RubricError, match=r"unknown option\(s\) \['wpm'\]"):
        load_rubric(overrides={"quality.items.clarity.wpm": 5})


def test_a_threshold_change_rescores(scored):
    _, data = scored

    def clarity():
        return {r["call_id"]: r["points"] for r in read_dataset(data, "call_scores").to_pylist()
                if r["item"] == "clarity"}

    before = clarity()  # the transcripts' agents speak at 98-216 wpm, outside 110-190
    rescore(data, overrides={"quality.items.clarity.wpm_min": 50, "quality.items.clarity.wpm_max": 300})
    after = clarity()
    assert before.keys() == after.keys() and all(after[c] == before[c] + 0.5 for c in after)


def test_cohen_kappa():
    assert cohen_kappa([(True, True), (False, False)] * 5) == 1.0
    assert cohen_kappa([(True, False), (False, True)] * 5) == -1.0
    assert cohen_kappa([(True, True)] * 4) is None
