"""Operators scored against the job description's evaluation criteria: per-call item scores with their evidence,
weekly scorecards per operator and team, human verdicts and the agreement between the automatic answers and them.

Everything is computed from the stored datasets (DuckDB over Parquet), so a rubric change rescores all history
without transcribing anything again: `qa-pipeline rescore`."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from qa_pipeline.errors import ConfigError
from qa_pipeline.store.folder import read_dataset, replace_partitions
from qa_pipeline.config import DEFAULTS_DIR

log = logging.getLogger("qa_pipeline")

DEFAULT_RUBRIC = DEFAULTS_DIR / "rubric.yaml"
CRITERIA = ("tasks_completed", "quality", "targets", "divisions_complaints", "customer_complaints")
ITEMS = {
    "tasks_completed": ("outcome_achieved",),
    "quality": ("script_compliance", "courtesy", "listening", "clarity", "calm_with_negative_customer",
                "objections_handled", "complaint_handling", "correct_information"),
    "targets": ("handle_time", "conversion", "resolution", "hold_time"),
}
SEVERITY_WEIGHT = {"critical": 3.0, "major": 2.0, "minor": 1.0, "info": 0.5}
SALES = ("telesales_cold", "telesales_warm", "telesales_hot", "order")


class RubricError(ConfigError):
    code = "E620"


@dataclass(frozen=True, slots=True)
class Rubric:
    version: str
    scale: float
    weights: dict
    max_points: dict  # (criterion, item) -> points
    targets: dict  # campaign -> {handle_time_s, hold_time_s}
    target_calls_per_week: float
    penalties: dict  # criterion -> points per justified complaint
    path: str


def load_rubric(path: str | Path | None = None, overrides: dict | None = None) -> Rubric:
    """Read and validate a rubric YAML (defaults/rubric.yaml when None).

    Raises:
        RubricError: naming the file and the offending key.
    """
    path = Path(path) if path else DEFAULT_RUBRIC
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise RubricError(f"rubric {path}: cannot be read as YAML ({e})") from e
    for key, value in (overrides or {}).items():  # "quality.weight": 0.5
        node = data["criteria"]
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    if not isinstance(data, dict) or "criteria" not in data:
        raise RubricError(f"rubric {path}: needs `version` and `criteria`")
    crit = data["criteria"]
    unknown = set(crit) - set(CRITERIA)
    if unknown:
        raise RubricError(f"rubric {path}: unknown criteria {sorted(unknown)}; known: {list(CRITERIA)}")
    weights, max_points, penalties = {}, {}, {}
    for name in CRITERIA:
        spec = crit.get(name) or {}
        w = spec.get("weight", 0.0)
        if not isinstance(w, (int, float)) or w < 0:
            raise RubricError(f"rubric {path}: criteria.{name}.weight must be a number >= 0, not {w!r}")
        weights[name] = float(w)
        for item, ispec in (spec.get("items") or {}).items():
            if item not in ITEMS.get(name, ()):
                raise RubricError(f"rubric {path}: criteria.{name}.items.{item} is not a known item; known: {ITEMS.get(name, ())}")
            mp = (ispec or {}).get("max_points", 1)
            if not isinstance(mp, (int, float)) or mp < 0:
                raise RubricError(f"rubric {path}: criteria.{name}.items.{item}.max_points must be >= 0")
            max_points[(name, item)] = float(mp)
        if "penalty_per_complaint" in spec:
            penalties[name] = float(spec["penalty_per_complaint"])
    if sum(weights.values()) <= 0:
        raise RubricError(f"rubric {path}: the criteria weights add up to 0")
    targets = (crit.get("targets") or {}).get("targets") or {}
    if "default" not in targets:
        targets = {"default": {"handle_time_s": 420, "hold_time_s": 60}, **targets}
    return Rubric(version=str(data.get("version", "1")), scale=float(data.get("scale", 100)), weights=weights,
                  max_points=max_points, targets=targets,
                  target_calls_per_week=float((crit.get("tasks_completed") or {}).get("target_calls_per_week", 10)),
                  penalties=penalties, path=str(path))


def iso_week(ts: dt.datetime | dt.date | None) -> str | None:
    if ts is None:
        return None
    y, w, _ = ts.isocalendar()
    return f"{y}-W{w:02d}"


def _features(data_dir: str | Path):
    """One row per completed call with everything the items need (DuckDB over the stored datasets)."""
    import duckdb

    con = duckdb.connect()
    for name in ("calls", "metrics", "compliance", "events", "sentiment", "utterances", "flags"):
        cols = {"utterances": ["call_id", "n_words", "mean_probability"]}.get(name)
        con.register(name, read_dataset(data_dir, name, cols))
    rows = con.sql("""
        WITH comp AS (
            SELECT call_id,
              sum(CASE WHEN result = 'passed' THEN w ELSE 0 END) AS comp_pass_w,
              sum(CASE WHEN result IN ('passed', 'failed') THEN w ELSE 0 END) AS comp_w,
              list(struct_pack(rule_id := rule_id, utterance_index := utterance_index, start_s := start_s,
                               end_s := end_s, reason := reason)) FILTER (WHERE result = 'failed') AS comp_failed,
              bool_or(result = 'failed' AND phase = 'conduct') AS rude,
              bool_or(result = 'passed' AND rule_id = 'opening.greeting') AS greeted,
              bool_or(result = 'passed' AND rule_id = 'closing.thanks') AS thanked
            FROM (SELECT *, CAST(CASE severity WHEN 'critical' THEN 3.0 WHEN 'major' THEN 2.0 WHEN 'minor' THEN 1.0 ELSE 0.5 END AS DOUBLE) AS w
                  FROM compliance) GROUP BY call_id),
        ev AS (
            SELECT call_id,
              bool_or(event_type = 'complaint_raised') AS complaint,
              bool_or(event_type = 'apology_on_behalf_of_company') AS apology_company,
              bool_or(event_type = 'transfer_to_quality') AS to_quality,
              bool_or(event_type = 'transfer') AS transferred,
              CAST(count_if(event_type = 'objection_raised') AS INTEGER) AS objections,
              CAST(count_if(event_type = 'objection_handled') AS INTEGER) AS objections_handled,
              bool_or(event_type IN ('price_not_given', 'conditions_not_given')) AS info_missing,
              list(struct_pack(event_type := event_type, utterance_index := utterance_index, start_s := start_s,
                               end_s := end_s, text := evidence_text)) AS events
            FROM events GROUP BY call_id),
        sent AS (
            SELECT call_id, max(CASE WHEN role = 'agent' THEN mean END) AS agent_mean,
                   min(CASE WHEN role = 'customer' THEN least(mean, start, "end") END) AS customer_low
            FROM sentiment GROUP BY call_id),
        utt AS (
            SELECT call_id, sum(mean_probability * n_words) / nullif(sum(n_words), 0) AS mean_probability
            FROM utterances GROUP BY call_id)
        SELECT c.call_id, c.agent_id, c.team, c.campaign, c.direction, c.call_type, c.started_at, c.call_date,
               c.duration_s, c.outcome, c.status, c.mode,
               m.agent_interruptions, m.agent_talk_ratio, m.agent_wpm, m.hold_total_s, m.holds,
               comp.comp_pass_w, comp.comp_w, comp.comp_failed, comp.rude, comp.greeted, comp.thanked,
               ev.complaint, ev.apology_company, ev.to_quality, ev.transferred, ev.objections,
               ev.objections_handled, ev.info_missing, ev.events,
               sent.agent_mean, sent.customer_low, utt.mean_probability
        FROM calls c LEFT JOIN metrics m USING (call_id) LEFT JOIN comp USING (call_id) LEFT JOIN ev USING (call_id)
        LEFT JOIN sent USING (call_id) LEFT JOIN utt USING (call_id)
    """).to_arrow_table().to_pylist()
    con.close()
    return rows


def _ev(dataset, ref, u=None, s=None, e=None, note=""):
    return {"dataset": dataset, "ref": ref, "utterance_index": u, "start_s": s, "end_s": e, "note": note}


def _events_of(f, *kinds):
    return [x for x in (f.get("events") or []) if x["event_type"] in kinds]


def score_call(f: dict, rubric: Rubric) -> list[tuple[str, str, float | None, list[dict]]]:
    """(criterion, item, points or None when not applicable, evidence) for one call's feature row."""
    out = []
    ctype, direction = f.get("call_type"), f.get("direction")
    outcome = f.get("outcome")
    cid = f["call_id"]

    def add(criterion, item, fraction, evidence):
        mp = rubric.max_points.get((criterion, item))
        if mp is None:
            return
        out.append((criterion, item, None if fraction is None else round(mp * float(fraction), 3), evidence))

    out_ev = [_ev("events", x["event_type"], x["utterance_index"], x["start_s"], x["end_s"], x["text"])
              for x in _events_of(f, "order_taken", "appointment_set", "survey_completed", "information_given")]
    add("tasks_completed", "outcome_achieved", 1.0 if outcome else 0.0,
        out_ev[:1] or [_ev("calls", cid, note=f"no task outcome found on a {ctype or 'call'}")])

    if f.get("comp_w"):
        failed = f.get("comp_failed") or []
        add("quality", "script_compliance", f["comp_pass_w"] / f["comp_w"],
            [_ev("compliance", x["rule_id"], x["utterance_index"], x["start_s"], x["end_s"], x["reason"]) for x in failed])
    else:
        add("quality", "script_compliance", None, [])
    rude = [x for x in (f.get("comp_failed") or []) if x["rule_id"].startswith("conduct.")]
    if f.get("comp_w"):
        courteous = 0.0 if f.get("rude") else (0.5 * bool(f.get("greeted")) + 0.5 * bool(f.get("thanked")))
        add("quality", "courtesy", courteous,
            [_ev("compliance", x["rule_id"], x["utterance_index"], x["start_s"], x["end_s"], x["reason"]) for x in rude]
            or [_ev("compliance", "opening.greeting/closing.thanks", note=f"greeted={bool(f.get('greeted'))}, thanked={bool(f.get('thanked'))}")])
    inter, ratio = f.get("agent_interruptions"), f.get("agent_talk_ratio")
    if inter is not None and ratio is not None:
        ok = (inter <= 1) + (0.3 <= ratio <= 0.7)
        add("quality", "listening", ok / 2, [_ev("metrics", "agent_interruptions", note=f"{inter} interruptions, talk ratio {ratio:.2f}")])
    wpm, prob = f.get("agent_wpm"), f.get("mean_probability")
    if wpm:
        ok = (110 <= wpm <= 190) + ((prob or 1.0) >= 0.7)
        add("quality", "clarity", ok / 2, [_ev("metrics", "agent_wpm", note=f"{wpm:.0f} wpm, mean word probability {prob or 0:.2f}")])
    low = f.get("customer_low")
    if low is not None and low <= -0.25 and f.get("agent_mean") is not None:
        add("quality", "calm_with_negative_customer", 1.0 if f["agent_mean"] >= 0 else 0.0,
            [_ev("sentiment", "agent", note=f"customer down to {low:+.2f}, agent mean {f['agent_mean']:+.2f}")])
    else:
        add("quality", "calm_with_negative_customer", None, [])
    if f.get("objections"):
        add("quality", "objections_handled", min(1.0, (f.get("objections_handled") or 0) / f["objections"]),
            [_ev("events", x["event_type"], x["utterance_index"], x["start_s"], x["end_s"], x["text"])
             for x in _events_of(f, "objection_raised", "objection_handled")])
    else:
        add("quality", "objections_handled", None, [])
    if f.get("complaint"):
        add("quality", "complaint_handling", 0.5 * bool(f.get("apology_company")) + 0.5 * bool(f.get("to_quality")),
            [_ev("events", x["event_type"], x["utterance_index"], x["start_s"], x["end_s"], x["text"])
             for x in _events_of(f, "complaint_raised", "apology_on_behalf_of_company", "transfer_to_quality")])
    else:
        add("quality", "complaint_handling", None, [])
    if ctype in SALES or outcome == "order_taken":
        add("quality", "correct_information", 0.0 if f.get("info_missing") else 1.0,
            [_ev("events", x["event_type"], note="required information not given")
             for x in _events_of(f, "price_not_given", "conditions_not_given")])
    else:
        add("quality", "correct_information", None, [])

    target = rubric.targets.get(f.get("campaign") or "", rubric.targets["default"])
    default = rubric.targets["default"]
    ht = target.get("handle_time_s", default.get("handle_time_s", 420))
    add("targets", "handle_time", 1.0 if f["duration_s"] <= ht else max(0.0, 1 - (f["duration_s"] - ht) / ht),
        [_ev("calls", "duration_s", note=f"{f['duration_s']:.0f} s against a {ht:.0f} s target")])
    if direction == "outbound" and ctype in SALES:
        add("targets", "conversion", 1.0 if outcome in ("order_taken", "appointment_set") else 0.0, out_ev[:1])
    else:
        add("targets", "conversion", None, [])
    if direction == "inbound":
        add("targets", "resolution", 1.0 if outcome and not f.get("transferred") else 0.0, out_ev[:1])
    else:
        add("targets", "resolution", None, [])
    hold = f.get("hold_total_s") or 0.0
    hmax = target.get("hold_time_s", default.get("hold_time_s", 60))
    add("targets", "hold_time", 1.0 if hold <= hmax else 0.0,
        [_ev("metrics", "holds", None, h["start_s"], h["end_s"], "hold") for h in (f.get("holds") or [])])
    return out


def score_calls(data_dir: str | Path, rubric: Rubric) -> dict[str, list[dict]]:
    """call_scores rows per call_date partition."""
    by_date: dict[str, list[dict]] = {}
    for f in _features(data_dir):
        if f.get("status") != "ok":
            continue
        week = iso_week(f["started_at"]) if f.get("started_at") else None
        for criterion, item, points, evidence in score_call(f, rubric):
            by_date.setdefault(f["call_date"], []).append(dict(
                call_id=f["call_id"], agent_id=f.get("agent_id"), team=f.get("team"), iso_week=week,
                criterion=criterion, item=item, points=points, max_points=rubric.max_points[(criterion, item)],
                evidence=evidence, rubric_version=rubric.version))
    return by_date


def weekly_scorecards(data_dir: str | Path, rubric: Rubric) -> dict[str, list[dict]]:
    """scorecards_weekly rows per ISO week, from call_scores, reviews and division complaints."""
    import duckdb

    con = duckdb.connect()
    con.register("call_scores", read_dataset(data_dir, "call_scores"))
    con.register("calls", read_dataset(data_dir, "calls", ["call_id", "agent_id", "team", "started_at"]))
    con.register("flags", read_dataset(data_dir, "flags", ["call_id", "flag_id", "flag_type"]))
    con.register("reviews", read_dataset(data_dir, "reviews"))
    con.register("division_complaints", read_dataset(data_dir, "division_complaints"))
    base = con.sql("""
        SELECT agent_id, any_value(team) AS team, iso_week, count(DISTINCT call_id) AS calls,
          sum(points) FILTER (WHERE criterion = 'tasks_completed') / nullif(sum(max_points) FILTER (WHERE criterion = 'tasks_completed' AND points IS NOT NULL), 0) AS tasks_rate,
          sum(points) FILTER (WHERE criterion = 'quality') / nullif(sum(max_points) FILTER (WHERE criterion = 'quality' AND points IS NOT NULL), 0) AS quality_rate,
          sum(points) FILTER (WHERE criterion = 'targets') / nullif(sum(max_points) FILTER (WHERE criterion = 'targets' AND points IS NOT NULL), 0) AS targets_rate
        FROM call_scores WHERE agent_id IS NOT NULL AND iso_week IS NOT NULL GROUP BY agent_id, iso_week
    """).to_arrow_table().to_pylist()
    # customer complaints: complaint flags, judged by the latest QA verdict on them
    complaints = con.sql("""
        WITH latest AS (
            SELECT target, arg_max(verdict, reviewed_at) AS verdict FROM reviews
            WHERE target_type = 'flag' GROUP BY target)
        SELECT c.agent_id, c.started_at, l.verdict FROM flags f JOIN calls c USING (call_id)
        LEFT JOIN latest l ON l.target = f.flag_id WHERE f.flag_type = 'customer_complaint'
    """).to_arrow_table().to_pylist()
    divisions = con.sql("SELECT agent_id, date, justified FROM division_complaints").to_arrow_table().to_pylist()
    con.close()
    justified_c: dict[tuple, int] = {}
    pending_c: dict[tuple, int] = {}
    for r in complaints:
        key = (r["agent_id"], iso_week(r["started_at"]))
        if r["verdict"] in ("justified", "confirmed"):
            justified_c[key] = justified_c.get(key, 0) + 1
        elif r["verdict"] is None:
            pending_c[key] = pending_c.get(key, 0) + 1
    justified_d: dict[tuple, int] = {}
    for r in divisions:
        if r["justified"]:
            key = (r["agent_id"], iso_week(r["date"]))
            justified_d[key] = justified_d.get(key, 0) + 1
    scale = rubric.scale
    rows = []
    for b in base:
        key = (b["agent_id"], b["iso_week"])
        tasks = None if b["tasks_rate"] is None else scale * b["tasks_rate"] * min(1.0, b["calls"] / rubric.target_calls_per_week)
        quality = None if b["quality_rate"] is None else scale * b["quality_rate"]
        targets = None if b["targets_rate"] is None else scale * b["targets_rate"]
        div = max(0.0, scale - rubric.penalties.get("divisions_complaints", 50) * justified_d.get(key, 0))
        cust = max(0.0, scale - rubric.penalties.get("customer_complaints", 50) * justified_c.get(key, 0))
        parts = {"tasks_completed": tasks, "quality": quality, "targets": targets, "divisions_complaints": div,
                 "customer_complaints": cust}
        wsum = sum(rubric.weights[k] for k, v in parts.items() if v is not None)
        overall = sum(rubric.weights[k] * v for k, v in parts.items() if v is not None) / wsum if wsum else None
        rows.append(dict(agent_id=b["agent_id"], team=b["team"], iso_week=b["iso_week"], calls=b["calls"],
                         **{k: None if v is None else round(v, 1) for k, v in parts.items()},
                         overall=None if overall is None else round(overall, 1),
                         justified_customer_complaints=justified_c.get(key, 0),
                         pending_customer_complaints=pending_c.get(key, 0),
                         justified_division_complaints=justified_d.get(key, 0), rubric_version=rubric.version))
    # rank in team per week, change from the agent's previous week
    by_week: dict[tuple, list[dict]] = {}
    for r in rows:
        by_week.setdefault((r["team"], r["iso_week"]), []).append(r)
    for group in by_week.values():
        for rank, r in enumerate(sorted(group, key=lambda r: -(r["overall"] or 0)), 1):
            r["rank_in_team"] = rank
    last: dict[str, float] = {}
    for r in sorted(rows, key=lambda r: (r["agent_id"], r["iso_week"])):
        prev = last.get(r["agent_id"])
        r["change_from_previous_week"] = None if prev is None or r["overall"] is None else round(r["overall"] - prev, 1)
        if r["overall"] is not None:
            last[r["agent_id"]] = r["overall"]
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r["iso_week"], []).append(r)
    return out


def rescore(data_dir: str | Path, rubric_path: str | Path | None = None, *, overrides: dict | None = None) -> dict:
    """Recompute call_scores, scorecards_weekly and calibration from the stored datasets. Returns a summary."""
    rubric = load_rubric(rubric_path, overrides)
    scores = score_calls(data_dir, rubric)
    replace_partitions(data_dir, "call_scores", scores, key="scores")
    cards = weekly_scorecards(data_dir, rubric)
    replace_partitions(data_dir, "scorecards_weekly", cards, key="scorecards")
    cal = calibration(data_dir, rubric)
    replace_partitions(data_dir, "calibration", {_safe_version(rubric.version): cal}, key="calibration")
    return {"rubric_version": rubric.version, "calls": len({r["call_id"] for rs in scores.values() for r in rs}),
            "score_rows": sum(len(v) for v in scores.values()), "weeks": sorted(cards),
            "scorecards": sum(len(v) for v in cards.values())}


def _safe_version(v: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in v)


# --- human verdicts -------------------------------------------------------------------------------------------

FLAG_VERDICTS = ("confirmed", "dismissed", "justified", "unjustified")
ITEM_VERDICTS = ("met", "not_met")


def import_reviews(data_dir: str | Path, csv_path: str | Path) -> dict:
    """Validate and append QA verdicts from a CSV (call_id, flag_id or item, verdict, reviewer, reviewed_at,
    comment). A verdict already imported (same call, target, reviewer and time) is skipped, never overwritten; a
    new verdict on the same target is added beside the old one (the latest counts).

    Raises:
        QAPipelineError (E630 unreadable, E633 columns missing, E631 invalid rows): nothing is written then.
    """
    import csv

    from qa_pipeline.errors import Errors, QAPipelineError
    from qa_pipeline.store.folder import write_rows

    path = Path(csv_path)
    calls = {r["call_id"]: r["call_date"] for r in read_dataset(data_dir, "calls", ["call_id", "call_date"]).to_pylist()}
    flags = {(r["call_id"], r["flag_id"]) for r in read_dataset(data_dir, "flags", ["call_id", "flag_id"]).to_pylist()}
    existing = set(read_dataset(data_dir, "reviews", ["review_id"]).column("review_id").to_pylist())
    items = {f"{c}.{i}" for c, its in ITEMS.items() for i in its}
    errors, rows = [], []
    try:
        reader = csv.DictReader(open(path, newline="", encoding="utf-8"))
        fields = set(reader.fieldnames or ())
    except OSError as e:
        raise QAPipelineError(Errors.E630, path=path, error=e, stage="reviews") from e
    missing = {"call_id", "verdict", "reviewer"} - fields
    if missing or not ({"flag_id", "item"} & fields):
        raise QAPipelineError(Errors.E633, path=path, missing=sorted(missing) or ["flag_id/item"], stage="reviews")
    for n, r in enumerate(reader, start=2):
        cid = (r.get("call_id") or "").strip()
        flag_id, item = (r.get("flag_id") or "").strip(), (r.get("item") or "").strip()
        verdict = (r.get("verdict") or "").strip().lower()
        reviewer = (r.get("reviewer") or "").strip()
        if cid not in calls:
            errors.append(f"line {n}: unknown call_id {cid!r}")
            continue
        if not reviewer:
            errors.append(f"line {n}: reviewer is empty")
            continue
        if flag_id:
            target_type, target, allowed = "flag", flag_id, FLAG_VERDICTS
            if (cid, flag_id) not in flags:
                errors.append(f"line {n}: flag {flag_id!r} is not a flag of call {cid!r}")
                continue
        elif item:
            target_type, target, allowed = "item", item, ITEM_VERDICTS
            if item not in items:
                errors.append(f"line {n}: unknown rubric item {item!r}; known: {sorted(items)}")
                continue
        else:
            errors.append(f"line {n}: give flag_id or item")
            continue
        if verdict not in allowed:
            errors.append(f"line {n}: verdict {verdict!r} for a {target_type} must be one of {allowed}")
            continue
        try:
            when = dt.datetime.fromisoformat((r.get("reviewed_at") or "").strip().replace("Z", "+00:00")) \
                if (r.get("reviewed_at") or "").strip() else dt.datetime.now(dt.timezone.utc)
        except ValueError:
            errors.append(f"line {n}: reviewed_at {r.get('reviewed_at')!r} is not an ISO 8601 time")
            continue
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        rid = hashlib.sha256(f"{cid}|{target}|{reviewer}|{when.isoformat()}".encode()).hexdigest()[:20]
        if rid in existing:
            continue
        existing.add(rid)
        rows.append(dict(review_id=rid, call_id=cid, target_type=target_type, target=target, verdict=verdict,
                         reviewer=reviewer, reviewed_at=when, comment=(r.get("comment") or "").strip() or None,
                         source=path.name))
    if errors:
        raise QAPipelineError(Errors.E631, path=path, count=len(errors), rows="\n  ".join(errors[:20]),
                              stage="reviews")
    for r in rows:
        write_rows(data_dir, "reviews", calls[r["call_id"]], r["review_id"], [r])
    return {"imported": len(rows), "skipped_existing": sum(1 for _ in open(path)) - 1 - len(rows)}


def import_division_complaints(data_dir: str | Path, path: str | Path) -> dict:
    """Complaints from other divisions (CSV or Parquet: date, agent, division, text, justified); re-importing the
    same rows adds nothing."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from qa_pipeline.errors import Errors, QAPipelineError

    path = Path(path)
    table = pq.read_table(path) if path.suffix == ".parquet" else pacsv.read_csv(path)
    need = {"date", "agent", "division", "text", "justified"}
    if need - set(table.column_names):
        raise QAPipelineError(Errors.E632, path=path, missing=sorted(need - set(table.column_names)),
                              found=table.column_names, needed=sorted(need), stage="complaints")
    by_month: dict[str, list[dict]] = {}
    for r in table.to_pylist():
        d = r["date"] if isinstance(r["date"], dt.date) else dt.date.fromisoformat(str(r["date"])[:10])
        justified = r["justified"] if isinstance(r["justified"], bool) else str(r["justified"]).strip().lower() in ("1", "true", "yes", "y")
        cid = hashlib.sha256(f"{d}|{r['agent']}|{r['division']}|{r['text']}".encode()).hexdigest()[:20]
        by_month.setdefault(d.strftime("%Y-%m"), []).append(dict(complaint_id=cid, date=d, agent_id=str(r["agent"]),
                                                                 division=str(r["division"]), text=r["text"],
                                                                 justified=justified, source=path.name))
    from qa_pipeline.store.folder import write_rows

    existing = {r["complaint_id"]: r for r in read_dataset(data_dir, "division_complaints").to_pylist()}
    for month, rows in by_month.items():
        merged = {r["complaint_id"]: {k: v for k, v in r.items() if k != "month"} for r in existing.values()
                  if r["month"] == month}
        merged.update({r["complaint_id"]: r for r in rows})  # a re-import updates `justified`, never duplicates
        write_rows(data_dir, "division_complaints", month, "complaints", list(merged.values()))
    return {"rows": sum(len(v) for v in by_month.values())}


# --- calibration ----------------------------------------------------------------------------------------------

def cohen_kappa(pairs: list[tuple[bool, bool]]) -> float | None:
    n = len(pairs)
    if n == 0:
        return None
    po = sum(a == b for a, b in pairs) / n
    pa = sum(a for a, _ in pairs) / n
    pb = sum(b for _, b in pairs) / n
    pe = pa * pb + (1 - pa) * (1 - pb)
    if math.isclose(pe, 1.0):
        return None  # every answer the same on both sides: kappa is undefined
    return round((po - pe) / (1 - pe), 3)


def calibration(data_dir: str | Path, rubric: Rubric) -> list[dict]:
    """Agreement between automatic answers and the latest human verdicts, per rubric item and per flag type."""
    import duckdb

    con = duckdb.connect()
    con.register("reviews", read_dataset(data_dir, "reviews"))
    con.register("call_scores", read_dataset(data_dir, "call_scores"))
    con.register("flags", read_dataset(data_dir, "flags", ["call_id", "flag_id", "flag_type"]))
    items = con.sql("""
        WITH latest AS (SELECT call_id, target, arg_max(verdict, reviewed_at) AS verdict FROM reviews
                        WHERE target_type = 'item' GROUP BY call_id, target)
        SELECT l.target, s.points >= s.max_points AS auto_met, l.verdict = 'met' AS human_met
        FROM latest l JOIN call_scores s ON s.call_id = l.call_id AND s.criterion || '.' || s.item = l.target
        WHERE s.points IS NOT NULL
    """).fetchall()
    flag_rows = con.sql("""
        WITH latest AS (SELECT target, arg_max(verdict, reviewed_at) AS verdict FROM reviews
                        WHERE target_type = 'flag' GROUP BY target)
        SELECT f.flag_type, l.verdict IN ('confirmed', 'justified') FROM latest l JOIN flags f ON f.flag_id = l.target
    """).fetchall()
    con.close()
    now = dt.datetime.now(dt.timezone.utc)
    out = []
    by_item: dict[str, list[tuple[bool, bool]]] = {}
    for target, auto, human in items:
        by_item.setdefault(target, []).append((bool(auto), bool(human)))
    for item, pairs in sorted(by_item.items()):
        out.append(dict(rubric_version=rubric.version, target_type="item", item=item, n=len(pairs),
                        agreement=round(sum(a == b for a, b in pairs) / len(pairs), 3), kappa=cohen_kappa(pairs),
                        computed_at=now))
    by_flag: dict[str, list[bool]] = {}
    for flag_type, confirmed in flag_rows:
        by_flag.setdefault(flag_type, []).append(bool(confirmed))
    for flag_type, vals in sorted(by_flag.items()):
        # a raised flag is the automatic "yes": agreement is the share QA confirmed (precision); kappa needs
        # verdicts on calls the pipeline did not flag, which flag reviews do not give
        out.append(dict(rubric_version=rubric.version, target_type="flag", item=flag_type, n=len(vals),
                        agreement=round(sum(vals) / len(vals), 3), kappa=None, computed_at=now))
    return out
