"""The evaluation lifecycle through HTTP: confirm / override -> submit -> dispute -> resolve with a root cause, the
verdicts exported to the `reviews` dataset and the operator's weekly scorecard following them as the rubric says;
the stale-version refusal; the dispute window; who sees which evaluation; escaping; CSRF on every new route;
samples; swap speakers."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from tests.webapp.conftest import WEEK, XSS, as_user, cards, eval_post, form_token, panel_version, reviews

HX = {"hx-request": "true"}


def _flag_id(call_id: str, suffix: str = "f1") -> str:
    return f"{call_id[:8]}-{suffix}"


def _audit(app, action: str | None = None) -> list:
    from webapp.models import AuditEntry

    with app.state.qa.db.read() as s:
        stmt = select(AuditEntry).order_by(AuditEntry.id)
        if action:
            stmt = stmt.where(AuditEntry.action == action)
        return list(s.scalars(stmt))


def _evaluation(app, call_id: str):
    from webapp.models import Evaluation

    with app.state.qa.db.read() as s:
        ev = s.scalar(select(Evaluation).where(Evaluation.call_id == call_id, Evaluation.kind == "standard"))
        if ev is not None:
            _ = ev.verdicts
        return ev


def _queue_states(app, call_id: str) -> dict:
    from webapp.models import ReviewQueueItem

    with app.state.qa.db.read() as s:
        return {i.target_id: i.review_state for i in
                s.scalars(select(ReviewQueueItem).where(ReviewQueueItem.call_id == call_id))}


def _expected_overall(card: dict, weights: dict) -> float:
    parts = {k: card[k] for k in weights if card[k] is not None}
    return sum(weights[k] * v for k, v in parts.items()) / sum(weights[k] for k in parts)


# ---- the whole lifecycle ---------------------------------------------------------------------------------------

def test_confirm_submit_dispute_resolve_and_the_scorecard_follows(lclient, lapp, scored):
    from qa_pipeline.scoring.rubric import load_rubric

    rubric = load_rubric()
    alpha1 = scored.ids["alpha-1"]
    flag = _flag_id(alpha1)
    before = cards(scored.data)[("a1", WEEK)]
    assert before["pending_customer_complaints"] == 1 and before["customer_complaints"] == 100

    # the reviewer sees the automatic answers as suggestions and judges
    as_user(lclient, "rev-alpha")
    page = lclient.get(f"/calls/{alpha1}").text
    assert "Automatic answer" in page and "suggested" in page and panel_version(page) == 0
    assert "Keyboard shortcuts" in page and "<kbd>c</kbd>" in page and "1.75" in page
    r = eval_post(lclient, alpha1, "verdicts", {"target_type": "flag", "target_id": flag, "action": "confirm",
                                                "comment": "the customer was overcharged"})
    assert r.status_code == 200 and r.text.lstrip().startswith('<section id="evaluation"'), r.text
    assert "confirmed" in r.text and "not justified" in r.text  # the override button says what it would give
    r = eval_post(lclient, alpha1, "verdicts", {"target_type": "item", "target_id": "tasks_completed.outcome_achieved",
                                                "action": "override", "span_start": "0.5", "span_end": "1.2"})
    assert r.status_code == 200 and "overridden" in r.text and "pinned span" in r.text
    ev = _evaluation(lapp, alpha1)
    answers = {(v.target_type, v.target_id): (v.auto_answer, v.human_answer) for v in ev.verdicts}
    assert answers == {("flag", flag): ("justified", "justified"),
                       ("item", "tasks_completed.outcome_achieved"): ("not_met", "met")}
    assert ev.state == "draft" and _queue_states(lapp, alpha1)[flag] == "draft"
    # the agent does not see a draft
    as_user(lclient, "agent-a1")
    page = lclient.get(f"/calls/{alpha1}").text
    assert "still a draft" in page and "overcharged" not in page

    # submitted: exported to the reviews dataset, and the operator's scorecard follows (inline rescoring here)
    as_user(lclient, "rev-alpha")
    r = eval_post(lclient, alpha1, "submit")
    assert r.status_code == 200 and "submitted" in r.text
    rows = {(x["target_type"], x["target"]): x for x in reviews(scored.data)}
    assert {k: x["verdict"] for k, x in rows.items()} == {("flag", flag): "justified",
                                                          ("item", "tasks_completed.outcome_achieved"): "met"}
    assert all(x["reviewer"] == "rev-alpha" and x["source"].startswith("review-app:evaluation=")
               for x in rows.values())
    after = cards(scored.data)[("a1", WEEK)]
    penalty = rubric.penalties.get("customer_complaints", 50)
    assert after["justified_customer_complaints"] == 1 and after["pending_customer_complaints"] == 0
    assert after["customer_complaints"] == 100 - penalty
    assert after["overall"] == pytest.approx(_expected_overall(after, rubric.weights), abs=0.06)
    assert after["overall"] < before["overall"]
    assert cards(scored.data)[("a2", WEEK)] == cards(scored.data)[("a2", WEEK)]  # another agent: untouched
    assert _queue_states(lapp, alpha1)[flag] == "submitted"
    ev = _evaluation(lapp, alpha1)
    assert ev.exported_at is not None and ev.dispute_window_ends_at is not None

    # the agent disputes the complaint's verdict within the window
    as_user(lclient, "agent-a1")
    page = lclient.get(f"/calls/{alpha1}").text
    assert "Acknowledge" in page and "Dispute" in page and "overcharged" in page
    verdict_id = next(v.id for v in ev.verdicts if v.target_type == "flag")
    r = eval_post(lclient, alpha1, "dispute", {"verdict": verdict_id,
                                               "reason": "I was not the one who quoted that price"})
    assert r.status_code == 200 and "disputed" in r.text and "not the one" in r.text
    assert _queue_states(lapp, alpha1)[flag] == "disputed"
    assert "Resolve the dispute" not in r.text  # the agent cannot resolve
    # a reviewer cannot resolve either
    as_user(lclient, "rev-alpha")
    r = eval_post(lclient, alpha1, "resolve", {"root_cause": "asr_error", "note": "x"})
    assert r.status_code == 403

    # the QA lead resolves: the ASR misheard the price; the complaint is not justified
    as_user(lclient, "lead")
    page = lclient.get(f"/calls/{alpha1}").text
    assert "Resolve the dispute" in page and "asr_error" in page
    r = eval_post(lclient, alpha1, "resolve", {"root_cause": "nonsense", "note": "x",
                                               f"answer_{verdict_id}": "unjustified"})
    assert r.status_code == 422 and r.headers["hx-retarget"] == "#eval-alert"
    r = eval_post(lclient, alpha1, "resolve", {"root_cause": "asr_error", "note": "the price was misheard",
                                               f"answer_{verdict_id}": "unjustified"})
    assert r.status_code == 200 and "resolved" in r.text and "overturned" in r.text and "misheard" in r.text
    latest = max((x for x in reviews(scored.data) if x["target"] == flag), key=lambda x: x["reviewed_at"])
    assert latest["verdict"] == "unjustified" and latest["reviewer"] == "lead" and "asr_error" in latest["comment"]
    assert len(reviews(scored.data)) == 3  # appended, nothing duplicated by the re-export
    final = cards(scored.data)[("a1", WEEK)]
    assert final["justified_customer_complaints"] == 0 and final["customer_complaints"] == 100
    assert final["overall"] == before["overall"]
    assert _queue_states(lapp, alpha1)[flag] == "resolved"
    from webapp.models import Dispute

    with lapp.state.qa.db.read() as s:
        d = s.scalar(select(Dispute))
    assert (d.state, d.outcome, d.root_cause) == ("resolved", "overturned", "asr_error")

    # every state change is in the audit log, with before and after
    actions = [e.action for e in _audit(lapp) if e.target_type == "evaluation"]
    for a in ("judged", "submitted", "disputed", "resolved", "exported"):
        assert a in actions, a
    judged = _audit(lapp, "judged")[0]
    assert judged.username == "rev-alpha" and judged.detail["before"] is None
    assert judged.detail["after"]["answer"] == "justified"
    resolved = _audit(lapp, "resolved")[0]
    assert resolved.detail["changes"][0]["before"]["answer"] == "justified"
    assert resolved.detail["changes"][0]["after"]["answer"] == "unjustified"
    assert _audit(lapp, "submitted")[0].detail["after"]["state"] == "submitted"
    assert _audit(lapp, "rescored")


def test_changing_a_verdict_is_audited_with_before_and_after(lclient, lapp, scored):
    alpha2 = scored.ids["alpha-2"]
    as_user(lclient, "rev-alpha")
    target = {"target_type": "item", "target_id": "quality.script_compliance"}
    assert eval_post(lclient, alpha2, "verdicts", {**target, "action": "confirm"}).status_code == 200
    assert eval_post(lclient, alpha2, "verdicts", {**target, "action": "override", "comment": "c"}).status_code == 200
    changed = [e for e in _audit(lapp, "changed") if e.detail.get("target") == "item:quality.script_compliance"]
    assert changed and changed[0].detail["before"]["answer"] == "not_met"
    assert changed[0].detail["after"]["answer"] == "met"


# ---- concurrency -----------------------------------------------------------------------------------------------

def test_a_stale_form_is_refused_and_never_overwrites(lclient, lapp, scored):
    alpha1 = scored.ids["alpha-1"]
    flag = _flag_id(alpha1)
    as_user(lclient, "rev-alpha")
    stale_page = lclient.get(f"/calls/{alpha1}").text  # rev-alpha opens the call: no evaluation yet (v0)
    stale = {"csrf_token": form_token(stale_page), "version": str(panel_version(stale_page))}
    # meanwhile rev-alpha2 judges the same flag
    as_user(lclient, "rev-alpha2")
    assert eval_post(lclient, alpha1, "verdicts", {"target_type": "flag", "target_id": flag,
                                                   "action": "confirm"}).status_code == 200
    version = _evaluation(lapp, alpha1).version
    # rev-alpha's form still says v0: refused, with the message in the panel's alert box (htmx)
    as_user(lclient, "rev-alpha")
    token = form_token(lclient.get("/").text)
    r = lclient.post(f"/calls/{alpha1}/evaluation/verdicts", headers=HX,
                     data={**stale, "csrf_token": token, "target_type": "flag", "target_id": flag,
                           "action": "override"})
    assert r.status_code == 409
    assert r.headers["hx-retarget"] == "#eval-alert" and "reload the page" in r.text and "NOT saved" in r.text
    # a plain form post gets the error page saying so
    r = lclient.post(f"/calls/{alpha1}/evaluation/verdicts", headers={"accept": "text/html"},
                     data={**stale, "csrf_token": token, "target_type": "flag", "target_id": flag,
                           "action": "override"})
    assert r.status_code == 409 and "reload the page" in r.text
    ev = _evaluation(lapp, alpha1)
    assert ev.version == version and [v.human_answer for v in ev.verdicts] == ["justified"]  # untouched
    # submitting from an old copy is refused the same way
    r = eval_post(lclient, alpha1, "submit", version=version - 1)
    assert r.status_code == 409 and _evaluation(lapp, alpha1).state == "draft"
    # with the current version it goes through
    assert eval_post(lclient, alpha1, "verdicts", {"target_type": "flag", "target_id": flag,
                                                   "action": "override"}).status_code == 200
    assert _evaluation(lapp, alpha1).verdicts[0].human_answer == "unjustified"


def test_the_database_refuses_a_concurrent_update_too(lapp, lclient, scored):
    """Two transactions that both passed the version check: the second UPDATE finds no row of its version."""
    from sqlalchemy.orm.exc import StaleDataError

    from webapp.models import Evaluation

    alpha1 = scored.ids["alpha-1"]
    as_user(lclient, "rev-alpha")
    eval_post(lclient, alpha1, "verdicts", {"target_type": "flag", "target_id": _flag_id(alpha1), "action": "confirm"})
    db = lapp.state.qa.db
    with db.read() as s:
        old = s.scalar(select(Evaluation).where(Evaluation.call_id == alpha1))
    with db.write() as s:
        s.get(Evaluation, old.id).state = "submitted"
    with pytest.raises(StaleDataError):
        with db.write() as s:
            copy = s.merge(old, load=False)
            copy.state = "resolved"


# ---- the dispute window ----------------------------------------------------------------------------------------

def _submitted(lclient, lapp, scored, name="alpha-1"):
    call_id = scored.ids[name]
    as_user(lclient, "rev-alpha")
    flag = _flag_id(call_id, "f2" if name == "alpha-2" else "f1")
    assert eval_post(lclient, call_id, "verdicts", {"target_type": "flag", "target_id": flag,
                                                    "action": "confirm"}).status_code == 200
    assert eval_post(lclient, call_id, "submit").status_code == 200
    return call_id


def test_the_dispute_window_closes(lclient, lapp, scored):
    import datetime as dt

    from webapp.models import Evaluation

    alpha1 = _submitted(lclient, lapp, scored)
    as_user(lclient, "agent-a1")
    assert "Acknowledge" in lclient.get(f"/calls/{alpha1}").text
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)
    with lapp.state.qa.db.write() as s:
        s.execute(update(Evaluation.__table__).where(Evaluation.__table__.c.call_id == alpha1)
                  .values(dispute_window_ends_at=past))
    page = lclient.get(f"/calls/{alpha1}").text
    assert "Acknowledge</button>" not in page and "Dispute</button>" not in page and "closed on" in page
    for action, data in (("acknowledge", {}), ("dispute", {"reason": "too late"})):
        r = eval_post(lclient, alpha1, action, data)
        assert r.status_code == 403 and "closed" in r.text, action
    assert _evaluation(lapp, alpha1).state == "submitted"


def test_acknowledge_within_the_window_and_the_window_setting(lclient, lapp, scored):
    assert lapp.state.qa.settings.dispute_window_days == 7
    alpha1 = _submitted(lclient, lapp, scored)
    ev = _evaluation(lapp, alpha1)
    assert 6.99 < (ev.dispute_window_ends_at - ev.submitted_at).total_seconds() / 86400 < 7.01
    # the manager of the agent's team may answer too; the agent of another call may not
    as_user(lclient, "agent-a2")
    assert lclient.get(f"/calls/{alpha1}").status_code == 404
    as_user(lclient, "mgr-alpha")
    r = eval_post(lclient, alpha1, "acknowledge")
    assert r.status_code == 200 and "acknowledged" in r.text.lower()
    ev = _evaluation(lapp, alpha1)
    assert ev.state == "acknowledged" and ev.acknowledged_at is not None
    assert eval_post(lclient, alpha1, "dispute", {"reason": "late"}).status_code == 409  # already acknowledged


def test_dispute_window_option(tiny):
    from webapp.config import AppSettings

    assert AppSettings(data_dir=tiny.data, dispute_window_days=2).dispute_window_days == 2
    with pytest.raises(ValueError):
        AppSettings(data_dir=tiny.data, dispute_window_days=-1)
    from webapp.cli import _parser

    args = _parser().parse_args(["serve", "--data", "x", "--dispute-window-days", "3", "--rescore", "flow"])
    assert args.dispute_window_days == 3 and args.rescore == "flow"


# ---- who sees what -----------------------------------------------------------------------------------------------

def test_the_agent_sees_only_their_own_evaluations(lclient, lapp, scored):
    alpha1 = _submitted(lclient, lapp, scored, "alpha-1")
    alpha2 = _submitted(lclient, lapp, scored, "alpha-2")
    as_user(lclient, "agent-a1")
    page = lclient.get("/evaluations").text
    assert "My evaluations" in page and alpha1[:12] in page and alpha2[:12] not in page
    assert lclient.get(f"/calls/{alpha2}").status_code == 404
    for action in ("acknowledge", "dispute"):  # not their call: 404, as if it did not exist
        token = form_token(lclient.get("/").text)
        r = lclient.post(f"/calls/{alpha2}/evaluation/{action}", data={"csrf_token": token, "version": "3",
                                                                        "reason": "x"})
        assert r.status_code == 404
    as_user(lclient, "agent-a2")
    page = lclient.get("/evaluations").text
    assert alpha2[:12] in page and alpha1[:12] not in page
    # a reviewer of another team sees neither
    as_user(lclient, "rev-beta")
    page = lclient.get("/evaluations").text
    assert alpha1[:12] not in page and alpha2[:12] not in page
    # agents cannot judge
    as_user(lclient, "agent-a1")
    r = eval_post(lclient, alpha1, "verdicts", {"target_type": "flag", "target_id": _flag_id(alpha1),
                                                "action": "override"})
    assert r.status_code in (403, 409)


def test_markup_in_comments_is_escaped(lclient, lapp, scored):
    alpha1 = scored.ids["alpha-1"]
    as_user(lclient, "rev-alpha")
    r = eval_post(lclient, alpha1, "verdicts", {"target_type": "flag", "target_id": _flag_id(alpha1),
                                                "action": "confirm", "comment": f"verdict {XSS}"})
    assert XSS not in r.text and "&lt;script&gt;" in r.text
    r = eval_post(lclient, alpha1, "comments", {"anchor": "u:1", "body": f"line note {XSS}<b>x</b>"})
    assert r.status_code == 200 and XSS not in r.text and "<b>x</b>" not in r.text and "line 2" in r.text
    r = eval_post(lclient, alpha1, "comments", {"anchor": f"flag:{_flag_id(alpha1)}", "body": "on the flag"})
    assert r.status_code == 200 and "on the flag" in r.text
    assert eval_post(lclient, alpha1, "comments", {"anchor": "u:99", "body": "x"}).status_code == 422
    assert eval_post(lclient, alpha1, "comments", {"anchor": "", "body": "  "}).status_code == 422
    page = lclient.get(f"/calls/{alpha1}").text
    assert XSS not in page and "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;x&lt;/b&gt;" in page
    assert "💬 1" in page  # the line shows it has a comment
    eval_post(lclient, alpha1, "submit")
    as_user(lclient, "agent-a1")
    r = eval_post(lclient, alpha1, "dispute", {"reason": f"no {XSS}"})
    assert r.status_code == 200 and XSS not in r.text and "no &lt;script&gt;" in r.text


# ---- CSRF on every route -----------------------------------------------------------------------------------------

def test_every_post_route_refuses_a_missing_or_wrong_csrf_token(lclient, lapp, scored):
    from tests.webapp.test_security import _concrete, _leaf_routes

    alpha1 = scored.ids["alpha-1"]
    as_user(lclient, "admin")
    posts = [r for r in _leaf_routes(lapp.routes) if "POST" in (getattr(r, "methods", None) or ())
             and r.path != "/login"]
    paths = {r.path for r in posts}
    for new in ("/calls/{call_id}/evaluation/verdicts", "/calls/{call_id}/evaluation/submit",
                "/calls/{call_id}/evaluation/dispute", "/calls/{call_id}/evaluation/resolve",
                "/calls/{call_id}/evaluation/acknowledge", "/calls/{call_id}/evaluation/comments",
                "/calls/{call_id}/swap-speakers", "/calls/{call_id}/coaching", "/samples", "/calibration",
                "/calibration/{session_id}/close"):
        assert new in paths, new
    for route in posts:
        url = _concrete(route.path, alpha1)
        for headers, data in (({}, {}), ({"x-csrf-token": "wrong"}, {}), ({}, {"csrf_token": "wrong"}),
                              (HX, {"version": "0"})):
            r = lclient.post(url, headers=headers, data=data, follow_redirects=False)
            assert r.status_code == 403 and "CSRF" in r.text, (route.path, headers, data, r.status_code)
    assert _evaluation(lapp, alpha1) is None and not reviews(scored.data)
    assert lclient.get("/").status_code == 200  # still signed in


def test_new_pages_need_their_capability(lclient, scored):
    as_user(lclient, "agent-a1")
    for url in ("/samples", "/calibration", "/scorecards", "/coaching"):
        assert lclient.get(url).status_code == 403, url
    token = form_token(lclient.get("/").text)
    assert lclient.post("/samples", data={"csrf_token": token, "method": "random"}).status_code == 403
    as_user(lclient, "rev-alpha")
    assert lclient.get("/samples").status_code == 200 and lclient.get("/scorecards").status_code == 403
    assert lclient.post("/samples", data={"csrf_token": form_token(lclient.get("/").text)}).status_code == 403


# ---- samples -----------------------------------------------------------------------------------------------------

def test_samples_are_seeded_stored_and_recorded_on_the_review(lclient, lapp, scored):
    from webapp.models import Sample, SampleCall

    as_user(lclient, "lead")
    page = lclient.get("/samples").text
    token = form_token(page)
    form = {"csrf_token": token, "method": "random", "per_agent": "1", "team": "alpha", "seed": "42",
            "name": f"weekly {XSS}"}
    r = lclient.post("/samples", data=form, follow_redirects=False)
    assert r.status_code == 303
    first = int(r.headers["location"].rsplit("/", 1)[1])
    second = int(lclient.post("/samples", data=form, follow_redirects=False).headers["location"].rsplit("/", 1)[1])
    with lapp.state.qa.db.read() as s:
        calls = [[c.call_id for c in s.scalars(select(SampleCall).where(SampleCall.sample_id == i)
                                                .order_by(SampleCall.position))] for i in (first, second)]
        sample = s.get(Sample, first)
    assert calls[0] == calls[1] and len(calls[0]) == 2  # one per agent of team alpha (a1, a2), same seed same draw
    assert sample.seed == 42 and sample.filters["team"] == "alpha" and sample.filters["per_agent_per_week"] == 1
    assert sample.filters["population"] == 2
    page = lclient.get(f"/samples/{first}").text
    assert XSS not in page and "per agent per week" in page
    # a stratified sample of every team
    r = lclient.post("/samples", data={"csrf_token": token, "method": "stratified", "per_agent": "3",
                                       "stratum": "language"}, follow_redirects=False)
    assert r.status_code == 303
    # a review opened from the sample records it
    call_id = calls[0][0]
    as_user(lclient, "rev-alpha")
    flag = next(t for t in ("f1", "f2") if _flag_id(call_id, t) in lclient.get(f"/calls/{call_id}").text)
    r = eval_post(lclient, call_id, "verdicts", {"target_type": "flag", "target_id": _flag_id(call_id, flag),
                                                 "action": "confirm", "sample": first},
                  page_params={"sample": first})
    assert r.status_code == 200 and f"sample #{first}" in r.text
    ev = _evaluation(lapp, call_id)
    assert ev.sample_id == first and ev.sample_filters["seed"] == 42 and ev.sample_filters["team"] == "alpha"
    eval_post(lclient, call_id, "submit", page_params={"sample": first})
    assert all(f"sample={first}" in x["source"] for x in reviews(scored.data))
    # a call that is not in the sample cannot claim it
    as_user(lclient, "lead")
    beta = scored.ids["beta-1"]
    assert beta not in calls[0]
    r = eval_post(lclient, beta, "verdicts", {"target_type": "item", "target_id": "targets.resolution",
                                              "action": "confirm", "sample": first})
    assert r.status_code == 422 and "not in sample" in r.text and _evaluation(lapp, beta) is None


def test_allocation_is_proportional_with_a_floor_of_one():
    from webapp.sampling import allocate

    assert allocate({"a": 8, "b": 1, "c": 1}, 4) == {"a": 2, "b": 1, "c": 1}
    assert allocate({"a": 8, "b": 2}, 5) == {"a": 4, "b": 1}
    assert allocate({"a": 1}, 5) == {"a": 1}
    assert sum(allocate({"a": 5, "b": 5, "c": 5}, 2).values()) == 2


# ---- swap speakers -----------------------------------------------------------------------------------------------

def test_swap_speakers_rewrites_the_roles_and_rescores(lclient, lapp, scored):
    from qa_pipeline.store.folder import read_dataset
    from webapp.models import RoleSwap

    alpha1 = scored.ids["alpha-1"]
    scores_before = {(r["criterion"], r["item"]): r["points"] for r in read_dataset(scored.data, "call_scores")
                     .to_pylist() if r["call_id"] == alpha1}
    as_user(lclient, "rev-alpha")
    page = lclient.get(f"/calls/{alpha1}").text
    token = form_token(page)
    r = lclient.post(f"/calls/{alpha1}/swap-speakers", data={"csrf_token": token, "swaps": "0",
                                                             "reason": f"greeting by the customer {XSS}"},
                     follow_redirects=False)
    assert r.status_code == 303, r.text
    utts = sorted((u for u in read_dataset(scored.data, "utterances").to_pylist() if u["call_id"] == alpha1),
                  key=lambda u: u["utterance_index"])
    assert [u["role"] for u in utts] == ["customer", "agent", "customer"]
    assert {w["role"] for w in read_dataset(scored.data, "words").to_pylist()
            if w["call_id"] == alpha1 and w["utterance_index"] == 0} == {"customer"}
    call = next(c for c in read_dataset(scored.data, "calls").to_pylist() if c["call_id"] == alpha1)
    assert call["role_method"] == "qa_swap" and call["agent_channel"] == "right"
    assert "rev-alpha" in call["role_evidence"]
    scores_after = {(r["criterion"], r["item"]): r["points"] for r in read_dataset(scored.data, "call_scores")
                    .to_pylist() if r["call_id"] == alpha1}
    assert scores_after != scores_before  # the greeting is now the customer's: rescored
    with lapp.state.qa.db.read() as s:
        swap = s.scalar(select(RoleSwap))
    assert swap.before["agent_channel"] == "left" and swap.after["agent_channel"] == "right"
    assert _audit(lapp, "roles_swapped")[0].detail["after"]["role_method"] == "qa_swap"
    page = lclient.get(f"/calls/{alpha1}").text
    assert "swapped by" in page and XSS not in page and "qa swap" in page.lower()
    # a second swap from a page that had not seen the first is refused (it would swap them back)
    r = lclient.post(f"/calls/{alpha1}/swap-speakers", data={"csrf_token": token, "swaps": "0"})
    assert r.status_code == 409
    # a manager may not swap
    as_user(lclient, "mgr-alpha")
    r = lclient.post(f"/calls/{alpha1}/swap-speakers", data={"csrf_token": form_token(lclient.get("/").text),
                                                             "swaps": "1"})
    assert r.status_code == 403


# ---- when verdicts are exported and rescored -----------------------------------------------------------------------

def test_flow_mode_exports_and_a_restart_exports_what_was_left(scored):
    """rescore="flow": verdicts reach the reviews dataset at once, the scorecards wait for the flow. An evaluation
    left unexported (a crash between commit and export) is exported when the next server starts, with the same
    review ids (nothing duplicated), and with on-submit rescoring in the background the scorecards follow."""
    import shutil

    from fastapi.testclient import TestClient

    from tests.webapp.conftest import PASSWORD, add_users, make_settings
    from webapp.app import create_app
    from webapp.models import Evaluation
    from webapp.users import NewUser, add_user

    alpha1 = scored.ids["alpha-1"]
    flag = _flag_id(alpha1)
    before = cards(scored.data)[("a1", WEEK)]
    app = create_app(make_settings(scored, rescore="flow"))
    with TestClient(app) as c:
        add_users(app)
        st = app.state.qa
        with st.db.write() as s:
            add_user(s, NewUser(username="rev-alpha2", role="qa_reviewer", password=PASSWORD, teams=("alpha",)),
                     st.passwords, min_length=10)
        as_user(c, "rev-alpha")
        eval_post(c, alpha1, "verdicts", {"target_type": "flag", "target_id": flag, "action": "confirm"})
        assert eval_post(c, alpha1, "submit").status_code == 200
        assert st.rescorer.flush(30)
        exported = reviews(scored.data)
        assert [(x["target"], x["verdict"]) for x in exported] == [(flag, "justified")]
        assert cards(scored.data)[("a1", WEEK)] == before  # flow mode: the scorecards wait for the flow
        # as if the process had died after the commit, before the export
        with st.db.write() as s:
            s.execute(update(Evaluation.__table__).values(exported_at=None))
    shutil.rmtree(scored.data / "reviews")
    app2 = create_app(make_settings(scored, rescore="on-submit"))
    with TestClient(app2):
        assert app2.state.qa.rescorer.flush(60)
        again = reviews(scored.data)
        assert [x["review_id"] for x in again] == [x["review_id"] for x in exported]
        after = cards(scored.data)[("a1", WEEK)]
        assert after["justified_customer_complaints"] == 1 and after["overall"] < before["overall"]
        assert app2.state.qa.rescorer.status.last_status == "ok"
        assert _evaluation(app2, alpha1).exported_at is not None


def test_background_rescores_are_spaced_out_but_exports_are_not(scored):
    import time

    from fastapi.testclient import TestClient

    from tests.webapp.conftest import add_users, make_settings
    from webapp.app import create_app

    def wait(condition, timeout=30.0):
        end = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < end, "timed out"
            time.sleep(0.05)

    alpha1, beta = scored.ids["alpha-1"], scored.ids["beta-1"]
    before = cards(scored.data)
    app = create_app(make_settings(scored, rescore="on-submit", rescore_min_interval_s=3600))
    with TestClient(app) as c:
        add_users(app)
        rescorer = app.state.qa.rescorer
        as_user(c, "lead")
        eval_post(c, alpha1, "verdicts", {"target_type": "flag", "target_id": _flag_id(alpha1), "action": "confirm"})
        eval_post(c, alpha1, "submit")
        wait(lambda: rescorer.status.runs == 1)  # the first rescore runs at once
        assert cards(scored.data)[("a1", WEEK)]["justified_customer_complaints"] == 1
        eval_post(c, beta, "verdicts", {"target_type": "flag", "target_id": _flag_id(beta), "action": "confirm"})
        eval_post(c, beta, "submit")
        wait(lambda: any(x["call_id"] == beta for x in reviews(scored.data)))  # exported at once
        wait(lambda: rescorer.status.due_since is not None)
        assert rescorer.status.runs == 1  # ... but the next rescore waits for the spacing
        b1 = next(k for k in before if k[0].startswith("b1"))
        assert cards(scored.data)[b1] == before[b1]
        assert "count from the next rescore" in c.get("/scorecards").text
        assert rescorer.flush(60) and rescorer.status.runs == 2
        assert cards(scored.data)[b1]["justified_customer_complaints"] == 1


# ---- the same lifecycle on PostgreSQL ------------------------------------------------------------------------------

from tests.webapp.test_db import postgres_url  # noqa: E402,F401  (the module's own PostgreSQL server)


def test_lifecycle_on_postgresql(postgres_url, scored):  # noqa: F811
    from fastapi.testclient import TestClient
    from sqlalchemy import text

    from tests.webapp.conftest import add_users, make_settings
    from webapp.app import create_app

    app = create_app(make_settings(scored, db_url=postgres_url, rescore="inline"))
    with TestClient(app) as c:
        db = app.state.qa.db
        with db.write() as s:  # a clean database: the server is shared with test_db's module
            s.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        db.upgrade()
        app.state.qa.syncer.sync(full=True)
        add_users(app)
        alpha1 = scored.ids["alpha-1"]
        flag = _flag_id(alpha1)
        as_user(c, "rev-alpha")
        assert eval_post(c, alpha1, "verdicts", {"target_type": "flag", "target_id": flag, "action": "confirm",
                                                 "comment": "ok"}).status_code == 200
        stale = panel_version(c.get(f"/calls/{alpha1}").text)
        assert eval_post(c, alpha1, "verdicts", {"target_type": "flag", "target_id": flag,
                                                 "action": "override"}).status_code == 200
        assert eval_post(c, alpha1, "submit", version=stale).status_code == 409
        assert eval_post(c, alpha1, "submit").status_code == 200
        as_user(c, "agent-a1")
        assert eval_post(c, alpha1, "dispute", {"reason": "no"}).status_code == 200
        as_user(c, "lead")
        ev = _evaluation(app, alpha1)
        r = eval_post(c, alpha1, "resolve", {"root_cause": "judgement", "note": "kept",
                                             f"answer_{ev.verdicts[0].id}": "unjustified"})
        assert r.status_code == 200 and "upheld" in r.text
        assert [x["verdict"] for x in reviews(scored.data)] == ["unjustified"]
        assert _queue_states(app, alpha1)[flag] == "resolved"
        assert {"judged", "changed", "submitted", "disputed", "resolved", "exported"} <= {
            e.action for e in _audit(app)}
