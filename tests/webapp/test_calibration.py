"""Calibration sessions through HTTP: a QA lead creates one; two raters judge the same calls blind; once closed, the
session page shows Cohen's kappa between them, agreement with the automatic answers and the overlap of the spans
they pinned; calibration answers never reach the reviews dataset, the queue or the scorecards. And the statistics
themselves (Cohen's and Fleiss' kappa, IoU) against known values."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.webapp.conftest import WEEK, XSS, as_user, cards, eval_post, form_token, reviews


def _user_id(app, name: str) -> int:
    from webapp.models import User

    with app.state.qa.db.read() as s:
        return s.scalar(select(User.id).where(User.username == name))


def _create(client, app, call_ids: list[str], raters: list[str], name: str = "week 48") -> int:
    as_user(client, "lead")
    token = form_token(client.get("/calibration").text)
    r = client.post("/calibration", data={"csrf_token": token, "name": name, "calls": "\n".join(call_ids),
                                          "raters": [str(_user_id(app, u)) for u in raters]},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    return int(r.headers["location"].rsplit("/", 1)[1])


# the two raters' answers: (call name, target) -> (rev-alpha, rev-alpha2); spans pinned on the greeting
ITEMS = ["quality.script_compliance", "quality.courtesy", "targets.handle_time", "targets.resolution"]


def test_blind_calibration_with_two_raters_and_kappa(lclient, lapp, scored):
    from webapp.calibration import cohen_kappa

    calls = [scored.ids["alpha-1"], scored.ids["alpha-2"]]
    cards_before = cards(scored.data)
    sid = _create(lclient, lapp, calls, ["rev-alpha", "rev-alpha2"], name=f"calibration {XSS}")
    page = lclient.get(f"/calibration/{sid}").text
    assert XSS not in page and "appear here once the session is closed" in page

    answers = {}  # rater -> [answers in a fixed order]
    plan = {
        "rev-alpha": ["met", "met", "met", "not_met"],
        "rev-alpha2": ["met", "not_met", "met", "not_met"],
    }
    spans = {"rev-alpha": ("0.2", "1.4"), "rev-alpha2": ("0.8", "1.4")}
    for rater, values in plan.items():
        as_user(lclient, rater)
        for call_id in calls:
            params = {"calibration": sid}
            page = lclient.get(f"/calls/{call_id}", params=params).text
            assert "Calibration: calibration" in page and XSS not in page
            assert "Automatic answer" not in page and "suggested" not in page  # blind to the automatic answer
            for item, value in zip(ITEMS, values):
                data = {"target_type": "item", "target_id": item, "answer": value, "calibration": sid,
                        "comment": f"{rater} on {item}"}
                if item == "targets.handle_time":
                    data.update(span_start=spans[rater][0], span_end=spans[rater][1])
                r = eval_post(lclient, call_id, "verdicts", data, page_params=params)
                assert r.status_code == 200, r.text
            if rater == "rev-alpha2":  # blind: the other rater's answers are nowhere on the page
                page = lclient.get(f"/calls/{call_id}", params=params).text
                assert "rev-alpha on" not in page
            r = eval_post(lclient, call_id, "submit", {"calibration": sid}, page_params=params)
            assert r.status_code == 200 and "submitted" in r.text
        answers[rater] = values * len(calls)
    # the standard evaluation panel is untouched, the other rater's answers are not shown before closing
    page = lclient.get(f"/calibration/{sid}").text
    assert "rev-alpha on" not in page and "κ" not in page.split("<h2>Progress</h2>")[1].split("</table>")[0]
    assert re.search(r"rev-alpha2</td><td class=\"n\">2 / 2</td><td class=\"n\">2</td>", page)
    # a rater cannot close, the lead can
    r = lclient.post(f"/calibration/{sid}/close", data={"csrf_token": form_token(page)})
    assert r.status_code == 403
    as_user(lclient, "lead")
    r = lclient.post(f"/calibration/{sid}/close", data={"csrf_token": form_token(lclient.get("/").text)},
                     follow_redirects=False)
    assert r.status_code == 303
    page = lclient.get(f"/calibration/{sid}").text
    expected = cohen_kappa(answers["rev-alpha"], answers["rev-alpha2"])
    assert expected == pytest.approx(0.5)
    overall = re.search(r'<tr class="total">(.*?)</tr>', page, re.S).group(1)
    assert "0.50" in overall and "Cohen" in overall
    # per item: courtesy split the raters (kappa undefined: one rater always 'met'), the greeting span overlaps
    row = re.search(r"<code>targets.handle_time</code>(.*?)</tr>", page, re.S).group(1)
    assert "0.50" in row  # IoU of [0.2, 1.4] and [0.8, 1.4]
    assert "rev-alpha on" not in page  # comments stay with each rater's own evaluation; answers are listed
    assert "rev-alpha2: <b>not met</b>" in page
    # after closing, the raters' evaluations can no longer change
    as_user(lclient, "rev-alpha")
    r = eval_post(lclient, calls[0], "verdicts", {"target_type": "item", "target_id": ITEMS[0], "answer": "not_met",
                                                  "calibration": sid}, page_params={"calibration": sid})
    assert r.status_code == 403

    # calibration never reaches the reviews dataset, the queue states or the scorecards
    assert reviews(scored.data) == []
    assert cards(scored.data) == cards_before
    from webapp.models import Evaluation, ReviewQueueItem

    with lapp.state.qa.db.read() as s:
        assert {i.review_state for i in s.scalars(select(ReviewQueueItem))} == {"unreviewed"}
        evs = list(s.scalars(select(Evaluation)))
    assert len(evs) == 4 and {e.kind for e in evs} == {"calibration"} and all(e.exported_at is None for e in evs)
    lapp.state.qa.rescorer.flush()
    assert reviews(scored.data) == [] and cards(scored.data)[("a1", WEEK)] == cards_before[("a1", WEEK)]


def test_only_members_rate_and_raters_must_see_the_calls(lclient, lapp, scored):
    alpha1, beta = scored.ids["alpha-1"], scored.ids["beta-1"]
    as_user(lclient, "lead")
    token = form_token(lclient.get("/calibration").text)
    # rev-alpha may not see team beta's call: refused
    r = lclient.post("/calibration", data={"csrf_token": token, "name": "x", "calls": beta,
                                           "raters": [str(_user_id(lapp, "rev-alpha")),
                                                      str(_user_id(lapp, "rev-beta"))]})
    assert r.status_code == 422 and "may not see" in r.text
    r = lclient.post("/calibration", data={"csrf_token": token, "name": "x", "calls": alpha1,
                                           "raters": [str(_user_id(lapp, "rev-alpha"))]})
    assert r.status_code == 422 and "two raters" in r.text
    sid = _create(lclient, lapp, [alpha1], ["rev-alpha", "lead"])
    # a reviewer who is not a member: no calibration evaluation, no session page
    as_user(lclient, "rev-alpha2")
    assert lclient.get(f"/calls/{alpha1}", params={"calibration": sid}).status_code == 403
    assert lclient.get(f"/calibration/{sid}").status_code == 404
    r = eval_post(lclient, alpha1, "verdicts", {"target_type": "item", "target_id": ITEMS[0], "answer": "met",
                                                "calibration": sid})
    assert r.status_code == 403
    # reviewers cannot create sessions
    as_user(lclient, "rev-alpha")
    r = lclient.post("/calibration", data={"csrf_token": form_token(lclient.get("/").text), "name": "x",
                                           "calls": alpha1})
    assert r.status_code == 403
    assert f"/calibration/{sid}" in lclient.get("/calibration").text  # a member sees their session


# ---- the statistics ----------------------------------------------------------------------------------------------

def test_cohen_kappa_known_values():
    from webapp.calibration import cohen_kappa

    # 50 units: both yes 20, a yes b no 5, a no b yes 10, both no 15 -> kappa 0.4
    a = ["y"] * 25 + ["n"] * 25
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(["y", "n"], ["y", "n"]) == pytest.approx(1.0)
    assert cohen_kappa(["y", "y"], ["y", "y"]) is None and cohen_kappa([], []) is None


def test_fleiss_kappa_known_value():
    from webapp.calibration import fleiss_kappa

    # Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories -> 0.210
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    units = [[str(k) for k, n in enumerate(row) for _ in range(n)] for row in table]
    assert fleiss_kappa(units) == pytest.approx(0.210, abs=5e-4)
    assert fleiss_kappa([["a", "a", "a"], ["b", "b", "b"]]) == pytest.approx(1.0)
    assert fleiss_kappa([["a", "b"], ["a"]]) is None


def test_iou():
    from webapp.calibration import iou

    assert iou((0.0, 2.0), (1.0, 3.0)) == pytest.approx(1 / 3)
    assert iou((0.0, 1.0), (2.0, 3.0)) == 0.0 and iou((1.0, 2.0), (1.0, 2.0)) == 1.0
