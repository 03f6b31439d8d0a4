"""Managers and trainers through HTTP: the weekly scorecards per team with the weekly report's numbers, scoped to
the manager's teams; the drill-down from an operator's criterion to the calls and their evidence; the automatic
answers' agreement with QA's verdicts with a Wilson interval; the rescorer's week-only rewrite; trainers' coaching
marks."""

from __future__ import annotations

import re

import pytest

from tests.webapp.conftest import WEEK, XSS, as_user, cards, eval_post, form_token


def _overall_cells(html: str) -> dict[str, str]:
    """operator -> the overall score shown in the app's scorecards table."""
    out = {}
    for row in re.findall(r"<tr><td class=\"n\">\d+</td>(.*?)</tr>", html, re.S):
        agent = re.search(r"<b>(.*?)</b>", row).group(1)
        out[agent] = re.search(r'class="n overall score [a-z]+">([^<]*)<', row).group(1)
    return out


def test_scorecards_are_the_reports_numbers_and_scoped_to_the_managers_teams(lclient, scored):
    from qa_pipeline.render.report import render_weekly_report

    data = cards(scored.data)
    report = render_weekly_report(scored.data, WEEK)
    as_user(lclient, "mgr-alpha")
    page = lclient.get("/scorecards", params={"week": WEEK}).text
    assert "Team alpha" in page and "beta&lt;" not in page and "b1&lt;" not in page
    shown = _overall_cells(page)
    assert set(shown) == {"a1", "a2"}
    for agent, value in shown.items():
        assert value == f"{data[(agent, WEEK)]['overall']:.1f}"
        assert f"{data[(agent, WEEK)]['overall']:.1f}" in report  # the report prints the same number
    # the manager of team beta sees beta only, escaped
    as_user(lclient, "mgr-beta")
    page = lclient.get("/scorecards").text
    assert "Team alpha" not in page and "a2</b>" not in page
    assert XSS not in page and "beta&lt;script&gt;" in page
    # asking for the other team by name shows nothing of it
    page = lclient.get("/scorecards", params={"team": "alpha"}).text
    assert "a1</b>" not in page and "No scorecards of your teams" in page
    # nor the other team's operator drill-down
    assert lclient.get("/scorecards/operator", params={"week": WEEK, "agent": "a1"}).status_code == 404
    # a QA lead sees every team; agents and reviewers have no scorecards page
    as_user(lclient, "lead")
    assert set(_overall_cells(lclient.get("/scorecards").text)) == {"a1", "a2", f"b1{XSS}".replace("<", "&lt;")
                                                                        .replace(">", "&gt;")}
    for who in ("agent-a1", "rev-alpha"):
        as_user(lclient, who)
        assert lclient.get("/scorecards").status_code == 403


def test_drill_down_from_a_criterion_to_the_calls_and_evidence(lclient, scored):
    as_user(lclient, "mgr-alpha")
    page = lclient.get("/scorecards", params={"week": WEEK}).text
    link = re.search(r'href="(/scorecards/operator\?[^"]*agent=a2[^"]*criterion=quality)"', page)
    assert link, "the quality score links to the drill-down"
    r = lclient.get(link.group(1).replace("&amp;", "&"))
    assert r.status_code == 200
    alpha2 = scored.ids["alpha-2"]
    assert alpha2[:12] in r.text and f'href="/calls/{alpha2}' in r.text  # the call, linked
    assert "script compliance" in r.text and "opening.agent_name" in r.text  # the item and its evidence
    assert "targets.handle" not in r.text  # only the quality criterion's deductions
    r = lclient.get("/scorecards/operator", params={"week": WEEK, "agent": "a1", "criterion": "customer_complaints"})
    assert r.status_code == 200 and "pending" in r.text and scored.ids["alpha-1"][:12] in r.text


def test_agreement_with_qa_and_its_wilson_interval(lclient, lapp, scored):
    from webapp.scorecards import wilson

    lo, hi = wilson(38, 40)
    assert lo == pytest.approx(0.8350, abs=1e-3) and hi == pytest.approx(0.9862, abs=1e-3)
    assert wilson(0, 0) is None and wilson(0, 5)[0] == 0.0

    alpha1, alpha2 = scored.ids["alpha-1"], scored.ids["alpha-2"]
    as_user(lclient, "mgr-alpha")
    assert "No human verdicts on this team" in lclient.get("/scorecards").text
    as_user(lclient, "rev-alpha")
    for call_id, action in ((alpha1, "confirm"), (alpha2, "override")):
        assert eval_post(lclient, call_id, "verdicts", {"target_type": "item", "target_id": "quality.courtesy",
                                                        "action": action}).status_code == 200
        assert eval_post(lclient, call_id, "submit").status_code == 200
    as_user(lclient, "mgr-alpha")
    page = lclient.get("/scorecards").text
    line = re.search(r"courtesy: auto agrees with QA on <b>1 of 2</b> reviewed "
                     r"\(50 %, 95% CI ([0-9]+) %–([0-9]+) %\)", page)
    assert line, page
    lo, hi = wilson(1, 2)
    assert (int(line.group(1)), int(line.group(2))) == (round(100 * lo), round(100 * hi))
    # the drill-down shows it beside the criterion
    r = lclient.get("/scorecards/operator", params={"week": WEEK, "agent": "a1", "criterion": "quality"})
    assert "courtesy: 1 of 2" in r.text


def test_rescoring_rewrites_only_the_weeks_that_changed(scored, tmp_path):
    from qa_pipeline.store.folder import DataFolder
    from webapp.rescoring import rescore_scorecards

    folder = DataFolder(scored.data)
    before = sorted(folder.dataset_files("scorecards_weekly"))
    result = rescore_scorecards(folder, None)
    assert result["status"] == "ok" and result["weeks"] == []  # nothing changed: nothing rewritten
    assert sorted(folder.dataset_files("scorecards_weekly")) == before
    other = tmp_path / "rubric.yaml"
    from qa_pipeline.scoring.rubric import load_rubric

    other.write_text(open(load_rubric().path).read().replace('version: "2026.11-1"', 'version: "draft-2"'))
    result = rescore_scorecards(folder, other)
    assert result["status"] == "deferred" and "qa-pipeline rescore" in result["reason"]


# ---- trainers ------------------------------------------------------------------------------------------------------

def test_trainers_mark_coaching_examples(lclient, lapp, scored):
    alpha1, beta = scored.ids["alpha-1"], scored.ids["beta-1"]
    as_user(lclient, "trainer-alpha")
    page = lclient.get(f"/calls/{alpha1}").text
    assert "Coaching marks" in page and 'class="coach"' in page and "Swap speakers" not in page
    token = form_token(page)
    r = lclient.post(f"/calls/{alpha1}/coaching", headers={"hx-request": "true"},
                     data={"csrf_token": token, "start_s": "0.2", "end_s": "1.4", "criterion": "quality.courtesy",
                           "kind": "example", "note": f"warm greeting {XSS}", "utterance_index": "0"})
    assert r.status_code == 200 and "warm greeting" in r.text and XSS not in r.text
    r = lclient.post(f"/calls/{alpha1}/coaching", data={"csrf_token": token, "start_s": "3", "end_s": "99",
                                                        "kind": "miss"})
    assert r.status_code == 422  # outside the call
    assert lclient.post(f"/calls/{beta}/coaching", data={"csrf_token": token, "start_s": "0",
                                                         "end_s": "1"}).status_code == 404  # another team
    mine = lclient.get("/coaching").text
    assert alpha1[:12] in mine and "warm greeting" in mine and XSS not in mine and "courtesy" in mine
    from webapp.models import AuditEntry, CoachingMark

    with lapp.state.qa.db.read() as s:
        mark = s.query(CoachingMark).one()
        audited = s.query(AuditEntry).filter(AuditEntry.action == "coaching_marked").one()
    assert (mark.agent_id, mark.start_s, mark.end_s, mark.utterance_index) == ("a1", 0.2, 1.4, 0)
    assert audited.detail["mark"] == mark.id
    # reviewers and managers cannot mark; the lead sees everyone's marks
    as_user(lclient, "mgr-alpha")
    assert lclient.post(f"/calls/{alpha1}/coaching", data={"csrf_token": form_token(lclient.get("/").text),
                                                           "start_s": "0", "end_s": "1"}).status_code == 403
    assert lclient.get("/coaching").status_code == 403
    as_user(lclient, "lead")
    assert "warm greeting" not in lclient.get("/coaching").text
    assert "warm greeting" in lclient.get("/coaching", params={"all": "1"}).text
