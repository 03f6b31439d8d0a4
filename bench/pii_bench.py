"""PII benchmark (issue 15): recall and precision of the detector per entity type, English and Italian apart, and a
search for leaked values in everything the pipeline wrote.

    python bench/pii_bench.py --data qa-data --out bench/results
    python bench/pii_bench.py --data qa-data --redetect --out /tmp/pii   # the detector again on the kept raw text

1. **Dialogue text**: the demo calls with planted personal data (demo/truth/*.json `pii`: demo-027..032), their
   turns as written, through the detector (`PrivacyResources.detect`); a planted item is found when a finding of
   its type overlaps its characters in its turn.
2. **Text after ASR**: the same calls as the pipeline wrote them in `--data` (a `make run` / `qa-pipeline demo`
   data folder): a planted item is found when a `pii` row of its type overlaps its time span (0.5 s slack: the
   truth's spans are proportional within the synthesized turn).
   In both, "covered" counts an item overlapped by a finding of any type (its value is redacted all the same), and
   precision counts each finding against the items of its own type.
3. **Real customer-service text**: ../shared/eval's ABCD chats and the Harper Valley bank call (human and ASR
   transcripts), against the hand labels of bench/data/pii_eval_labels.json.
4. **Leaked values**: every planted value, the words it was said with, its compact and digits-only forms,
   searched (case-insensitive, on word boundaries) in every file under `--data`: Parquet files decoded (every
   column), the reports' HTML and the run summaries' JSON as text. Goal: 0.

Writes bench/results/pii.json and bench/results/pii.md."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa_pipeline.config import PrivacyOptions, load_config  # noqa: E402
from qa_pipeline.privacy.detect import PrivacyResources  # noqa: E402
from qa_pipeline.types import Utterance  # noqa: E402

TRUTH = ROOT / "demo" / "truth"
EVAL = ROOT.parent / "shared" / "eval"
GOAL_TYPES = ("CREDIT_CARD", "IBAN", "IT_FISCAL_CODE", "PHONE_NUMBER", "EMAIL_ADDRESS")
SLACK_S = 0.5
AUDIO_SUFFIXES = {".opus", ".ogg", ".wav", ".mp3", ".flac", ".m4a"}


def planted_calls() -> list[dict]:
    docs = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(TRUTH.glob("*.json"))]
    return [d for d in docs if d.get("pii")]


class Tally:
    """Per (language, entity type): planted items found / missed / covered by another type, findings right or
    wrong."""

    def __init__(self):
        self.c = defaultdict(lambda: {"planted": 0, "found": 0, "covered": 0, "findings": 0, "correct": 0})

    def item(self, lang: str, kind: str, found: bool, covered: bool) -> None:
        for key in ((lang, kind), ("all", kind)):
            row = self.c[key]
            row["planted"] += 1
            row["found"] += found
            row["covered"] += covered

    def finding(self, lang: str, kind: str, correct: bool) -> None:
        for key in ((lang, kind), ("all", kind)):
            self.c[key]["findings"] += 1
            self.c[key]["correct"] += correct

    def table(self) -> dict:
        out: dict = {}
        for (lang, kind), r in sorted(self.c.items()):
            out.setdefault(lang, {})[kind] = {
                **r,
                "recall": round(r["found"] / r["planted"], 3) if r["planted"] else None,
                "recall_any_type": round(r["covered"] / r["planted"], 3) if r["planted"] else None,
                "precision": round(r["correct"] / r["findings"], 3) if r["findings"] else None,
            }
        return out


def _overlap(a0, a1, b0, b1) -> bool:
    return a0 < b1 and b0 < a1


def dialogue_text(privacy: PrivacyResources, calls: list[dict], allow_of) -> dict:
    tally = Tally()
    for doc in calls:
        lang = doc["language"]
        utts = [Utterance(i, t["speaker"], t["speaker"], t["start"], t["end"], t["text"], 1.0, len(t["text"].split()))
                for i, t in enumerate(doc["turns"])]
        findings = privacy.detect(utts, lang, allow=allow_of(doc))
        for item in doc["pii"]:
            same = [f for f in findings if f.utterance_index == item["turn"] and
                    _overlap(f.char_start, f.char_end, item["char_start"], item["char_end"])]
            tally.item(lang, item["entity_type"], any(f.entity_type == item["entity_type"] for f in same), bool(same))
        for f in findings:
            ok = any(i["turn"] == f.utterance_index and i["entity_type"] == f.entity_type and
                     _overlap(f.char_start, f.char_end, i["char_start"], i["char_end"]) for i in doc["pii"])
            tally.finding(lang, f.entity_type, ok)
    return tally.table()


def redetected_rows(data: Path, calls: list[dict], privacy: PrivacyResources, allow_of) -> list[dict]:
    """The planted calls' findings again, from their original text (`_restricted/utterances_raw`, kept with
    privacy.keep_raw_text) through today's detector, without transcribing again: pii-like rows (call, type, time
    span). Time spans come from the stored words where their (redacted) text still matches, else proportional
    within the utterance, as the pipeline does without word times."""
    import pyarrow.compute as pc

    from qa_pipeline.pipeline.rows import utterances_from_rows
    from qa_pipeline.privacy.restricted import raw_texts
    from qa_pipeline.store.folder import read_dataset

    utt_table = read_dataset(data, "utterances")
    word_table = read_dataset(data, "words")
    langs = {r["call_id"]: r.get("language") for r in read_dataset(data, "calls").to_pylist()}
    out: list[dict] = []
    for doc in calls:
        cid = doc["call_id"]
        raw = raw_texts(data, cid)
        if not raw:
            continue
        stored = utterances_from_rows(utt_table.filter(pc.equal(utt_table.column("call_id"), cid)).to_pylist())
        utts = [Utterance(u.index, u.speaker, u.role, u.start, u.end, raw.get(u.index, u.text), u.mean_probability,
                          u.n_words) for u in stored]
        words = word_table.filter(pc.equal(word_table.column("call_id"), cid)).to_pylist()
        for f in privacy.detect(utts, langs.get(cid) or doc["language"], words=words, allow=allow_of(doc)):
            out.append({"call_id": cid, "utterance_index": f.utterance_index, "entity_type": f.entity_type,
                        "start_s": f.start_s, "end_s": f.end_s, "confidence": f.confidence, "detector": f.detector})
    return out


def asr_text(data: Path, calls: list[dict], rows: list[dict] | None = None) -> dict:
    """rows: the findings to score (default: the data folder's pii rows)."""
    from qa_pipeline.store.folder import read_dataset

    rows = read_dataset(data, "pii").to_pylist() if rows is None else rows
    done = set(read_dataset(data, "calls", ["call_id"]).column("call_id").to_pylist())
    tally = Tally()
    missing = []
    for doc in calls:
        if doc["call_id"] not in done:
            missing.append(doc["call_id"])
            continue
        lang = doc["language"]
        mine = [r for r in rows if r["call_id"] == doc["call_id"]]
        for item in doc["pii"]:
            same = [r for r in mine if _overlap(r["start_s"], r["end_s"], item["start_s"] - SLACK_S,
                                                item["end_s"] + SLACK_S)]
            tally.item(lang, item["entity_type"], any(r["entity_type"] == item["entity_type"] for r in same),
                       bool(same))
        for r in mine:
            ok = any(i["entity_type"] == r["entity_type"] and
                     _overlap(r["start_s"], r["end_s"], i["start_s"] - SLACK_S, i["end_s"] + SLACK_S)
                     for i in doc["pii"])
            tally.finding(lang, r["entity_type"], ok)
    return {"missing_calls": missing, **tally.table()}


def eval_dialogues() -> dict[str, list[tuple[str, str]]]:
    """name -> [(speaker, text)] of ../shared/eval's customer-service dialogues."""
    out: dict[str, list[tuple[str, str]]] = {}
    abcd = EVAL / "abcd_customer_service_text" / "abcd_sample.json"
    if abcd.is_file():
        for convo in json.loads(abcd.read_text(encoding="utf-8")):
            out[f"abcd:{convo['convo_id']}"] = [(s, t) for s, t in convo["original"] if s != "action"]
    harper = EVAL / "harper_valley_text"
    for tsv in sorted(harper.glob("*.segments.tsv")) if harper.is_dir() else []:
        lines = [line.split("\t") for line in tsv.read_text(encoding="utf-8").splitlines()[1:] if line.strip()]
        sid = tsv.name.split(".")[0]
        for column, name in ((6, "human"), (7, "machine")):
            turns = [(row[2], row[column]) for row in lines
                     if re.sub(r"\[[a-z]+\]|<unk>", "", row[6]).strip()]
            out[f"harper_valley:{sid}:{name}"] = turns
    return out


def real_text(privacy: PrivacyResources) -> dict:
    labels = json.loads((ROOT / "bench" / "data" / "pii_eval_labels.json").read_text(encoding="utf-8"))["dialogues"]
    dialogues = eval_dialogues()
    tally = Tally()
    found_rows = []
    for name, turns in dialogues.items():
        utts = [Utterance(i, s, s, i * 5.0, i * 5.0 + 4.0, t, 1.0, len(t.split())) for i, (s, t) in enumerate(turns)]
        findings = privacy.detect(utts, "en")
        items = []
        for turn, kind, text in labels.get(name, []):
            k = turns[turn][1].find(text)
            assert k >= 0, (name, turn, text)
            items.append((turn, kind, k, k + len(text)))
        for turn, kind, a, b in items:
            same = [f for f in findings if f.utterance_index == turn and _overlap(f.char_start, f.char_end, a, b)]
            tally.item("en", kind, any(f.entity_type == kind for f in same), bool(same))
        for f in findings:
            ok = any(turn == f.utterance_index and kind == f.entity_type and _overlap(f.char_start, f.char_end, a, b)
                     for turn, kind, a, b in items)
            tally.finding("en", f.entity_type, ok)
            found_rows.append({"dialogue": name, "turn": f.utterance_index, "entity_type": f.entity_type,
                               "detector": f.detector, "correct": ok})
    return {"dialogues": sorted(dialogues), **tally.table(), "findings": found_rows}


def value_forms(item: dict) -> set[str]:
    """The planted value as written, as said, compact and digits-only."""
    forms = {item["value"], item["text"]}
    compact = re.sub(r"[\s\-/.]", "", item["value"])
    if len(compact) >= 4:
        forms.add(compact)
    digits = re.sub(r"\D", "", item["value"])
    if len(digits) >= 4:
        forms.add(digits)
    return {f for f in forms if len(f.strip()) >= 3}


def _file_texts(data: Path):
    import pyarrow.parquet as pq

    for p in sorted(data.rglob("*")):
        if not p.is_file() or p.suffix.lower() in AUDIO_SUFFIXES:
            continue  # compressed audio read as text matches short digit strings by chance: its muted spans are
            # what the audio redaction section measures
        rel = p.relative_to(data).as_posix()
        if p.suffix == ".parquet":
            try:
                text = json.dumps(pq.read_table(p).to_pylist(), default=str, ensure_ascii=False)
            except Exception as e:  # noqa: BLE001 - a file that cannot be read is searched as bytes
                text = p.read_bytes().decode("utf-8", "replace") + f" ({e})"
        else:
            text = p.read_bytes().decode("utf-8", "replace")
        yield rel, text


def leaks(data: Path, calls: list[dict]) -> dict:
    forms: dict[str, set[str]] = defaultdict(set)  # form -> planted items (call: type)
    of_call: dict[str, set[str]] = defaultdict(set)  # call_id -> its forms
    for doc in calls:
        for item in doc["pii"]:
            for form in value_forms(item):
                forms[form].add(f"{doc['call_id']}:{item['entity_type']}")
                of_call[doc["call_id"]].add(form)
    # a number form is not found inside a decimal number ("452" in an SVG coordinate x="452.1")
    patterns = {form: re.compile(r"(?<!\w)" + (r"(?<!\d\.)" if form.isdigit() else "") + re.escape(form) + r"(?!\w)"
                                 + (r"(?!\.\d)" if form.isdigit() else ""), re.IGNORECASE) for form in forms}
    per_call = {"calls", "utterances", "words", "metrics", "compliance", "events", "flags", "sentiment", "pii"}
    found: dict[str, list[str]] = defaultdict(list)
    files = 0
    restricted = []
    for rel, text in _file_texts(data):
        if rel.startswith("_restricted/"):
            restricted.append(rel)  # the owner-only originals (privacy.keep_raw_text): not a leak, listed
            continue
        files += 1
        parts = rel.split("/")
        # a per-call dataset file holds one call: searched for that call's values (a common word such as "Milano"
        # said in another call, spelling a code, is not that call's planted value); every other file for all
        wanted = of_call.get(Path(parts[-1]).stem, set()) if parts[0] in per_call and len(parts) == 3 else forms
        for form in wanted:
            if patterns[form].search(text):
                found[form].append(rel)
    return {"files_searched": files, "forms_searched": len(forms), "planted_items": sum(len(d["pii"]) for d in calls),
            "leaked_values": len(found),
            "leaks": {f: {"items": sorted(forms[f]), "files": v[:5]} for f, v in sorted(found.items())},
            "restricted_files_skipped": len(restricted)}


def audio_redaction(data: Path, calls: list[dict]) -> dict:
    """The redacted copies of the planted calls: the loudest 20 ms inside each planted item's own time span (the
    truth's, not the detector's) and inside each finding's span, in the written copy; residual hits, verified."""
    from qa_pipeline.audio.decode import load_audio
    from qa_pipeline.config import AudioOptions
    from qa_pipeline.privacy.audio import muted_level_dbfs
    from qa_pipeline.store.folder import read_dataset

    reports = {r["call_id"]: r for r in read_dataset(data, "redactions").to_pylist()}
    pii = read_dataset(data, "pii", ["call_id", "start_s", "end_s"]).to_pylist()
    out = {"calls": 0, "planted_spans": 0, "planted_at_or_below_-60": 0, "finding_spans": 0,
           "findings_at_or_below_-60": 0, "max_finding_dbfs": None, "residual_hits": 0, "turns_muted": 0,
           "verified_calls": 0, "seconds_muted": 0.0, "missing_copies": []}
    for doc in calls:
        rep = reports.get(doc["call_id"])
        if rep is None or not (data / rep["audio_path"]).is_file():
            out["missing_copies"].append(doc["call_id"])
            continue
        audio = load_audio(data / rep["audio_path"], AudioOptions(min_duration_s=0.0))
        out["calls"] += 1
        for item in doc["pii"]:
            if item.get("start_s") is None:
                continue
            out["planted_spans"] += 1
            level = muted_level_dbfs(audio.samples, audio.sample_rate, [(item["start_s"], item["end_s"])])
            out["planted_at_or_below_-60"] += level is None or level <= -60.0
        for r in (r for r in pii if r["call_id"] == doc["call_id"]):
            level = muted_level_dbfs(audio.samples, audio.sample_rate, [(r["start_s"], r["end_s"])])
            out["finding_spans"] += 1
            out["findings_at_or_below_-60"] += level is None or level <= -60.0
            if level is not None:
                out["max_finding_dbfs"] = level if out["max_finding_dbfs"] is None else max(out["max_finding_dbfs"],
                                                                                           level)
        out["residual_hits"] += rep["residual_hits"]
        out["turns_muted"] += rep["turns_muted"]
        out["verified_calls"] += bool(rep["verified"])
        out["seconds_muted"] = round(out["seconds_muted"] + rep["seconds_muted"], 2)
    return out


def _f(v) -> str:
    return "-" if v is None else f"{v:.2f}"


def markdown(result: dict) -> str:
    lines = ["# PII benchmark", "", f"Data folder: `{result['data']}`; {result['calls']} demo calls with planted "
             f"personal data ({result['leaks']['planted_items']} items); detector "
             f"{result['seconds_per_call']:.2f} s per call (dialogue text).", ""]

    def table(title: str, part: dict) -> None:
        lines.extend([f"## {title}", "", "| language | entity | planted | recall | recall (any type) | findings | "
                      "precision |", "|---|---|---:|---:|---:|---:|---:|"])
        for lang in ("en", "it", "all"):
            for kind, r in sorted(part.get(lang, {}).items()):
                lines.append(f"| {lang} | {kind} | {r['planted']} | {_f(r['recall'])} | {_f(r['recall_any_type'])} | "
                             f"{r['findings']} | {_f(r['precision'])} |")
        lines.append("")

    table("Dialogue text (as written)", result["dialogue_text"])
    if result.get("asr_text"):
        table("Text after ASR (" + ("today's detector on the stored original text" if result.get("asr_text_redetected")
                                    else "the pipeline's pii rows") + ")", result["asr_text"])
        if result["asr_text"].get("missing_calls"):
            lines += [f"Calls not in the data folder: {', '.join(result['asr_text']['missing_calls'])}", ""]
    if result.get("real_text"):
        table("../shared/eval customer-service dialogues (hand labels)", result["real_text"])
    au = result.get("audio")
    if au:
        lines += ["## Audio redaction (the redacted copies)", "",
                  f"{au['calls']} calls; findings' spans at or below -60 dBFS: {au['findings_at_or_below_-60']} of "
                  f"{au['finding_spans']} (loudest {_f(au['max_finding_dbfs'])} dBFS); planted items' own spans at "
                  f"or below -60 dBFS: {au['planted_at_or_below_-60']} of {au['planted_spans']} (an item the "
                  f"detector missed is not muted); residual hits {au['residual_hits']} ({au['turns_muted']} turns "
                  f"muted whole); verified {au['verified_calls']} of {au['calls']}; {au['seconds_muted']} s muted."
                  + (f" No copy: {', '.join(au['missing_copies'])}." if au["missing_copies"] else ""), ""]
    lk = result["leaks"]
    lines += ["## Leaked values", "", f"{lk['leaked_values']} of {lk['forms_searched']} value forms found in "
              f"{lk['files_searched']} files (Parquet decoded, HTML, JSON)."]
    for form, v in lk["leaks"].items():
        lines.append(f"- `{form}` ({', '.join(v['items'])}): {', '.join(v['files'])}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, help="data folder of a demo run (make run)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--redetect", action="store_true",
                    help="score today's detector on the data folder's original text (a run with privacy.keep_raw_text: "
                         "true) instead of its stored pii rows: no new transcription. The planted calls alone "
                         "(demo-027..032) are enough")
    args = ap.parse_args(argv)
    config = load_config(ROOT / "demo" / "config.yaml")
    privacy = PrivacyResources(config.privacy if config.privacy.enabled else PrivacyOptions())
    calls = planted_calls()
    allow_of = lambda doc: config.analysis.companies_for(doc["campaign"])  # noqa: E731
    privacy.analyzer  # loaded before timing
    t0 = time.perf_counter()
    result = {"data": str(args.data) if args.data else None, "calls": len(calls),
              "dialogue_text": dialogue_text(privacy, calls, allow_of)}
    result["seconds_per_call"] = round((time.perf_counter() - t0) / max(1, len(calls)), 3)
    if args.data and (args.data / "calls").is_dir():
        redetected = redetected_rows(args.data, calls, privacy, allow_of) if args.redetect else None
        result["asr_text"] = asr_text(args.data, calls, redetected)
        result["asr_text_redetected"] = bool(args.redetect)
        result["leaks"] = leaks(args.data, calls)
        result["audio"] = audio_redaction(args.data, calls)
    else:
        result["leaks"] = {"files_searched": 0, "forms_searched": 0, "planted_items": 0, "leaked_values": None,
                           "leaks": {}}
    if (EVAL / "abcd_customer_service_text").is_dir():
        result["real_text"] = real_text(privacy)
    goal = {k: (result["dialogue_text"].get("all", {}).get(k) or {}).get("recall") for k in GOAL_TYPES}
    result["goal"] = {"recall_at_least": 0.95, "dialogue_text": goal,
                      "asr_text": {k: (result.get("asr_text", {}).get("all", {}).get(k) or {}).get("recall")
                                   for k in GOAL_TYPES},
                      "leaked_values": result["leaks"]["leaked_values"]}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pii.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    md = markdown(result)
    (args.out / "pii.md").write_text(md, encoding="utf-8")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
