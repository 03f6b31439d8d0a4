"""Italian ASR settings (issue 13, item 6): the pipeline's transcription vs plain faster-whisper, same model.

    python bench/italian_bench.py --out bench/results [--quick]

Audio (real speech only):
  * the Asterisk Italian prompts (../shared/eval/asterisk_it_prompts: one professional IVR voice, 8 kHz), joined in
    the order of transcripts.tsv into mono 8 kHz calls of about 2 minutes, 0.8 s of silence between prompts (as an
    IVR or an agent reading prompts sounds); every prompt is used, and each call's reference is its prompts'
    references as given (a few prompts deviate from their script: a floor of about 1-3 % WER);
  * the Picovoice Italian clip (test_it.wav, 5.5 s, 16 kHz).
  --quick: the first two calls and the clip.

For each decoding setting, in this one process, one after the other on the same audio:
  (a) pipeline: the library's own path as process_call runs it for a mono call: audio.decode.load_audio,
      audio.vad (Silero speech regions, padded) and speech.asr.Transcriber.transcribe, language "it", the setting
      given as AsrOptions (asr.seed 0, the default); the prompt as asr.initial_prompt (the text asr.script_prompt
      builds for the demo's energy-inbound campaign);
  (b) plain: faster_whisper.WhisperModel.transcribe on the same file (same model, compute type, beam size,
      temperatures, initial_prompt; language "it", word_timestamps=True, condition_on_previous_text default),
      after ctranslate2.set_random_seed(0) before each file.
WER: corpus-level over all files (total edits / total reference words), qa_pipeline.speech.evaluation's
normaliser for Italian (NORMALISER_IT: Italian digits, elisions split).
x realtime: audio seconds / seconds spent (pipeline: speech regions + ASR; plain: transcribe, its generator
drained); models are loaded before timing.

Settings: not a cross product; one factor at a time from the best so far: compute type (int8, int8_float32,
float32; beam 1, no prompt, fallback on), then beam 1 / 5, then prompt none / script, then temperature fallback on
(faster-whisper's temperatures) / off ([0.0]). "Best" = the lowest pipeline WER, unless within TIE_POINTS of it
a faster setting exists (then that one). Writes OUT/italian.json and OUT/italian.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import shutil
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EVAL = ROOT.parent / "shared" / "eval"
PROMPTS = EVAL / "asterisk_it_prompts"
PV = EVAL / "picovoice_leopard_multilang"
CALL_S = 120.0
GAP_S = 0.8
EDGE_S = 0.5  # silence at the start and end of each joined call
RATE = 8000
TIE_POINTS = 0.3  # WER points: within this, the faster setting is "best"
PROMPT_CAMPAIGN = "energy-inbound"
DEFAULT_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
THREADS = 2


def read_prompts() -> list[dict]:
    with open(PROMPTS / "transcripts.tsv", encoding="utf-8") as f:
        return [{"file": r["file"], "duration_s": float(r["duration_s"]), "reference": r["reference"]}
                for r in csv.DictReader(f, delimiter="\t")]


def _read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        if w.getframerate() != RATE or w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise SystemExit(f"{path}: expected 8 kHz mono 16-bit PCM")
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def _write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.astype("<i2").tobytes())


def build_items(work: Path, quick: bool) -> list[dict]:
    """The joined calls (written under `work`) and the Picovoice clip: id, path, seconds, reference, prompts."""
    work.mkdir(parents=True, exist_ok=True)
    groups: list[list[dict]] = [[]]
    for p in read_prompts():
        length = sum(x["duration_s"] + GAP_S for x in groups[-1])
        if groups[-1] and length + p["duration_s"] > CALL_S:
            groups.append([])
        groups[-1].append(p)
    if quick:
        groups = groups[:2]
    items = []
    gap, edge = np.zeros(int(GAP_S * RATE), np.int16), np.zeros(int(EDGE_S * RATE), np.int16)
    for i, group in enumerate(groups):
        parts = [edge]
        for j, p in enumerate(group):
            if j:
                parts.append(gap)
            parts.append(_read_wav(PROMPTS / "audio" / p["file"]))
        parts.append(edge)
        samples = np.concatenate(parts)
        path = work / f"it_call_{i + 1:02d}.wav"
        _write_wav(path, samples)
        items.append({"id": path.stem, "path": str(path), "seconds": round(len(samples) / RATE, 3),
                      "reference": " ".join(p["reference"] for p in group), "prompts": [p["file"] for p in group]})
    tests = json.loads((PV / "test_data.json").read_text())["tests"]["language_tests"]
    it = next(x for x in tests if x["language"] == "it")
    with wave.open(str(PV / it["audio_file"])) as w:
        seconds = w.getnframes() / w.getframerate()
    items.append({"id": "pv_test_it", "path": str(PV / it["audio_file"]), "seconds": round(seconds, 3),
                  "reference": it["transcript"], "prompts": []})
    return items


def prompt_text() -> str:
    """What asr.script_prompt gives a call of the demo's PROMPT_CAMPAIGN in Italian."""
    from qa_pipeline.analysis.compliance import select_script
    from qa_pipeline.analysis.resources import AnalysisResources
    from qa_pipeline.config import load_config
    from qa_pipeline.pipeline.process import script_prompt

    config = load_config(ROOT / "demo" / "config.yaml")
    scripts = AnalysisResources(config.analysis).scripts(PROMPT_CAMPAIGN)
    script = select_script(scripts, language="it", campaign=PROMPT_CAMPAIGN, call_type=None)
    return script_prompt(script, config.analysis.companies_for(PROMPT_CAMPAIGN))


def label(s: dict) -> str:
    return (f"{s['compute_type']}, beam {s['beam_size']}, prompt {'script' if s['prompt'] else 'none'}, "
            f"fallback {'on' if s['fallback'] else 'off'}")


class Runner:
    """Runs a setting on every item, pipeline then plain; loads each model once, before timing."""

    def __init__(self, items: list[dict], prompt: str):
        from qa_pipeline.audio.decode import load_audio
        from qa_pipeline.audio.vad import detect_activity, padded_regions
        from qa_pipeline.config import PipelineConfig
        from qa_pipeline.speech.models import SpeechModels
        from qa_pipeline.speech.weights import resolve_whisper

        self.items, self.prompt = items, prompt
        self.ref = resolve_whisper("bundled:base")
        self.models = SpeechModels()
        self.plain_models: dict[str, object] = {}
        config = PipelineConfig()
        self.audio: dict[str, tuple] = {}
        for it in items:  # speech regions do not depend on the ASR setting: found once, their time added to each
            t0 = time.perf_counter()
            audio = load_audio(it["path"], config.audio)
            duration = audio.samples.shape[1] / audio.sample_rate
            activity = detect_activity(audio.samples, audio.sample_rate, config.vad)
            regions = [r for c in range(audio.samples.shape[0])
                       for r in padded_regions(activity, c, config.vad, duration)]
            self.audio[it["id"]] = (audio.samples, audio.sample_rate, regions, time.perf_counter() - t0)

    def options(self, s: dict):
        from qa_pipeline.config import load_config

        return load_config(None, {
            "asr.compute_type": s["compute_type"], "asr.beam_size": s["beam_size"],
            "asr.multilingual_beam_size": s["beam_size"], "asr.cpu_threads": THREADS,
            "asr.temperatures": list(DEFAULT_TEMPERATURES if s["fallback"] else (0.0,)),
            "asr.initial_prompt": self.prompt if s["prompt"] else None, "asr.language": "it"}).asr

    def pipeline(self, s: dict) -> dict:
        from qa_pipeline.speech.asr import Transcriber

        opts = self.options(s)
        self.models.whisper(self.ref, opts)  # loaded before timing
        transcriber = Transcriber(opts, self.models)
        files = {}
        for it in self.items:
            samples, rate, regions, vad_s = self.audio[it["id"]]
            t0 = time.perf_counter()
            t = transcriber.transcribe(samples, rate, regions, language="it", speaker_of_channel={0: "unknown"})
            files[it["id"]] = {"text": " ".join(w.text for w in t.words), "seconds": time.perf_counter() - t0 + vad_s,
                               "windows": t.info.windows}
        return files

    def plain(self, s: dict) -> dict:
        import ctranslate2
        from faster_whisper import WhisperModel, decode_audio

        if s["compute_type"] not in self.plain_models:
            self.plain_models[s["compute_type"]] = WhisperModel(
                str(self.ref.path), device="cpu", compute_type=s["compute_type"], cpu_threads=THREADS,
                local_files_only=True)
        model = self.plain_models[s["compute_type"]]
        files = {}
        for it in self.items:
            audio = decode_audio(it["path"])
            ctranslate2.set_random_seed(0)
            t0 = time.perf_counter()
            segments, _ = model.transcribe(
                audio, language="it", beam_size=s["beam_size"], word_timestamps=True,
                temperature=list(DEFAULT_TEMPERATURES if s["fallback"] else (0.0,)),
                initial_prompt=self.prompt if s["prompt"] else None)
            text = " ".join(seg.text.strip() for seg in segments)
            files[it["id"]] = {"text": text, "seconds": time.perf_counter() - t0}
        return files

    def score(self, files: dict) -> dict:
        return score(self.items, files)


def score(items: list[dict], files: dict) -> dict:
    """WER (Italian normaliser; `wer_en`: run_bench's English one, for comparison) and speed of one system."""
    from qa_pipeline.speech.evaluation import wer

    ref = {it["id"]: it["reference"] for it in items}
    calls = [it["id"] for it in items if it["prompts"]]
    pv = items[-1]["id"]
    audio_s = sum(it["seconds"] for it in items)
    seconds = sum(f["seconds"] for f in files.values())

    def w(ids, language="it"):
        return round(wer([ref[i] for i in ids], [files[i]["text"] for i in ids], language), 4)

    return {"wer": w(list(ref)), "wer_en": w(list(ref), "en"), "wer_prompts": w(calls), "wer_pv_it": w([pv]),
            "seconds": round(seconds, 2), "x_realtime": round(audio_s / seconds, 2),
            "files": {k: {"text": v["text"], "seconds": round(v["seconds"], 2), "wer": w([k])}
                      for k, v in files.items()}}


STAGES = [("compute_type", ["int8", "int8_float32", "float32"]), ("beam_size", [1, 5]), ("prompt", [False, True]),
          ("fallback", [True, False])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rescore", action="store_true", help="score OUT/italian.json's stored texts again (no ASR)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.rescore:
        report = json.loads((out / "italian.json").read_text(encoding="utf-8"))
        work = Path(tempfile.mkdtemp(prefix="italian_bench_"))
        try:
            items = build_items(work, report["quick"])
        finally:
            shutil.rmtree(work, ignore_errors=True)
        for x in report["results"].values():
            for system in ("pipeline", "plain"):
                old = x[system]
                files = {k: {"text": f["text"], "seconds": f["seconds"]} for k, f in old["files"].items()}
                x[system] = {**score(items, files), "seconds": old["seconds"], "x_realtime": old["x_realtime"]}
        (out / "italian.json").write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
        (out / "italian.md").write_text(markdown(report), encoding="utf-8")
        print(markdown(report))
        return
    if not (PROMPTS / "transcripts.tsv").is_file():
        raise SystemExit(f"{PROMPTS} is missing")
    work = Path(tempfile.mkdtemp(prefix="italian_bench_"))
    try:
        report = run(build_items(work, args.quick), args.quick)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    (out / "italian.json").write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    (out / "italian.md").write_text(markdown(report), encoding="utf-8")
    print(markdown(report))


def run(items: list[dict], quick: bool) -> dict:
    prompt = prompt_text()
    runner = Runner(items, prompt)
    results: dict[str, dict] = {}
    best = {"compute_type": "int8", "beam_size": 1, "prompt": False, "fallback": True}
    stages = []
    for factor, values in STAGES:
        tried = []
        for v in values:
            s = {**best, factor: v}
            key = label(s)
            if key not in results:
                print(f"[italian] {key} ...", file=sys.stderr, flush=True)
                results[key] = {"setting": s, "pipeline": runner.score(runner.pipeline(s)),
                                "plain": runner.score(runner.plain(s))}
                p, q = results[key]["pipeline"], results[key]["plain"]
                print(f"[italian]   pipeline {p['wer']:.2%} {p['x_realtime']}x | plain {q['wer']:.2%} "
                      f"{q['x_realtime']}x", file=sys.stderr, flush=True)
            tried.append(key)
        low = min(results[k]["pipeline"]["wer"] for k in tried)
        near = [k for k in tried if results[k]["pipeline"]["wer"] <= low + TIE_POINTS / 100]
        chosen = max(near, key=lambda k: results[k]["pipeline"]["x_realtime"])
        best = results[chosen]["setting"]
        stages.append({"factor": factor, "tried": tried, "chosen": chosen})
    return {
        "quick": quick, "machine": {"python": platform.python_version(), "cpu_threads": THREADS,
                                         "processor": platform.processor() or platform.machine()},
        "audio": {"files": [{k: it[k] for k in ("id", "seconds", "prompts")} for it in items],
                  "seconds": round(sum(it["seconds"] for it in items), 1),
                  "reference_words": sum(len(it["reference"].split()) for it in items)},
        "model": runner.ref.name, "prompt": prompt, "stages": stages, "best": label(best), "results": results}


def markdown(r: dict) -> str:
    a = r["audio"]
    lines = [
        f"# Italian ASR settings ({r['model']}{', quick' if r['quick'] else ''})", "",
        f"{len(a['files']) - 1} joined calls of Asterisk Italian prompts + the Picovoice Italian clip: "
        f"{a['seconds']:.0f} s, {a['reference_words']} reference words; CPU, {r['machine']['cpu_threads']} threads. "
        "WER: corpus, normalised (Italian digits, elisions split); x realtime: audio seconds / seconds spent. "
        "Pipeline = speech regions + "
        "Transcriber (packed windows, batched); plain = WhisperModel.transcribe, seeded per file.", "",
        "| setting | pipeline WER | plain WER | pipeline x realtime | plain x realtime "
        "| pipeline WER prompts / clip | plain WER prompts / clip | pipeline / plain WER, English normaliser |",
        "|---|---|---|---|---|---|---|---|"]
    for key, x in r["results"].items():
        p, q = x["pipeline"], x["plain"]
        lines.append(f"| {key} | {p['wer']:.1%} | {q['wer']:.1%} | {p['x_realtime']:.1f} | {q['x_realtime']:.1f} "
                     f"| {p['wer_prompts']:.1%} / {p['wer_pv_it']:.0%} | {q['wer_prompts']:.1%} / {q['wer_pv_it']:.0%} "
                     f"| {_pct(p.get('wer_en'))} / {_pct(q.get('wer_en'))} |")
    lines += ["", "One factor at a time from the best so far (lowest pipeline WER; within "
              f"{TIE_POINTS} points the faster): " + "; ".join(f"{s['factor']}: {s['chosen']}" for s in r["stages"]),
              "", f"Best: **{r['best']}**.", "", f"Script prompt: \"{r['prompt']}\""]
    return "\n".join(lines) + "\n"


def _pct(x) -> str:
    return "-" if x is None else f"{x:.1%}"


if __name__ == "__main__":
    main()
