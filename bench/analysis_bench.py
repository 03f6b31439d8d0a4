"""Analysis benchmark: compliance and event precision/recall on the demo corpus (planted labels), sentiment
accuracy (English and Italian, the project's labelled utterances; Harper Valley against Gridspace's emotion model),
and analysis throughput.

    python bench/analysis_bench.py [--data QA_DATA_OF_THE_DEMO_RUN] --out bench/results
With --data, the same figures are computed on what the audio pipeline produced (ASR + roles included)."""

from __future__ import annotations

import argparse
import csv
import json
import re
import time
from pathlib import Path

from qa_pipeline.analysis.analyse import CallFacts, analyse
from qa_pipeline.analysis.resources import AnalysisResources
from qa_pipeline.analysis.sentiment import CALL_CENTER_LEXICON, label_of
from qa_pipeline.config import AnalysisOptions
from qa_pipeline.types import Utterance

RESOURCES = AnalysisResources(AnalysisOptions())  # loaded once for the whole bench

ROOT = Path(__file__).resolve().parents[1]
TRUTH = ROOT / "demo" / "truth"
EVAL = ROOT.parent / "shared" / "eval"

# planted label -> (our rule id, kind)
RULE_LABELS = {"greeting": "opening.greeting", "agent_name": "opening.agent_name", "company_name": "opening.company_name"}
CLOSING_LABELS = {"thanks": "closing.thanks", "next_step": "closing.next_step", "recap": "closing.next_step"}
EVENT_LABELS = {"complaint": "complaint_raised", "apology": "apology", "transfer_to_quality": "transfer_to_quality",
                "order_taken": "order_taken", "objection": "objection_raised", "objection_handled": "objection_handled",
                "appointment_set": "appointment_set", "survey_completed": "survey_completed",
                "information_given": "information_given", "hold": "hold"}


def truth_calls():
    for p in sorted(TRUTH.glob("*.json")):
        yield json.loads(p.read_text())


def expected(truth) -> tuple[dict[str, bool], set[str]]:
    """rule id -> violated?, and the set of event types planted."""
    lab = truth["labels"]
    violated = {rule: (name in (lab.get("missing") or [])) for name, rule in RULE_LABELS.items()}
    closing_missing = set(lab.get("closing_missing") or [])
    violated["closing.thanks"] = "thanks" in closing_missing or "goodbye" in closing_missing
    violated["conduct.no_rude_language"] = bool(lab.get("rude_agent_phrase"))
    events = {EVENT_LABELS[e] for e in lab.get("events") or [] if e in EVENT_LABELS}
    return violated, events


def predicted_from_analysis(a) -> tuple[dict[str, bool | None], set[str]]:
    res = {r.rule_id: r.result for r in a.compliance}
    kinds = {e.event_type for e in a.events}
    if "apology_on_behalf_of_company" in kinds:
        kinds.add("apology")
    return {k: (None if v == "not_applicable" else v == "failed") for k, v in res.items()}, kinds


def score(pairs: list[tuple[bool, bool]]) -> dict:
    tp = sum(1 for e, p in pairs if e and p)
    fp = sum(1 for e, p in pairs if not e and p)
    fn = sum(1 for e, p in pairs if e and not p)
    return {"n": len(pairs), "positives": tp + fn, "tp": tp, "fp": fp, "fn": fn,
            "precision": round(tp / (tp + fp), 3) if tp + fp else None,
            "recall": round(tp / (tp + fn), 3) if tp + fn else None}


def evaluate(predictions: dict[str, tuple[dict, set]]) -> dict:
    rules: dict[str, list] = {}
    events: dict[str, list] = {}
    mismatches = []
    for truth in truth_calls():
        cid = truth["call_id"]
        if cid not in predictions:
            continue
        exp_rules, exp_events = expected(truth)
        pred_rules, pred_events = predictions[cid]
        for rule, e in exp_rules.items():
            p = pred_rules.get(rule)
            if p is None:
                continue
            rules.setdefault(rule, []).append((e, p))
            if e != p:
                mismatches.append(f"{cid} {rule}: planted {'violation' if e else 'ok'}, found {'violation' if p else 'ok'}")
        for kind in EVENT_LABELS.values():
            e, p = kind in exp_events, kind in pred_events
            events.setdefault(kind, []).append((e, p))
            if e != p:
                mismatches.append(f"{cid} event {kind}: planted {e}, found {p}")
    return {"rules": {k: score(v) for k, v in sorted(rules.items())},
            "events": {k: score(v) for k, v in sorted(events.items())}, "mismatches": mismatches}


def _plain(text: str) -> str:
    return re.sub(r"[^\w']+", " ", text.lower()).strip()


def evidence_problems(call_id: str, a, utts) -> tuple[int, list[str]]:
    """Every evidence item must point at a real utterance, lie inside its time span and quote its text."""
    items = [(f"rule {r.rule_id}", m.utterance_index, m.start_s, m.end_s, m.text) for r in a.compliance
             for m in r.evidence]
    items += [(f"event {e.event_type}", e.utterance_index, e.start_s, e.end_s, e.evidence_text) for e in a.events
              if e.utterance_index is not None]
    problems = []
    for what, idx, start, end, text in items:
        u = utts[idx] if 0 <= idx < len(utts) else None
        if u is None:
            problems.append(f"{call_id} {what}: no utterance {idx}")
        elif not (u.start - 0.01 <= start <= end <= u.end + 0.01):
            problems.append(f"{call_id} {what}: span {start}-{end} outside utterance {idx} ({u.start}-{u.end})")
        elif _plain(text) not in _plain(u.text):
            problems.append(f"{call_id} {what}: {text!r} not in utterance {idx}")
    return len(items), problems


def on_truth_transcripts() -> tuple[dict, float]:
    preds, n_utts, elapsed = {}, 0, 0.0
    on_truth_transcripts.evidence = [0, []]
    for truth in truth_calls():
        turns = sorted(truth["turns"], key=lambda t: t["start"])
        utts = tuple(Utterance(i, t["speaker"], t["speaker"], t["start"], t["end"], t["text"], 1.0, len(t["text"].split()))
                     for i, t in enumerate(turns))
        lab = truth["labels"]
        holds = ((lab["hold_s"][0], lab["hold_s"][1]),) if lab.get("hold_s") else ()
        facts = CallFacts(truth["call_id"], truth["language"], truth["call_type"], truth["direction"],
                          truth["campaign"], truth["duration_s"], holds=holds)
        t0 = time.perf_counter()
        a = analyse(facts, utts, RESOURCES)
        elapsed += time.perf_counter() - t0
        n_utts += len(utts)
        preds[truth["call_id"]] = predicted_from_analysis(a)
        checked, problems = evidence_problems(truth["call_id"], a, utts)
        on_truth_transcripts.evidence[0] += checked
        on_truth_transcripts.evidence[1] += problems
    return preds, n_utts / elapsed if elapsed else 0.0


def on_pipeline_output(data: Path) -> dict:
    from qa_pipeline.store.folder import read_dataset

    comp, ev = {}, {}
    for r in read_dataset(data, "compliance").to_pylist():
        comp.setdefault(r["call_id"], {})[r["rule_id"]] = None if r["result"] == "not_applicable" else r["result"] == "failed"
    for r in read_dataset(data, "events").to_pylist():
        ev.setdefault(r["call_id"], set()).add(r["event_type"])
    for kinds in ev.values():
        if "apology_on_behalf_of_company" in kinds:
            kinds.add("apology")
    return {cid: (comp[cid], ev.get(cid, set())) for cid in comp}


def agent_channel_detection(data: Path) -> dict:
    """Detect the agent's side from the words alone (ignoring the manifest) on every stereo call of a run."""
    from qa_pipeline.speech.roles import decide_roles
    from qa_pipeline.store.folder import read_dataset
    from qa_pipeline.types import Word

    truth = {t["call_id"]: t.get("agent_channel") for t in truth_calls()}
    calls = {r["call_id"]: r for r in read_dataset(data, "calls").to_pylist() if r["mode"] == "stereo"}
    words: dict[str, list[Word]] = {}
    for w in read_dataset(data, "words").to_pylist():
        if w["call_id"] in calls:
            words.setdefault(w["call_id"], []).append(Word(w["start_s"], w["end_s"], w["text"], w["probability"], w["speaker"]))
    results = []
    for cid, c in calls.items():
        d = decide_roles(words.get(cid, []), ["ch0", "ch1"], direction=c["direction"])
        pred = "left" if d.roles.get("ch0") == "agent" else "right" if d.roles.get("ch1") == "agent" else None
        results.append((pred == truth.get(cid), d.confidence))
    return {"calls": len(results), "correct": sum(ok for ok, _ in results),
            "min_confidence": min((c for _, c in results), default=None)}


def throughput(repeat: int = 20) -> float:
    calls = list(truth_calls())
    items = []
    for truth in calls:
        turns = sorted(truth["turns"], key=lambda t: t["start"])
        utts = tuple(Utterance(i, t["speaker"], t["speaker"], t["start"], t["end"], t["text"], 1.0, len(t["text"].split()))
                     for i, t in enumerate(turns))
        items.append((CallFacts(truth["call_id"], truth["language"], truth["call_type"], truth["direction"],
                                truth["campaign"], truth["duration_s"]), utts))
    analyse(*items[0], RESOURCES)  # warm: models and matchers load once per process
    t0 = time.perf_counter()
    n = 0
    for _ in range(repeat):
        for facts, utts in items:
            analyse(facts, utts, RESOURCES)
            n += len(utts)
    return n / (time.perf_counter() - t0)


def sentiment_accuracy() -> dict:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    plain = SentimentIntensityAnalyzer()
    out = {}
    rows = list(csv.DictReader(open(ROOT / "bench" / "data" / "sentiment_labels.tsv", encoding="utf-8"), delimiter="\t"))
    for lang in ("en", "it"):
        sub = [r for r in rows if r["language"] == lang]
        ours = sum(label_of(RESOURCES.sentiment.score_text(r["text"], lang)) == r["label"] for r in sub) / len(sub)
        base = sum(label_of(plain.polarity_scores(r["text"])["compound"]) == r["label"] for r in sub) / len(sub)
        out[f"labelled_{lang}"] = {"n": len(sub), "accuracy": round(ours, 3), "plain_vader_accuracy": round(base, 3)}
    hv = EVAL / "harper_valley_text" / "004860b1ab2e4c88.segments.tsv"
    if hv.is_file():
        seg = [r for r in csv.DictReader(open(hv, encoding="utf-8"), delimiter="\t") if r["human_transcript"] != "[noise]"]
        names = ("negative", "neutral", "positive")
        gold = [names[max(range(3), key=lambda k: json.loads(r["emotion_array"])[k])] for r in seg]
        score = RESOURCES.sentiment.score_text
        ours = sum(label_of(score(r["human_transcript"], "en")) == g for r, g in zip(seg, gold)) / len(seg)
        base = sum(label_of(plain.polarity_scores(r["human_transcript"])["compound"]) == g for r, g in zip(seg, gold)) / len(seg)
        out["harper_valley_vs_gridspace_model"] = {"n": len(seg), "accuracy": round(ours, 3),
                                                   "plain_vader_accuracy": round(base, 3)}
    out["labels"] = "negative (score <= -0.25) / neutral / positive (score >= 0.25)"
    out["call_center_lexicon_entries"] = len(CALL_CENTER_LEXICON)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, help="data folder of a demo-corpus run (audio pipeline output)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args()
    preds, _ = on_truth_transcripts()
    checked, problems = on_truth_transcripts.evidence
    result = {"truth_transcripts": evaluate(preds), "utterances_per_s": round(throughput()),
              "evidence_checked": checked, "evidence_problems": problems,
              "sentiment": sentiment_accuracy()}
    if args.data:
        result["audio_pipeline"] = evaluate(on_pipeline_output(args.data))
        result["agent_channel_detection"] = agent_channel_detection(args.data)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "analysis.json").write_text(json.dumps(result, indent=2))
    lines = [f"Analysis throughput: {result['utterances_per_s']} utterances/s (one process)", "",
             f"Evidence (truth transcripts): {checked - len(problems)} of {checked} evidence items point at an "
             "utterance, lie inside its time span and quote its text", ""]
    if "agent_channel_detection" in result:
        d = result["agent_channel_detection"]
        lines += [f"Agent channel detected from the words alone (manifest ignored): {d['correct']} of {d['calls']} "
                  f"stereo demo calls right (lowest confidence {d['min_confidence']})", ""]
    for source in ("truth_transcripts", "audio_pipeline"):
        if source not in result:
            continue
        lines += [f"### {source.replace('_', ' ')}: precision / recall (planted labels of the demo corpus)", "",
                  "| rule or event | positives | precision | recall |", "|---|---|---|---|"]
        for kind in ("rules", "events"):
            for k, v in result[source][kind].items():
                lines.append(f"| {k} | {v['positives']} of {v['n']} | {v['precision']} | {v['recall']} |")
        lines.append("")
    s = result["sentiment"]
    lines += ["### sentiment accuracy (3 classes: " + s["labels"] + ")", "", "| set | n | ours | plain VADER |",
              "|---|---|---|---|"]
    for k, v in s.items():
        if isinstance(v, dict):
            lines.append(f"| {k} | {v['n']} | {v['accuracy']} | {v['plain_vader_accuracy']} |")
    text = "\n".join(lines)
    (args.out / "analysis.md").write_text(text + "\n")
    print(text)
    for source in ("truth_transcripts", "audio_pipeline"):
        if source in result and result[source]["mismatches"]:
            print(f"\n{source} mismatches:\n  " + "\n  ".join(result[source]["mismatches"]))


if __name__ == "__main__":
    main()
