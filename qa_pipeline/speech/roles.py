"""Which speaker is the agent: from configuration or metadata, else from what each speaker says.

An agent opens with a greeting, their own name and the company, offers help and runs the call's procedure; the
customer asks, explains a problem and answers. Each speaker gets a score from phrases weighted by how typical they
are of agents (positive) or customers (negative), with more weight in the first minute. The margin between the two
best scores gives the confidence; a low-confidence decision is flagged for review, never silently trusted."""

from __future__ import annotations

import math
import re
from typing import Mapping, Sequence

from qa_pipeline.config import RolesOptions
from qa_pipeline.types import AGENT, CUSTOMER, UNKNOWN, RoleDecision, Word

# (pattern, weight): positive = agent-like, negative = customer-like. English and Italian.
_CUES: tuple[tuple[str, float], ...] = (
    (r"thank(s| you) for (calling|holding|your patience|choosing)", 3.0),
    (r"\bmy name is\b", 2.0),
    (r"\b(this is|it's) \w+ (from|at|with|calling)\b", 2.0),
    (r"(?<!are you )(?<!you're )\bcalling (you )?(from|on behalf of)\b", 2.5),
    (r"\b(am i speaking (with|to)|is that (mr|mrs|ms|miss|mister)\b)", 2.0),
    (r"\b(who is this|who are you|how did you get my number|take me off your list|which company)\b", -2.5),
    (r"\b(i'm|i am) not interested\b", -2.0),
    (r"how (can|may|could) i (help|assist)", 3.0),
    (r"\bwelcome to\b", 2.0),
    (r"\bspeaking\b", 1.0),
    (r"\b(can|could|may) i (have|get|take) your\b", 1.5),
    (r"\bfor (your )?security\b", 1.5),
    (r"\b(let me|i'll|i will) (check|look|transfer|put you)\b", 1.0),
    (r"\bis there anything else\b", 2.0),
    (r"\bhave a (good|great|nice|lovely) (day|evening|afternoon)\b", 1.0),
    (r"\b(please )?(hold|bear with me)\b", 0.5),
    (r"\b(i'd|i would|i want|i need) (like )?to\b", -1.0),
    (r"\bmy (account|bill|order|internet|contract|payment|card)\b", -1.5),
    (r"\bi (have|got|had) (a|an) (problem|issue|question|complaint)\b", -2.0),
    (r"\b(i'm|i am) calling (because|to (ask|complain|report|cancel|check))\b", -2.0),
    # Italian
    (r"grazie (per aver chiamato|di aver chiamato|per l'attesa|per averci contattato)", 3.0),
    (r"\b(sono|mi chiamo) [a-zà-ù]+\b", 1.0),
    (r"come (posso|possiamo) (aiutarla|esserle utile|aiutarti)", 3.0),
    (r"\bla (chiamo|contatto) (da|per conto di)\b", 2.5),
    (r"\bc'è (qualcos'altro|altro)\b", 1.5),
    (r"\b(vorrei|volevo|ho un problema|il mio contratto|la mia bolletta)\b", -1.5),
)
_COMPILED = tuple((re.compile(p, re.IGNORECASE), w) for p, w in _CUES)


def _speaker_texts(words: Sequence[Word], early_s: float) -> dict[str, tuple[str, str]]:
    early: dict[str, list[str]] = {}
    late: dict[str, list[str]] = {}
    for w in words:
        (early if w.start < early_s else late).setdefault(w.speaker, []).append(w.text)
        late.setdefault(w.speaker, [])
        early.setdefault(w.speaker, [])
    return {s: (" ".join(early[s]), " ".join(late[s])) for s in early}


def cue_score(text: str) -> tuple[float, list[str]]:
    score, hits = 0.0, []
    for rx, weight in _COMPILED:
        for m in rx.finditer(text):
            score += weight
            hits.append(m.group(0))
    return score, hits


def decide_roles(
    words: Sequence[Word],
    speakers: Sequence[str],
    *,
    direction: str | None = None,
    early_s: float = 60.0,
) -> RoleDecision:
    """Pick the agent among `speakers` from their words; the others are customers."""
    speakers = list(speakers)
    if not speakers:
        return RoleDecision({}, "none", 0.0, "no speech")
    if len(speakers) == 1:
        return RoleDecision({speakers[0]: UNKNOWN}, "none", 0.0, "one speaker: roles cannot be told apart")
    texts = _speaker_texts(words, early_s)
    scores: dict[str, float] = {}
    evidence: dict[str, list[str]] = {}
    for s in speakers:
        early, late = texts.get(s, ("", ""))
        e_score, e_hits = cue_score(early)
        l_score, l_hits = cue_score(late)
        scores[s] = 2.0 * e_score + l_score
        evidence[s] = e_hits + l_hits
    first = min((w for w in words), key=lambda w: w.start, default=None)
    if first is not None and direction == "inbound":
        scores[first.speaker] = scores.get(first.speaker, 0.0) + 1.0  # inbound: the agent answers first
    ranked = sorted(speakers, key=lambda s: scores[s], reverse=True)
    agent, runner_up = ranked[0], ranked[1]
    margin = scores[agent] - scores[runner_up]
    if margin <= 0:
        return RoleDecision({s: UNKNOWN for s in speakers}, "none", 0.0,
                            f"no speaker sounds like the agent (scores {scores})")
    confidence = round(0.5 + 0.5 * (1.0 - math.exp(-margin / 3.0)), 3)  # margin 1 -> 0.64, 3 -> 0.82, 6 -> 0.93
    roles = {s: (AGENT if s == agent else CUSTOMER) for s in speakers}
    ev = "; ".join(evidence[agent][:4])
    return RoleDecision(roles, "greeting", confidence, f"{agent}: {ev} (score {scores[agent]:.1f} vs {scores[runner_up]:.1f})")


def roles_uncertain(decision: RoleDecision, n_speakers: int, options: RolesOptions = RolesOptions()) -> bool:
    """Whether a reviewer should check who is who (flag W006): the roles were told from what the speakers say
    with a confidence under `options.low_confidence` (config `roles.low_confidence`), or several speakers were
    heard and none sounded like the agent."""
    if decision.method == "greeting":
        return decision.confidence < options.low_confidence
    return n_speakers > 1 and decision.method == "none"


def roles_from_channel(agent_channel: str, speakers: Mapping[int, str], method: str) -> RoleDecision:
    """Configured agent side: left = channel 0, right = channel 1."""
    agent_ch = 0 if agent_channel == "left" else 1
    roles = {label: (AGENT if ch == agent_ch else CUSTOMER) for ch, label in speakers.items()}
    return RoleDecision(roles, method, 1.0, f"agent channel {agent_channel} from {method}")
