"""Which speaker is the agent: from configuration or metadata, else from what each speaker says and does.

An agent answers with the service's phrases, asks for identification, offers help, runs the procedure and
closes; the customer states a need and answers. Each speaker gets a vector of features (below), and a linear
model scores it: score(s) = sum_k w_k * f_k(s). The agent is the best-scoring speaker; with two speakers the
probability that it really is the agent is sigmoid(score_a - score_b) (a softmax over the speakers with more),
and that probability is the decision's confidence. The weights are data (`qa_pipeline/defaults/roles_model.yaml`),
fitted by `bench/fit_roles.py` on real labelled customer-service dialogues, leave-one-dialogue-out
cross-validated and calibrated there; a low-confidence decision is flagged for review, never silently trusted.

Features of a speaker s (English and Italian phrases; counts enter as log(1 + n)):
    first_inbound / first_outbound   s spoke first, on an inbound / outbound call (the call's metadata)
    questions                        questions s asked
    answers                          turns where s answers the other party's question (yes, no, sure...)
    identification                   requests for the other's identity ("can I have your account number")
    help_offer                       offers of help ("how can I help", "is there anything else")
    service                          the service's own phrases ("thank you for calling", "let me check",
                                     "I'll transfer you", "your booking is confirmed")
    need                             need statements ("I want to", "I'd like to", "my bill", "I have a problem"),
                                     a called customer's objections ("who is this", "I'm not interested")
    script                           phrases of the call's script (its opening and closing phrase sets,
                                     company names), passed in by the caller
    you_vs_i                         (you - I) / (you + I + 2) over s's pronouns: agents talk about "you"
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from qa_pipeline.config import DEFAULTS_DIR, RolesOptions
from qa_pipeline.types import AGENT, CUSTOMER, UNKNOWN, RoleDecision, Word

ROLE_MODEL = DEFAULTS_DIR / "roles_model.yaml"
FEATURES = ("first_inbound", "first_outbound", "questions", "answers", "identification", "help_offer", "service",
            "need", "script", "you_vs_i")
TURN_GAP_S = 1.5  # a pause longer than this inside one speaker's words starts a new turn

# Phrase features: regular expressions on lower-cased text, English then Italian.
_PHRASES: dict[str, tuple[str, ...]] = {
    "identification": (
        r"\b(can|could|may) i (please )?(have|get|take|ask for|ask|confirm|verify|grab) (for )?(your|the)\b",
        r"\b(can|could|would|will) you (please )?(tell|give|confirm|verify|spell|provide|read) (me |us )?(out )?"
        r"(with )?(your|the (account|order|card|reference|number|name|postcode))\b",
        r"\bwhat('s| is) your (full )?(name|account|number|phone|email|e-mail|address|postcode|post code|zip|date"
        r" of birth|username|user name|id|order|reference|card|member|customer)",
        r"\b(your|the) (full name|date of birth|postcode|post code|zip code|account (number|id)|username|user name"
        r"|e-?mail address|phone number|order (id|number)|id number|customer number|membership number|security"
        r" (question|code|number)|last four digits)\b",
        r"\b(for (security|verification)( purposes)?|verify your (identity|account|details)|confirm your"
        r" (identity|name|address|details|date))\b",
        r"\b(am i speaking (with|to)|(is that|is this|are you) (mr|mrs|ms|miss|mister|dr)\b)",
        r"\b(parlo con|è (lei )?il signor|è (lei )?la signora|lei è il signor|lei è la signora)\b",
        r"\b(mi )?(può|puo'|potrebbe|potete) (dare|dire|confermare|indicare|fornire|comunicare|ripetere)"
        r" (il|la|i|le|un|una) (suo|sua|suoi|sue)\b",
        r"\b(il suo (nome|cognome|codice|numero)|la sua (data di nascita|email|e-mail|mail|matricola)|codice fiscale"
        r"|data di nascita|nome e cognome|verificare la sua identità|a chi è intestat)",
    ),
    "help_offer": (
        r"\bhow (can|may|could|might) (i|we) (help|assist|be of help)",
        r"\b(can|may|could) i help you\b",
        r"\bwhat can i do for you\b",
        r"\b(is there )?anything else (i|we) can (help|do|assist)",
        r"\bis there anything else\b",
        r"\b(please )?tell me (what|how) (you need|i can help|can i help)",
        r"\bhow (can|may) i direct your call\b",
        r"\bcome (posso|possiamo|potrei) (aiutarla|aiutarvi|aiutarti|esserle utile|esservi utile)",
        r"\b(posso|possiamo) (aiutarla|esserle utile) (in )?(qualcos|altro)",
        r"\bin cosa (posso|possiamo) (aiutarla|esserle utile)",
        r"\bc'è (qualcos'altro|altro) (che|in cui|per)\b",
        r"\b(le serve|ha bisogno di) (altro|qualcos'altro)\b",
        r"\bcosa posso fare per lei\b",
    ),
    "service": (
        r"\bthanks? (you )?for (calling|holding|waiting|your patience|choosing|contacting)\b",
        r"\bwelcome to\b",
        r"\byou('ve| have) reached\b",
        r"\byou('re| are) (speaking|through) (to|with)\b",
        r"\b(?<!are you )(?<!you're )calling (you )?(from|on behalf of)\b",
        r"\b(let me|i'll|i will|i'm going to|i am going to) (just )?(check|see|look|have a look|pull up|transfer"
        r"|put you|connect you|send|book|cancel|process|go ahead|update|verify|confirm)\b",
        r"\b(one moment|bear with me|please hold|hold the line|hold on (a|one) (second|moment))\b",
        r"\bi('ve| have) (just )?(booked|ordered|sent|cancelled|canceled|updated|made|reserved|processed|noted"
        r"|written down|issued|refunded|found|located|pulled up)\b",
        r"\b(your|the) (reservation|booking|order|request|refund|replacement|account|card|appointment) (is|has"
        r" been|was|will be) (confirmed|booked|processed|cancelled|canceled|updated|sent|on its way|shipped)",
        r"\b(reference|confirmation|ticket) number is\b",
        r"\byou('re| are) (very )?welcome\b",
        r"\bsorry (for|about) (the|your) (wait|inconvenience|delay|trouble)\b",
        r"\b(grazie|la ringrazio) (per aver chiamato|di aver chiamato|per l'attesa|per averci contattat)",
        r"\bbenvenut[oaie] (in|a|da|nel|nella|al|alla)\b",
        r"\b(resti|rimanga|attenda) in linea\b",
        r"\b(un (attimo|momento)|attenda un (attimo|momento))\b",
        r"\b(le |la )?(passo|trasferisco|metto in attesa|inoltro)\b",
        r"\b(verifico|controllo) (subito|un attimo|la sua|il suo)\b",
        r"\bho (appena )?(registrato|inviato|prenotato|annullato|aggiornato|inoltrato|aperto|emesso)\b",
        r"\b(la sua|il suo) (richiesta|pratica|prenotazione|ordine|rimborso|segnalazione) (è|e') (stat[oa] )?"
        r"(confermat|registrat|inoltrat|aperta|annullat|spedit)",
        r"\b(si figuri|di niente|prego)\b",
    ),
    "need": (
        r"\bi('d| would) like to\b",
        r"\bi('d| would) like (a|an|some|the)\b",
        r"\bi want(ed)? (to|a|an|some|the)\b",
        r"\bi need(ed)? (to|a|an|some|the|help|you)\b",
        r"\bi('m| am) (looking for|trying to)\b",
        r"\bi('m| am) calling (because|about my|regarding my|to (ask|complain|report|cancel|check|find out|see|get|"
        r"change|make|book|pay|query|dispute))\b",
        r"\bi was (wondering|hoping|calling)\b",
        r"\bi (have|had|got|'ve got) (a|an|some) (problem|issue|question|complaint|query)\b",
        r"\bi('ve| have) (lost|been charged|been trying|received|not received|never received)\b",
        r"\bmy (bill|account|card|credit card|debit card|order|refund|internet|phone|contract|payment|package"
        r"|parcel|password|booking|reservation|subscription|connection|line|statement|balance|delivery)\b",
        r"\bcan you (please )?(help|send|tell|give|check|book|find|cancel) (me|us)\b(?! your)",
        # a called customer's questions and objections
        r"\b(who is this|who's calling|who are you|which company|how did you get (my|this) number|take me off"
        r" your list|(i'm|i am) not interested|don't call (me )?again)\b",
        r"\b(chi parla|chi è lei|non (mi|sono) interess|come ha avuto il mio numero|non mi chiami più)",
        r"\b(vorrei|volevo|vorremmo)\b",
        r"\bho (un|bisogno|perso|ricevuto|un problema|una domanda)\b",
        r"\b(chiamo|telefono) (per|perché|perche|riguardo)\b",
        r"\bmi serv(e|ono|irebbe)\b",
        r"\b(il mio|la mia) (contratto|conto|ordine|abbonamento|bolletta|carta|fattura|linea|pratica|pacco"
        r"|rimborso|password)\b",
        r"\bnon (funziona|riesco|capisco|mi è arrivat)",
    ),
}
_COMPILED = {k: tuple(re.compile(p) for p in v) for k, v in _PHRASES.items()}
_QUESTION_OPENERS = re.compile(
    r"^(what|which|where|when|who|whom|whose|how|why|can|could|would|will|do|does|did|is|are|was|were|may|shall"
    r"|should|have|has|any|cosa|che cosa|come|quando|dove|perché|perche|chi|quale|quali|quanto|quanti|può|puo"
    r"|potrebbe|posso|ha|è|vuole|desidera)\b")
_ANSWER_OPENERS = re.compile(
    r"^(yes|yeah|yep|yup|no|nope|sure|okay|ok|right|correct|exactly|of course|certainly|absolutely|that's right"
    r"|sì|si|certo|esatto|va bene|d'accordo|giusto|certamente)\b")
_YOU = re.compile(r"\b(you|your|yours|yourself|you're|you've|you'll|you'd|lei|suo|sua|suoi|sue)\b")
_I = re.compile(r"\b(i|me|my|mine|myself|i'm|i've|i'll|i'd|io|mio|mia|miei|mie)\b")
_NOISE = re.compile(r"\[[^\]]*\]|<[^>]*>")


@dataclass(frozen=True, slots=True)
class RoleModel:
    """The weights of the role model (one per feature, calibrated: score differences are log-odds)."""

    weights: Mapping[str, float]
    version: str = "0"
    source: str = ""

    def score(self, features: Mapping[str, float]) -> float:
        return sum(self.weights.get(k, 0.0) * v for k, v in features.items())


def load_role_model(path: str | Path | None = None) -> RoleModel:
    """The role model's weights from `path` (default: the packaged, fitted `roles_model.yaml`)."""
    import yaml

    path = Path(path) if path is not None else ROLE_MODEL
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    weights = {str(k): float(v) for k, v in (data.get("weights") or {}).items()}
    unknown = set(weights) - set(FEATURES)
    if unknown:
        raise ValueError(f"{path}: unknown role features {sorted(unknown)}; known: {', '.join(FEATURES)}")
    return RoleModel(weights, str(data.get("version", "0")), str(path))


@dataclass(frozen=True, slots=True)
class Turn:
    speaker: str
    start: float
    end: float
    text: str


@dataclass
class SpeakerFeatures:
    """One speaker's features and the phrases behind them (evidence)."""

    values: dict[str, float] = field(default_factory=dict)
    evidence: dict[str, list[str]] = field(default_factory=dict)


def normalise(text: str) -> str:
    """Lower case, typographic apostrophes and tokenised contractions ("i ' m", "do n't") joined, noise tags out."""
    t = _NOISE.sub(" ", text.lower().replace("\u2019", "'").replace("`", "'"))
    t = re.sub(r"\s+'\s*(m|s|re|ve|ll|d|t)\b", r"'\1", t)
    t = re.sub(r"\s+n't\b", "n't", t)
    return re.sub(r"\s+", " ", t).strip()


def turns_from_words(words: Sequence[Word], gap_s: float = TURN_GAP_S) -> list[Turn]:
    """Consecutive words of one speaker (in time order, pauses up to `gap_s`) as turns."""
    turns: list[Turn] = []
    cur: list[Word] = []
    for w in sorted(words, key=lambda w: (w.start, w.end)):
        if cur and (w.speaker != cur[-1].speaker or w.start - cur[-1].end > gap_s):
            turns.append(Turn(cur[0].speaker, cur[0].start, cur[-1].end, " ".join(x.text.strip() for x in cur)))
            cur = []
        cur.append(w)
    if cur:
        turns.append(Turn(cur[0].speaker, cur[0].start, cur[-1].end, " ".join(x.text.strip() for x in cur)))
    return [t for t in turns if normalise(t.text)]


def _units(text: str) -> list[str]:
    """Sentences of a turn: split at . ? ! when the text is punctuated."""
    return [u for u in re.split(r"(?<=[.?!])\s+", text) if u.strip()]


def _is_question(unit: str, punctuated: bool) -> bool:
    u = unit.strip()
    if u.endswith("?"):
        return True
    return not punctuated and bool(_QUESTION_OPENERS.match(normalise(u)))


def _phrase_set(phrases: Sequence[str]) -> re.Pattern | None:
    """One regex for the caller's script phrases of three words or more: "hello", "thank you" or "good morning"
    are said by both parties (MultiWOZ users say "thank you" four times as often as the clerks)."""
    kept = sorted({normalise(p) for p in phrases if len(normalise(p).split()) >= 3}, key=len, reverse=True)
    if not kept:
        return None
    return re.compile(r"\b(" + "|".join(re.escape(p) for p in kept) + r")\b")


def speaker_features(turns: Sequence[Turn], speakers: Sequence[str], *, direction: str | None = None,
                     script_phrases: Sequence[str] = ()) -> dict[str, SpeakerFeatures]:
    """The features of every speaker in `speakers` from the call's turns (time-ordered)."""
    script_rx = _phrase_set(script_phrases)
    out = {s: SpeakerFeatures({k: 0.0 for k in FEATURES}) for s in speakers}
    counts = {s: {k: 0 for k in FEATURES} for s in speakers}
    pronouns = {s: [0, 0] for s in speakers}
    punctuated = any(re.search(r"[.?!]\s*$", t.text.strip()) for t in turns)
    prev: Turn | None = None
    prev_question = False
    for t in turns:
        if t.speaker not in out:
            prev, prev_question = t, False
            continue
        text = normalise(t.text)
        c, ev = counts[t.speaker], out[t.speaker].evidence
        for name, rxs in _COMPILED.items():
            for rx in rxs:
                for m in rx.finditer(text):
                    c[name] += 1
                    ev.setdefault(name, []).append(m.group(0))
        if script_rx is not None:
            for m in script_rx.finditer(text):
                c["script"] += 1
                ev.setdefault("script", []).append(m.group(0))
        units = _units(t.text)
        asked = [u for u in units if _is_question(u, punctuated)]
        c["questions"] += len(asked)
        if asked:
            ev.setdefault("questions", []).append(asked[0].strip()[:60])
        if prev is not None and prev.speaker != t.speaker and prev_question and _ANSWER_OPENERS.match(text):
            c["answers"] += 1
            ev.setdefault("answers", []).append(text[:30])
        pronouns[t.speaker][0] += len(_YOU.findall(text))
        pronouns[t.speaker][1] += len(_I.findall(text))
        prev, prev_question = t, bool(asked) and _is_question(units[-1], punctuated)
    first = next((t.speaker for t in turns if t.speaker in out), None)
    for s in speakers:
        v = out[s].values
        for k in ("questions", "answers", "identification", "help_offer", "service", "need", "script"):
            v[k] = math.log1p(counts[s][k])
        you, i = pronouns[s]
        v["you_vs_i"] = (you - i) / (you + i + 2)
        if s == first and direction in ("inbound", "outbound"):
            v[f"first_{direction}"] = 1.0
            out[s].evidence[f"first_{direction}"] = [f"spoke first on an {direction} call"]
    return out


def decide_roles(
    words: Sequence[Word],
    speakers: Sequence[str],
    *,
    direction: str | None = None,
    script_phrases: Sequence[str] = (),
    model: RoleModel | None = None,
) -> RoleDecision:
    """Pick the agent among `speakers` from their words; the others are customers.

    Args:
        direction: the call's direction from its metadata (inbound / outbound), if known.
        script_phrases: phrases of the call's script an agent says (opening and closing phrase sets, company
            names); the pipeline passes them (speech/ never reads the scripts itself).
        model: the weights (default: the packaged model).
    """
    return decide_roles_from_turns(turns_from_words(words), speakers, direction=direction,
                                   script_phrases=script_phrases, model=model)


def decide_roles_from_turns(turns: Sequence[Turn], speakers: Sequence[str], *, direction: str | None = None,
                            script_phrases: Sequence[str] = (), model: RoleModel | None = None) -> RoleDecision:
    """decide_roles on turns already grouped (imported or text-only dialogues)."""
    speakers = list(speakers)
    if not speakers:
        return RoleDecision({}, "none", 0.0, "no speech")
    if len(speakers) == 1:
        return RoleDecision({speakers[0]: UNKNOWN}, "none", 0.0, "one speaker: roles cannot be told apart")
    model = model or load_role_model()
    feats = speaker_features(turns, speakers, direction=direction, script_phrases=script_phrases)
    scores = {s: model.score(feats[s].values) for s in speakers}
    ranked = sorted(speakers, key=lambda s: scores[s], reverse=True)
    agent, runner_up = ranked[0], ranked[1]
    if scores[agent] - scores[runner_up] < 1e-9:
        return RoleDecision({s: UNKNOWN for s in speakers}, "none", 0.0,
                            f"no speaker sounds like the agent (scores {_fmt(scores)})")
    top = max(scores.values())
    z = sum(math.exp(v - top) for v in scores.values())
    confidence = round(1.0 / z, 3)  # softmax probability of the chosen speaker; sigmoid(margin) with two
    roles = {s: (AGENT if s == agent else CUSTOMER) for s in speakers}
    return RoleDecision(roles, "greeting", confidence, _evidence(agent, feats[agent], model, scores))


def _fmt(scores: Mapping[str, float]) -> str:
    return ", ".join(f"{s} {v:.2f}" for s, v in scores.items())


def _evidence(agent: str, f: SpeakerFeatures, model: RoleModel, scores: Mapping[str, float]) -> str:
    """The features that spoke most for the chosen agent, with a phrase each."""
    parts = sorted(((model.weights.get(k, 0.0) * v, k) for k, v in f.values.items()), reverse=True)
    said = []
    for contribution, k in parts[:4]:
        if contribution <= 0:
            break
        example = f.evidence.get(k, [""])[0]
        said.append(f"{k.replace('_', ' ')}" + (f" {example!r}" if example else ""))
    return f"{agent}: {'; '.join(said) or 'fewer customer cues'} (scores {_fmt(scores)})"


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
