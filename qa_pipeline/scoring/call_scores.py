"""Per-call item scores (`call_scores`), computed set-wise in DuckDB over the stored datasets.

One query builds every row: `call_features` (one row per completed call: what each item needs, from calls,
metrics, compliance, events, sentiment and utterances) and then one SELECT per rubric item, so each item's
points, applicability and evidence are defined in exactly one place below. Rubric values (points, thresholds,
targets) are bound as parameters, never formatted into the SQL.

Sums of floating values use `fsum` (compensated: the result does not depend on the order DuckDB's threads add
rows in). Points are `max_points x fraction`, rounded to 3 decimals the way Python's `round` does (half to even on the
exact binary value): DuckDB's `round` rounds half away from zero, so the rounding is done after the query, on the
distinct values only."""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

from qa_pipeline.scoring.rubric import SALES, Rubric
from qa_pipeline.store.queries import Queries

OUTCOME_EVENTS = ("order_taken", "appointment_set", "survey_completed", "information_given")
OBJECTION_EVENTS = ("objection_raised", "objection_handled")
COMPLAINT_EVENTS = ("complaint_raised", "apology_on_behalf_of_company", "transfer_to_quality")
INFO_MISSING_EVENTS = ("price_not_given", "conditions_not_given")

EVIDENCE = ('STRUCT("dataset" VARCHAR, "ref" VARCHAR, "utterance_index" INTEGER, "start_s" DOUBLE, '
            '"end_s" DOUBLE, "note" VARCHAR)')
NO_EVIDENCE = f"CAST([] AS {EVIDENCE}[])"


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


def _ev(dataset: str, ref: str, u: str = "NULL", s: str = "NULL", e: str = "NULL", note: str = "''") -> str:
    """An evidence reference (the `call_scores.evidence` struct) as SQL."""
    return (f"struct_pack(dataset := CAST({dataset} AS VARCHAR), ref := CAST({ref} AS VARCHAR), "
            f"utterance_index := CAST({u} AS INTEGER), start_s := CAST({s} AS DOUBLE), end_s := CAST({e} AS DOUBLE), "
            f"note := CAST({note} AS VARCHAR))")


_EVENT_EV = _ev("'events'", "event_type", "utterance_index", "start_s", "end_s", "evidence_text")


def _in_order(value: str, condition: str) -> str:
    """SQL: the list of `value` over a call's rows meeting `condition`, in the order they were written (rules in
    script order, events as found). A call's rows of one dataset are all in one file (its own), so the row number
    in the file is that order: collected with it, sorted, then stripped of it (cheaper in DuckDB than an ordered
    aggregate)."""
    return (f"list_transform(list_sort(list(struct_pack(r := _row, v := {value})) FILTER (WHERE {condition})), "
            "lambda x: x.v)")


# one row per completed call; $w_* are the rubric's severity weights
FEATURES = f"""
    comp AS (
        SELECT call_id,
          fsum(CASE WHEN result = 'passed' THEN w ELSE 0 END) AS comp_pass_w,
          fsum(CASE WHEN result IN ('passed', 'failed') THEN w ELSE 0 END) AS comp_w,
          {_in_order(_ev("'compliance'", "rule_id", "utterance_index", "start_s", "end_s", "reason"),
                     "result = 'failed'")} AS comp_failed,
          bool_or(result = 'failed' AND phase = 'conduct') AS rude,
          bool_or(result = 'passed' AND rule_id = 'opening.greeting') AS greeted,
          bool_or(result = 'passed' AND rule_id = 'closing.thanks') AS thanked
        FROM (SELECT *, {{severity_weight}} AS w FROM compliance__rows) GROUP BY call_id),
    ev AS (
        SELECT call_id,
          bool_or(event_type = 'complaint_raised') AS complaint,
          bool_or(event_type = 'apology_on_behalf_of_company') AS apology_company,
          bool_or(event_type = 'transfer_to_quality') AS to_quality,
          bool_or(event_type = 'transfer') AS transferred,
          count_if(event_type = 'objection_raised') AS objections,
          count_if(event_type = 'objection_handled') AS objections_handled,
          bool_or(event_type IN {_in(INFO_MISSING_EVENTS)}) AS info_missing,
          {_in_order(_EVENT_EV, f"event_type IN {_in(OUTCOME_EVENTS)}")} AS outcome_ev,
          {_in_order(_EVENT_EV, f"event_type IN {_in(OBJECTION_EVENTS)}")} AS objection_ev,
          {_in_order(_EVENT_EV, f"event_type IN {_in(COMPLAINT_EVENTS)}")} AS complaint_ev,
          {_in_order(_ev("'events'", "event_type", note="'required information not given'"),
                     f"event_type IN {_in(INFO_MISSING_EVENTS)}")} AS info_ev
        FROM events__rows GROUP BY call_id),
    sent AS (
        SELECT call_id, CAST(max(CASE WHEN role = 'agent' THEN mean END) AS DOUBLE) AS agent_mean,
               CAST(min(CASE WHEN role = 'customer' THEN least(mean, start, "end") END) AS DOUBLE) AS customer_low
        FROM sentiment GROUP BY call_id),
    utt AS (
        SELECT call_id, fsum(mean_probability * n_words) / nullif(sum(n_words), 0) AS mean_probability
        FROM utterances GROUP BY call_id),
    targets AS (SELECT * FROM (VALUES {{targets}}) AS t(campaign, handle_time_s, hold_time_s)),
    f AS (
        SELECT c.call_id, c.agent_id, c.team, c.call_type, c.direction, c.outcome, c.duration_s, c.call_date,
               strftime(c.started_at, '%G-W%V') AS iso_week, coalesce(c.outcome, '') <> '' AS has_outcome,
               coalesce(c.call_type IN {_in(SALES)}, false) AS sales,
               m.agent_interruptions, CAST(m.agent_talk_ratio AS DOUBLE) AS talk_ratio,
               CAST(m.agent_wpm AS DOUBLE) AS wpm, coalesce(m.hold_total_s, 0.0) AS hold_s, m.holds,
               comp.comp_pass_w, coalesce(comp.comp_w, 0) <> 0 AS scripted, comp.comp_w,
               coalesce(comp.comp_failed, {NO_EVIDENCE}) AS comp_failed, coalesce(comp.rude, false) AS rude,
               coalesce(comp.greeted, false) AS greeted, coalesce(comp.thanked, false) AS thanked,
               coalesce(ev.complaint, false) AS complaint, coalesce(ev.apology_company, false) AS apology_company,
               coalesce(ev.to_quality, false) AS to_quality, coalesce(ev.transferred, false) AS transferred,
               coalesce(ev.objections, 0) AS objections, coalesce(ev.objections_handled, 0) AS objections_handled,
               coalesce(ev.info_missing, false) AS info_missing,
               coalesce(ev.outcome_ev, {NO_EVIDENCE})[1:1] AS first_outcome_ev,
               coalesce(ev.objection_ev, {NO_EVIDENCE}) AS objection_ev,
               coalesce(ev.complaint_ev, {NO_EVIDENCE}) AS complaint_ev,
               coalesce(ev.info_ev, {NO_EVIDENCE}) AS info_ev,
               sent.agent_mean, sent.customer_low, utt.mean_probability,
               coalesce(t.handle_time_s, $ht_default) AS handle_time_s,
               coalesce(t.hold_time_s, $hold_default) AS hold_time_s
        FROM calls c LEFT JOIN metrics m ON m.call_id = c.call_id LEFT JOIN comp ON comp.call_id = c.call_id
        LEFT JOIN ev ON ev.call_id = c.call_id LEFT JOIN sent ON sent.call_id = c.call_id
        LEFT JOIN utt ON utt.call_id = c.call_id LEFT JOIN targets t ON t.campaign = coalesce(c.campaign, '')
        WHERE c.status = 'ok')
"""


def _bool(expr: str) -> str:
    return f"CAST({expr} AS DOUBLE)"


# clarity's second half: `(mean_probability or 1.0) >= min`, NaN never clear (as in Python, unlike DuckDB's order)
_CLEAR = ("CASE WHEN mean_probability IS NULL OR mean_probability = 0 THEN 1.0 ELSE mean_probability END "
          ">= $min_word_probability AND NOT isnan(coalesce(mean_probability, 1.0))")


# item -> (applies: SQL condition on f, or None for every call; fraction (NULL: not applicable); evidence)
ITEM_SQL: dict[tuple[str, str], tuple[str | None, str, str]] = {
    ("tasks_completed", "outcome_achieved"): (
        None, _bool("has_outcome"),
        f"""CASE WHEN len(first_outcome_ev) > 0 THEN first_outcome_ev
                 ELSE [{_ev("'calls'", "call_id",
                            note="'no task outcome found on a ' || coalesce(nullif(call_type, ''), 'call')")}] END"""),
    ("quality", "script_compliance"): (
        None, "CASE WHEN scripted THEN comp_pass_w / comp_w END",
        f"CASE WHEN scripted THEN comp_failed ELSE {NO_EVIDENCE} END"),
    ("quality", "courtesy"): (
        "scripted", f"CASE WHEN rude THEN 0.0 ELSE 0.5 * {_bool('greeted')} + 0.5 * {_bool('thanked')} END",
        f"""CASE WHEN len(list_filter(comp_failed, lambda x: starts_with(x.ref, 'conduct.'))) > 0
                 THEN list_filter(comp_failed, lambda x: starts_with(x.ref, 'conduct.'))
                 ELSE [{_ev("'compliance'", "'opening.greeting/closing.thanks'",
                            note="'greeted=' || CASE WHEN greeted THEN 'True' ELSE 'False' END || "
                                 "', thanked=' || CASE WHEN thanked THEN 'True' ELSE 'False' END")}] END"""),
    ("quality", "listening"): (
        "agent_interruptions IS NOT NULL AND talk_ratio IS NOT NULL",
        f"({_bool('agent_interruptions <= $max_interruptions')} "
        f"+ {_bool('$talk_ratio_min <= talk_ratio AND talk_ratio <= $talk_ratio_max')}) / 2",
        f"""[{_ev("'metrics'", "'agent_interruptions'",
                  note="printf('%d interruptions, talk ratio %.2f', agent_interruptions, talk_ratio)")}]"""),
    ("quality", "clarity"): (
        "wpm IS NOT NULL AND wpm <> 0",
        f"({_bool('$wpm_min <= wpm AND wpm <= $wpm_max')} + "
        f"{_bool(_CLEAR)}) / 2",
        f"""[{_ev("'metrics'", "'agent_wpm'",
                  note="printf('%.0f wpm, mean word probability %.2f', wpm, coalesce(mean_probability, 0.0))")}]"""),
    ("quality", "calm_with_negative_customer"): (
        None,
        "CASE WHEN customer_low <= $negative_customer_at AND agent_mean IS NOT NULL "
        "THEN CASE WHEN agent_mean >= $calm_agent_min AND NOT isnan(agent_mean) THEN 1.0 ELSE 0.0 END END",
        f"""CASE WHEN customer_low <= $negative_customer_at AND agent_mean IS NOT NULL
                 THEN [{_ev("'sentiment'", "'agent'",
                            note="printf('customer down to %+.2f, agent mean %+.2f', customer_low, agent_mean)")}]
                 ELSE {NO_EVIDENCE} END"""),
    ("quality", "objections_handled"): (
        None, "CASE WHEN objections > 0 THEN least(1.0, CAST(objections_handled AS DOUBLE) / objections) END",
        f"CASE WHEN objections > 0 THEN objection_ev ELSE {NO_EVIDENCE} END"),
    ("quality", "complaint_handling"): (
        None, f"CASE WHEN complaint THEN 0.5 * {_bool('apology_company')} + 0.5 * {_bool('to_quality')} END",
        f"CASE WHEN complaint THEN complaint_ev ELSE {NO_EVIDENCE} END"),
    ("quality", "correct_information"): (
        None, "CASE WHEN sales OR coalesce(outcome = 'order_taken', false) "
              "THEN CASE WHEN info_missing THEN 0.0 ELSE 1.0 END END",
        f"CASE WHEN sales OR coalesce(outcome = 'order_taken', false) THEN info_ev ELSE {NO_EVIDENCE} END"),
    ("targets", "handle_time"): (
        None, "CASE WHEN duration_s <= handle_time_s THEN 1.0 "
              "ELSE greatest(0.0, 1 - (duration_s - handle_time_s) / handle_time_s) END",
        f"""[{_ev("'calls'", "'duration_s'",
                  note="printf('%.0f s against a %.0f s target', duration_s, handle_time_s)")}]"""),
    ("targets", "conversion"): (
        None, "CASE WHEN direction = 'outbound' AND sales "
              "THEN CASE WHEN outcome IN ('order_taken', 'appointment_set') THEN 1.0 ELSE 0.0 END END",
        f"CASE WHEN direction = 'outbound' AND sales THEN first_outcome_ev ELSE {NO_EVIDENCE} END"),
    ("targets", "resolution"): (
        None, "CASE WHEN direction = 'inbound' "
              "THEN CASE WHEN has_outcome AND NOT transferred THEN 1.0 ELSE 0.0 END END",
        f"CASE WHEN direction = 'inbound' THEN first_outcome_ev ELSE {NO_EVIDENCE} END"),
    ("targets", "hold_time"): (
        None, "CASE WHEN hold_s <= hold_time_s THEN 1.0 ELSE 0.0 END",
        f"""list_transform(coalesce(holds, []),
                           lambda h: {_ev("'metrics'", "'holds'", "NULL", "h.start_s", "h.end_s", "'hold'")})"""),
}


def _params(rubric: Rubric) -> tuple[dict, str, str]:
    """(parameters, severity-weight SQL, targets VALUES SQL) for a rubric."""
    th = rubric.thresholds
    params: dict = {
        "max_interruptions": int(th.max_interruptions), "talk_ratio_min": float(th.talk_ratio_min),
        "talk_ratio_max": float(th.talk_ratio_max), "wpm_min": float(th.wpm_min), "wpm_max": float(th.wpm_max),
        "min_word_probability": float(th.min_word_probability),
        "negative_customer_at": float(th.negative_customer_at), "calm_agent_min": float(th.calm_agent_min),
        "w_other": th.other_severity_weight,
    }
    cases = []
    for i, (severity, weight) in enumerate(th.severity_weights.items()):
        params[f"s_{i}"], params[f"w_{i}"] = severity, float(weight)
        cases.append(f"WHEN $s_{i} THEN CAST($w_{i} AS DOUBLE)")
    severity_weight = f"CASE severity {' '.join(cases)} ELSE CAST($w_other AS DOUBLE) END"
    default = rubric.targets["default"]
    params["ht_default"] = float(default.get("handle_time_s", 420))
    params["hold_default"] = float(default.get("hold_time_s", 60))
    rows = []
    for i, (campaign, target) in enumerate(t for t in rubric.targets.items() if isinstance(t[0], str)):
        params[f"c_{i}"] = campaign
        params[f"ht_{i}"] = float(target.get("handle_time_s", params["ht_default"]))
        params[f"hold_{i}"] = float(target.get("hold_time_s", params["hold_default"]))
        rows.append(f"($c_{i}, CAST($ht_{i} AS DOUBLE), CAST($hold_{i} AS DOUBLE))")
    return params, severity_weight, ", ".join(rows)


def features_sql(rubric: Rubric) -> tuple[str, dict]:
    """The query of the call features (one row per completed call, sorted by date and call) and its parameters."""
    params, severity_weight, targets = _params(rubric)
    sql = ("WITH " + FEATURES.replace("{severity_weight}", severity_weight).replace("{targets}", targets)
           + " SELECT * FROM f ORDER BY call_date, call_id")
    return sql, _used(params, sql)


def _used(params: dict, sql: str) -> dict:
    """The parameters `sql` refers to (DuckDB refuses extra ones)."""
    names = set(re.findall(r"\$(\w+)", sql))
    return {k: v for k, v in params.items() if k in names}


def call_scores_sql(rubric: Rubric) -> tuple[str, dict]:
    """The query of every call_scores row (points not yet rounded) plus `call_date`, and its parameters.

    Each call's applicable items are one list of typed records (criterion, item, points, max_points, evidence),
    unnested in place: rows come out call by call (sorted by date and call), items in rubric order, without a
    sort of the 13x larger result."""
    params, severity_weight, targets = _params(rubric)
    records = []
    for n, ((criterion, item), (applies, fraction, evidence)) in enumerate(ITEM_SQL.items()):
        if (criterion, item) not in rubric.max_points:
            continue
        params[f"mp_{n}"] = rubric.max_points[(criterion, item)]
        records.append(
            f"struct_pack(applies := {applies or 'true'}, criterion := '{criterion}', item := '{item}', "
            f"points := CAST($mp_{n} AS DOUBLE) * ({fraction}), max_points := CAST($mp_{n} AS DOUBLE), "
            f"evidence := {evidence})")
    params["rubric_version"] = rubric.version
    features = FEATURES.replace("{severity_weight}", severity_weight).replace("{targets}", targets)
    if records:
        rows = (f"SELECT call_id, agent_id, team, iso_week, s.criterion, s.item, s.points, s.max_points, s.evidence, "
                f"$rubric_version AS rubric_version, call_date FROM ("
                f"SELECT *, unnest(list_filter([{', '.join(records)}], lambda r: r.applies)) AS s "
                f"FROM (SELECT * FROM f ORDER BY call_date, call_id))")
    else:
        rows = (f"SELECT call_id, agent_id, team, iso_week, NULL::VARCHAR AS criterion, NULL::VARCHAR AS item, "
                f"NULL::DOUBLE AS points, NULL::DOUBLE AS max_points, {NO_EVIDENCE} AS evidence, "
                f"$rubric_version AS rubric_version, call_date FROM f WHERE false")
    sql = f"WITH {features} {rows}"
    return sql, _used(params, sql)


def python_round(values: pa.ChunkedArray | pa.Array, ndigits: int) -> pa.Array:
    """`round(v, ndigits)` of Python (correctly rounded, half to even) on every value; computed once per
    distinct value."""
    distinct = pc.unique(values)
    rounded = pa.array([None if v is None else round(v, ndigits) for v in distinct.to_pylist()], pa.float64())
    return rounded.take(pc.index_in(values, value_set=distinct))


def score_calls(q: Queries, rubric: Rubric) -> pa.Table:
    """Every call_scores row of the completed calls, with `call_date`, sorted by date, call and item."""
    table = q.fetch(*call_scores_sql(rubric))
    points = python_round(table.column("points"), 3)
    return table.set_column(table.schema.get_field_index("points"), pa.field("points", pa.float64()), points)
