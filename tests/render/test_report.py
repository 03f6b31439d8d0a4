"""The weekly manager report: a self-contained HTML file, checked as text and as rendered by headless Chromium."""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
import shutil
import subprocess
from html import escape, unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest

from qa_pipeline.errors import QAPipelineError
from qa_pipeline.render.report import render_weekly_report, write_weekly_report
from qa_pipeline.store.folder import read_dataset, write_rows

CHROMIUM = Path(os.environ.get("QA_CHROMIUM", "/usr/bin/chromium"))
RUBRIC = "2026.11-1"
UTC = dt.timezone.utc
# transcripts are user data: this must come out as text, never as markup
INJECTED = 'I want to make a complaint <img src=x onerror="document.title=\'pwned\'"> & I mean it'
RUDE = "Calm down, that's not my problem."


def _call(call_id, agent, team, started):
    return dict(call_id=call_id, audio_sha256=call_id * 2, path=f"/calls/{call_id}.wav", agent_id=agent, team=team,
                campaign="energy", direction="inbound", call_type="complaint" if "bad" in call_id else "order",
                started_at=started, mode="transcript", duration_s=95.0, channels=1, config_hash="cfg",
                pipeline_version="test", status="ok", processed_at=started, outcome=None if "bad" in call_id else "order_taken")


def _score(call_id, agent, team, week, criterion, item, points, max_points, evidence=()):
    return dict(call_id=call_id, agent_id=agent, team=team, iso_week=week, criterion=criterion, item=item,
                points=points, max_points=max_points, evidence=list(evidence), rubric_version=RUBRIC)


def _ev(dataset, ref, u=None, s=None, e=None, note=""):
    return dict(dataset=dataset, ref=ref, utterance_index=u, start_s=s, end_s=e, note=note)


def _card(agent, team, week, calls, tasks, quality, targets, overall, rank, change, pending=0, justified=0):
    return dict(agent_id=agent, team=team, iso_week=week, calls=calls, tasks_completed=tasks, quality=quality,
                targets=targets, divisions_complaints=100.0, customer_complaints=100.0 - 50 * justified,
                overall=overall, rank_in_team=rank, change_from_previous_week=change,
                justified_customer_complaints=justified, pending_customer_complaints=pending,
                justified_division_complaints=0, rubric_version=RUBRIC)


def build_data(root: Path, *, calibration: bool = False) -> Path:
    """A small scored data folder: teams north (A01, A02) and south (A03), weeks 2026-W47 and 2026-W48.

    Written row by row (no transcription, no scoring run), so the numbers are known exactly."""
    data = Path(root)
    w47, w48 = dt.datetime(2026, 11, 17, 9, 0, tzinfo=UTC), dt.datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    calls = [
        ("n47-good", "A01", "north", w47), ("n47-bad", "A02", "north", w47 + dt.timedelta(hours=1)),
        ("n48-good", "A01", "north", w48), ("n48-bad", "A02", "north", w48 + dt.timedelta(hours=2)),
        ("s48-good", "A03", "south", w48 + dt.timedelta(days=1)),
    ]
    for cid, agent, team, started in calls:
        day = started.date().isoformat()
        write_rows(data, "calls", day, cid, [_call(cid, agent, team, started)])
        week = f"2026-W{started.isocalendar()[1]:02d}"
        rows = [
            _score(cid, agent, team, week, "tasks_completed", "outcome_achieved", 1.0, 1.0,
                   [_ev("events", "order_taken", 4, 27.5, 31.0, "I've placed your order")]),
            _score(cid, agent, team, week, "quality", "listening", 1.0, 1.0,
                   [_ev("metrics", "agent_interruptions", note="0 interruptions, talk ratio 0.55")]),
            _score(cid, agent, team, week, "quality", "complaint_handling", None, 2.0),
            _score(cid, agent, team, week, "targets", "handle_time", 1.0, 1.0,
                   [_ev("calls", "duration_s", note="95 s against a 420 s target")]),
        ]
        if "bad" in cid:
            rows[0] = _score(cid, agent, team, week, "tasks_completed", "outcome_achieved", 0.0, 1.0,
                             [_ev("calls", cid, note="no task outcome found on a complaint")])
            rows[2] = _score(cid, agent, team, week, "quality", "complaint_handling", 0.0, 2.0,
                             [_ev("events", "complaint_raised", 1, 2.5, 9.0, "make a complaint")])
            rows.append(_score(cid, agent, team, week, "quality", "courtesy", 0.0, 1.0,
                               [_ev("compliance", "conduct.no_rude_language", 2, 69.5, 72.25, "said 'Calm down'")]))
            write_rows(data, "utterances", day, cid, [
                dict(call_id=cid, utterance_index=0, speaker="agent", role="agent", start_s=0.5, end_s=2.0,
                     text="Yeah, hello?"),
                dict(call_id=cid, utterance_index=1, speaker="customer", role="customer", start_s=2.5, end_s=9.0,
                     text=INJECTED),
                dict(call_id=cid, utterance_index=2, speaker="agent", role="agent", start_s=69.5, end_s=72.25,
                     text=RUDE),
            ])
            write_rows(data, "flags", day, cid, [
                dict(call_id=cid, flag_id=f"{cid}-complaint", flag_type="customer_complaint", severity="medium",
                     reason="customer complaint: make a complaint", utterance_index=1, start_s=2.5, end_s=9.0),
                dict(call_id=cid, flag_id=f"{cid}-rude", flag_type="forbidden_phrase", severity="high",
                     reason="conduct.no_rude_language: said 'Calm down'", rule_id="conduct.no_rude_language",
                     utterance_index=2, start_s=69.5, end_s=72.25),
            ])
        write_rows(data, "call_scores", day, cid, rows)
    write_rows(data, "scorecards_weekly", "2026-W47", "cards-2026-W47", [
        _card("A01", "north", "2026-W47", 1, 10.0, 100.0, 100.0, 80.5, 1, None),
        _card("A02", "north", "2026-W47", 1, 0.0, 25.0, 100.0, 47.5, 2, None, pending=1),
    ])
    write_rows(data, "scorecards_weekly", "2026-W48", "cards-2026-W48", [
        _card("A01", "north", "2026-W48", 1, 10.0, 100.0, 100.0, 82.3, 1, 1.8),
        _card("A02", "north", "2026-W48", 1, 0.0, 36.8, 100.0, 41.2, 2, -6.3, pending=1),
        _card("A03", "south", "2026-W48", 1, 10.0, 100.0, 100.0, 77.6, 1, None),
    ])
    if calibration:
        write_rows(data, "calibration", RUBRIC, "calibration", [
            dict(rubric_version=RUBRIC, target_type="item", item="quality.courtesy", n=12, agreement=0.917,
                 kappa=0.81, computed_at=w48),
            dict(rubric_version=RUBRIC, target_type="flag", item="customer_complaint", n=5, agreement=0.6,
                 kappa=None, computed_at=w48),
        ])
    return data


@pytest.fixture()
def data(tmp_path):
    return build_data(tmp_path / "data")


def _text(html_: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html_))


def test_report_is_one_self_contained_escaped_file(data, tmp_path):
    out = write_weekly_report(data, "2026-W48", tmp_path / "r" / "weekly.html")
    html_ = out.read_text(encoding="utf-8")
    assert html_.startswith("<!DOCTYPE html>") and "<svg" in html_
    # nothing to fetch: no scripts, no external style sheets, fonts, images or links
    assert "<script" not in html_.lower() and "<link" not in html_.lower() and "@import" not in html_
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html_, re.I)
    assert "url(" not in html_
    # user text is escaped
    assert "<img src=x" not in html_ and "&lt;img src=x onerror=" in html_
    # header: week, rubric, generation time, legend
    assert "2026-W48" in html_ and RUBRIC in html_ and "Generated" in html_ and "How scores are computed" in html_
    text = _text(html_)
    assert "Team north" in text and "Team south" in text
    assert "41.2" in text and "▼ 6.3" in text and "▲ 1.8" in text  # A02's overall and change; A01's change
    assert "pending: not counted" in text
    assert "A02 2026-W47: 47.5" in html_ and "A02 2026-W48: 41.2" in html_  # the trend's points
    assert "No human verdicts yet" in text


def test_deductions_come_with_their_calls_evidence_and_flags(data):
    html_ = render_weekly_report(data, "2026-W48")
    text = _text(html_)
    # A02's deductions in W48 are on n48-bad: each item, the utterance said, and its time
    ops = {m.group(1): m.group(0) for m in re.finditer(r'<details class="op" id="op-(\w+)".*?</details>', html_, re.S)}
    assert set(ops) == {"A01", "A02", "A03"}
    a02 = ops["A02"]
    assert "n48-bad" in a02 and "n47-bad" not in a02  # only this week's calls
    assert "courtesy" in a02 and "conduct.no_rude_language" in a02 and "01:09–01:13" in a02
    assert "Calm down, that&#x27;s not my problem." in a02
    assert "complaint handling" in a02 and "0 / 2" in a02
    assert "forbidden phrase" in a02 and "customer complaint" in a02  # the call's flags
    a01 = ops["A01"]
    assert "No deductions this week" in a01 and "n48-good" in a01
    assert "n47" not in text.replace("2026-W47", "")  # the previous week appears only in the trend


def test_calibration_table_when_verdicts_exist(tmp_path):
    data = build_data(tmp_path / "data", calibration=True)
    text = _text(render_weekly_report(data, "2026-W48"))
    assert "No human verdicts yet" not in text
    assert "quality.courtesy" in text and "92%" in text and "0.81" in text and "almost perfect" in text


def test_unknown_or_malformed_week_is_a_clear_error(data, tmp_path):
    with pytest.raises(QAPipelineError, match="weeks with scorecards: 2026-W47, 2026-W48") as e:
        write_weekly_report(data, "2026-W30", tmp_path / "x.html")
    assert e.value.code == "E640" and not (tmp_path / "x.html").exists()
    with pytest.raises(QAPipelineError, match="not an ISO week"):
        write_weekly_report(data, "2026-48", tmp_path / "x.html")
    with pytest.raises(QAPipelineError, match="no weekly scorecards yet"):
        write_weekly_report(tmp_path / "empty", "2026-W48", tmp_path / "x.html")


def _chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install the Debian package `chromium` to run the browser check")
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={tmp / 'chromium-profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_report_renders_in_headless_chromium(data, tmp_path):
    out = write_weekly_report(data, "2026-W48", tmp_path / "weekly.html")
    done = _chromium("--dump-dom", out.resolve().as_uri(), tmp=tmp_path)
    dom = done.stdout
    assert done.returncode == 0 and "</html>" in dom, done.stderr[-2000:]
    assert "<title>Weekly quality report 2026-W48</title>" in dom  # no injected script changed the title
    assert "Team north" in dom and "Team south" in dom
    for agent in ("A01", "A02", "A03"):
        assert f"<b>{agent}</b>" in dom
    cards = {(r["agent_id"], r["iso_week"]): r for r in read_dataset(data, "scorecards_weekly").to_pylist()}
    quality = f'{cards[("A02", "2026-W48")]["quality"]:.1f}'
    assert re.search(rf'<td class="n score bad">{re.escape(quality)}</td>', dom)  # A02's quality, coloured bad
    assert 'id="call-n48-bad"' in dom and RUDE in dom
    assert "&lt;img src=x" in dom and "<img" not in dom  # the transcript stayed text
    shot = tmp_path / "report.png"
    _chromium(f"--screenshot={shot}", "--window-size=1280,2000", "--hide-scrollbars", out.resolve().as_uri(),
              tmp=tmp_path)
    assert shot.exists() and shot.stat().st_size > 20_000  # a rendered page, not a blank one
    if os.environ.get("QA_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["QA_KEEP_SCREENSHOT"])


def test_operator_without_team_and_a_one_week_trend(data, tmp_path):
    write_rows(data, "scorecards_weekly", "2026-W48", "cards-extra", [
        _card("A09", None, "2026-W48", 0, None, None, None, None, 1, None)])
    html_ = render_weekly_report(data, "2026-W48", weeks_back=1)
    text = _text(html_)
    assert "Team (no team)" in text and "A09" in text
    assert "Overall score, last week" in text and "2026-W47" not in html_


# every user-controlled field of the report's data carries both payloads; none may come out as markup
P_SCRIPT = "<script>alert(1)</script>"
P_IMG = '"><img src=x onerror=alert(1)>'


def _hostile(name: str) -> str:
    return f"{name}{P_SCRIPT}{P_IMG}"


HOSTILE = {k: _hostile(k) for k in (
    "agent", "team", "campaign", "call", "utterance", "role", "reason", "rule", "note", "dataset", "flagtype",
    "severity", "division", "complaint", "reviewer", "comment", "item", "calltype", "outcome")}
HOSTILE_SHOWN = ("agent", "team", "campaign", "call", "utterance", "role", "reason", "rule", "note", "dataset",
                 "flagtype", "severity", "division", "complaint", "item", "calltype", "outcome")
ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "header", "div", "h1", "h2", "h3", "dl", "dt", "dd",
                "nav", "a", "details", "summary", "ul", "li", "b", "p", "span", "section", "table", "thead", "tbody",
                "tr", "th", "td", "i", "svg", "rect", "line", "text", "polyline", "circle", "code", "footer"}
ALLOWED_ATTRS = {"lang", "charset", "name", "content", "http-equiv", "class", "id", "href", "open", "title", "style",
                 "viewbox", "width", "height", "role", "aria-label", "x", "y", "x1", "x2", "y1", "y2", "text-anchor",
                 "fill", "stroke", "stroke-width", "stroke-linejoin", "points", "cx", "cy", "r", "rx"}


def build_hostile_data(root: Path) -> Path:
    """build_data plus one call of week 2026-W48 whose every text field carries markup: agent, team, campaign,
    call id, call type, outcome, utterance text and role, flag type, severity and reason, evidence dataset, rule
    and note, a QA verdict (reviewer and comment) imported from CSV, a division complaint imported from CSV and a
    calibration item."""
    from qa_pipeline.scoring.score import import_division_complaints, import_reviews

    data = build_data(root)
    h = HOSTILE
    cid, agent, team = h["call"], h["agent"], h["team"]
    started = dt.datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    day, week = started.date().isoformat(), "2026-W48"
    write_rows(data, "calls", day, cid, [dict(_call(cid, agent, team, started), campaign=h["campaign"],
                                              call_type=h["calltype"], outcome=h["outcome"])])
    write_rows(data, "utterances", day, cid, [
        dict(call_id=cid, utterance_index=0, speaker="agent", role=h["role"], start_s=0.5, end_s=2.0,
             text=h["utterance"]),
        dict(call_id=cid, utterance_index=1, speaker="customer", role="customer", start_s=2.5, end_s=9.0,
             text=INJECTED),
    ])
    write_rows(data, "flags", day, cid, [
        dict(call_id=cid, flag_id="hostile-complaint", flag_type="customer_complaint", severity="medium",
             reason=h["reason"], utterance_index=1, start_s=2.5, end_s=9.0),
        dict(call_id=cid, flag_id="hostile-rude", flag_type=h["flagtype"], severity=h["severity"],
             reason=h["reason"], rule_id=h["rule"], utterance_index=0, start_s=0.5, end_s=2.0),
        dict(call_id=cid, flag_id="hostile-missing", flag_type="low_confidence", severity="low",
             reason=h["reason"], utterance_index=7, start_s=50.0, end_s=51.0),  # an utterance not stored
    ])
    write_rows(data, "call_scores", day, cid, [
        _score(cid, agent, team, week, "tasks_completed", "outcome_achieved", 0.0, 1.0,
               [_ev(h["dataset"], h["rule"], note=h["note"])]),
        _score(cid, agent, team, week, "quality", "courtesy", 0.0, 1.0,
               [_ev("compliance", h["rule"], 0, 0.5, 2.0, h["note"]), _ev("compliance", h["rule"], 0, note=h["note"])]),
        _score(cid, agent, team, week, "quality", "listening", 0.5, 1.0),
    ])
    write_rows(data, "scorecards_weekly", week, "cards-hostile", [
        _card(agent, team, week, 1, 0.0, 25.0, None, 12.5, 1, None, justified=1)])
    reviews = root / "reviews.csv"
    with open(reviews, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["call_id", "flag_id", "verdict", "reviewer", "reviewed_at", "comment"])
        w.writerow([cid, "hostile-complaint", "justified", h["reviewer"], "2026-11-27T09:00:00Z", h["comment"]])
        w.writerow([cid, "hostile-rude", "dismissed", h["reviewer"], "2026-11-27T09:05:00Z", h["comment"]])
    assert import_reviews(data, reviews)["imported"] == 2
    divisions = root / "divisions.csv"
    with open(divisions, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["date", "agent", "division", "text", "justified"])
        w.writerow(["2026-11-25", agent, h["division"], h["complaint"], "true"])
        w.writerow(["2026-11-26", agent, h["division"], h["complaint"] + " again", "false"])
    import_division_complaints(data, divisions)
    write_rows(data, "calibration", RUBRIC, "calibration", [
        dict(rubric_version=RUBRIC, target_type="item", item=h["item"], n=3, agreement=0.5, kappa=0.1,
             computed_at=started)])
    return data


def test_user_text_never_becomes_markup(tmp_path):
    data = build_hostile_data(tmp_path)
    html_ = render_weekly_report(data, "2026-W48")
    lower = html_.lower()
    # no payload survives as markup anywhere
    assert "<script" not in lower and "<img" not in lower and "onerror=alert(1)>" not in html_
    assert P_IMG not in html_ and P_SCRIPT not in html_
    # and every field that is shown comes out as its escaped text
    assert escape(P_SCRIPT) == "&lt;script&gt;alert(1)&lt;/script&gt;"
    for name in HOSTILE_SHOWN:
        assert escape(HOSTILE[name], quote=True) in html_, f"{name} is not shown escaped"
    for name in ("reviewer", "comment"):  # imported with the verdicts, not shown in this report
        assert HOSTILE[name] not in html_
    text = _text(html_)
    assert "justified: counted" in text  # the complaint's imported verdict
    assert "not justified: not counted" in text and "utterance #7 not stored" in text
    assert f"Team {HOSTILE['team']}" in unescape(text) and f"{HOSTILE['complaint']} again" in unescape(text)

    # parsed as a browser would: only the report's own tags and attributes, no event handlers
    class Tags(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags: set[str] = set()
            self.attrs: set[str] = set()

        def handle_starttag(self, tag, attrs):
            self.tags.add(tag)
            self.attrs |= {a for a, _ in attrs}

    parsed = Tags()
    parsed.feed(html_)
    assert parsed.tags <= ALLOWED_TAGS, parsed.tags - ALLOWED_TAGS
    assert parsed.attrs <= ALLOWED_ATTRS, parsed.attrs - ALLOWED_ATTRS


def test_hostile_report_stays_text_in_headless_chromium(tmp_path):
    data = build_hostile_data(tmp_path / "in")
    out = write_weekly_report(data, "2026-W48", tmp_path / "weekly.html")
    done = _chromium("--dump-dom", out.resolve().as_uri(), tmp=tmp_path)
    dom = done.stdout
    assert done.returncode == 0 and "</html>" in dom, done.stderr[-2000:]
    assert "<title>Weekly quality report 2026-W48</title>" in dom
    assert "<script" not in dom.lower() and "<img" not in dom.lower()
    assert "agent&lt;script&gt;alert(1)&lt;/script&gt;\"&gt;&lt;img src=x onerror=alert(1)&gt;" in dom
