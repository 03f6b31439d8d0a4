"""Role accuracy on every labelled dialogue we have, and the flags of compliant real calls imported with no config.

    .venv/bin/python bench/roles_bench.py [--data qa-data] [--out bench/results] [--no-audio]

Role accuracy = the share of utterance time given the right role (a call whose roles come out `unknown` scores 0),
for the role model (qa_pipeline/defaults/roles_model.yaml) and, side by side, the hand-written cue list it
replaced (read from git: BASELINE_COMMIT). Sets (bench/roles_data.py says where each comes from):
- harper_valley, abcd: real dialogues (text; each speaker labelled by the source). They are also the model's
  training data: their held-out figure is the leave-one-dialogue-out accuracy of bench/fit_roles.py, quoted from
  the model file, beside the in-sample one measured here.
- spokenwoz stereo: the real phone call through the pipeline's ASR (one run), decided with no metadata and with
  a manifest saying inbound; the agent is channel 1 (right). Never used for fitting.
- spokenwoz mono: its downmix through the pipeline (diarization, then roles), scored against the RTTM.
- demo text: the synthetic demo corpus's truth turns; demo audio: the words of a demo run (--data), the agent
  decided from the words alone (the manifest's agent_channel ignored), stereo and mono.
The Italian phrases, with no labelled Italian dialogue at hand, are checked on real Italian call-centre prompts.
Then the flags per call, by type, of the real calls that follow their own guidelines (Harper Valley, ABCD) imported as
`*.transcript.json` with no configuration, before (the company-name fallback off) and after.

Writes <out>/roles.json and <out>/roles.md."""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLAG_TRUTH = ROOT / "bench" / "data" / "flag_truth.json"  # hand labels: which flags on the real text calls are real
sys.path.insert(0, str(ROOT))

from bench import roles_data  # noqa: E402
from bench.fit_roles import script_phrases  # noqa: E402
from qa_pipeline.speech.roles import decide_roles, decide_roles_from_turns, load_role_model  # noqa: E402
from qa_pipeline.types import AGENT, CUSTOMER, Word  # noqa: E402

BASELINE_COMMIT = "86eabc5"  # the last commit with the cue-list roles.py
SWOZ = roles_data.EVAL / "spokenwoz_MUL1011_phone2spk"


def baseline_module():
    """The cue-list roles.py of BASELINE_COMMIT, or None outside a git checkout."""
    try:
        code = subprocess.run(["git", "show", f"{BASELINE_COMMIT}:qa_pipeline/speech/roles.py"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp()) / "roles_baseline.py"
    path.write_text(code, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("roles_baseline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def words_of(d: roles_data.Dialogue) -> list[Word]:
    out = []
    for t in d.turns:
        tokens = t.text.split()
        step = (t.end - t.start) / max(1, len(tokens))
        out += [Word(t.start + i * step, t.start + (i + 1) * step, w, 1.0, t.speaker) for i, w in enumerate(tokens)]
    return out


def time_accuracy(d: roles_data.Dialogue, roles: dict) -> float:
    total = sum(t.end - t.start for t in d.turns) or 1.0
    right = sum(t.end - t.start for t in d.turns
                if roles.get(t.speaker) == (AGENT if t.speaker == d.agent else CUSTOMER))
    return right / total


def text_set(dialogues, model, baseline, phrases) -> dict:
    rows = []
    for d in dialogues:
        p = phrases if d.language == "en" else script_phrases(d.language)
        new = decide_roles_from_turns(d.turns, d.speakers, direction=d.direction, script_phrases=p, model=model)
        row = {"dialogue": d.name, "turns": len(d.turns), "accuracy": round(time_accuracy(d, new.roles), 3),
               "agent_right": new.roles.get(d.agent) == AGENT, "confidence": new.confidence}
        if baseline is not None:
            old = baseline.decide_roles(words_of(d), d.speakers, direction=d.direction)
            row["baseline_accuracy"] = round(time_accuracy(d, old.roles), 3)
            row["baseline_confidence"] = old.confidence
        rows.append(row)
    return summarise(rows)


def summarise(rows: list[dict]) -> dict:
    n = len(rows)
    out = {"n": n, "rows": rows}
    if n:
        out["accuracy"] = round(sum(r["accuracy"] for r in rows) / n, 3)
        out["agent_right"] = sum(bool(r["agent_right"]) for r in rows)
        out["min_confidence"] = min(r["confidence"] for r in rows)
        if "baseline_accuracy" in rows[0]:
            out["baseline_accuracy"] = round(sum(r["baseline_accuracy"] for r in rows) / n, 3)
    return out


def run_pipeline(calls: Path, data: Path, overrides: dict | None = None):
    from qa_pipeline.config import load_config
    from qa_pipeline.pipeline.runner import run_folder
    from qa_pipeline.store.folder import read_dataset

    summary = run_folder(calls, data, load_config(None, overrides or {}))
    failed = [o.message for o in summary.outcomes if o.status == "failed"]
    if failed:
        raise RuntimeError(failed)
    return ({r["call_id"]: r for r in read_dataset(data, "calls").to_pylist()},
            read_dataset(data, "words").to_pylist(), read_dataset(data, "utterances").to_pylist())


def words_by_call(rows) -> dict[str, list[Word]]:
    out: dict[str, list[Word]] = {}
    for w in rows:
        out.setdefault(w["call_id"], []).append(Word(w["start_s"], w["end_s"], w["text"], w["probability"] or 1.0,
                                                     w["speaker"]))
    return out


def utterance_accuracy(utterances, roles: dict, truth_turns) -> float:
    """Share of the pipeline's utterance time whose role (from `roles`, by speaker) is the role of the truth turn
    it overlaps most."""
    total = right = 0.0
    for u in utterances:
        dur = u["end_s"] - u["start_s"]
        over = {AGENT: 0.0, CUSTOMER: 0.0}
        for role, s, e in truth_turns:
            over[role] += max(0.0, min(e, u["end_s"]) - max(s, u["start_s"]))
        if max(over.values()) <= 0:
            continue
        total += dur
        right += dur * (roles.get(u["speaker"]) == max(over, key=over.get))
    return right / total if total else 0.0


def spokenwoz(model, baseline, phrases) -> dict:
    """The real stereo call through the pipeline once; roles decided with no metadata and with 'inbound'; then
    the mono downmix (diarization + roles) scored against the RTTM."""
    out = {}
    if not SWOZ.is_dir():
        return {"skipped": "../shared/eval absent"}
    agent = "ch1" if roles_data.SPOKENWOZ_AGENT_CHANNEL == "right" else "ch0"
    with tempfile.TemporaryDirectory() as tmp:
        calls = Path(tmp) / "calls"
        calls.mkdir()
        (calls / "MUL1011.opus").symlink_to(SWOZ / "MUL1011.opus")
        t0 = time.perf_counter()
        rows, words, _ = run_pipeline(calls, Path(tmp) / "data")
        call = next(iter(rows.values()))
        words = words_by_call(words)[call["call_id"]]
        # (no evidence text stored: SpokenWOZ is CC BY-NC, evaluation only)
        out["stereo_pipeline_no_manifest"] = {"agent_channel": call["agent_channel"],
                                              "confidence": round(call["role_confidence"], 3),
                                              "seconds": round(time.perf_counter() - t0, 1)}
        for direction in (None, "inbound"):
            d = decide_roles(words, ["ch0", "ch1"], direction=direction, script_phrases=phrases, model=model)
            row = {"agent_right": d.roles.get(agent) == AGENT, "confidence": d.confidence,
                   "accuracy": 1.0 if d.roles.get(agent) == AGENT else 0.0}
            if baseline is not None:
                old = baseline.decide_roles(words, ["ch0", "ch1"], direction=direction)
                row["baseline_agent_right"] = old.roles.get(agent) == AGENT
                row["baseline_confidence"] = old.confidence
            out[f"stereo_{direction or 'no_manifest'}"] = row
    truth = []
    for line in (SWOZ / "MUL1011.derived_from_channels.rttm").read_text().splitlines():
        f = line.split()
        truth.append((AGENT if f[7] == agent else CUSTOMER, float(f[3]), float(f[3]) + float(f[4])))
    with tempfile.TemporaryDirectory() as tmp:
        calls = Path(tmp) / "calls"
        calls.mkdir()
        (calls / "MUL1011_mono8k.wav").symlink_to(SWOZ / "MUL1011_mono8k.wav")
        try:
            rows, words, utts = run_pipeline(calls, Path(tmp) / "data")
        except Exception as e:  # noqa: BLE001 - the diarizer may be unavailable: say so, keep the rest
            out["mono_downmix"] = {"skipped": str(e)[:200]}
            return out
        call = next(iter(rows.values()))
        by_speaker = words_by_call(words)[call["call_id"]]
        speakers = sorted({w.speaker for w in by_speaker})
        d = decide_roles(by_speaker, speakers, script_phrases=phrases, model=model)
        row = {"accuracy": round(utterance_accuracy(utts, d.roles, truth), 3), "confidence": d.confidence,
               "speakers": len(speakers)}
        if baseline is not None:
            old = baseline.decide_roles(by_speaker, speakers)
            row["baseline_accuracy"] = round(utterance_accuracy(utts, old.roles, truth), 3)
        out["mono_downmix"] = row
    return out


def demo_audio(data: Path, model, baseline) -> dict:
    """Every call of a demo run: the agent decided from its words alone (manifest ignored)."""
    from qa_pipeline.analysis.compliance import default_script
    from qa_pipeline.pipeline.process import script_role_phrases
    from qa_pipeline.store.folder import read_dataset

    truth = {d.name: d for d in roles_data.demo()}
    truth_json = {p.stem: json.loads(p.read_text()) for p in (ROOT / "demo" / "truth").glob("*.json")}
    calls = {r["call_id"]: r for r in read_dataset(data, "calls").to_pylist() if r["call_id"] in truth}
    words = words_by_call(read_dataset(data, "words").to_pylist())
    utts: dict[str, list] = {}
    for u in read_dataset(data, "utterances").to_pylist():
        utts.setdefault(u["call_id"], []).append(u)
    out: dict[str, list] = {"stereo": [], "mono": []}
    for cid, c in sorted(calls.items()):
        ws = words.get(cid, [])
        speakers = ["ch0", "ch1"] if c["mode"] == "stereo" else sorted({w.speaker for w in ws})
        lang = c["language"] if c["language"] in ("en", "it") else "en"
        phrases = script_role_phrases(default_script(lang))
        d = decide_roles(ws, speakers, direction=c["direction"], script_phrases=phrases, model=model)
        tj = truth_json[cid]
        turns = [(t["speaker"], t["start"], t["end"]) for t in tj["turns"]]
        row = {"call": cid, "accuracy": round(utterance_accuracy(utts.get(cid, []), d.roles, turns), 3),
               "confidence": d.confidence}
        if c["mode"] == "stereo":
            agent = "ch0" if tj.get("agent_channel") == "left" else "ch1"
            row["agent_right"] = d.roles.get(agent) == AGENT
        else:
            row["agent_right"] = row["accuracy"] >= 0.5
        if baseline is not None:
            old = baseline.decide_roles(ws, speakers, direction=c["direction"])
            row["baseline_accuracy"] = round(utterance_accuracy(utts.get(cid, []), old.roles, turns), 3)
        out[c["mode"] if c["mode"] in out else "mono"].append(row)
    return {k: summarise(v) for k, v in out.items()}


def italian_prompts() -> dict:
    """No labelled Italian dialogue is at hand: the Italian phrases are checked on 179 real Italian call-centre
    prompts (../shared/eval/asterisk_it_prompts, CC BY 3.0; the system's side of a call): how many fire an agent
    feature (service, help offer, identification) and how many a customer one (need)."""
    import csv

    from qa_pipeline.speech.roles import Turn, speaker_features

    path = roles_data.EVAL / "asterisk_it_prompts" / "transcripts.tsv"
    if not path.is_file():
        return {"skipped": "../shared/eval absent"}
    agent = customer = n = 0
    for r in csv.DictReader(path.open(encoding="utf-8"), delimiter="\t"):
        v = speaker_features([Turn("A", 0.0, 1.0, r["reference"])], ["A"])["A"].values
        n += 1
        agent += v["service"] + v["help_offer"] + v["identification"] > 0
        customer += v["need"] > 0
    return {"prompts": n, "agent_features": agent, "customer_features": customer}


def transcript_files(folder: Path) -> int:
    """Harper Valley and ABCD dialogues as `*.transcript.json` (no campaign, no call type: as a new user has)."""
    n = 0
    for d in roles_data.harper_valley() + roles_data.abcd():
        role = {d.agent: "agent"}
        utterances = [{"speaker": role.get(t.speaker, "customer"), "start": round(t.start, 3),
                       "end": round(t.end, 3), "text": t.text} for t in d.turns]
        doc = {"call_id": f"{d.source}-{d.name}", "direction": "inbound", "language": "en",
               "started_at": "2026-12-01T10:00:00+00:00", "utterances": utterances}
        (folder / f"{d.source}-{d.name}.transcript.json").write_text(json.dumps(doc), encoding="utf-8")
        n += 1
    return n


def flags_of(folder: Path, data: Path, *, fallback: bool) -> dict:
    from qa_pipeline.analysis import compliance
    from qa_pipeline.store.folder import read_dataset

    original = compliance._organisation_fallback
    if not fallback:
        compliance._organisation_fallback = lambda rule, per_set, *a, **k: per_set
    try:
        run_pipeline(folder, data)
    finally:
        compliance._organisation_fallback = original
    per_call: dict[str, Counter] = {}
    for r in read_dataset(data, "flags").to_pylist():
        key = r["flag_type"] + (f" ({r['rule_id']})" if r["rule_id"] else "")
        per_call.setdefault(r["call_id"], Counter())[key] += 1
    calls = [r["call_id"] for r in read_dataset(data, "calls", ["call_id"]).to_pylist()]
    comp = {r["call_id"]: r for r in read_dataset(data, "compliance").to_pylist()
            if r["rule_id"] == "opening.company_name"}
    labels = json.loads(FLAG_TRUTH.read_text(encoding="utf-8"))["labels"]
    judged = {c: {k: _label_of(labels, c, k) for k in per_call.get(c, {})} for c in calls}
    flags = [v for c in calls for v in judged[c].values()]
    return {"calls": len(calls), "flagged_calls": sum(1 for c in calls if per_call.get(c)),
            "worth_a_listen_calls": sum(1 for c in calls if any(v is True for v in judged[c].values())),
            "flags": len(flags), "real_flags": sum(1 for v in flags if v is True),
            "unlabelled_flags": sum(1 for v in flags if v is None),
            "judged": judged,
            "by_type": dict(sum(per_call.values(), Counter())),
            "per_call": {c: dict(per_call.get(c, {})) for c in sorted(calls)},
            "company_name": {c: {"result": comp[c]["result"], "confidence": comp[c]["confidence"],
                                 "said": comp[c]["matched_text"]} for c in sorted(comp)}}


def _label_of(labels: dict, call_id: str, key: str) -> bool | None:
    """Whether a raised flag ("script_deviation (closing.thanks)", "escalation") is a real deviation by the hand
    labels of bench/data/flag_truth.json; None when unlabelled."""
    rule = key.split("(", 1)[1].rstrip(")") if "(" in key else key
    label = labels.get(call_id, {}).get(rule)
    return None if label is None else bool(label["real"])


def flag_rates() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "calls"
        folder.mkdir()
        if not transcript_files(folder):
            return {"skipped": "../shared/eval absent"}
        return {"before": flags_of(folder, Path(tmp) / "before", fallback=False),
                "after": flags_of(folder, Path(tmp) / "after", fallback=True)}


def markdown(r: dict) -> str:
    lines = ["### Role accuracy (share of utterance time with the right role)", "",
             "| set | dialogues | role model | cue list (before) | agent right | lowest confidence |",
             "|---|---|---|---|---|---|"]
    for name, s in r["sets"].items():
        if not s.get("n"):
            continue
        lines.append(f"| {name} | {s['n']} | {s['accuracy']:.3f} | {s.get('baseline_accuracy', '-')} | "
                     f"{s['agent_right']} of {s['n']} | {s['min_confidence']:.3f} |")
    sw = r.get("spokenwoz", {})
    for key in ("stereo_no_manifest", "stereo_inbound"):
        if key in sw:
            x = sw[key]
            lines.append(f"| spokenwoz stereo, {key.split('_', 1)[1].replace('_', ' ')} | 1 | {x['accuracy']:.3f} | "
                         f"{'right' if x.get('baseline_agent_right') else 'wrong/unknown'} "
                         f"({x.get('baseline_confidence')}) | {int(x['agent_right'])} of 1 | {x['confidence']:.3f} |")
    if "accuracy" in sw.get("mono_downmix", {}):
        x = sw["mono_downmix"]
        lines.append(f"| spokenwoz mono downmix (diarized) | 1 | {x['accuracy']:.3f} | {x.get('baseline_accuracy')} | "
                     f"- | {x['confidence']:.3f} |")
    cv = r.get("cross_validation", {})
    if cv:
        lines += ["", "Held-out (bench/fit_roles.py, from the model file): " + "; ".join(
            f"{k.replace('_', ' ')}: {v.get('accuracy')} (n {v.get('n')})" for k, v in cv.items())]
    it = r.get("italian_prompts", {})
    if "prompts" in it:
        lines += ["", f"Italian phrases on {it['prompts']} real Italian call-centre prompts (the agent's side, no "
                  f"dialogue): {it['agent_features']} fire an agent feature, {it['customer_features']} a customer one"]
    fr = r.get("flag_rates", {})
    if "before" in fr:
        lines += ["", "### Flags of compliant real calls imported with no config (Harper Valley, ABCD)", "",
                  "| flag type | before (calls flagged) | after |", "|---|---|---|"]
        types = sorted(set(fr["before"]["by_type"]) | set(fr["after"]["by_type"]))
        for t in types:
            lines.append(f"| {t} | {fr['before']['by_type'].get(t, 0)} | {fr['after']['by_type'].get(t, 0)} |")
        lines.append(f"| calls with any flag | {fr['before']['flagged_calls']} of {fr['before']['calls']} | "
                     f"{fr['after']['flagged_calls']} of {fr['after']['calls']} |")
        if "real_flags" in fr["after"]:
            b, a = fr["before"], fr["after"]
            lines.append(f"| flags that are real deviations (hand labels, bench/data/flag_truth.json) | "
                         f"{b['real_flags']} of {b['flags']} | {a['real_flags']} of {a['flags']} |")
            lines.append(f"| flagged calls worth a listen (at least one real deviation) | "
                         f"{b['worth_a_listen_calls']} of {b['flagged_calls']} | "
                         f"{a['worth_a_listen_calls']} of {a['flagged_calls']} |")
            if b["unlabelled_flags"] or a["unlabelled_flags"]:
                lines.append(f"| unlabelled flags | {b['unlabelled_flags']} | {a['unlabelled_flags']} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, help="a demo run's data folder (qa-data): demo audio roles")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--no-audio", action="store_true", help="skip the SpokenWOZ pipeline runs")
    args = ap.parse_args()
    import yaml

    model = load_role_model()
    baseline = baseline_module()
    phrases = script_phrases()
    meta = yaml.safe_load(Path(model.source).read_text())
    result = {"model": model.source, "weights": dict(model.weights), "baseline": BASELINE_COMMIT if baseline else None,
              "cross_validation": meta.get("cross_validation", {}),
              "sets": {"harper_valley (real, in training)": text_set(roles_data.harper_valley(), model, baseline, phrases),
                       "abcd (real, in training)": text_set(roles_data.abcd(), model, baseline, phrases),
                       "demo text (synthetic)": text_set(roles_data.demo(), model, baseline, phrases)}}
    if args.data and (args.data / "calls").exists():
        audio = demo_audio(args.data, model, baseline)
        result["sets"]["demo audio stereo (words only)"] = audio["stereo"]
        result["sets"]["demo audio mono (diarized)"] = audio["mono"]
    if not args.no_audio:
        result["spokenwoz"] = spokenwoz(model, baseline, phrases)
    result["italian_prompts"] = italian_prompts()
    result["flag_rates"] = flag_rates()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "roles.json").write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    md = markdown(result)
    (args.out / "roles.md").write_text(md, encoding="utf-8")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
