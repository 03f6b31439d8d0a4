"""Flag ids identify the finding, so QA verdicts stay attached when a call is re-transcribed or its script reworded
(issue 12, item 4)."""

from __future__ import annotations

import dataclasses

from qa_pipeline.analysis.analyse import CallFacts, analyse
from qa_pipeline.analysis.flags import Flag
from qa_pipeline.analysis.resources import AnalysisResources
from qa_pipeline.pipeline.rows import analysis_rows, flag_ids
from qa_pipeline.types import Utterance

RESOURCES = AnalysisResources()

RUDE_COMPLAINT = [
    ("agent", 0.5, 2.0, "Yeah, hello?"),
    ("customer", 2.5, 9.0, "I want to make a complaint. I have been overcharged again, this is unacceptable!"),
    ("agent", 9.5, 12.0, "Calm down, that's not my problem."),
    ("customer", 12.5, 16.0, "This is ridiculous, I am really disappointed."),
    ("agent", 16.5, 18.0, "Okay."),
]


def _utts(lines, shift=0.0, split_first=False):
    out = []
    for role, s, e, text in lines:
        if split_first and not out:  # re-transcription cut the first turn in two
            words = text.split()
            out.append((role, s + shift, (s + e) / 2 + shift, " ".join(words[:1])))
            out.append((role, (s + e) / 2 + shift, e + shift, " ".join(words[1:])))
            continue
        out.append((role, s + shift, e + shift, text))
    return tuple(Utterance(i, r, r, s, e, t, 0.9, len(t.split())) for i, (r, s, e, t) in enumerate(out))


def _rows(utts):
    facts = CallFacts("c-1", "en", "complaint", "inbound", None, 40.0)
    return analysis_rows("c-1", analyse(facts, utts, RESOURCES))["flags"]


def test_flag_ids_survive_retranscription():
    before = _rows(_utts(RUDE_COMPLAINT))
    after = _rows(_utts(RUDE_COMPLAINT, shift=0.37, split_first=True))
    assert before, "the rude complaint call must raise flags"
    key = {(r["flag_type"], r["rule_id"]): r["flag_id"] for r in before}
    # the same findings, at other times and utterance indexes, keep their ids
    moved = [r for r in after if (r["flag_type"], r["rule_id"]) in key]
    assert moved and all(r["flag_id"] == key[(r["flag_type"], r["rule_id"])] for r in moved)
    assert any(r["start_s"] != b["start_s"] for r in moved for b in before if b["flag_id"] == r["flag_id"])


def test_flag_ids_survive_a_reworded_reason():
    flags = [Flag("script_deviation", "medium", "opening.greeting: no greeting", 0, 0.5, 2.0, "opening.greeting"),
             Flag("escalation", "low", "sharp drop", 3, 12.5, 16.0)]
    reworded = [dataclasses.replace(flags[0], reason="opening.greeting: the agent did not greet"), flags[1]]
    assert flag_ids("c-1", flags) == flag_ids("c-1", reworded)


def test_repeated_findings_get_distinct_ids_in_time_order():
    a = Flag("escalation", "low", "drop", 1, 5.0, 6.0)
    b = Flag("escalation", "low", "louder", 4, 20.0, 21.0)
    ids = flag_ids("c-1", [b, a])
    assert len(set(ids)) == 2
    assert flag_ids("c-1", [a, b]) == [ids[1], ids[0]]  # an id follows its finding, not its list position
    assert flag_ids("c-2", [a, b]) != flag_ids("c-1", [a, b])
