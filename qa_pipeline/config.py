"""Options per stage as frozen dataclasses, and the YAML config file that sets them.

Unknown keys are an error (a typo must not silently fall back to a default)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from qa_pipeline.errors import ConfigError

# The packaged defaults (scripts, events, lexicons, rubric): one place names the folder.
DEFAULTS_DIR = Path(__file__).resolve().parent / "defaults"


@dataclass(frozen=True, slots=True)
class IngestOptions:
    manifest_name: str = "calls.csv"
    """Name of the manifest file looked up in the calls folder (one row per recording)."""
    filename_pattern: str | None = None
    """Regex with named groups (agent_id, team, campaign, direction, call_type, started_at, language, call_id)
    applied to a file's stem when neither manifest nor sidecar describes it."""
    audio_extensions: tuple[str, ...] = (".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a", ".aac", ".wma", ".webm")
    known_agents: tuple[str, ...] = ()
    """If set, an agent_id not in this list flags the call `unknown agent`."""


@dataclass(frozen=True, slots=True)
class AudioOptions:
    sample_rate: int = 16000
    min_duration_s: float = 1.0
    max_duration_s: float = 4 * 3600.0
    agent_channel: str = "auto"
    """left / right / auto (decided from who speaks the opening greeting)."""
    dual_mono_correlation: float = 0.98
    """Above this correlation the two channels are one signal: the call is handled as mono."""
    block_s: float = 600.0
    """Decode and analyse long calls in blocks of this many seconds (bounded memory)."""


@dataclass(frozen=True, slots=True)
class VadOptions:
    aggressiveness: int = 2
    """webrtcvad mode 0..3 (3 = most aggressive at rejecting non-speech)."""
    frame_ms: int = 30
    min_speech_ms: int = 250
    min_silence_ms: int = 400
    """Gaps shorter than this inside speech are bridged."""
    pad_ms: int = 150
    bleed_margin_db: float = 8.0
    """On stereo, a channel's frame counts as its own speech only if it is at least this many dB above what the
    other party's voice leaks into it at that moment (leak gain estimated per call); below is crosstalk."""
    min_level_db: float = -50.0
    """Frames quieter than this (dBFS) are never speech."""


@dataclass(frozen=True, slots=True)
class AsrOptions:
    english_model: str = "bundled:tiny.en"
    """`bundled:tiny.en`, or a path to any local CTranslate2 Whisper model folder."""
    multilingual_model: str = "bundled:base"
    device: str = "cpu"
    compute_type: str = "int8"
    cpu_threads: int = 0
    """0 = all cores."""
    beam_size: int = 1
    language: str | None = None
    """Default language when the metadata has none; None = detect with the multilingual model."""
    window_s: float = 28.0
    """Speech regions are packed into windows of at most this length (Whisper sees 30 s at a time)."""
    gap_s: float = 0.8
    """Silence put between packed regions so Whisper hears a boundary."""
    max_region_s: float = 25.0
    min_word_probability: float = 0.0
    hotwords: tuple[str, ...] = ()
    """Names and terms every call contains that Whisper would misspell: given to Whisper as hotwords."""
    company_hotwords: bool = False
    """Also give each call's `analysis.companies` names (its campaign's) to Whisper as hotwords. They come out
    spelt right ("Brightwave Energy", not "right with energy"), but with tiny.en on the demo calls ASR took 2-4x
    longer (temperature fallbacks) and once looped at a window's end: worth trying with larger models or a GPU."""


@dataclass(frozen=True, slots=True)
class MetricsOptions:
    hold_min_s: float = 20.0
    """A silence on both sides at least this long is a hold."""
    dead_air_min_s: float = 5.0
    interruption_min_overlap_s: float = 0.5
    """An overlap counts as an interruption when the newcomer talks over the other party this long."""
    monologue_gap_s: float = 1.0
    utterance_gap_s: float = 1.0
    """Words of one speaker separated by more than this start a new utterance."""


@dataclass(frozen=True, slots=True)
class AnalysisOptions:
    scripts_dir: str | None = None
    """Folder of the user's script YAML files (per campaign / call type); the defaults are always available."""
    forbidden_phrases: tuple[str, ...] = ()
    """Extra phrases the agent must never say (commercial secrets, banned words); flagged as critical."""
    dead_air_flag_s: float = 10.0
    low_transcript_probability: float = 0.6
    negative_ending: float = -0.4
    """Customer sentiment at the end of the call at or below this is flagged."""
    companies: Any = ()
    """Your company and brand names, as a list (every call) or a mapping campaign -> list (`"*"`: every call).
    Naming one of a call's names counts for the scripts' opening.company_name (also when ASR misspells it: names
    are compared on their letters too), and with asr.company_hotwords they steer the transcription. Per campaign:
    a name the call cannot contain only invites false matches (and, as a hotword, hallucinations)."""

    def __post_init__(self):
        object.__setattr__(self, "companies", _companies_by_campaign(self.companies))

    def companies_for(self, campaign: str | None) -> tuple[str, ...]:
        """The company names of a call of `campaign` (its own and the `"*"` ones)."""
        names: list[str] = []
        for key, values in self.companies:
            if key == "*" or key == campaign:
                names += [v for v in values if v not in names]
        return tuple(names)


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    ingest: IngestOptions = field(default_factory=IngestOptions)
    audio: AudioOptions = field(default_factory=AudioOptions)
    vad: VadOptions = field(default_factory=VadOptions)
    asr: AsrOptions = field(default_factory=AsrOptions)
    metrics: MetricsOptions = field(default_factory=MetricsOptions)
    analysis: AnalysisOptions = field(default_factory=AnalysisOptions)
    diarization: dict = field(default_factory=dict)
    """Keyword arguments of qa_pipeline.speech.diarization.DiarizationOptions."""
    workers: int = 1

    def hash(self) -> str:
        """Hash of every option that changes the outputs (not workers, not the ingest lookup)."""
        payload = {
            "audio": dataclasses.asdict(self.audio),
            "vad": dataclasses.asdict(self.vad),
            "asr": {k: v for k, v in dataclasses.asdict(self.asr).items() if k not in ("device", "cpu_threads")},
            "metrics": dataclasses.asdict(self.metrics),
            "diarization": {k: v for k, v in sorted(self.diarization.items()) if k not in ("device", "num_threads")},
            "hotwords": self.analysis.companies if self.asr.company_hotwords else [],  # they steer the transcription
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


    def analysis_hash(self) -> str:
        """Hash of the analysis options and the default scripts/lexicons: a change re-analyses stored transcripts
        without transcribing again."""
        from pathlib import Path as _P

        h = hashlib.sha256(json.dumps(dataclasses.asdict(self.analysis), sort_keys=True, default=str).encode())
        defaults = DEFAULTS_DIR
        files = sorted(defaults.rglob("*.yaml"))
        if self.analysis.scripts_dir:
            files += sorted(_P(self.analysis.scripts_dir).glob("*.y*ml"))
        for f in files:
            h.update(f.name.encode() + f.read_bytes())
        return h.hexdigest()[:12]


def _companies_by_campaign(value: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """`analysis.companies` as ((campaign or "*", names), ...): hashable, whatever form it was given in."""
    if value is None or (isinstance(value, (list, tuple, dict)) and not value):
        return ()
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)) and all(isinstance(v, tuple) and len(v) == 2 and isinstance(v[1], tuple)
                                                  for v in value) and value:
        items = value  # already normalised
    elif isinstance(value, (list, tuple)):
        items = [("*", value)]
    else:
        raise ConfigError(f"config [analysis] companies: expected a list of names or a mapping campaign -> list "
                          f"of names, got {type(value).__name__}")
    out = []
    for campaign, names in items:
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) and n.strip() for n in names):
            raise ConfigError(f"config [analysis] companies[{campaign!r}]: expected a list of non-empty names")
        out.append((str(campaign), tuple(n.strip() for n in names)))
    return tuple(out)


_SECTIONS = {
    "ingest": IngestOptions,
    "audio": AudioOptions,
    "vad": VadOptions,
    "asr": AsrOptions,
    "metrics": MetricsOptions,
    "analysis": AnalysisOptions,
}


def _build(cls, values: Any, where: str):
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping of options, got {type(values).__name__}")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(f"{where}: unknown option(s) {unknown}; accepted: {sorted(names)}")
    kwargs = {}
    for key, value in values.items():
        default = getattr(cls(), key)
        if isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> PipelineConfig:
    """Read a YAML config (every key optional) and return the PipelineConfig.

    Raises:
        ConfigError: the file is missing, not YAML, or has an unknown section or option.
    """
    data: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {p} is not valid YAML: {e}") from e
        if not isinstance(data, dict):
            raise ConfigError(f"config file {p}: top level must be a mapping of sections")
    for key, value in (overrides or {}).items():
        section, _, option = key.partition(".")
        data.setdefault(section, {})
        if option:
            data[section][option] = value
        else:
            data[section] = value
    allowed = set(_SECTIONS) | {"diarization", "workers"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"config: unknown section(s) {unknown}; accepted: {sorted(allowed)}")
    kwargs: dict[str, Any] = {name: _build(cls, data[name], f"config [{name}]") for name, cls in _SECTIONS.items() if name in data}
    if "diarization" in data:
        if not isinstance(data["diarization"], dict):
            raise ConfigError("config [diarization]: expected a mapping of options")
        kwargs["diarization"] = dict(data["diarization"])
    if "workers" in data:
        kwargs["workers"] = int(data["workers"])
    return PipelineConfig(**kwargs)
