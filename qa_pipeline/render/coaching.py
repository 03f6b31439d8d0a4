"""Coaching packs: per criterion, an operator's misses paired with a peer's pass of the same script step, plus the
trainers' marked examples, as a folder that plays offline (`qa-pipeline coach`, the review app's trainers' page).

An item is a miss (a script rule failed in the operator's call, from `compliance`; or a rubric item that lost
points, from `call_scores`) and, next to it, a peer's pass of the same rule or item in a similar call (same call
type and language; another agent), or a trainer's mark (the review app's coaching_marks, passed in by the caller).
Each item holds a clip cut from the call's REDACTED copy (`redacted_audio/`; the original only when the call was
searched and holds no personal data; no clip otherwise) with `context_s` seconds either side, the redacted
transcript excerpt, the rubric text, why it was chosen and the trainer's note.

The pack: `index.html` (rendered with the shared environment: autoescape, the quote partial), `ack.html` (the
operator's printable acknowledgement sheet), `clips/NN-*.ogg|wav`, `pack.css`. Relative paths only, `<audio>`
elements, no script at all, nothing fetched from elsewhere: it plays from a USB stick. The pack is recorded in
`<data>/_packs/registry.json` (its folder and the SHA-256 of each call id) so that erasure finds it."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from qa_pipeline.audio.decode import load_audio
from qa_pipeline.config import AudioOptions
from qa_pipeline.errors import ConfigError, Errors
from qa_pipeline.privacy.audio import encode
from qa_pipeline.render import TEMPLATES_DIR, make_environment
from qa_pipeline.render.weekly import Quote
from qa_pipeline.store.folder import DataFolder, as_folder
from qa_pipeline.store.keys import file_key

PACKS_REGISTRY = "_packs/registry.json"
CONTEXT_S = 3.0
OPENING_S = 12.0  # a miss without a time span (a rule never met): the call's first seconds


def id_hash(call_id: str) -> str:
    """What erasure and the pack registry record of a call: the SHA-256 of its id."""
    return hashlib.sha256(call_id.encode()).hexdigest()


@dataclass
class Clip:
    file: str | None  # relative to the pack folder
    start_s: float
    end_s: float
    note: str | None = None  # why there is no clip


@dataclass
class PackItem:
    kind: str  # miss / peer_pass / trainer_example / trainer_miss
    criterion: str
    step: str  # the rule id or rubric item
    rubric_text: str
    why: str
    call_ref: str  # a short reference (date and a hash prefix), never the customer's data
    agent_id: str | None
    clip: Clip
    quotes: list[Quote] = field(default_factory=list)
    trainer_note: str | None = None


@dataclass
class Pack:
    title: str
    agent: str | None
    team: str | None
    week: str | None
    criterion: str | None
    built_at: str
    sections: dict[str, list[PackItem]]
    call_ids: list[str]


def _rows(folder: DataFolder, name: str) -> list[dict]:
    return folder.read_dataset(name).to_pylist()


def _rubric_texts(rubric_path: str | None) -> dict[tuple[str, str], str]:
    path = Path(rubric_path) if rubric_path else Path(TEMPLATES_DIR).parent.parent / "defaults" / "rubric.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    out = {}
    for cname, c in (doc.get("criteria") or {}).items():
        out[(cname, "")] = str(c.get("description", cname))
        for iname, item in (c.get("items") or {}).items():
            out[(cname, iname)] = str((item or {}).get("description", iname))
    return out


def build_pack(data_dir, out_dir, *, agent: str | None = None, team: str | None = None,
               criterion: str | None = None, week: str | None = None, marks: list[dict] | None = None,
               rubric: str | None = None, context_s: float = CONTEXT_S, audio_format: str = "opus",
               max_items: int = 12) -> Path:
    """Build a coaching pack into `out_dir` (created; replaced if it holds a pack); returns its index.html.

    marks: the trainers' coaching marks (dicts: call_id, agent_id, start_s, end_s, criterion, kind, note,
        trainer), from the review database when the caller has one.

    Raises:
        ConfigError: E652, nothing matches the filters.
    """
    folder = as_folder(data_dir)
    calls = {r["call_id"]: r for r in _rows(folder, "calls")}
    texts = _rubric_texts(rubric)
    scores = _rows(folder, "call_scores")
    compliance = _rows(folder, "compliance")
    week_of = {r["call_id"]: r["iso_week"] for r in scores if r.get("iso_week")}

    def mine(cid: str) -> bool:
        c = calls.get(cid)
        return bool(c) and (agent is None or c.get("agent_id") == agent) and (
            team is None or c.get("team") == team) and (week is None or week_of.get(cid) == week)

    def similar(cid: str, other: str) -> bool:
        a, b = calls.get(cid) or {}, calls.get(other) or {}
        return (b.get("agent_id") != a.get("agent_id") and b.get("call_type") == a.get("call_type")
                and b.get("language") == a.get("language"))

    misses: list[tuple[str, str, str, dict]] = []  # (criterion, step, rubric text, row)
    for r in compliance:
        if r["result"] == "failed" and mine(r["call_id"]) and criterion in (None, "quality"):
            misses.append(("quality", r["rule_id"], f"{texts.get(('quality', 'script_compliance'), '')}: script "
                           f"rule {r['rule_id']} ({r['phase']}, {r['severity']})", r))
    for r in scores:
        if (r["points"] is not None and r["points"] < r["max_points"] and r["item"] != "script_compliance"
                and mine(r["call_id"]) and criterion in (None, r["criterion"])):
            ev = next((e for e in (r.get("evidence") or []) if e.get("start_s") is not None), {})
            misses.append((r["criterion"], r["item"], texts.get((r["criterion"], r["item"]), r["item"]),
                           {**r, "start_s": ev.get("start_s"), "end_s": ev.get("end_s"),
                            "reason": ev.get("note")}))
    misses.sort(key=lambda m: (m[0], m[1], m[3]["call_id"]))
    marks = [m for m in (marks or []) if m["call_id"] in calls and mine(m["call_id"])
             and criterion in (None, m.get("criterion"))]
    if not misses and not marks:
        raise ConfigError(Errors.E652, data_dir=folder.url(), filters=json.dumps(
            {"agent": agent, "team": team, "criterion": criterion, "week": week}))

    out = Path(out_dir)
    if (out / "index.html").is_file() and (out / "clips").is_dir():
        shutil.rmtree(out)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    utts = _rows(folder, "utterances")
    pii_calls = {r["call_id"] for r in _rows(folder, "pii")}
    redacted = {r["call_id"]: r["audio_path"] for r in _rows(folder, "redactions")}
    counter = [0]
    used: list[str] = []

    def item(kind, crit, step, text, why, row, note=None) -> PackItem:
        cid = row["call_id"]
        used.append(cid)
        call = calls[cid]
        start, end = row.get("start_s"), row.get("end_s")
        if start is None or end is None:
            start, end = 0.0, min(OPENING_S, call["duration_s"])
        a, b = max(0.0, start - context_s), min(call["duration_s"], end + context_s)
        counter[0] += 1
        clip = _clip(folder, call, a, b, out, f"{counter[0]:02d}-{kind}", redacted.get(cid),
                     searched_clean=cid not in pii_calls and _searched(folder, call), fmt=audio_format)
        quotes = [Quote(cid, u["utterance_index"], True, u["role"], u["text"], u["start_s"], u["end_s"])
                  for u in sorted(utts, key=lambda u: u["start_s"])
                  if u["call_id"] == cid and u["end_s"] > a and u["start_s"] < b]
        ref = f"{call['call_date']} #{id_hash(cid)[:8]}"
        return PackItem(kind, crit, step, text, why, ref, call.get("agent_id"), clip, quotes, note)

    sections: dict[str, list[PackItem]] = {}
    for crit, step, text, row in misses[:max_items]:
        sec = sections.setdefault(crit, [])
        reason = row.get("reason") or "not met"
        sec.append(item("miss", crit, step, text, f"missed in this call: {reason}", row))
        peer = _peer_pass(crit, step, row["call_id"], compliance, scores, similar)
        if peer is not None:
            c = calls[peer["call_id"]]
            sec.append(item("peer_pass", crit, step, text, f"a peer's pass of the same step in a similar call "
                            f"({c.get('call_type')}, {c.get('language')})", peer))
    for m in marks[:max_items]:
        crit = m.get("criterion") or "trainer"
        kind = "trainer_miss" if m.get("kind") == "miss" else "trainer_example"
        sections.setdefault(crit, []).append(item(
            kind, crit, crit, texts.get((crit, ""), crit), f"marked by the trainer {m.get('trainer') or ''}"
            .strip() + (" as a miss" if kind == "trainer_miss" else " as a good example"), m, note=m.get("note")))
    pack = Pack(title="Coaching pack" + (f": {agent}" if agent else f": team {team}" if team else ""),
                agent=agent, team=team, week=week, criterion=criterion,
                built_at=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), sections=sections,
                call_ids=sorted(set(used)))
    env = make_environment()
    (out / "index.html").write_text(env.get_template("coaching/pack.html").render(pack=pack), encoding="utf-8")
    (out / "ack.html").write_text(env.get_template("coaching/ack.html").render(pack=pack), encoding="utf-8")
    shutil.copy(Path(TEMPLATES_DIR) / "coaching" / "pack.css", out / "pack.css")
    register_pack(folder, out, pack.call_ids)
    return out / "index.html"


def _searched(folder: DataFolder, call: dict) -> bool:
    """True when the call's pii file exists (it was searched; no rows: nothing found)."""
    return bool(folder.glob(f"pii/call_date={call['call_date']}/{file_key(call['call_id'])}.parquet"))


def _peer_pass(crit, step, call_id, compliance, scores, similar) -> dict | None:
    cands = [r for r in compliance if r["rule_id"] == step and r["result"] == "passed"
             and r["call_id"] != call_id and similar(call_id, r["call_id"])]
    if not cands:
        cands = [{**r, **next(({"start_s": e.get("start_s"), "end_s": e.get("end_s")} for e in
                               (r.get("evidence") or []) if e.get("start_s") is not None), {})}
                 for r in scores if r["criterion"] == crit and r["item"] == step and r["points"] is not None
                 and r["points"] >= r["max_points"] and r["call_id"] != call_id and similar(call_id, r["call_id"])]
    return sorted(cands, key=lambda r: r["call_id"])[0] if cands else None


def _clip(folder: DataFolder, call: dict, a: float, b: float, out: Path, stem: str, redacted_rel: str | None, *,
          searched_clean: bool, fmt: str) -> Clip:
    """Cut [a, b] from the call's redacted copy (or from the original when it holds no personal data)."""
    if call.get("mode") == "transcript":
        return Clip(None, a, b, "imported transcript: no recording")
    if redacted_rel and not folder.is_uri and Path(folder.path(redacted_rel)).is_file():
        source = Path(folder.path(redacted_rel))
    elif searched_clean and "://" not in call["path"] and Path(call["path"]).is_file():
        source = Path(call["path"])
    else:
        return Clip(None, a, b, "no redacted copy of this call: audio left out")
    audio = load_audio(source, AudioOptions(min_duration_s=0.0))
    rate = audio.sample_rate
    seg = audio.samples[:, int(a * rate):int(b * rate)]
    ext = ".ogg" if fmt == "opus" else ".wav"
    rel = f"clips/{stem}{ext}"
    (out / rel).write_bytes(encode(seg, rate, fmt))
    return Clip(rel, a, b)


def register_pack(data_dir, pack_dir: str | Path, call_ids) -> None:
    """Record a coaching pack (its folder and the hashes of the calls it holds) so that `forget` finds it."""
    folder = as_folder(data_dir)
    with folder.lock("packs"):
        entries = read_registry(folder)
        where = str(Path(pack_dir).resolve())
        entries = [e for e in entries if e.get("dir") != where]
        entries.append({"dir": where, "calls": sorted(id_hash(c) for c in set(call_ids)),
                        "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})
        folder.write_text(PACKS_REGISTRY, json.dumps(entries, indent=1))


def read_registry(folder: DataFolder) -> list[dict]:
    try:
        doc = json.loads(folder.read_bytes(PACKS_REGISTRY))
    except (FileNotFoundError, ValueError):
        return []
    return doc if isinstance(doc, list) else []


__all__ = ["build_pack", "register_pack", "read_registry", "id_hash", "Pack", "PackItem", "Clip"]
