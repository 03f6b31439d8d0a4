"""Diarization benchmark: our pyannote assembly vs senko's own Diarizer, same files, same command.

    .venv/bin/python bench/diarization_bench.py --out bench/results/diarization.json

Scores DER with pyannote.metrics (overlap scored, skip_overlap=False) at collar 0 and 0.25 s, and speed (x realtime
by wall clock and by CPU time, peak RSS). Each system runs in its own subprocess so peak RSS is its own.
Reads the recordings from ../shared/eval (never copied into the project). Prints a markdown table.

Files (see each PROVENANCE.txt):
  * spokenwoz  - real 2-party phone call, 8 kHz mono downmix; reference derived from per-channel energy (APPROXIMATE:
                 not made by people; crosstalk/echo in the first 8 s; it marks channel bleed as overlap).
  * falcon     - Picovoice 3-speaker clip, reference from test_data.json (hand-level boundaries).
  * ami_*      - five 30 s AMI meeting excerpts, RTTM + UEM (3-4 speakers, much overlap; not telephone).
Our system is told what a call-center user knows: a phone call has 2 speakers (num_speakers=2, the default); other
recordings: estimate the number (num_speakers=None, max_speakers=4). senko has no such option.
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


def files() -> list[dict]:
    out = [
        {
            "name": "spokenwoz",
            "kind": "phone",
            "audio": EVAL / "spokenwoz_MUL1011_phone2spk" / "MUL1011_mono8k.wav",
            "rttm": EVAL / "spokenwoz_MUL1011_phone2spk" / "MUL1011.derived_from_channels.rttm",
        },
        {"name": "falcon", "kind": "other", "audio": EVAL / "picovoice_falcon_diar" / "test.wav",
         "json": EVAL / "picovoice_falcon_diar" / "test_data.json"},
    ]
    ami = EVAL / "pyannote_ami_debug"
    for uri in ("dev00", "dev01", "trn01", "tst00", "tst01"):
        out.append({"name": f"ami_{uri}", "kind": "other", "audio": ami / f"{uri}.wav", "uri": uri,
                    "rttm": sorted(ami.glob("debug.*.rttm")), "uem": sorted(ami.glob("debug.*.uem"))})
    return out


def read_audio(path: Path):
    import numpy as np
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


def run_system(system: str) -> dict:
    import torch

    torch.set_num_threads(THREADS)
    t0 = time.perf_counter()
    if system == "ours":
        sys.path.insert(0, str(ROOT))
        from qa_pipeline.diarization import DiarizationOptions, Diarizer

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
    for f in files():
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
        if f["name"] == "spokenwoz":
            results.append({"name": "spokenwoz_audible", "duration_s": duration, "wall_s": wall, "cpu_s": cpu,
                            "turns": turns, "exclusive": exclusive})
        results.append({"name": f["name"], "duration_s": duration, "wall_s": wall, "cpu_s": cpu,
                        "turns": turns, "exclusive": exclusive})
    return {"system": system, "method": method, "load_s": load_s, "files": results,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


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


def reference(f: dict):
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.database.util import load_rttm, load_uem

    if f["name"] == "spokenwoz_audible":
        ref, uem = reference(files()[0])
        return ref.crop(audible(f["audio"]), mode="intersection"), uem
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


def score(turns, ref, uem, collar):
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    hyp = Annotation()
    for i, (s, e, spk) in enumerate(turns):
        if e > s:
            hyp[Segment(s, e), i] = spk
    return DiarizationErrorRate(collar=collar, skip_overlap=False)(ref, hyp, uem=uem)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "diarization.json"))
    ap.add_argument("--system", choices=["ours", "senko"], help=argparse.SUPPRESS)
    ap.add_argument("--systems", default="ours,senko")
    args = ap.parse_args()
    if args.system:  # child process
        json.dump(run_system(args.system), sys.stdout)
        return
    if not EVAL.is_dir():
        sys.exit(f"evaluation recordings not found at {EVAL}")
    load_before = os.getloadavg()
    runs = {}
    for system in args.systems.split(","):
        proc = subprocess.run([sys.executable, __file__, "--system", system], capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"{system} failed:\n{proc.stderr[-4000:]}")
        runs[system] = json.loads(proc.stdout.strip().splitlines()[-1])
    fs = {f["name"]: f for f in files()}
    fs["spokenwoz_audible"] = {**fs["spokenwoz"], "name": "spokenwoz_audible"}
    rows = []
    for system, run in runs.items():
        for r in run["files"]:
            ref, uem = reference(fs[r["name"]])
            row = {"system": system, "file": r["name"], "duration_s": round(r["duration_s"], 1),
                   "der_c0": score(r["turns"], ref, uem, 0.0), "der_c025": score(r["turns"], ref, uem, 0.25),
                   "der_c025_exclusive": score(r["exclusive"], ref, uem, 0.25),
                   "speakers_found": len({t[2] for t in r["turns"]}), "speakers_ref": len(ref.labels()),
                   "x_realtime_wall": r["duration_s"] / max(r["wall_s"], 1e-9),
                   "x_realtime_cpu_per_core": r["duration_s"] / max(r["cpu_s"] / THREADS, 1e-9)}
            rows.append(row)
    total = {}
    for system, run in runs.items():
        dur = sum(r["duration_s"] for r in run["files"])
        total[system] = {"method": run["method"], "load_s": round(run["load_s"], 2),
                         "peak_rss_mb": round(run["peak_rss_mb"]),
                         "x_realtime_wall_all": dur / sum(r["wall_s"] for r in run["files"]),
                         "x_realtime_cpu_per_core_all": dur / (sum(r["cpu_s"] for r in run["files"]) / THREADS)}
    result = {"threads": THREADS, "cpu_count": os.cpu_count(), "loadavg_before": load_before,
              "loadavg_after": os.getloadavg(), "rows": rows, "systems": total,
              "notes": "spokenwoz reference is derived from channel energy (approximate, marks bleed as overlap); "
                       "DER scored on the overlapping output unless '_exclusive'; speed measured on a shared "
                       "2-vCPU machine: see loadavg."}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print("| system | file | dur s | spk found/ref | DER c0 | DER c0.25 | DER c0.25 excl. | x RT wall | x RT cpu/core |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['system']} | {r['file']} | {r['duration_s']} | {r['speakers_found']}/{r['speakers_ref']} | "
              f"{r['der_c0']:.1%} | {r['der_c025']:.1%} | {r['der_c025_exclusive']:.1%} | "
              f"{r['x_realtime_wall']:.1f} | {r['x_realtime_cpu_per_core']:.1f} |")
    print()
    for system, t in total.items():
        print(f"- {system}: {t['method']}; load {t['load_s']} s; peak RSS {t['peak_rss_mb']} MB; "
              f"{t['x_realtime_wall_all']:.1f}x realtime wall, {t['x_realtime_cpu_per_core_all']:.1f}x per CPU-core")
    print(f"- load average before/after: {load_before} / {os.getloadavg()}")


if __name__ == "__main__":
    main()
