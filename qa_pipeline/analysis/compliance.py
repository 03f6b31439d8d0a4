"""Script compliance: scripts as YAML data, matched against what the agent said, each result with its evidence.

A script has named phrase sets (equivalent phrasings of one requirement) and rules. Each rule requires `any`,
`all` or `none` of its phrase sets (and/or spaCy token patterns), optionally within the first `within_s` seconds or
the last `last_s` seconds of the conversation, and optionally `before` another rule. Matching runs on spaCy tokens
(PhraseMatcher on lower-cased text, Matcher for token patterns), then fuzzily (rapidfuzz) so that a phrase garbled
by ASR still counts, with a lower confidence."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import yaml

from qa_pipeline.config import DEFAULTS_DIR
from qa_pipeline.errors import ConfigError, Errors
from qa_pipeline.types import AGENT, CUSTOMER, Utterance

DEFAULT_SCRIPTS = DEFAULTS_DIR / "scripts"
REQUIRES = ("any", "all", "none")
SEVERITIES = ("info", "minor", "major", "critical")
_RULE_KEYS = {"id", "phase", "description", "require", "phrases", "patterns", "within_s", "last_s", "last_turns",
              "before", "severity", "applies_to", "speaker", "company_names"}
FUZZY_MIN_CHARS = 12
FUZZY_THRESHOLD = 90.0
# Company names are compared on their letters alone: ASR splits or glues an unknown name ("BrightwayVenergy",
# "right -wave energy", "Skyline Broadbent"). 85 keeps those and rejects ordinary phrases ("the right energy": 69).
COMPANY_LETTERS_THRESHOLD = 85.0
# With no company names configured, an agent who introduces an organisation ("this is X bank", "thank you for
# calling X", "welcome to X", "X, my name is"; "grazie per aver chiamato X", "sono Anna di X") satisfies a
# `company_names` rule with this lower confidence (method "organisation"): the name is not checked, only said.
ORGANISATION_CONFIDENCE = 0.7
ORGANISATION_NER_CONFIDENCE = 0.6  # an ORG entity (spaCy, cased English text) without an introduction cue


class ScriptError(ConfigError):
    code = "E610"


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    phase: str
    description: str
    require: str
    phrase_sets: tuple[str, ...] = ()
    patterns: tuple = ()
    within_s: float | None = None
    last_s: float | None = None
    last_turns: int | None = None  # only the speaker's last N utterances count (closings)
    before: str | None = None
    severity: str = "major"
    call_types: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    directions: tuple[str, ...] = ()
    speaker: str = AGENT
    company_names: bool = False


@dataclass(frozen=True, slots=True)
class Script:
    id: str
    version: str
    language: str
    phrases: dict
    rules: tuple[Rule, ...]
    companies: tuple[str, ...] = ()
    path: str = ""
    campaigns: tuple[str, ...] = ()  # empty: any campaign
    call_types: tuple[str, ...] = ()  # empty: any call type


@dataclass(frozen=True, slots=True)
class Match:
    utterance_index: int
    start_s: float
    end_s: float
    text: str
    confidence: float
    method: str  # phrase / pattern / fuzzy
    phrase_set: str


@dataclass(frozen=True, slots=True)
class ComplianceResult:
    rule_id: str
    phase: str
    result: str  # passed / failed / not_applicable
    severity: str
    reason: str
    evidence: tuple[Match, ...] = field(default_factory=tuple)
    confidence: float = 1.0


def _check_patterns(path: Path, rules: list[tuple[int | None, str, list]]) -> None:
    """Compile a script's token patterns (line, rule id, patterns) once at load time, so a bad one is reported with
    its file and line. One blank vocabulary for the whole script (building one costs about 50 ms)."""
    from qa_pipeline.analysis.nlp import import_spacy

    spacy = import_spacy()
    from spacy.errors import MatchPatternError
    from spacy.matcher import Matcher

    matcher = Matcher(spacy.blank("xx").vocab)
    for line, rid, patterns in rules:
        try:
            matcher.add(rid, patterns)
        except (MatchPatternError, ValueError) as e:
            raise _fail(path, line, f"rule {rid!r}: invalid token pattern ({str(e).strip().splitlines()[-1]}); "
                        "note that YAML reads unquoted on/off/yes/no as booleans: quote them") from e


def _fail(path: Path, line: int | None, problem: str) -> ScriptError:
    where = f"{path}:{line}" if line else str(path)
    return ScriptError(Errors.E610, where=where, problem=problem)


def load_script(path: str | Path) -> Script:
    """Read and validate a script file.

    Raises:
        ScriptError: with the file, the line and the problem.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML has it: 6x faster
        root = yaml.compose(text, Loader=loader)
        data = yaml.load(text, Loader=loader)
    except OSError as e:
        raise _fail(path, None, f"cannot be read ({e})") from e
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        raise _fail(path, None if line is None else line + 1, f"not valid YAML ({getattr(e, 'problem', e)})") from e
    if not isinstance(data, dict):
        raise _fail(path, 1, "top level must be a mapping with script, version, language, phrases, rules")
    lines: dict[int, int] = {}
    for key_node, value_node in getattr(root, "value", []):
        if getattr(key_node, "value", None) == "rules" and hasattr(value_node, "value"):
            lines = {i: item.start_mark.line + 1 for i, item in enumerate(value_node.value)}
    for key in ("script", "language", "rules"):
        if key not in data:
            raise _fail(path, 1, f"missing top-level key {key!r}")
    phrases_raw = data.get("phrases") or {}
    if not isinstance(phrases_raw, dict):
        raise _fail(path, None, "'phrases' must map a name to a list of phrases")
    phrases = {}
    for name, values in phrases_raw.items():
        if not isinstance(values, list) or not all(isinstance(v, (str, int, float)) for v in values):
            raise _fail(path, None, f"phrase set {name!r} must be a list of strings")
        phrases[str(name)] = tuple(str(v).lower() for v in values)
    rules = []
    seen = set()
    with_patterns: list[tuple[int | None, str, list]] = []
    if not isinstance(data["rules"], list):
        raise _fail(path, None, "'rules' must be a list")
    for i, raw in enumerate(data["rules"]):
        line = lines.get(i)
        if not isinstance(raw, dict):
            raise _fail(path, line, f"rule {i} must be a mapping")
        unknown = set(raw) - _RULE_KEYS
        if unknown:
            raise _fail(path, line, f"rule {raw.get('id', i)!r} has unknown key(s) {sorted(unknown)}; "
                                    f"accepted: {sorted(_RULE_KEYS)}")
        rid = raw.get("id")
        if not rid or not isinstance(rid, str):
            raise _fail(path, line, f"rule {i} needs an 'id'")
        if rid in seen:
            raise _fail(path, line, f"rule id {rid!r} is used twice")
        seen.add(rid)
        require = raw.get("require", "any")
        if require not in REQUIRES:
            raise _fail(path, line, f"rule {rid!r}: require must be one of {REQUIRES}, not {require!r}")
        severity = raw.get("severity", "major")
        if severity not in SEVERITIES:
            raise _fail(path, line, f"rule {rid!r}: severity must be one of {SEVERITIES}, not {severity!r}")
        sets = raw.get("phrases") or []
        if not isinstance(sets, list):
            raise _fail(path, line, f"rule {rid!r}: phrases must be a list of phrase-set names or phrases")
        patterns = raw.get("patterns") or []
        well_formed = all(isinstance(p, list) and p and all(isinstance(t, dict) for t in p) for p in patterns or [])
        if not isinstance(patterns, list) or not well_formed:
            raise _fail(path, line, f"rule {rid!r}: patterns must be a list of spaCy token patterns (lists of dicts)")
        if patterns:
            with_patterns.append((line, rid, patterns))
        if not sets and not patterns:
            raise _fail(path, line, f"rule {rid!r} has neither phrases nor patterns")
        if raw.get("last_turns") is not None and (not isinstance(raw["last_turns"], int) or raw["last_turns"] < 1):
            raise _fail(path, line, f"rule {rid!r}: last_turns must be a whole number >= 1")
        for key in ("within_s", "last_s"):
            if raw.get(key) is not None and not isinstance(raw[key], (int, float)):
                raise _fail(path, line, f"rule {rid!r}: {key} must be a number of seconds")
        applies = raw.get("applies_to") or {}
        if not isinstance(applies, dict) or set(applies) - {"call_types", "events", "direction"}:
            raise _fail(path, line, f"rule {rid!r}: applies_to accepts call_types, events, direction")
        direction = applies.get("direction")
        rules.append(Rule(
            id=rid, phase=str(raw.get("phase", rid.split(".")[0])), description=str(raw.get("description", "")),
            require=require, phrase_sets=tuple(str(s).lower() if str(s) not in phrases else str(s) for s in sets),
            patterns=tuple(patterns), within_s=raw.get("within_s"), last_s=raw.get("last_s"),
            last_turns=raw.get("last_turns"),
            before=raw.get("before"), severity=severity,
            call_types=tuple(applies.get("call_types") or ()), events=tuple(applies.get("events") or ()),
            directions=tuple([direction] if isinstance(direction, str) else (direction or ())),
            speaker=str(raw.get("speaker", AGENT)), company_names=bool(raw.get("company_names", False)),
        ))
    if with_patterns:
        _check_patterns(path, with_patterns)
    ids = {r.id for r in rules}
    for r in rules:
        if r.before and r.before not in ids:
            line = lines.get([x.id for x in rules].index(r.id))
            raise _fail(path, line, f"rule {r.id!r}: before refers to unknown rule {r.before!r}")
    companies = tuple(str(c).lower() for c in (data.get("companies") or ()))
    for key in ("campaigns", "call_types"):
        if data.get(key) is not None and not isinstance(data[key], list):
            raise _fail(path, None, f"{key!r} must be a list")
    return Script(id=str(data["script"]), version=str(data.get("version", "1")), language=str(data["language"]),
                  phrases=phrases, rules=tuple(rules), companies=companies, path=str(path),
                  campaigns=tuple(str(c) for c in data.get("campaigns") or ()),
                  call_types=tuple(str(c) for c in data.get("call_types") or ()))


def select_script(scripts: Sequence[Script], *, language: str | None, campaign: str | None,
                  call_type: str | None) -> Script:
    """The most specific script for the call's language, campaign and call type; else the language default."""
    lang = language or "en"
    best, best_score = None, -1
    for sc in scripts:
        if sc.language != lang:
            continue
        if sc.campaigns and campaign not in sc.campaigns:
            continue
        if sc.call_types and call_type not in sc.call_types:
            continue
        score = 2 * bool(sc.campaigns) + bool(sc.call_types)
        if score > best_score:
            best, best_score = sc, score
    if best is not None:
        return best
    lang = lang if (DEFAULT_SCRIPTS / f"{lang}.yaml").is_file() else "en"
    # the packaged default of that language, from `scripts` when it is there (load_scripts adds the defaults)
    default = next((sc for sc in scripts if sc.path == str(DEFAULT_SCRIPTS / f"{lang}.yaml")), None)
    return default or default_script(lang)


def load_scripts(folder: str | Path | None) -> tuple[Script, ...]:
    """Every *.yaml script of `folder` (validated), plus the defaults."""
    defaults = tuple(load_script(p) for p in sorted(DEFAULT_SCRIPTS.glob("*.yaml")))
    if folder is None:
        return defaults
    folder = Path(folder)
    if not folder.is_dir():
        raise ScriptError(Errors.E611, folder=folder)
    return tuple(load_script(p) for p in sorted(folder.glob("*.y*ml"))) + defaults


def default_script(language: str) -> Script:
    path = DEFAULT_SCRIPTS / f"{language}.yaml"
    if not path.is_file():
        path = DEFAULT_SCRIPTS / "en.yaml"
    return load_script(path)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s']", " ", text.lower())).strip()


class ScriptMatcher:
    """spaCy matchers built once per (script, nlp).

    `ner`: what gives the English entity recogniser for the company-name fallback when it is first needed
    (AnalysisResources passes its shared pipelines' `entities`); None: no recogniser (organisation nouns only)."""

    def __init__(self, script: Script, nlp, ner: Callable[[], object] | None = None):
        from spacy.matcher import Matcher, PhraseMatcher

        self.script = script
        self.nlp = nlp
        self._load_ner = ner or (lambda: None)
        self.phrase_matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
        self.token_matcher = Matcher(nlp.vocab)
        self.set_phrases: dict[str, tuple[str, ...]] = {}
        self.exact_only: set[str] = set()
        for rule in script.rules:
            for s in rule.phrase_sets:
                self.set_phrases[s] = script.phrases.get(s, (s,))
                if rule.require == "none":
                    # a fuzzy hit on a forbidden phrase is too often its negation ("no problem" ~ "my problem")
                    self.exact_only.add(s)
            if rule.company_names and script.companies:
                self.set_phrases[f"{rule.id}#companies"] = script.companies
            if rule.patterns:
                self.token_matcher.add(f"{rule.id}#patterns", [list(p) for p in rule.patterns])
        for name, values in self.set_phrases.items():
            self.phrase_matcher.add(name, list(nlp.tokenizer.pipe(values)))
        self._fuzzy_index: dict[str, list[tuple[str, str]]] = {}
        for name, values in self.set_phrases.items():
            if name in self.exact_only:
                continue
            for phrase in values:
                if len(phrase) >= FUZZY_MIN_CHARS:
                    for w in {w for w in _norm(phrase).split() if len(w) >= 4}:
                        self._fuzzy_index.setdefault(w, []).append((name, phrase))
        self._company_sets = [n for n in self.set_phrases if n.endswith("#companies")]
        # only patterns on lemmas or tags need the full pipeline; plain tokens are many times faster
        tagged = {"LEMMA", "POS", "TAG", "MORPH", "DEP", "ENT_TYPE"}
        self.needs_tags = any(tagged & set(tok) for r in script.rules for p in r.patterns for tok in p)
        self._ner = None  # see organisation_ner
        self._ner_lock = threading.Lock()

    def organisation_ner(self):
        """An English entity recogniser for the company-name fallback (loaded on first use, only when a script
        with no company names meets an English call; None for other languages or without the model)."""
        if self.script.language != "en" or getattr(self.nlp, "lang", "en") != "en":
            return None
        with self._ner_lock:
            if self._ner is None:
                self._ner = self._load_ner() or False
            return self._ner or None

    def docs(self, texts: Sequence[str]) -> list:
        return list(self.nlp.pipe(texts) if self.needs_tags else self.nlp.tokenizer.pipe(texts))

    def rule_sets(self, rule: Rule) -> list[str]:
        sets = list(rule.phrase_sets)
        if rule.company_names and self.script.companies:
            sets.append(f"{rule.id}#companies")
        if rule.patterns:
            sets.append(f"{rule.id}#patterns")
        return sets

    def find(self, docs: Sequence, utterances: Sequence[Utterance]) -> dict[str, list[Match]]:
        """All matches of every phrase set and pattern group, per set name."""
        from rapidfuzz import fuzz

        found: dict[str, list[Match]] = {}
        strings = self.nlp.vocab.strings
        for doc, u in zip(docs, utterances):
            hit_sets = set()
            for matcher, method in ((self.phrase_matcher, "phrase"), (self.token_matcher, "pattern")):
                if len(matcher) == 0:
                    continue
                for match_id, s, e in matcher(doc):
                    name = strings[match_id]
                    span = doc[s:e]
                    found.setdefault(name, []).append(_match(u, span.start_char, span.end_char, 1.0, method, name, u.text))
                    hit_sets.add(name)
            norm = _norm(u.text)
            # fuzzy candidates: phrases sharing one exact content word with the utterance (an inverted index keeps
            # this proportional to the utterance's words, not to the number of phrases)
            candidates: dict[str, list[str]] = {}
            for w in set(norm.split()):
                for name, phrase in self._fuzzy_index.get(w, ()):
                    if name not in hit_sets and len(norm) >= len(phrase) * 0.8:
                        candidates.setdefault(name, [])
                        if phrase not in candidates[name]:
                            candidates[name].append(phrase)
            for name, phrases in candidates.items():
                for phrase in phrases:
                    al = fuzz.partial_ratio_alignment(phrase, norm, score_cutoff=FUZZY_THRESHOLD)
                    if al is not None and (al.dest_end - al.dest_start) >= 0.9 * len(phrase) and \
                            (al.src_end - al.src_start) >= 0.9 * len(phrase):
                        found.setdefault(name, []).append(
                            _match(u, al.dest_start, al.dest_end, round(al.score / 100, 3), "fuzzy", name, norm))
                        hit_sets.add(name)
                        break
            for name in self._company_sets:
                if name not in hit_sets:
                    m = self._company_by_letters(name, u, norm)
                    if m is not None:
                        found.setdefault(name, []).append(m)
        for matches in found.values():
            matches.sort(key=lambda m: m.start_s)
        return found


    def _company_by_letters(self, name: str, u: Utterance, norm: str) -> Match | None:
        """A company name found in `norm` when their letters alone agree (spaces, hyphens and case ignored)."""
        from rapidfuzz import fuzz

        positions = [i for i, ch in enumerate(norm) if ch.isalpha()]
        letters = "".join(norm[i] for i in positions)
        for company in self.set_phrases[name]:
            target = "".join(ch for ch in company if ch.isalpha())
            if len(target) < 6 or len(letters) < 0.8 * len(target):
                continue
            al = fuzz.partial_ratio_alignment(target, letters, score_cutoff=COMPANY_LETTERS_THRESHOLD)
            if al is not None and al.dest_end - al.dest_start >= 0.85 * len(target):
                start, end = positions[al.dest_start], positions[al.dest_end - 1] + 1
                return _match(u, start, end, round(al.score / 100 * 0.9, 3), "fuzzy", name, norm)
        return None


def _match(u: Utterance, start_char: int, end_char: int, confidence: float, method: str, name: str,
           text: str) -> Match:
    n = max(1, len(text))
    dur = u.end - u.start
    # the words' own times are not carried here: the span is placed proportionally inside the utterance
    s = u.start + dur * start_char / n
    e = u.start + dur * end_char / n
    return Match(u.index, round(s, 2), round(max(e, s), 2), text[start_char:end_char], confidence, method, name)


def check_compliance(
    script: Script,
    matcher: ScriptMatcher,
    utterances: Sequence[Utterance],
    docs: Sequence,
    *,
    call_type: str | None,
    direction: str | None,
    events: set[str],
) -> list[ComplianceResult]:
    """Evaluate every rule of `script` on the call's utterances (docs = nlp docs of the same utterances)."""
    roles_known = any(u.role in (AGENT, CUSTOMER) for u in utterances)
    first = min((u.start for u in utterances), default=0.0)
    last = max((u.end for u in utterances), default=0.0)
    cache: dict[str, dict[str, list[Match]]] = {}

    turns_of: dict[str, list[int]] = {}
    for u in utterances:
        turns_of.setdefault(u.role, []).append(u.index)

    def matches_for(speaker: str) -> dict[str, list[Match]]:
        if speaker not in cache:
            idx = [i for i, u in enumerate(utterances) if u.role == speaker]
            cache[speaker] = matcher.find([docs[i] for i in idx], [utterances[i] for i in idx])
        return cache[speaker]

    results: dict[str, ComplianceResult] = {}
    first_match: dict[str, Match] = {}
    for rule in script.rules:
        scope = _applies(rule, call_type, direction, events)
        if scope:
            results[rule.id] = ComplianceResult(rule.id, rule.phase, "not_applicable", rule.severity, scope)
            continue
        if not roles_known:
            results[rule.id] = ComplianceResult(rule.id, rule.phase, "not_applicable", rule.severity,
                                                "speaker roles unknown: cannot tell what the agent said")
            continue
        found = matches_for(rule.speaker)

        last_turns = set(turns_of.get(rule.speaker, [])[-rule.last_turns:]) if rule.last_turns else None

        def in_window(m: Match) -> bool:
            if rule.within_s is not None and m.start_s > first + rule.within_s:
                return False
            if last_turns is not None and m.utterance_index not in last_turns:
                return False
            if rule.last_s is not None and m.end_s < last - rule.last_s:
                return False
            return True

        per_set = {s: [m for m in found.get(s, []) if in_window(m)] for s in matcher.rule_sets(rule)}
        if rule.company_names and not matcher.script.companies:
            per_set = _organisation_fallback(rule, per_set, matcher, utterances, in_window)
        window = _window_text(rule)
        if rule.require == "none":
            bad = sorted((m for ms in per_set.values() for m in ms), key=lambda m: m.start_s)
            if bad:
                results[rule.id] = ComplianceResult(rule.id, rule.phase, "failed", rule.severity,
                                                    f"said {bad[0].text!r}{window}", tuple(bad[:3]), bad[0].confidence)
            else:
                results[rule.id] = ComplianceResult(rule.id, rule.phase, "passed", rule.severity, "none said")
            continue
        if rule.require == "all":
            # patterns are alternatives to the phrase sets, not a further requirement
            sets = [s for s in per_set if not s.endswith("#patterns") and not s.endswith("#companies")]
            missing = [s for s in sets if not per_set[s]]
            if missing:
                results[rule.id] = ComplianceResult(rule.id, rule.phase, "failed", rule.severity,
                                                    f"missing {', '.join(missing)}{window}",
                                                    tuple(per_set[s][0] for s in sets if per_set[s]))
                continue
            evidence = tuple(per_set[s][0] for s in sets)
        else:
            hits = sorted((m for ms in per_set.values() for m in ms),
                          key=lambda m: (-m.confidence, m.start_s if rule.last_s is None else -m.start_s))
            if not hits:
                results[rule.id] = ComplianceResult(rule.id, rule.phase, "failed", rule.severity,
                                                    f"not said{window}")
                continue
            evidence = (hits[0],)
        first_match[rule.id] = min(evidence, key=lambda m: m.start_s)
        confidence = min(m.confidence for m in evidence)
        note = ORGANISATION_NOTE if all(m.method == "organisation" for m in evidence) else ""
        results[rule.id] = ComplianceResult(rule.id, rule.phase, "passed", rule.severity,
                                            "said " + "; ".join(repr(m.text) for m in evidence) + note, evidence,
                                            confidence)
    # order constraints: this rule's first match must come before the other rule's
    for rule in script.rules:
        r = results[rule.id]
        if rule.before and r.result == "passed" and rule.before in first_match:
            other = first_match[rule.before]
            mine = first_match[rule.id]
            if mine.start_s > other.start_s:
                results[rule.id] = ComplianceResult(
                    rule.id, rule.phase, "failed", rule.severity,
                    f"said at {mine.start_s:.1f} s, after {rule.before} at {other.start_s:.1f} s",
                    (mine, other), r.confidence)
    return [results[r.id] for r in script.rules]


ORGANISATION_NOTE = " (an organisation named; no company names configured: set analysis.companies to check them)"
_ORG_NOUNS = frozenset("""
bank banking banca energy energia power electric electricity gas luce water utilities insurance assurance
assicurazioni telecom telecoms telecomunicazioni communications mobile wireless broadband fibra internet cable
airlines airline airways travel holidays hotels motors group gruppo company compagnia co inc ltd limited plc llc
spa srl corporation corp services service servizio servizi solutions financial finance credit union savings loans
mortgages mortgage health healthcare pharmacy clinic hospital university council department agency store stores
shop retail support helpdesk assistenza care national international trust capital investments securities logistics
express post poste courier rail railways transport software technologies tech systems network networks media tv
""".split())
# words that end a candidate name: what follows an introduction that is not part of it
_ORG_STOP = frozenset("""
my i i'm we we're you your how what can may could this that today again us our me and so please to for with in
on at about here now just have has had a an is are was it it's be will would hello hi good morning afternoon
evening speaking calling name oggi mi sono come posso il la le lo per con sua suo buongiorno buonasera salve
grazie e
""".split())
_ORG_LEADING = frozenset("the il la lo l' i gli".split())  # a determiner may open a name ("the Harper Valley Bank")
# (cue, strong): after a strong cue (True) any name counts; after a weak one (False) it needs an organisation noun
# or an ORG entity; after a preposition (None: "Mark from X", "Marco di X") a capitalised name counts too
_ORG_AFTER = tuple((re.compile(p, re.IGNORECASE), strong) for p, strong in (
    (r"\bthanks? (?:you )?for (?:calling|contacting|choosing|ringing)\s+", True),
    (r"\bwelcome to\s+", True),
    (r"\byou(?:'ve| have) reached\s+", True),
    (r"\b(?:calling|ringing) (?:you )?(?:from|on behalf of)\s+", True),
    (r"\b(?:here at|on behalf of)\s+", True),
    (r"\b(?:this is|it's|it is)\s+", False),
    (r"\b(?:from|at|with)\s+", None),  # "this is Mark from X": X capitalised, or an organisation noun
    (r"\bgrazie (?:per aver|di aver|per averci) (?:chiamato|contattato|scelto)\s+", True),
    (r"\bbenvenut[oaie] (?:in|a|da|nel|nella|al|alla|presso)\s+", True),
    (r"\b(?:la chiamo|la contatto|chiamo) (?:da|per conto di)\s+", True),
    (r"\bper conto di\s+", True),
    (r"\bsono [a-zà-ù]+ (?:di|da|della|del|dell')\s*", None),
    (r"\b(?:qui|questa è|questo è|è)\s+", False),
))
# "X, my name is" / "X buongiorno" / "X, sono Anna": the words before the cue, after a greeting
_ORG_BEFORE = re.compile(r"[,.]?\s*\b(?:my name is|buongiorno|buonasera|sono [a-zà-ù]+\b)", re.IGNORECASE)
_ORG_GREETING = re.compile(r"^\W*(?:(?:hello|hi|hey|good (?:morning|afternoon|evening)|buongiorno|buonasera|salve|"
                           r"pronto|thanks? (?:you )?for (?:calling|holding)|and|yes|sì|si|this is|it's)\W+)*",
                           re.IGNORECASE)


def _name_after(text: str, pos: int) -> tuple[int, int] | None:
    """The span of a name starting at `pos`: up to 5 words, ended by punctuation or a stop word."""
    words = list(re.finditer(r"[\w'&.-]+|[,;:!?]", text[pos:]))
    span: list[re.Match] = []
    for i, w in enumerate(words[:6]):
        token = w.group(0).lower().strip(".")
        if not token or token in ",;:!?" or (token in _ORG_STOP and not (i == 0 and token in _ORG_LEADING)):
            break
        if i == 0 and token in _ORG_LEADING:
            continue
        span.append(w)
        if len(span) == 5:
            break
    if not span:
        return None
    end = pos + span[-1].end()
    while text[end - 1] == ".":
        end -= 1
    return pos + span[0].start(), end


def _name_before(text: str, end: int) -> tuple[int, int] | None:
    """The span of a name just before `end` (the cue), after the utterance's greeting words."""
    head = text[:end]
    start = _ORG_GREETING.match(head).end()
    # only the clause just before the cue
    start = max(start, max((head.rstrip(" ,.").rfind(c) + 1 for c in ",.?!;"), default=0))
    words = [w for w in re.finditer(r"[\w'&.-]+", head[start:])]
    if not words or len(words) > 5 or any(w.group(0).lower() in _ORG_STOP for w in words):
        return None
    return start + words[0].start(), start + words[-1].end()


def _has_org_noun(name: str) -> bool:
    return any(w.strip(".").lower() in _ORG_NOUNS for w in re.findall(r"[\w'&.-]+", name))


def organisation_mentions(text: str, ner=None) -> list[tuple[int, int, float]]:
    """Where `text` introduces an organisation: (start, end, confidence) of each name, best first.

    Args:
        ner: a spaCy pipeline with an entity recogniser (English), used on cased text to tell an organisation
            ("this is Brightwave") from a person ("this is Laura"); None: organisation nouns only.
    """
    found: list[tuple[int, int, float]] = []
    ents = None

    def entity(a: int, b: int) -> str | None:
        nonlocal ents
        if ner is None or text == text.lower():
            return None
        if ents is None:
            ents = [(e.start_char, e.end_char, e.label_) for e in ner(text).ents]
        labels = [lab for s, e, lab in ents if s < b and e > a]
        if "PERSON" in labels and not {"ORG", "FAC", "PRODUCT"} & set(labels):
            return "PERSON"
        return next((lab for lab in labels if lab in ("ORG", "FAC", "PRODUCT", "GPE")), None)

    for rx, strong in _ORG_AFTER:
        for m in rx.finditer(text):
            span = _name_after(text, m.end())
            if span is None:
                continue
            name = text[span[0]:span[1]]
            kind = entity(*span)
            if kind == "PERSON" and not strong and not _has_org_noun(name):
                continue
            titled = strong is None and kind != "PERSON" and name[:1].isupper() and text != text.lower()
            if strong or titled or _has_org_noun(name) or kind in ("ORG", "FAC", "PRODUCT"):
                found.append((span[0], span[1], ORGANISATION_CONFIDENCE))
    for m in _ORG_BEFORE.finditer(text):
        span = _name_before(text, m.start())
        if span is None:
            continue
        name = text[span[0]:span[1]]
        kind = entity(*span)
        if _has_org_noun(name) or kind in ("ORG", "FAC", "PRODUCT"):
            found.append((span[0], span[1], ORGANISATION_CONFIDENCE))
    if ner is not None and text != text.lower():
        entity(0, 0)
        for s, e, label in ents or ():
            if label == "ORG":
                found.append((s, e, ORGANISATION_NER_CONFIDENCE))
    return sorted(set(found), key=lambda f: (-f[2], f[0]))


def _organisation_fallback(rule: Rule, per_set: dict[str, list[Match]], matcher: "ScriptMatcher",
                           utterances: Sequence[Utterance], in_window) -> dict[str, list[Match]]:
    """No company names configured: the rule's own phrase and pattern hits, and any organisation the agent
    introduces in the window, count as naming the company with a lower confidence (method "organisation")."""
    out = {name: [_as_organisation(m) for m in ms] for name, ms in per_set.items()}
    ner = matcher.organisation_ner()
    hits: list[Match] = []
    for u in utterances:
        if u.role != rule.speaker:
            continue
        probe = Match(u.index, u.start, u.end, "", 1.0, "organisation", "")
        if not in_window(probe):
            continue
        for s, e, confidence in organisation_mentions(u.text, ner)[:1]:
            hits.append(_match(u, s, e, confidence, "organisation", f"{rule.id}#organisation", u.text))
    out[f"{rule.id}#organisation"] = [m for m in hits if in_window(m)]
    return out


def _as_organisation(m: Match) -> Match:
    return Match(m.utterance_index, m.start_s, m.end_s, m.text, min(m.confidence, ORGANISATION_CONFIDENCE),
                 "organisation", m.phrase_set)


def _window_text(rule: Rule) -> str:
    if rule.last_turns is not None:
        return f" in the {rule.speaker}'s last {rule.last_turns} turns"
    if rule.within_s is not None:
        return f" within the first {rule.within_s:g} s"
    if rule.last_s is not None:
        return f" in the last {rule.last_s:g} s"
    return ""


def _applies(rule: Rule, call_type: str | None, direction: str | None, events: set[str]) -> str:
    """Empty string when the rule applies, else why not."""
    if rule.directions and direction and direction not in rule.directions:
        return f"only for {'/'.join(rule.directions)} calls"
    if rule.events and events & set(rule.events):
        return ""
    if rule.call_types:
        if call_type is None:
            return f"call type unknown; rule is for {', '.join(rule.call_types)}"
        if call_type not in rule.call_types:
            return f"only for {', '.join(rule.call_types)} calls"
    elif rule.events:
        return f"only when {', '.join(rule.events)}"
    return ""
