"""Diarization benchmark: our pyannote assembly vs senko's own Diarizer, same files, same command.

    .venv/bin/python bench/diarization_bench.py --out bench/results/diarization.json
    .venv/bin/python bench/diarization_bench.py --sets demo --cpwer    # only the demo corpus, with cpWER

Scores DER with pyannote.metrics (overlap scored, skip_overlap=False) at collar 0 and 0.25 s, and speed (x realtime
by wall clock and by CPU time, peak RSS). Each system runs in its own subprocess so peak RSS is its own.
Reads the recordings from ../shared/eval (never copied into the project). Prints a markdown table.

Files (see each PROVENANCE.txt):
  * spokenwoz  - real 2-party phone call, 8 kHz mono downmix; reference derived from per-channel energy (APPROXIMATE:
                 not made by people; crosstalk/echo in the first 8 s; it marks channel bleed as overlap).
                 Scored three ways, same output: against that reference (spokenwoz); restricted to where the downmix
                 is audible, above -50 dBFS (spokenwoz_audible); and audible with channel bleed removed
                 (spokenwoz_dominant: where the reference marks both parties, both are kept only in 50 ms frames
                 where the two original channels are within 15 dB of each other, else the louder one; 10-25 dB
                 moves both systems by about 1.5 points, see docs/diarization.md). All three are approximations.
  * falcon     - Picovoice 3-speaker clip, reference from test_data.json (hand-level boundaries).
  * ami_*      - five 30 s AMI meeting excerpts, RTTM + UEM (3-4 speakers, much overlap; not telephone).
  * demo_mono    - the project's demo corpus (demo/calls), the 2 calls recorded mono (demo-013, demo-022).
  * demo_downmix - the 24 stereo demo calls downmixed to mono (mean of the channels, as the pipeline downmixes):
                   8 kHz two-party calls with noise, channel bleed and codecs, a realistic mono phone recording.
                 Demo references are the generator's exact turn times (demo/truth/<stem>.json `turns`, speakers
                 agent/customer); the voices are synthetic (piper agents, espeak-ng customers). Decoded with the
                 project's loader (qa_pipeline.audio.decode.load_audio: PyAV, 16 kHz) like the pipeline does.
Sets (--sets, comma-separated; default all): spokenwoz, falcon, ami, demo_mono, demo_downmix; "demo" = both demo sets.
Per set and system an aggregate row: DER accumulated over the set's files as pyannote.metrics does (total error /
total reference time), its components (missed detection, false alarm, confusion) and speed.
--cpwer (demo sets, English calls): transcribes each mono file once with qa_pipeline's own ASR stages (loader,
downmix, VAD regions, bundled tiny.en; demo/config.yaml), gives the words speakers from each system's exclusive
turns with qa_pipeline.speech.diarization.assign_speakers, and scores cpWER (concatenated minimum-permutation WER,
qa_pipeline.speech.evaluation.normalise) against the truth turns' text; the plain WER of the same words (speakers ignored)
is the ASR floor, cpWER - WER is what speaker attribution adds.
Our system is told what a call-center user knows: a phone call has 2 speakers (num_speakers=2, the default); other
recordings: estimate the number (num_speakers=None, max_speakers=4). senko has no such option. Demo calls are phone
calls: num_speakers=2 for ours.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see docs/diarization.md: spinning OpenMP threads on 2 vCPUs
os.environ["PYANNOTE_METRICS_ENABLED"] = "0"
os.environ["HF_HUB_OFFLINE"] = "1"

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT.parent / "shared" / "eval"
THREADS = 2


SETS = ("spokenwoz", "falcon", "ami", "demo_mono", "demo_downmix")
RESCORED = ("spokenwoz_audible", "spokenwoz_dominant")  # SpokenWOZ re-scored against cleaned references
DEMO = ROOT / "demo"


def parse_sets(value: str | None) -> list[str]:
    if not value or value == "all":
        return list(SETS)
    out = []
    for name in value.split(","):
        name = name.strip()
        names = ["demo_mono", "demo_downmix"] if name == "demo" else [name]
        for n in names:
            if n not in SETS:
                raise SystemExit(f"unknown set {n!r}; sets: {', '.join(SETS)}, demo")
            if n not in out:
                out.append(n)
    return out


def files(sets=SETS) -> list[dict]:
    out = []
    if "spokenwoz" in sets:
        out.append({
            "name": "spokenwoz",
            "set": "spokenwoz",
            "kind": "phone",
            "audio": EVAL / "spokenwoz_MUL1011_phone2spk" / "MUL1011_mono8k.wav",
            "rttm": EVAL / "spokenwoz_MUL1011_phone2spk" / "MUL1011.derived_from_channels.rttm",
        })
    if "falcon" in sets:
        out.append({"name": "falcon", "set": "falcon", "kind": "other",
                    "audio": EVAL / "picovoice_falcon_diar" / "test.wav",
                    "json": EVAL / "picovoice_falcon_diar" / "test_data.json"})
    if "ami" in sets:
        ami = EVAL / "pyannote_ami_debug"
        for uri in ("dev00", "dev01", "trn01", "tst00", "tst01"):
            out.append({"name": f"ami_{uri}", "set": "ami", "kind": "other", "audio": ami / f"{uri}.wav",
                        "uri": uri, "rttm": sorted(ami.glob("debug.*.rttm")), "uem": sorted(ami.glob("debug.*.uem"))})
    for set_name in ("demo_mono", "demo_downmix"):
        if set_name not in sets:
            continue
        for truth in sorted((DEMO / "truth").glob("demo-*.json")):
            t = json.loads(truth.read_text())
            if (t["channels"] == 1) != (set_name == "demo_mono"):
                continue
            out.append({"name": t["stem"], "set": set_name, "kind": "phone", "audio": DEMO / "calls" / t["file"],
                        "truth": truth, "language": t["language"], "campaign": t.get("campaign")})
    return out


def read_audio(path: Path):
    import numpy as np

    if Path(path).is_relative_to(DEMO):  # mu-law wav, opus, ogg, mp3, flac: the project's loader, as the pipeline
        sys.path.insert(0, str(ROOT))
        from qa_pipeline.audio.decode import downmix, load_audio, to_float

        a = load_audio(path)
        return np.ascontiguousarray(to_float(downmix(a.samples)[0])), a.sample_rate
    import soundfile as sf

    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return np.ascontiguousarray(x.mean(axis=1)), sr


def to16k(x, sr):
    from math import gcd

    import numpy as np
    from scipy.signal import resample_poly

    if sr == 16000:
        return x
    g = gcd(sr, 16000)
    return resample_poly(x, 16000 // g, sr // g).astype(np.float32)


# ----------------------------------------------------------------------------------------------- one system


def run_system(system: str, sets) -> dict:
    if system == "asr":
        return run_asr(sets)
    import torch

    torch.set_num_threads(THREADS)
    t0 = time.perf_counter()
    if system == "ours":
        sys.path.insert(0, str(ROOT))
        from qa_pipeline.speech.diarization import DiarizationOptions, Diarizer

        phone = Diarizer(DiarizationOptions(num_speakers=2))
        other = phone.with_options(num_speakers=None, max_speakers=4)
        method = phone.method
    else:
        import senko

        sd = senko.Diarizer(device="cpu", warmup=False, quiet=True)
        if not _cpu_has_avx512():
            # senko's CPU fbank library (libfbank_extractor.so) is built with AVX-512 and dies with SIGILL on
            # CPUs without it (this machine: AMD EPYC, AVX2). Give the baseline the same Kaldi fbank through
            # torchaudio (the options of senko's own kaldifeat GPU path); everything else is senko's.
            import types

            sd._extract_fbank_features = types.MethodType(_senko_fbank_torchaudio, sd)
        from importlib.metadata import version

        method = f"senko=={version('senko')} Diarizer(cpu)" + ("" if _cpu_has_avx512() else ", torchaudio fbank")
    load_s = time.perf_counter() - t0
    results = []
    for f in files(sets):
        x, sr = read_audio(f["audio"])
        duration = len(x) / sr
        c0, w0 = time.process_time(), time.perf_counter()
        if system == "ours":
            d = (phone if f["kind"] == "phone" else other).diarize_detailed(x, sr)
            turns = [(t.start, t.end, t.speaker) for t in d.speaker_turns]
            exclusive = [(t.start, t.end, t.speaker) for t in d.diarization.turns]
        else:
            r = sd.diarize_samples(to16k(x, sr), 16000) or {"merged_segments": []}
            turns = [(s["start"], s["end"], str(s["speaker"])) for s in r["merged_segments"]]
            exclusive = turns
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        if f["name"] == "spokenwoz":  # the same output, scored against the two cleaned references too
            for variant in RESCORED:
                results.append({"name": variant, "set": f["set"], "duration_s": duration, "wall_s": wall,
                                "cpu_s": cpu, "turns": turns, "exclusive": exclusive})
        results.append({"name": f["name"], "set": f["set"], "duration_s": duration, "wall_s": wall, "cpu_s": cpu,
                        "turns": turns, "exclusive": exclusive})
    return {"system": system, "method": method, "load_s": load_s, "files": results,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_asr(sets) -> dict:
    """Words (speaker-less) of every English demo file, from qa_pipeline's own stages on the mono file."""
    sys.path.insert(0, str(ROOT))
    from qa_pipeline.audio.decode import downmix, load_audio
    from qa_pipeline.audio.vad import detect_activity, padded_regions
    from qa_pipeline.config import load_config
    from qa_pipeline.speech.models import SpeechModels

    config = load_config(DEMO / "config.yaml")
    transcriber = SpeechModels().transcriber(config.asr)
    out, wall_s, model = {}, 0.0, "?"
    for f in files(sets):
        if "truth" not in f or f["language"] != "en":
            continue
        t0 = time.perf_counter()
        audio = load_audio(f["audio"], config.audio)
        samples = downmix(audio.samples)
        duration = samples.shape[1] / audio.sample_rate
        activity = detect_activity(samples, audio.sample_rate, config.vad)
        regions = padded_regions(activity, 0, config.vad, duration)
        hot = config.analysis.companies_for(f["campaign"]) if config.asr.company_hotwords else ()
        tr = transcriber.transcribe(samples, audio.sample_rate, regions, language="en",
                                    speaker_of_channel={0: "unknown"}, hotwords=hot)
        wall_s += time.perf_counter() - t0
        out[f"{f['set']}/{f['name']}"] = [(w.start, w.end, w.text) for w in tr.words]
        model = f"{tr.info.model_name} {tr.info.model_version}"
    return {"system": "asr", "words": out, "wall_s": wall_s, "model": model}


def cpwer_counts(ref_turns, words, turns) -> dict:
    """Edits of the best speaker mapping (cpWER numerator), reference words, and the speaker-blind edits (WER)."""
    from itertools import permutations

    import jiwer

    from qa_pipeline.speech.diarization import assign_speakers
    from qa_pipeline.speech.evaluation import normalise
    from qa_pipeline.types import SpeakerTurn, Word

    def edits(ref: str, hyp: str) -> int:
        if not ref:
            return len(hyp.split())
        if not hyp:
            return len(ref.split())
        o = jiwer.process_words(ref, hyp)
        return o.substitutions + o.deletions + o.insertions

    ref_by = {}
    for t in sorted(ref_turns, key=lambda t: t["start"]):
        ref_by.setdefault(t["speaker"], []).append(t["text"])
    ref_text = {k: normalise(" ".join(v)) for k, v in ref_by.items()}
    ws = [Word(s, e, text, 1.0, "unknown") for s, e, text in words]
    st = [SpeakerTurn(spk, s, e) for s, e, spk in turns if e > s]
    ws = list(assign_speakers(ws, st)) if st else ws
    hyp_by = {}
    for w in sorted(ws, key=lambda w: (w.start, w.end)):
        hyp_by.setdefault(w.speaker, []).append(w.text)
    hyp_text = {k: normalise(" ".join(v)) for k, v in hyp_by.items()}
    refs, hyps = list(ref_text), list(hyp_text)
    n = max(len(refs), len(hyps))
    refs += [None] * (n - len(refs))
    hyps += [None] * (n - len(hyps))
    best = min(sum(edits(ref_text.get(r, ""), hyp_text.get(h, "")) for r, h in zip(refs, perm))
               for perm in permutations(hyps))
    all_ref = normalise(" ".join(t["text"] for t in sorted(ref_turns, key=lambda t: t["start"])))
    all_hyp = normalise(" ".join(w.text for w in sorted(ws, key=lambda w: (w.start, w.end))))
    return {"edits": best, "ref_words": len(all_ref.split()), "wer_edits": edits(all_ref, all_hyp)}


def _cpu_has_avx512() -> bool:
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return True


def _senko_fbank_torchaudio(self, audio, subsegments, *, sample_offset=0):
    """Drop-in for senko.Diarizer._extract_fbank_features (same return layout), via torchaudio's Kaldi fbank."""
    import numpy as np
    import torch
    import torchaudio.compliance.kaldi as kaldi

    wav = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    feats, frames, offsets, offset = [], [], [], 0
    for start_s, end_s in subsegments:
        start = int(start_s * 16000) - sample_offset
        length = max(1, int((end_s - start_s) * 16000))
        seg = wav[start : start + length]
        if seg.numel() < 400:
            seg = torch.nn.functional.pad(seg, (0, 400 - seg.numel()))
        f = kaldi.fbank(seg[None], num_mel_bins=80, sample_frequency=16000, dither=0.0, window_type="povey")
        f = f - f.mean(dim=0, keepdim=True)
        feats.append(f.reshape(-1))
        frames.append(f.shape[0])
        offsets.append(offset)
        offset += f.numel()
    flat = torch.cat(feats) if feats else torch.empty(0)
    return flat, np.array(frames, dtype=np.int64), np.array(offsets, dtype=np.int64), 80


# ----------------------------------------------------------------------------------------------- scoring


def audible(path: Path, floor_db: float = -50.0, frame_s: float = 0.05, merge_s: float = 0.3):
    """Where the mono downmix is louder than floor_db (dBFS, 50 ms frames; gaps <= 0.3 s merged, as the
    reference was built): the channel-derived reference also marks as speech stretches that are 30-40 dB below
    the talk in the downmix (breath, line noise, the first 5 s of crosstalk) and no mono diarizer can hear."""
    import numpy as np
    from pyannote.core import Segment, Timeline

    x, sr = read_audio(path)
    n = int(frame_s * sr)
    frames = x[: len(x) // n * n].reshape(-1, n)
    loud = 10 * np.log10((frames.astype(np.float64) ** 2).mean(axis=1) + 1e-12) > floor_db
    segs, i = [], 0
    while i < len(loud):
        if loud[i]:
            j = i
            while j < len(loud) and loud[j]:
                j += 1
            segs.append(Segment(i * frame_s, j * frame_s))
            i = j
        else:
            i += 1
    return Timeline(segs).support(collar=merge_s)


def without_bleed(ref, stereo: Path, bleed_db: float = 15.0, frame_s: float = 0.05):
    """`ref` where it marks both parties at once, kept as overlap only in 50 ms frames where the two channels of
    the original stereo recording are within `bleed_db` of each other; elsewhere only the louder channel's party.
    Why: the channel-energy reference marks a party's echo on the other channel (20-40 dB down) as that other
    party talking; two people really talking at once are both at speech level on their own channels."""
    import numpy as np
    from pyannote.core import Annotation, Segment

    sys.path.insert(0, str(ROOT))
    from qa_pipeline.audio.decode import load_audio, to_float

    a = load_audio(stereo)
    x, sr = to_float(a.samples), a.sample_rate
    n = int(frame_s * sr)
    frames = x[:, : x.shape[1] // n * n].reshape(x.shape[0], -1, n).astype(np.float64)
    level = 10 * np.log10((frames**2).mean(axis=2) + 1e-12)  # (2, frames) dBFS
    channel = {"ch0": 0, "ch1": 1}
    out = Annotation(uri=ref.uri)
    overlap = ref.get_overlap()
    k = 0
    for seg, _, label in ref.itertracks(yield_label=True):
        for part in [seg] if not overlap else overlap.gaps(support=seg):  # the single-party stretches
            out[part, k] = label
            k += 1
    for seg in overlap:
        labels = ref.crop(seg, mode="intersection").labels()
        for i in range(int(seg.start / frame_s), min(level.shape[1], int(np.ceil(seg.end / frame_s)))):
            cell = Segment(max(seg.start, i * frame_s), min(seg.end, (i + 1) * frame_s))
            loud = {lab: level[channel[lab], i] for lab in labels}
            top = max(loud.values())
            for lab, db in loud.items():
                if db >= top - bleed_db:
                    out[cell, k] = lab
                    k += 1
    return out.support()


def reference(f: dict):
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.database.util import load_rttm, load_uem

    if f["name"] == "spokenwoz_audible":
        ref, uem = reference(files(["spokenwoz"])[0])
        return ref.crop(audible(f["audio"]), mode="intersection"), uem
    if f["name"] == "spokenwoz_dominant":
        ref, uem = reference({**f, "name": "spokenwoz_audible"})
        return without_bleed(ref, Path(f["audio"]).with_name("MUL1011.opus")), uem
    if "truth" in f:
        t = json.loads(Path(f["truth"]).read_text())
        ref = Annotation(uri=f["name"])
        for i, turn in enumerate(t["turns"]):
            ref[Segment(turn["start"], turn["end"]), i] = turn["speaker"]
        return ref, Timeline([Segment(0, t["duration_s"])])
    uem = None
    if "json" in f:
        data = json.loads(Path(f["json"]).read_text())
        ref = Annotation(uri=f["name"])
        for s in data["tests"]["diarization_tests"][0]["segments"]:
            ref[Segment(s["start_sec"], s["end_sec"])] = f"spk{s['speaker_tag']}"
        return ref, uem
    rttms = f["rttm"] if isinstance(f["rttm"], list) else [f["rttm"]]
    refs = {}
    for r in rttms:
        refs.update(load_rttm(str(r)))
    ref = refs[f["uri"]] if "uri" in f else next(iter(refs.values()))
    if f.get("uem"):
        uems = {}
        for u in f["uem"]:
            uems.update(load_uem(str(u)))
        uem = uems.get(f["uri"])
    if uem is None:
        x, sr = read_audio(f["audio"])
        uem = Timeline([Segment(0, len(x) / sr)])
    return ref, uem


def score(turns, ref, uem, collar, metric=None, detailed=False):
    """DER of one file; `metric` (a DiarizationErrorRate) accumulates the set's components when given."""
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    hyp = Annotation()
    for i, (s, e, spk) in enumerate(turns):
        if e > s:
            hyp[Segment(s, e), i] = spk
    metric = metric if metric is not None else DiarizationErrorRate(collar=collar, skip_overlap=False)
    out = metric(ref, hyp, uem=uem, detailed=True)
    return out if detailed else out["diarization error rate"]


COMPONENTS = ("missed detection", "false alarm", "confusion", "total")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "diarization.json"))
    ap.add_argument("--system", choices=["ours", "senko", "asr"], help=argparse.SUPPRESS)
    ap.add_argument("--systems", default="ours,senko")
    ap.add_argument("--sets", default="all", help="comma-separated: " + ", ".join(SETS) + ", demo (= both demo sets); "
                    "default all")
    ap.add_argument("--cpwer", action="store_true", help="also cpWER on the English demo calls (transcribes them once "
                    "with the bundled tiny.en; a few minutes)")
    args = ap.parse_args()
    sets = parse_sets(args.sets)
    if args.system:  # child process
        json.dump(run_system(args.system, sets), sys.stdout)
        return
    if any(not n.startswith("demo") for n in sets) and not EVAL.is_dir():
        sys.exit(f"evaluation recordings not found at {EVAL}")
    from pyannote.metrics.diarization import DiarizationErrorRate

    load_before = os.getloadavg()
    runs = {}
    children = args.systems.split(",")
    if args.cpwer and any(n.startswith("demo") for n in sets):
        children.append("asr")
    for system in children:
        proc = subprocess.run([sys.executable, __file__, "--system", system, "--sets", ",".join(sets)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"{system} failed:\n{proc.stderr[-4000:]}")
        runs[system] = json.loads(proc.stdout.strip().splitlines()[-1])
    asr = runs.pop("asr", None)
    fs = {(f["set"], f["name"]): f for f in files(sets)}
    if ("spokenwoz", "spokenwoz") in fs:
        for variant in RESCORED:
            fs[("spokenwoz", variant)] = {**fs[("spokenwoz", "spokenwoz")], "name": variant}
    rows, aggregates = [], []
    for system, run in runs.items():
        by_set: dict[str, list] = {}
        for r in run["files"]:
            by_set.setdefault(r["set"], []).append(r)
        for set_name, items in by_set.items():
            # the RESCORED rows re-score the same output: kept out of the set's aggregate (it would count twice)
            agg = {c: DiarizationErrorRate(collar=c, skip_overlap=False) for c in (0.0, 0.25)}
            cp = {"edits": 0, "ref_words": 0, "wer_edits": 0, "files": 0}
            for r in items:
                f = fs[(set_name, r["name"])]
                ref, uem = reference(f)
                use = None if r["name"] in RESCORED else agg
                d0 = score(r["turns"], ref, uem, 0.0, use and use[0.0], detailed=True)
                d25 = score(r["turns"], ref, uem, 0.25, use and use[0.25], detailed=True)
                row = {"system": system, "set": set_name, "file": r["name"], "duration_s": round(r["duration_s"], 1),
                       "der_c0": d0["diarization error rate"], "der_c025": d25["diarization error rate"],
                       "der_c025_exclusive": score(r["exclusive"], ref, uem, 0.25),
                       "c025_s": {c: round(d25[c], 2) for c in COMPONENTS},
                       "speakers_found": len({t[2] for t in r["turns"]}), "speakers_ref": len(ref.labels()),
                       "x_realtime_wall": r["duration_s"] / max(r["wall_s"], 1e-9),
                       "x_realtime_per_cpu_s": r["duration_s"] / max(r["cpu_s"], 1e-9)}
                words = asr["words"].get(f"{set_name}/{r['name']}") if asr else None
                if words is not None:
                    c = cpwer_counts(json.loads(Path(f["truth"]).read_text())["turns"], words, r["exclusive"])
                    row["cpwer"] = c["edits"] / max(c["ref_words"], 1)
                    row["wer_asr"] = c["wer_edits"] / max(c["ref_words"], 1)
                    for k in ("edits", "ref_words", "wer_edits"):
                        cp[k] += c[k]
                    cp["files"] += 1
                rows.append(row)
            scored = [r for r in items if r["name"] not in RESCORED]
            dur = sum(r["duration_s"] for r in scored)
            a = {"system": system, "set": set_name, "files": len(scored), "duration_s": round(dur, 1),
                 "der_c0": abs(agg[0.0]), "der_c025": abs(agg[0.25]),
                 "c0_s": {c: round(agg[0.0][c], 2) for c in COMPONENTS},
                 "c025_s": {c: round(agg[0.25][c], 2) for c in COMPONENTS},
                 "x_realtime_wall": dur / max(sum(r["wall_s"] for r in scored), 1e-9),
                 "x_realtime_per_cpu_s": dur / max(sum(r["cpu_s"] for r in scored), 1e-9)}
            if cp["files"]:
                a["cpwer"] = cp["edits"] / max(cp["ref_words"], 1)
                a["wer_asr"] = cp["wer_edits"] / max(cp["ref_words"], 1)
                a["cpwer_files"] = cp["files"]
                a["cpwer_ref_words"] = cp["ref_words"]
            aggregates.append(a)
    total = {}
    for system, run in runs.items():
        dur = sum(r["duration_s"] for r in run["files"])
        total[system] = {"method": run["method"], "load_s": round(run["load_s"], 2),
                         "peak_rss_mb": round(run["peak_rss_mb"]),
                         "x_realtime_wall_all": dur / sum(r["wall_s"] for r in run["files"]),
                         "x_realtime_per_cpu_s_all": dur / sum(r["cpu_s"] for r in run["files"])}
    result = {"threads": THREADS, "cpu_count": os.cpu_count(), "sets": sets, "loadavg_before": load_before,
              "loadavg_after": os.getloadavg(), "rows": rows, "aggregates": aggregates, "systems": total,
              "notes": "spokenwoz reference is derived from channel energy (approximate, marks bleed as overlap); "
                       "demo references are the generator's exact turn times, demo voices are synthetic (piper + "
                       "espeak-ng); demo_downmix = stereo demo calls averaged to mono; DER scored on the overlapping "
                       "output unless '_exclusive'; aggregates accumulate pyannote.metrics components over a set "
                       "(spokenwoz_audible and spokenwoz_dominant excluded from their set's aggregate); "
                       "c025_s/c0_s = component seconds; "
                       "speed measured on a shared 2-vCPU machine: see loadavg."}
    if asr:
        result["asr"] = {"model": asr["model"], "wall_s": round(asr["wall_s"], 1),
                         "note": "cpWER on English demo calls: words from qa_pipeline's loader+downmix+VAD+ASR "
                                 "(demo/config.yaml), speakers from each system's exclusive turns via assign_speakers; "
                                 "wer_asr = same words with speakers ignored (qa_pipeline.speech.evaluation.normalise)"}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print("| system | set | file | dur s | spk found/ref | DER c0 | DER c0.25 | DER c0.25 excl. | x RT wall | "
          "x RT per CPU-s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['system']} | {r['set']} | {r['file']} | {r['duration_s']} | "
              f"{r['speakers_found']}/{r['speakers_ref']} | {r['der_c0']:.1%} | {r['der_c025']:.1%} | "
              f"{r['der_c025_exclusive']:.1%} | {r['x_realtime_wall']:.1f} | {r['x_realtime_per_cpu_s']:.1f} |")
    print()
    print("| set | system | files | dur s | DER c0 | DER c0.25 | missed / false alarm / confusion s (c0.25) | ref s "
          "| x RT wall | x RT per CPU-s | cpWER | WER (ASR only) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for a in sorted(aggregates, key=lambda a: (SETS.index(a["set"]), a["system"])):
        c = a["c025_s"]
        print(f"| {a['set']} | {a['system']} | {a['files']} | {a['duration_s']} | {a['der_c0']:.1%} | "
              f"{a['der_c025']:.1%} | {c['missed detection']:.1f} / {c['false alarm']:.1f} / {c['confusion']:.1f} | "
              f"{c['total']:.1f} | {a['x_realtime_wall']:.1f} | {a['x_realtime_per_cpu_s']:.1f} | "
              + (f"{a['cpwer']:.1%} | {a['wer_asr']:.1%} |" if "cpwer" in a else "— | — |"))
    print()
    for system, t in total.items():
        print(f"- {system}: {t['method']}; load {t['load_s']} s; peak RSS {t['peak_rss_mb']} MB; "
              f"{t['x_realtime_wall_all']:.1f}x realtime wall, "
              f"{t['x_realtime_per_cpu_s_all']:.1f}x per CPU-second (audio s / CPU s)")
    if asr:
        print(f"- asr (cpWER words): {asr['model']}, {asr['wall_s']:.0f} s")
    print(f"- load average before/after: {load_before} / {os.getloadavg()}")


if __name__ == "__main__":
    main()
