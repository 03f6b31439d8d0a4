"""Agreement between the automatic answers and QA's latest verdicts (`calibration`): per rubric item (percent
agreement and Cohen's kappa) and per flag type (the share of flags QA confirmed)."""

from __future__ import annotations

import datetime as dt
import math

from qa_pipeline.scoring.rubric import Rubric
from qa_pipeline.store.queries import Queries

ITEMS_SQL = """
    SELECT l.target, s.points >= s.max_points AS auto_met, l.verdict = 'met' AS human_met
    FROM latest_reviews l JOIN call_scores s ON s.call_id = l.call_id AND s.criterion || '.' || s.item = l.target
    WHERE l.target_type = 'item' AND s.points IS NOT NULL AND s.rubric_version = $rubric_version
"""
FLAGS_SQL = """
    SELECT f.flag_type, l.verdict IN ('confirmed', 'justified') AS confirmed
    FROM latest_reviews l JOIN flags f ON f.call_id = l.call_id AND f.flag_id = l.target
    WHERE l.target_type = 'flag'
"""


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


def calibration(q: Queries, rubric: Rubric) -> list[dict]:
    """calibration rows of this rubric version, from the stored call_scores and the latest verdicts."""
    items = q.fetch(ITEMS_SQL, {"rubric_version": rubric.version}).to_pylist()
    flags = q.fetch(FLAGS_SQL).to_pylist()
    now = dt.datetime.now(dt.timezone.utc)
    by_item: dict[str, list[tuple[bool, bool]]] = {}
    for r in items:
        by_item.setdefault(r["target"], []).append((bool(r["auto_met"]), bool(r["human_met"])))
    by_flag: dict[str, list[bool]] = {}
    for r in flags:
        by_flag.setdefault(r["flag_type"], []).append(bool(r["confirmed"]))
    return [dict(rubric_version=rubric.version, target_type="item", item=item, n=len(pairs),
                 agreement=round(sum(a == b for a, b in pairs) / len(pairs), 3), kappa=cohen_kappa(pairs),
                 computed_at=now) for item, pairs in sorted(by_item.items())] + [
        # a raised flag is the automatic "yes": agreement is the share QA confirmed (precision); kappa needs
        # verdicts on calls the pipeline did not flag, which flag reviews do not give
        dict(rubric_version=rubric.version, target_type="flag", item=flag_type, n=len(vals),
             agreement=round(sum(vals) / len(vals), 3), kappa=None, computed_at=now)
        for flag_type, vals in sorted(by_flag.items())]
