"""Sentiment per utterance and per party, the customer's trajectory, and escalation moments.

English: VADER with call-center vocabulary added (words whose polarity in a service call differs from general
text, or that VADER lacks). Italian: the project's own lexicon (defaults/sentiment_it.yaml) with negation and
intensifiers. Scores are VADER-style compound values in [-1, 1]. The thresholds (labels: positive >= 0.25, negative
<= -0.25; trajectory; escalations) are options of the config's `analysis` section (AnalysisOptions)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

import yaml

from qa_pipeline.config import DEFAULTS_DIR, AnalysisOptions
from qa_pipeline.types import CUSTOMER, Utterance

_DEFAULTS = AnalysisOptions()
LABELS = ("negative", "neutral", "positive")

# Added to VADER's lexicon: call-center words (valence -4..+4).
CALL_CENTER_LEXICON = {
    "unacceptable": -3.0, "ridiculous": -2.5, "outrageous": -3.0, "disgrace": -3.0, "disgraceful": -3.2,
    "useless": -2.5, "incompetent": -3.0, "complaint": -2.0, "complain": -2.0, "cancel": -1.2, "cancelled": -1.2,
    "overcharged": -2.5, "overcharge": -2.5, "refund": -0.8, "broken": -2.0, "faulty": -2.0, "outage": -2.0,
    "disconnected": -1.5, "waiting": -0.8, "waited": -1.2, "again": -0.3, "still": -0.3, "nobody": -1.0,
    "fed": -1.0, "sick": -1.5, "joke": -1.5, "scam": -3.5, "rip": -1.5, "hours": -0.3, "weeks": -0.3,
    "sorted": 1.8, "resolved": 2.0, "fixed": 1.8, "brilliant": 3.0, "lovely": 2.5, "perfect": 2.8,
    "helpful": 2.2, "appreciate": 2.2, "appreciated": 2.2, "cheers": 1.5, "wonderful": 3.0, "great": 2.5,
    "sorry": -0.3, "apologise": 0.5, "apologize": 0.5, "understand": 0.6, "ok": 0.2, "okay": 0.2, "yeah": 0.0,
    "fine": 0.5, "like": 0.0, "please": 0.3,
    # an answer, not a feeling: "no, that was it" to "anything else?" ends most calls (VADER: -0.30, a false
    # escalation after a neutral turn); "no" still negates the word after it ("no good", "no thanks")
    "no": 0.0,
    "credit": 0.0,  # a noun here (credit card, store credit), not praise (VADER: "my credit card" +0.38)
}


@dataclass(frozen=True, slots=True)
class UtteranceSentiment:
    utterance_index: int
    score: float  # compound, -1..1
    label: str


@dataclass(frozen=True, slots=True)
class PartySentiment:
    role: str
    mean: float
    start: float  # mean over the first third of the party's utterances
    end: float  # mean over the last third
    quarters: tuple[float | None, ...]  # mean per quarter of the call's duration (None: party silent there)
    trajectory: str  # improving / worsening / stable


@dataclass(frozen=True, slots=True)
class Escalation:
    utterance_index: int
    start_s: float
    end_s: float
    reason: str  # sharp drop / interrupted agent / louder voice
    score: float


class SentimentModel:
    """The sentiment lexicons, loaded once and passed in (AnalysisResources holds one): VADER with the call-center
    vocabulary for English, the project's own lexicon for Italian."""

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.vader = SentimentIntensityAnalyzer()
        self.vader.lexicon.update(CALL_CENTER_LEXICON)
        data = yaml.safe_load((DEFAULTS_DIR / "sentiment_it.yaml").read_text(encoding="utf-8"))
        self.it_exact = {k: float(v) for k, v in data["lexicon"].items() if not k.endswith("*")}
        self.it_stems = tuple((k[:-1], float(v)) for k, v in data["lexicon"].items() if k.endswith("*"))
        self.it_negators = frozenset(data["negators"])
        self.it_intensifiers = {k: float(v) for k, v in data["intensifiers"].items()}

    def score_text(self, text: str, language: str | None) -> float:
        if language == "it":
            return round(score_italian(text, self), 4)
        return round(self.vader.polarity_scores(text)["compound"], 4)


def _italian_valence(token: str, exact, stems) -> float | None:
    if token in exact:
        return exact[token]
    for stem, v in stems:
        if token.startswith(stem) and len(token) - len(stem) <= 2:
            return v
    return None


def score_italian(text: str, model: SentimentModel) -> float:
    exact, stems, negators, intensifiers = model.it_exact, model.it_stems, model.it_negators, model.it_intensifiers
    tokens = re.findall(r"[a-zàèéìòù']+", text.lower())
    total = 0.0
    after_but = False
    for i, tok in enumerate(tokens):
        if tok == "ma":
            after_but = True
            total *= 0.5  # what follows "ma" (but) weighs more
            continue
        v = _italian_valence(tok, exact, stems)
        if v is None:
            continue
        window = tokens[max(0, i - 3) : i]
        if any(t in negators for t in window):
            v *= -0.74
        if i > 0 and tokens[i - 1] in intensifiers:
            v *= intensifiers[tokens[i - 1]]
        if "!" in text:
            v *= 1.1
        total += v * (1.5 if after_but else 1.0)
    return total / math.sqrt(total * total + 15.0)  # VADER's normalisation, alpha = 15


def score_text(text: str, language: str | None, model: SentimentModel) -> float:
    return model.score_text(text, language)


def label_of(score: float, options: AnalysisOptions = _DEFAULTS) -> str:
    """positive / negative / neutral, by options.sentiment_positive and options.sentiment_negative."""
    if score >= options.sentiment_positive:
        return "positive"
    return "negative" if score <= options.sentiment_negative else "neutral"


def score_utterances(utterances: Sequence[Utterance], language: str | None,
                     model: SentimentModel, options: AnalysisOptions = _DEFAULTS) -> list[UtteranceSentiment]:
    out = []
    for u in utterances:
        s = model.score_text(u.text, language)
        out.append(UtteranceSentiment(u.index, s, label_of(s, options)))
    return out


def party_sentiment(utterances: Sequence[Utterance], scores: Sequence[UtteranceSentiment], role: str,
                    duration_s: float, options: AnalysisOptions = _DEFAULTS) -> PartySentiment | None:
    pairs = [(u, s.score) for u, s in zip(utterances, scores) if u.role == role]
    if not pairs:
        return None
    values = [v for _, v in pairs]
    third = max(1, len(values) // 3)
    start, end = sum(values[:third]) / third, sum(values[-third:]) / third
    quarters: list[float | None] = []
    q = max(duration_s, 1e-6) / 4
    for k in range(4):
        vs = [v for u, v in pairs if k * q <= (u.start + u.end) / 2 < (k + 1) * q or (k == 3 and (u.start + u.end) / 2 >= 4 * q)]
        quarters.append(round(sum(vs) / len(vs), 3) if vs else None)
    delta = end - start
    change = options.trajectory_change
    trajectory = "improving" if delta >= change else "worsening" if delta <= -change else "stable"
    return PartySentiment(role, round(sum(values) / len(values), 3), round(start, 3), round(end, 3), tuple(quarters), trajectory)


def escalations(utterances: Sequence[Utterance], scores: Sequence[UtteranceSentiment],
                loudness_db: Sequence[float | None] | None = None,
                options: AnalysisOptions = _DEFAULTS) -> list[Escalation]:
    """Moments where the customer escalates: a sharp drop in sentiment (options.escalation_drop) to a negative
    one, or a clearly louder voice (options.escalation_louder_db) saying something at least mildly negative (at or
    below half of options.sentiment_negative)."""
    drop, louder_db, negative = options.escalation_drop, options.escalation_louder_db, options.sentiment_negative
    out: list[Escalation] = []
    cust = [(i, u, s.score) for i, (u, s) in enumerate(zip(utterances, scores)) if u.role == CUSTOMER]
    prev = None
    for i, u, v in cust:
        if prev is not None and prev - v >= drop and v <= negative:
            out.append(Escalation(u.index, u.start, u.end, f"sentiment fell from {prev:+.2f} to {v:+.2f}", v))
        prev = v
    if loudness_db is not None:
        levels = [loudness_db[i] for i, _, _ in cust if loudness_db[i] is not None]
        if len(levels) >= 4:
            median = sorted(levels)[len(levels) // 2]
            for i, u, v in cust:
                lvl = loudness_db[i]
                if lvl is not None and lvl - median >= louder_db and v <= negative / 2:
                    out.append(Escalation(u.index, u.start, u.end, f"voice {lvl - median:.0f} dB louder than usual", v))
    out.sort(key=lambda e: e.start_s)
    return out
