"""The weekly manager report: one self-contained HTML file (inline CSS and SVG, no script, no network).

One section per team: each operator's scorecard for the week (from `scorecards_weekly`), a trend of the overall
score over the recent weeks, the criteria side by side, and behind every deduction the call it came from
(`call_scores` rows with points < max_points), its evidence (rule or event, the utterance said, mm:ss-mm:ss) and
the flags raised on that call. Customer complaints not yet judged by QA are listed apart: they are not counted.

Every number is read from the stored datasets; nothing is scored here. All text is HTML-escaped (transcripts are
user data)."""

from __future__ import annotations

import datetime as dt
import html
import math
import re
from pathlib import Path
from typing import Any, Iterable

from qa_pipeline.errors import QAPipelineError
from qa_pipeline.store.folder import read_dataset

CRITERIA = ("tasks_completed", "quality", "targets", "divisions_complaints", "customer_complaints")
CRITERION_LABEL = {
    "tasks_completed": "Tasks completed",
    "quality": "Quality",
    "targets": "Targets",
    "divisions_complaints": "Division complaints",
    "customer_complaints": "Customer complaints",
    "overall": "Overall",
}
CRITERION_SHORT = {
    "tasks_completed": "Tasks", "quality": "Quality", "targets": "Targets",
    "divisions_complaints": "Div. compl.", "customer_complaints": "Cust. compl.", "overall": "Overall",
}
LEGEND = {
    "tasks_completed": "share of calls that reached a task outcome (order, appointment, survey, information), "
                       "scaled by calls handled against the weekly target",
    "quality": "points earned on the applicable quality items (script compliance, courtesy, listening, clarity, "
               "calm with negative customers, objections, complaint handling, correct information) over the "
               "points possible",
    "targets": "handle time, conversion (outbound sales), resolution (inbound) and hold time against the "
               "campaign's targets",
    "divisions_complaints": "100 minus a penalty per complaint from another division judged justified",
    "customer_complaints": "100 minus a penalty per customer complaint judged justified by QA; complaints "
                           "not yet reviewed are pending and not counted",
}
# operator colours (colour-blind friendly, Okabe-Ito based), assigned in rank order within a team
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#7F7F7F", "#B8A100")
GOOD, FAIR = 80.0, 60.0  # score bands for the colours

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _week_monday(week: str) -> dt.date:
    m = _WEEK.match(week or "")
    if not m:
        raise QAPipelineError(f"week {week!r} is not an ISO week like 2026-W48", code="E640", stage="report")
    try:
        return dt.date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    except ValueError as e:
        raise QAPipelineError(f"week {week!r} does not exist ({e})", code="E640", stage="report") from e


def _iso_week(d: dt.date | dt.datetime | None) -> str | None:
    if d is None:
        return None
    y, w, _ = d.isocalendar()
    return f"{y}-W{w:02d}"


def _recent_weeks(week: str, n: int) -> list[str]:
    monday = _week_monday(week)
    return [_iso_week(monday - dt.timedelta(days=7 * k)) for k in range(max(1, n) - 1, -1, -1)]


def _mmss(s: float | None, up: bool = False) -> str:
    if s is None:
        return ""
    s = max(0, int(math.ceil(s) if up else math.floor(s)))
    h, rem = divmod(s, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60:02d}:{rem % 60:02d}"


def _span(start: float | None, end: float | None) -> str:
    if start is None:
        return ""
    return f"{_mmss(start)}–{_mmss(end, up=True)}" if end is not None else _mmss(start)


def _num(v: float | None, digits: int = 1) -> str:
    if v is None:
        return "–"
    return f"{v:.{digits}f}"


def _pts(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v:.2f}".rstrip("0").rstrip(".") if v != int(v) else str(int(v))


def _band(v: float | None, scale: float = 100.0) -> str:
    if v is None:
        return "na"
    pct = 100.0 * v / scale if scale else v
    return "good" if pct >= GOOD else "fair" if pct >= FAIR else "bad"


def _delta(v: float | None) -> str:
    if v is None:
        return '<span class="delta new" title="no score the week before">new</span>'
    if abs(v) < 0.05:
        return '<span class="delta flat">● 0.0</span>'
    cls, arrow = ("up", "▲") if v > 0 else ("down", "▼")
    return f'<span class="delta {cls}">{arrow} {abs(v):.1f}</span>'


def _label(x: str) -> str:
    return x.replace("_", " ")


# --- data ---------------------------------------------------------------------------------------------------

def _load(data_dir: Path, week: str, weeks: list[str]) -> dict:
    cards = read_dataset(data_dir, "scorecards_weekly").to_pylist()
    if not cards:
        raise QAPipelineError(f"{data_dir}: no weekly scorecards yet; run `qa-pipeline rescore --data {data_dir}`",
                              code="E640", stage="report")
    this = [c for c in cards if c["iso_week"] == week]
    if not this:
        have = sorted({c["iso_week"] for c in cards})
        raise QAPipelineError(f"{data_dir}: no scorecards for {week}; weeks with scorecards: {', '.join(have)}",
                              code="E640", stage="report")
    versions = sorted({c["rubric_version"] for c in this})
    trend = [c for c in cards if c["iso_week"] in weeks and c["rubric_version"] in versions]
    scores = [r for r in read_dataset(data_dir, "call_scores").to_pylist()
              if r["iso_week"] == week and r["rubric_version"] in versions]
    call_ids = {r["call_id"] for r in scores}
    calls = {r["call_id"]: r for r in read_dataset(
        data_dir, "calls", ["call_id", "agent_id", "team", "started_at", "call_type", "campaign", "direction",
                            "duration_s", "outcome"]).to_pylist()}
    # complaint flags of the week (by the call's start, as the scorecards count them) + the flags of scored calls
    flags_all = read_dataset(data_dir, "flags").to_pylist()
    week_calls = {cid for cid, c in calls.items() if _iso_week(c["started_at"]) == week} | call_ids
    flags = [f for f in flags_all if f["call_id"] in week_calls]
    need_utts = {f["call_id"] for f in flags} | call_ids
    utts: dict[tuple, dict] = {}
    for u in read_dataset(data_dir, "utterances", ["call_id", "utterance_index", "role", "start_s", "end_s",
                                                   "text"]).to_pylist():
        if u["call_id"] in need_utts:
            utts[(u["call_id"], u["utterance_index"])] = u
    latest: dict[str, dict] = {}
    for r in read_dataset(data_dir, "reviews").to_pylist():
        if r["target_type"] == "flag" and (r["target"] not in latest
                                           or r["reviewed_at"] > latest[r["target"]]["reviewed_at"]):
            latest[r["target"]] = r
    monday = _week_monday(week)
    divisions = [d for d in read_dataset(data_dir, "division_complaints").to_pylist()
                 if monday <= d["date"] <= monday + dt.timedelta(days=6)]
    calibration = [r for r in read_dataset(data_dir, "calibration").to_pylist() if r["rubric_version"] in versions]
    return dict(cards=this, trend=trend, scores=scores, calls=calls, flags=flags, utts=utts, latest=latest,
                divisions=divisions, calibration=calibration, versions=versions)


def _rubric_for(version: str, rubric_path: str | Path | None):
    """The rubric file of that version, for the legend's weights; None when it is not at hand."""
    try:
        from qa_pipeline.scoring.score.score import load_rubric

        rubric = load_rubric(rubric_path)
    except Exception:  # the legend then stays generic
        return None
    return rubric if rubric.version == version else None


# --- charts -------------------------------------------------------------------------------------------------

def _trend_svg(agents: list[str], colours: dict, weeks: list[str], series: dict, scale: float) -> str:
    w, h, left, right, top, bottom = 560, 230, 40, 56, 14, 30
    pw, ph = w - left - right, h - top - bottom
    top_v = max([scale] + [v for s in series.values() for v in s.values() if v is not None])

    def x(i):
        return left + (pw * i / (len(weeks) - 1) if len(weeks) > 1 else pw / 2)

    def y(v):
        return top + ph * (1 - v / top_v)

    out = [f'<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
           f'aria-label="overall score per operator over the last {len(weeks)} weeks">']
    for band_lo, band_hi, cls in ((GOOD, 100.0, "bg-good"), (FAIR, GOOD, "bg-fair"), (0.0, FAIR, "bg-bad")):
        lo, hi = band_lo * top_v / 100, band_hi * top_v / 100
        out.append(f'<rect class="{cls}" x="{left}" y="{y(hi):.1f}" width="{pw}" height="{y(lo) - y(hi):.1f}"/>')
    for g in range(0, 101, 25):
        v = g * top_v / 100
        out.append(f'<line class="grid" x1="{left}" x2="{left + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}"/>'
                   f'<text class="axis" x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.0f}</text>')
    for i, wk in enumerate(weeks):
        out.append(f'<text class="axis{" cur" if i == len(weeks) - 1 else ""}" x="{x(i):.1f}" y="{h - 8}" '
                   f'text-anchor="middle">{_e(wk)}</text>')
    labels = []
    for a in agents:
        pts = [(i, series.get(a, {}).get(wk)) for i, wk in enumerate(weeks)]
        segment: list[str] = []
        segments = []
        for i, v in pts:
            if v is None:
                if segment:
                    segments.append(segment)
                segment = []
            else:
                segment.append(f"{x(i):.1f},{y(v):.1f}")
        if segment:
            segments.append(segment)
        for seg in segments:
            if len(seg) > 1:
                out.append(f'<polyline fill="none" stroke="{colours[a]}" stroke-width="2.5" '
                           f'stroke-linejoin="round" points="{" ".join(seg)}"/>')
        for i, v in pts:
            if v is not None:
                out.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="4" fill="{colours[a]}" stroke="#fff" '
                           f'stroke-width="1.5"><title>{_e(a)} {_e(weeks[i])}: {v:.1f}</title></circle>')
        last = [(i, v) for i, v in pts if v is not None]
        if last and last[-1][0] == len(weeks) - 1:
            labels.append([y(last[-1][1]), a, last[-1][1]])
    labels.sort()
    for k in range(1, len(labels)):  # keep end labels from overlapping
        labels[k][0] = max(labels[k][0], labels[k - 1][0] + 12)
    for ly, a, v in labels:
        out.append(f'<text class="endlabel" x="{x(len(weeks) - 1) + 8:.1f}" y="{ly + 4:.1f}" '
                   f'fill="{colours[a]}">{_e(a)} {v:.1f}</text>')
    out.append("</svg>")
    return "".join(out)


def _bars_svg(agents: list[str], colours: dict, cards: dict, scale: float) -> str:
    keys = CRITERIA + ("overall",)
    bar_h, gap, group_gap, label_w, w = 13, 3, 14, 132, 560
    pw = w - label_w - 46
    group_h = len(agents) * (bar_h + gap) - gap
    h = len(keys) * (group_h + group_gap) + 6
    top_v = max([scale] + [cards[a].get(k) or 0 for a in agents for k in keys])
    out = [f'<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
           f'aria-label="criteria scores per operator">']
    y0 = 4
    for k in keys:
        out.append(f'<text class="crit{" overall" if k == "overall" else ""}" x="0" '
                   f'y="{y0 + group_h / 2 + 4:.1f}">{_e(CRITERION_LABEL[k])}</text>')
        out.append(f'<rect class="track" x="{label_w}" y="{y0 - 2}" width="{pw}" height="{group_h + 4}" rx="3"/>')
        for i, a in enumerate(agents):
            v = cards[a].get(k)
            yy = y0 + i * (bar_h + gap)
            if v is None:
                out.append(f'<text class="axis" x="{label_w + 4}" y="{yy + bar_h - 3}">{_e(a)}: n/a</text>')
                continue
            bw = max(1.5, pw * v / top_v)
            out.append(f'<rect x="{label_w}" y="{yy}" width="{bw:.1f}" height="{bar_h}" rx="2" fill="{colours[a]}">'
                       f'<title>{_e(a)} {_e(CRITERION_LABEL[k])}: {v:.1f}</title></rect>'
                       f'<text class="barval {_band(v, scale)}" x="{label_w + bw + 5:.1f}" y="{yy + bar_h - 2.5}">'
                       f'{v:.1f}</text>')
        y0 += group_h + group_gap
    out.append("</svg>")
    return "".join(out)


def _swatches(agents: list[str], colours: dict) -> str:
    return '<div class="swatches">' + "".join(
        f'<span><i style="background:{colours[a]}"></i>{_e(a)}</span>' for a in agents) + "</div>"


# --- sections -----------------------------------------------------------------------------------------------

def _utterance_html(utts: dict, call_id: str, index: int | None) -> str:
    if index is None:
        return ""
    u = utts.get((call_id, index))
    if not u:
        return f'<div class="quote missing">utterance #{index} not stored</div>'
    return (f'<div class="quote"><span class="role {_e(u["role"])}">{_e(u["role"])}</span>'
            f'<span class="ts">{_span(u["start_s"], u["end_s"])}</span>“{_e(u["text"])}”</div>')


def _evidence_html(ev: dict, utts: dict, call_id: str, quoted: set | None = None) -> str:
    start, end = ev.get("start_s"), ev.get("end_s")
    u = utts.get((call_id, ev["utterance_index"])) if ev.get("utterance_index") is not None else None
    if start is None and u:
        start, end = u["start_s"], u["end_s"]
    parts = [f'<code title="{_e(ev.get("dataset"))}">{_e(ev.get("ref"))}</code>']
    if ev.get("note"):
        parts.append(f'<span class="note">{_e(ev["note"])}</span>')
    if start is not None:
        parts.append(f'<span class="ts">{_span(start, end)}</span>')
    index = ev.get("utterance_index")
    if quoted is not None:  # quote an utterance once per item, however many evidence rows point at it
        if index in quoted:
            index = None
        else:
            quoted.add(index)
    return '<li>' + " ".join(parts) + _utterance_html(utts, call_id, index) + "</li>"


def _flag_rows(flags: list[dict], utts: dict) -> str:
    rows = []
    for f in sorted(flags, key=lambda f: ({"high": 0, "medium": 1, "low": 2}.get(f["severity"], 3),
                                          f["start_s"] if f["start_s"] is not None else 1e9)):
        rows.append(f'<tr><td><span class="sev {_e(f["severity"])}">{_e(f["severity"])}</span></td>'
                    f'<td>{_e(_label(f["flag_type"]))}</td><td>{_e(f["reason"])}'
                    f'{_utterance_html(utts, f["call_id"], f["utterance_index"])}</td>'
                    f'<td class="ts">{_span(f["start_s"], f["end_s"])}</td></tr>')
    return ('<table class="flags"><thead><tr><th>Severity</th><th>Flag</th><th>Reason and evidence</th>'
            '<th>Time</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table>")


def _call_meta(c: dict | None) -> str:
    if not c:
        return ""
    bits = []
    if c.get("started_at"):
        bits.append(c["started_at"].astimezone(dt.timezone.utc).strftime("%a %d %b %H:%M UTC"))
    for k in ("call_type", "direction", "campaign"):
        if c.get(k):
            bits.append(_label(c[k]))
    if c.get("duration_s") is not None:
        bits.append(f"{_mmss(c['duration_s'], up=True)} long")
    bits.append(f"outcome: {_label(c['outcome'])}" if c.get("outcome") else "no outcome")
    return " · ".join(_e(b) for b in bits)


def _buildup_html(agent_rows: list[dict], card: dict, target_calls: float | None) -> str:
    """How the agent's week adds up: the points behind each scored criterion (from call_scores)."""
    rows = []
    for k in ("tasks_completed", "quality", "targets"):
        its = [r for r in agent_rows if r["criterion"] == k and r["points"] is not None]
        if not its:
            continue
        pts, mx = sum(r["points"] for r in its), sum(r["max_points"] for r in its)
        calls = len({r["call_id"] for r in its})
        extra = ""
        if k == "tasks_completed" and target_calls:
            extra = f" × min(1, {card['calls']} calls / {target_calls:g} target)"
        rows.append(f"<tr><td>{_e(CRITERION_LABEL[k])}</td><td class='n'>{_pts(round(pts, 3))} / {_pts(mx)}</td>"
                    f"<td class='n'>{calls}</td><td class='muted'>{100 * pts / mx if mx else 0:.1f}%{_e(extra)}</td>"
                    f"<td class='n score {_band(card.get(k))}'>{_num(card.get(k))}</td></tr>")
    rows.append(f"<tr><td>{_e(CRITERION_LABEL['divisions_complaints'])}</td><td class='n'>"
                f"{card.get('justified_division_complaints') or 0} justified</td><td></td><td></td>"
                f"<td class='n score {_band(card.get('divisions_complaints'))}'>{_num(card.get('divisions_complaints'))}</td></tr>")
    rows.append(f"<tr><td>{_e(CRITERION_LABEL['customer_complaints'])}</td><td class='n'>"
                f"{card.get('justified_customer_complaints') or 0} justified</td><td></td>"
                f"<td class='muted'>{card.get('pending_customer_complaints') or 0} pending: not counted</td>"
                f"<td class='n score {_band(card.get('customer_complaints'))}'>{_num(card.get('customer_complaints'))}</td></tr>")
    return ('<table class="buildup"><thead><tr><th>Criterion</th><th class="n">Points</th><th class="n">Calls</th>'
            '<th>Rate</th><th class="n">Score</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table>")


def _operator_html(agent: str, card: dict, colour: str, rows: list[dict], d: dict, target_calls) -> str:
    calls = sorted({r["call_id"] for r in rows})
    deductions = [r for r in rows if r["points"] is not None and r["points"] < r["max_points"]]
    by_call: dict[str, list[dict]] = {}
    for r in deductions:
        by_call.setdefault(r["call_id"], []).append(r)
    order = {c: i for i, c in enumerate(CRITERIA)}
    parts = [f'<details class="op" id="op-{_e(re.sub(r"[^A-Za-z0-9_-]", "_", str(agent)))}" open><summary><i class="dot" style="background:{colour}"></i>'
             f'<b>{_e(agent)}</b><span class="score-pill {_band(card.get("overall"))}">{_num(card.get("overall"))}</span>'
             f'<span class="muted">rank {_e(card.get("rank_in_team"))} · {card["calls"]} calls · '
             f'{len(by_call)} with deductions · {len(deductions)} deductions</span></summary>',
             f'<div class="callids">Calls scored: {", ".join(f"<code>{_e(c)}</code>" for c in calls)}</div>',
             _buildup_html(rows, card, target_calls)]
    if not by_call:
        parts.append('<p class="ok">No deductions this week.</p>')
    for cid in sorted(by_call, key=lambda c: (d["calls"].get(c, {}).get("started_at") or dt.datetime.min.replace(
            tzinfo=dt.timezone.utc), c)):
        items = sorted(by_call[cid], key=lambda r: (order.get(r["criterion"], 9), r["item"]))
        lost = sum(r["max_points"] - r["points"] for r in items)
        parts.append(f'<div class="call" id="call-{_e(cid)}"><div class="call-h"><code class="cid">{_e(cid)}</code>'
                     f'<span class="muted">{_call_meta(d["calls"].get(cid))}</span>'
                     f'<span class="lost">−{_pts(round(lost, 3))} pts</span></div>')
        trs = []
        for r in items:
            ev = r["evidence"] or []
            quoted: set = set()
            evh = ('<ul class="ev">' + "".join(_evidence_html(e, d["utts"], cid, quoted) for e in ev) + "</ul>") if ev \
                else '<span class="muted">no evidence recorded (the outcome or event was not found)</span>'
            trs.append(f'<tr><td><span class="crit-tag">{_e(CRITERION_SHORT.get(r["criterion"], r["criterion"]))}</span>'
                       f'{_e(_label(r["item"]))}</td><td class="n pts">{_pts(r["points"])} / {_pts(r["max_points"])}</td>'
                       f'<td>{evh}</td></tr>')
        parts.append('<table class="ded"><thead><tr><th>Item</th><th class="n">Points</th><th>Evidence</th></tr>'
                     '</thead><tbody>' + "".join(trs) + "</tbody></table>")
        call_flags = [f for f in d["flags"] if f["call_id"] == cid]
        if call_flags:
            parts.append(f'<div class="flags-h">Flags on this call ({len(call_flags)})</div>'
                         + _flag_rows(call_flags, d["utts"]))
        parts.append("</div>")
    parts.append("</details>")
    return "".join(parts)


def _complaints_html(agents: list[str], d: dict, week: str) -> str:
    rows = []
    for f in d["flags"]:
        c = d["calls"].get(f["call_id"]) or {}
        if f["flag_type"] != "customer_complaint" or c.get("agent_id") not in agents:
            continue
        if _iso_week(c.get("started_at")) != week:
            continue
        verdict = (d["latest"].get(f["flag_id"]) or {}).get("verdict")
        if verdict is None:
            status = '<span class="status pending">pending: not counted</span>'
        elif verdict in ("justified", "confirmed"):
            status = f'<span class="status counted">{_e(verdict)}: counted</span>'
        else:
            status = f'<span class="status dismissed">{_e(verdict)}: not counted</span>'
        rows.append((verdict is not None, c.get("agent_id"), f["call_id"],
                     f'<tr><td>{status}</td><td><b>{_e(c.get("agent_id"))}</b></td><td><code>{_e(f["call_id"])}</code></td>'
                     f'<td>{_e(f["reason"])}{_utterance_html(d["utts"], f["call_id"], f["utterance_index"])}</td>'
                     f'<td class="ts">{_span(f["start_s"], f["end_s"])}</td></tr>'))
    divs = [x for x in d["divisions"] if x["agent_id"] in agents]
    out = ['<div class="card"><h3>Complaints this week</h3>']
    pending = sum(1 for r in rows if not r[0])
    if rows:
        out.append(f'<p class="muted">Customer complaints count against an operator only once QA judges them '
                   f'justified. {pending} pending: not counted.</p>')
        out.append('<table class="complaints"><thead><tr><th>Status</th><th>Operator</th><th>Call</th>'
                   '<th>Complaint</th><th>Time</th></tr></thead><tbody>'
                   + "".join(r[3] for r in sorted(rows, key=lambda r: r[:3])) + "</tbody></table>")
    else:
        out.append('<p class="ok">No customer complaints detected this week.</p>')
    if divs:
        out.append('<table class="complaints"><thead><tr><th>Status</th><th>Operator</th><th>Division</th>'
                   '<th>Complaint</th><th>Date</th></tr></thead><tbody>')
        for x in sorted(divs, key=lambda x: (x["agent_id"], x["date"])):
            st = ('<span class="status counted">justified: counted</span>' if x["justified"]
                  else '<span class="status dismissed">not justified: not counted</span>')
            out.append(f'<tr><td>{st}</td><td><b>{_e(x["agent_id"])}</b></td><td>{_e(x["division"])}</td>'
                       f'<td>{_e(x["text"])}</td><td class="ts">{_e(x["date"])}</td></tr>')
        out.append("</tbody></table>")
    out.append("</div>")
    return "".join(out)


def _team_html(team: str | None, cards: list[dict], d: dict, weeks: list[str], week: str, scale: float,
               target_calls) -> str:
    cards = sorted(cards, key=lambda c: (c.get("rank_in_team") or 999, c["agent_id"]))
    agents = [c["agent_id"] for c in cards]
    colours = {a: PALETTE[i % len(PALETTE)] for i, a in enumerate(agents)}
    by_agent = {c["agent_id"]: c for c in cards}
    name = team if team is not None else "(no team)"
    anchor = re.sub(r"[^A-Za-z0-9_-]", "_", str(name))
    overall = [c["overall"] for c in cards if c.get("overall") is not None]
    avg = sum(overall) / len(overall) if overall else None
    ncalls = sum(c["calls"] for c in cards)
    head = ('<tr><th class="n">Rank</th><th>Operator</th><th class="n">Calls</th>'
            + "".join(f'<th class="n" title="{_e(LEGEND[k])}">{_e(CRITERION_SHORT[k])}</th>' for k in CRITERIA)
            + '<th class="n">Overall</th><th class="n">vs last week</th><th class="n">Complaints</th></tr>')
    body = []
    for c in cards:
        comp = []
        if c.get("justified_customer_complaints"):
            comp.append(f'<span class="status counted">{c["justified_customer_complaints"]} customer</span>')
        if c.get("justified_division_complaints"):
            comp.append(f'<span class="status counted">{c["justified_division_complaints"]} division</span>')
        if c.get("pending_customer_complaints"):
            comp.append(f'<span class="status pending" title="not counted until QA judges them">'
                        f'{c["pending_customer_complaints"]} pending</span>')
        body.append(
            f'<tr><td class="n rank">{_e(c.get("rank_in_team"))}</td>'
            f'<td><i class="dot" style="background:{colours[c["agent_id"]]}"></i><b>{_e(c["agent_id"])}</b></td>'
            f'<td class="n">{c["calls"]}</td>'
            + "".join(f'<td class="n score {_band(c.get(k), scale)}">{_num(c.get(k))}</td>' for k in CRITERIA)
            + f'<td class="n overall score {_band(c.get("overall"), scale)}">{_num(c.get("overall"))}</td>'
            f'<td class="n">{_delta(c.get("change_from_previous_week"))}</td>'
            f'<td class="n">{" ".join(comp) or "<span class=muted>none</span>"}</td></tr>')
    series: dict[str, dict] = {}
    for t in d["trend"]:
        if t["agent_id"] in by_agent:
            series.setdefault(t["agent_id"], {})[t["iso_week"]] = t["overall"]
    rows_by_agent: dict[str, list[dict]] = {}
    for r in d["scores"]:
        if r["agent_id"] in by_agent:
            rows_by_agent.setdefault(r["agent_id"], []).append(r)
    return "".join([
        f'<section class="team" id="team-{_e(anchor)}"><div class="team-h"><h2>Team {_e(name)}</h2>'
        f'<span class="muted">{len(cards)} operators · {ncalls} calls · team average</span>'
        f'<span class="score-pill {_band(avg, scale)}">{_num(avg)}</span></div>',
        f'<div class="card"><h3>Scorecards {_e(week)}</h3><table class="cards"><thead>{head}</thead>'
        f'<tbody>{"".join(body)}</tbody></table></div>',
        '<div class="grid2">',
        f'<div class="card"><h3>Overall score, last {f"{len(weeks)} weeks" if len(weeks) > 1 else "week"}</h3>'
        f'{_trend_svg(agents, colours, weeks, series, scale)}{_swatches(agents, colours)}</div>',
        f'<div class="card"><h3>Criteria breakdown {_e(week)}</h3>{_bars_svg(agents, colours, by_agent, scale)}'
        f'{_swatches(agents, colours)}</div>',
        "</div>",
        _complaints_html(agents, d, week),
        '<h3 class="sect">Deductions and the calls behind them</h3>',
        "".join(_operator_html(a, by_agent[a], colours[a], rows_by_agent.get(a, []), d, target_calls)
                for a in agents),
        "</section>",
    ])


def _calibration_html(rows: list[dict]) -> str:
    out = ['<section class="team" id="calibration"><div class="team-h"><h2>Calibration</h2>'
           '<span class="muted">automatic answers against the latest QA verdicts</span></div><div class="card">']
    if not rows:
        out.append('<p class="muted">No human verdicts yet: calibration appears once QA reviews are imported '
                   '(<code>qa-pipeline reviews import FILE.csv --data DATA</code>).</p></div></section>')
        return "".join(out)
    out.append('<table class="cal"><thead><tr><th>Type</th><th>Item</th><th class="n">n</th>'
               '<th class="n">Agreement</th><th class="n">Cohen\'s κ</th><th>Reading</th></tr></thead><tbody>')
    for r in sorted(rows, key=lambda r: (r["target_type"], r["item"])):
        k = r.get("kappa")
        if k is None:
            reading = ("precision of the flag (share QA confirmed)" if r["target_type"] == "flag"
                       else "κ undefined (every answer the same)")
            kcls = "na"
        else:
            reading = ("almost perfect" if k > 0.8 else "substantial" if k > 0.6 else "moderate" if k > 0.4
                       else "fair" if k > 0.2 else "poor")
            kcls = "good" if k > 0.6 else "fair" if k > 0.4 else "bad"
        agr = r.get("agreement")
        out.append(f'<tr><td>{_e(r["target_type"])}</td><td><code>{_e(r["item"])}</code></td><td class="n">{r["n"]}</td>'
                   f'<td class="n score {_band(None if agr is None else 100 * agr)}">'
                   f'{"–" if agr is None else f"{100 * agr:.0f}%"}</td>'
                   f'<td class="n score {kcls}">{_num(k, 2)}</td><td class="muted">{_e(reading)}</td></tr>')
    out.append('</tbody></table><p class="muted small">κ above 0.6 is substantial agreement; few verdicts '
               '(small n) make it unreliable.</p></div></section>')
    return "".join(out)


def _legend_html(rubric, scale: float) -> str:
    items = []
    for k in CRITERIA:
        weight = f' <span class="w">weight {rubric.weights[k]:g}</span>' if rubric else ""
        text = LEGEND[k]
        if rubric and k in ("divisions_complaints", "customer_complaints"):
            text = text.replace("a penalty", f"{rubric.penalties.get(k, 50):g} points")
        if rubric and k == "tasks_completed":
            text += f" ({rubric.target_calls_per_week:g} calls)"
        items.append(f"<li><b>{_e(CRITERION_LABEL[k])}</b>{weight}: {_e(text)}.</li>")
    return ('<details class="legend card" open><summary>How scores are computed</summary><ul>' + "".join(items) + "</ul>"
            f"<p>Each criterion is scored 0–{scale:g} for the week; <b>overall</b> is their weighted mean over "
            "the criteria that apply. <b>Rank</b> is within the team for this week; <b>vs last week</b> is the "
            "change of overall against the operator's previous scored week. Every call item scores 0 up to its "
            "maximum points; an item that does not apply to a call (no complaint, no objection, …) is left out. "
            "Below, each deduction (an item below its maximum) is listed with the call it came from and its "
            "evidence; times are mm:ss from the start of the call. Colours: "
            f'<span class="score good">≥ {GOOD:g}</span> <span class="score fair">{FAIR:g}–{GOOD:g}</span> '
            f'<span class="score bad">&lt; {FAIR:g}</span>.</p></details>')


CSS = """
:root{--ink:#1d2433;--muted:#667085;--line:#e4e7ec;--bg:#f5f6f8;--card:#fff;--good:#067647;--good-bg:#dcfae6;
--fair:#93370d;--fair-bg:#fef0c7;--bad:#b42318;--bad-bg:#fee4e2;--accent:#1849a9}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 -apple-system,BlinkMacSystemFont,"Segoe UI",
Roboto,"Helvetica Neue",Arial,sans-serif}
.wrap{max-width:1200px;margin:0 auto;padding:24px 28px 48px}
header.top{background:linear-gradient(120deg,#102a56,#1849a9);color:#fff;padding:22px 28px}
header.top .in{max-width:1200px;margin:0 auto;padding:0 28px;display:flex;justify-content:space-between;
align-items:flex-end;gap:24px;flex-wrap:wrap}
header.top h1{margin:0;font-size:24px;font-weight:650;letter-spacing:-.01em}
header.top .sub{opacity:.85;margin-top:4px;font-size:15px}
header.top dl{display:grid;grid-template-columns:auto auto;gap:2px 12px;margin:0;font-size:12.5px;opacity:.9}
header.top dt{opacity:.7}header.top dd{margin:0;font-variant-numeric:tabular-nums}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px;margin:18px 0}
.kpi{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 14px}
.kpi .v{font-size:24px;font-weight:650;font-variant-numeric:tabular-nums}.kpi .l{color:var(--muted);font-size:12px}
nav.toc{margin:8px 0 4px;font-size:13px}nav.toc a{color:var(--accent);text-decoration:none;margin-right:14px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px;margin:12px 0;
overflow-x:auto}
.card h3{margin:0 0 10px;font-size:14px;font-weight:650}
h3.sect{margin:22px 0 6px;font-size:15px}
section.team{margin-top:34px}
.team-h{display:flex;align-items:center;gap:12px;border-bottom:2px solid var(--ink);padding-bottom:6px}
.team-h h2{margin:0;font-size:20px}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:0 12px}
table{border-collapse:collapse;width:100%}
th{font-size:11.5px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);font-weight:600;
text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);white-space:nowrap}
td{padding:7px 8px;border-bottom:1px solid var(--line);vertical-align:top}
tbody tr:last-child td{border-bottom:0}
.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.cards td{vertical-align:middle}table.cards td.rank{font-weight:650;color:var(--muted)}
.score{border-radius:6px;font-weight:600;font-variant-numeric:tabular-nums}
td.score{padding:7px 10px}
span.score{padding:1px 6px}
.score.good{background:var(--good-bg);color:var(--good)}.score.fair{background:var(--fair-bg);color:var(--fair)}
.score.bad{background:var(--bad-bg);color:var(--bad)}.score.na{color:var(--muted)}
table.cards td.overall{font-size:15.5px;font-weight:700}
table.cards tbody tr td.score{border:2px solid #fff}
.delta{font-weight:600;font-variant-numeric:tabular-nums}.delta.up{color:var(--good)}.delta.down{color:var(--bad)}
.delta.flat,.delta.new{color:var(--muted);font-weight:500}
.dot{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:7px;vertical-align:baseline}
.score-pill{border-radius:999px;padding:2px 10px;font-weight:700;font-variant-numeric:tabular-nums}
.score-pill.good{background:var(--good-bg);color:var(--good)}.score-pill.fair{background:var(--fair-bg);color:var(--fair)}
.score-pill.bad{background:var(--bad-bg);color:var(--bad)}.score-pill.na{background:var(--line)}
.muted{color:var(--muted)}.small{font-size:12px}.ok{color:var(--good);margin:6px 0}
.status{display:inline-block;border-radius:999px;padding:1px 9px;font-size:12px;font-weight:600;white-space:nowrap}
.status.pending{background:var(--fair-bg);color:var(--fair)}.status.counted{background:var(--bad-bg);color:var(--bad)}
.status.dismissed{background:var(--line);color:var(--muted)}
svg.chart{max-width:100%;height:auto;display:block}
svg .grid{stroke:#d0d5dd;stroke-width:1;stroke-dasharray:2 3}
svg .axis{fill:#667085;font-size:11px}svg .axis.cur{fill:#1d2433;font-weight:700}
svg .bg-good{fill:#ecfdf3}svg .bg-fair{fill:#fffaeb}svg .bg-bad{fill:#fef3f2}
svg .endlabel{font-size:11.5px;font-weight:700}
svg .crit{font-size:12px;fill:#344054}svg .crit.overall{font-weight:700;fill:#1d2433}
svg .track{fill:#f2f4f7}
svg .barval{font-size:11px;font-weight:700}svg .barval.good{fill:#067647}svg .barval.fair{fill:#93370d}
svg .barval.bad{fill:#b42318}
.swatches{display:flex;gap:14px;flex-wrap:wrap;font-size:12.5px;margin-top:6px}
.swatches i{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:5px;vertical-align:-1px}
details.op{background:var(--card);border:1px solid var(--line);border-radius:10px;margin:10px 0;padding:0 16px}
details.op>summary{cursor:pointer;padding:12px 0;display:flex;align-items:center;gap:10px;font-size:15px}
details.op[open]>summary{border-bottom:1px solid var(--line);margin-bottom:8px}
.callids{font-size:12px;color:var(--muted);margin:4px 0 8px}
.callids code{color:var(--ink)}
table.buildup{max-width:760px;margin-bottom:10px}table.buildup td{padding:4px 8px}
.call{border:1px solid var(--line);border-left:4px solid var(--bad);border-radius:8px;margin:12px 0;padding:10px 12px}
.call-h{display:flex;gap:12px;align-items:baseline;flex-wrap:wrap;margin-bottom:6px}
.call-h .lost{margin-left:auto;color:var(--bad);font-weight:700;font-variant-numeric:tabular-nums}
code{font:12.5px/1.3 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f2f4f7;border-radius:4px;
padding:1px 5px;white-space:nowrap}
code.cid{font-weight:700;font-size:13px}
table.ded td:first-child{width:230px}table.ded td.pts{width:80px;color:var(--bad);font-weight:600}
.crit-tag{display:inline-block;font-size:10.5px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);
border:1px solid var(--line);border-radius:4px;padding:0 4px;margin-right:6px}
ul.ev{margin:0;padding:0;list-style:none}ul.ev li{margin:0 0 5px}
.note{color:#344054}.ts{color:var(--muted);font-size:12px;font-variant-numeric:tabular-nums;white-space:nowrap}
.quote{margin:3px 0 2px;padding:4px 10px;border-left:3px solid #d0d5dd;background:#f9fafb;border-radius:0 6px 6px 0;
font-style:italic;color:#344054}
.quote .role{font-style:normal;font-size:10.5px;text-transform:uppercase;font-weight:700;letter-spacing:.04em;
margin-right:6px;color:var(--accent)}.quote .role.customer{color:#9e165f}
.quote .ts{font-style:normal;margin-right:8px}
.quote.missing{color:var(--muted)}
.flags-h{font-size:12px;font-weight:650;color:var(--muted);text-transform:uppercase;letter-spacing:.04em;
margin:10px 0 2px}
table.flags td{font-size:13px;padding:4px 8px}table.flags td:nth-child(1){width:90px}
table.flags td:nth-child(2){width:170px}table.flags td:nth-child(4){width:110px}
.sev{display:inline-block;border-radius:4px;padding:0 6px;font-size:11.5px;font-weight:700;text-transform:uppercase}
.sev.high,.sev.critical{background:var(--bad-bg);color:var(--bad)}.sev.medium,.sev.major{background:var(--fair-bg);
color:var(--fair)}.sev.low,.sev.minor,.sev.info{background:#eef4ff;color:#3538cd}
details.legend summary{cursor:pointer;font-weight:650}details.legend ul{margin:8px 0;padding-left:18px}
details.legend .w{color:var(--muted);font-size:12px}
footer{margin-top:40px;color:var(--muted);font-size:12px;border-top:1px solid var(--line);padding-top:10px}
@media print{body{background:#fff}details.op,.card{break-inside:avoid-page}header.top{-webkit-print-color-adjust:exact;
print-color-adjust:exact}}
"""


def render_weekly_report(data_dir: str | Path, week: str, *, weeks_back: int = 4,
                         rubric_path: str | Path | None = None, now: dt.datetime | None = None) -> str:
    """The weekly report as an HTML string (see `write_weekly_report`)."""
    data_dir = Path(data_dir)
    weeks = _recent_weeks(week, weeks_back)
    d = _load(data_dir, week, weeks)
    scored = {t["iso_week"] for t in d["trend"]}
    while len(weeks) > 2 and weeks[0] not in scored:  # the chart starts with the first week that has scores
        weeks = weeks[1:]
    version = ", ".join(d["versions"])
    rubric = _rubric_for(d["versions"][0], rubric_path) if len(d["versions"]) == 1 else None
    scale = rubric.scale if rubric else 100.0
    target_calls = rubric.target_calls_per_week if rubric else None
    now = now or dt.datetime.now(dt.timezone.utc)
    monday = _week_monday(week)
    by_team: dict[Any, list[dict]] = {}
    for c in d["cards"]:
        by_team.setdefault(c["team"], []).append(c)
    teams = sorted(by_team, key=lambda t: (t is None, str(t)))
    overall = [c["overall"] for c in d["cards"] if c.get("overall") is not None]
    with_ded = {r["call_id"] for r in d["scores"] if r["points"] is not None and r["points"] < r["max_points"]}
    pending = sum(c.get("pending_customer_complaints") or 0 for c in d["cards"])
    justified = sum((c.get("justified_customer_complaints") or 0) + (c.get("justified_division_complaints") or 0)
                    for c in d["cards"])
    kpis = [("Operators", str(len(d["cards"]))), ("Calls scored", str(sum(c["calls"] for c in d["cards"]))),
            ("Average overall", _num(sum(overall) / len(overall)) if overall else "–"),
            ("Calls with deductions", str(len(with_ded))),
            ("Justified complaints", str(justified)), ("Pending complaints (not counted)", str(pending))]
    toc = " ".join(f'<a href="#team-{_e(re.sub(r"[^A-Za-z0-9_-]", "_", str(t if t is not None else "(no team)")))}">'
                   f'Team {_e(t if t is not None else "(no team)")}</a>' for t in teams)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "img-src data:\">",
        f"<title>Weekly quality report {_e(week)}</title><style>{CSS}</style></head><body>",
        '<header class="top"><div class="in"><div><h1>Weekly quality report</h1>'
        f'<div class="sub">Week <b>{_e(week)}</b> · {monday:%a %d %b} – {monday + dt.timedelta(days=6):%a %d %b %Y}'
        f'</div></div><dl><dt>Rubric</dt><dd>{_e(version)}</dd><dt>Generated</dt>'
        f'<dd>{now.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M} UTC</dd><dt>Data</dt><dd>{_e(data_dir.name)}</dd>'
        f'<dt>Teams</dt><dd>{len(teams)}</dd></dl></div></header>',
        '<div class="wrap">',
        '<div class="kpis">' + "".join(f'<div class="kpi"><div class="v">{_e(v)}</div><div class="l">{_e(k)}</div>'
                                       f'</div>' for k, v in kpis) + "</div>",
        f'<nav class="toc">{toc} <a href="#calibration">Calibration</a></nav>',
        _legend_html(rubric, scale),
        "".join(_team_html(t, by_team[t], d, weeks, week, scale, target_calls) for t in teams),
        _calibration_html(d["calibration"]),
        f'<footer>Generated by qa-pipeline from <code>scorecards_weekly</code>, <code>call_scores</code>, '
        f'<code>flags</code>, <code>utterances</code>, <code>reviews</code>, <code>division_complaints</code> and '
        f'<code>calibration</code> in {_e(data_dir.name)}; rubric {_e(version)}. Scores are recomputed with '
        f'<code>qa-pipeline rescore</code>.</footer>',
        "</div></body></html>",
    ]
    return "\n".join(parts)


def write_weekly_report(data_dir: str | Path, week: str, out_path: str | Path, *, weeks_back: int = 4,
                        rubric_path: str | Path | None = None) -> Path:
    """Write the weekly manager report for ISO `week` (e.g. "2026-W48") to `out_path`; returns the path.

    The trend covers `weeks_back` weeks ending with `week`. The file is written atomically.

    Raises:
        QAPipelineError (E640): the week is malformed or has no scorecards (run `qa-pipeline rescore`).
    """
    text = render_weekly_report(data_dir, week, weeks_back=weeks_back, rubric_path=rubric_path)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out


__all__: Iterable[str] = ("render_weekly_report", "write_weekly_report")
