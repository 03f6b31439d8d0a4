"""Options per stage as frozen dataclasses, and the YAML config file that sets them.

Unknown keys are an error (a typo must not silently fall back to a default)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from qa_pipeline.errors import ConfigError, DiarizationError, Errors, QAPipelineError

# The packaged defaults (scripts, events, lexicons, rubric): one place names the folder.
DEFAULTS_DIR = Path(__file__).resolve().parent / "defaults"
# The packaged files the analysis stage reads besides the scripts (their content is in analysis_hash()).
ANALYSIS_DEFAULTS = ("events.yaml", "sentiment_it.yaml")

# Marks an option added after config hashes were first stored with every call: it counts in config.hash() /
# analysis_hash() only when set to something else than its default, so adding it reprocesses nothing.
_HASHED_WHEN_SET = {"hash": "when_set"}


def _added(default: Any) -> Any:
    return field(default=default, metadata=_HASHED_WHEN_SET)


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
    min_age_s: float = 0.0
    """A file modified less than this many seconds ago is left for the next run (outcome "waiting"): set it (e.g.
    60) when recordings are copied into the calls folder while runs happen. Whatever it is, a file whose size or
    modification time changes while it is read waits too."""
    max_attempts: int = 3
    """A file whose processing killed the worker (segfault, out-of-memory kill) this many times is set aside with
    a failure row (E127) instead of killing every later run; its marker is `<data>/_inprogress/<sha256>.json`."""
    max_text_file_bytes: int = 50 * 1024 * 1024
    """Largest transcript, manifest or sidecar file read (E122 above it)."""
    max_utterances: int = 20_000
    """Most utterances in one imported transcript (E118 above it)."""
    max_utterance_chars: int = 10_000
    """Longest utterance text in an imported transcript, in characters (E119 above it)."""
    max_field_chars: int = 256
    """Longest metadata value (agent_id, team, campaign, ...) from a manifest, sidecar or transcript (E124)."""

    def __post_init__(self):
        _in_range("ingest.min_age_s", self.min_age_s, 0.0, 7 * 86400.0)
        for key in ("max_attempts", "max_text_file_bytes", "max_utterances", "max_utterance_chars",
                    "max_field_chars"):
            _at_least(f"ingest.{key}", getattr(self, key), 1)


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
    asr_detector: str = "silero"
    """What finds the speech regions ASR transcribes: `silero` (Silero VAD, the ONNX model faster-whisper ships,
    on onnxruntime; it ignores line noise, breath and echo) or `webrtc` (webrtcvad, as before: on real phone lines
    it marks most of a call as speech). Either way the crosstalk test above applies on stereo calls, and webrtcvad
    keeps making the frame decisions the metrics read."""
    silero_threshold: float = _added(0.3)
    """Silero speech probability at which speech starts (0..1)."""
    silero_neg_threshold: float = _added(0.15)
    """... and under which it ends (hysteresis, as Silero's own post-processing: threshold - 0.15)."""
    silero_onset_pad_ms: int = _added(100)
    """Silero regions are padded this much more before speech than pad_ms: its speech probability rises a frame
    or two late, and a clipped first syllable can cost Whisper the first words (LJSpeech: WER 7.3 % without,
    6.5 % with 100 ms; 200 ms added speech time for no gain)."""
    silero_reset_s: float | None = _added(5.0)
    """Silero restarts from a fresh state every this many seconds (hearing the 0.5 s before each piece again);
    None = one stream per channel. Its state drifts over minutes of a channel's silence and line noise and it then
    misses short turns (see qa_pipeline.audio.silero.speech_probabilities)."""

    def __post_init__(self):
        if self.asr_detector not in ("silero", "webrtc"):
            raise ConfigError(Errors.E608, key="vad.asr_detector", value=self.asr_detector,
                              rule="must be silero or webrtc")
        _in_range("vad.silero_threshold", self.silero_threshold, 0.0, 1.0)
        _in_range("vad.silero_neg_threshold", self.silero_neg_threshold, 0.0, self.silero_threshold)


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
    """Silence put between packed regions so Whisper hears a boundary (0.4 gave 10 % fewer windows but +0.5 WER
    points on the demo calls)."""
    max_region_s: float = 25.0
    min_word_probability: float = 0.0
    hotwords: tuple[str, ...] = ()
    """Names and terms every call contains that Whisper would misspell: given to Whisper as hotwords."""
    company_hotwords: bool = False
    """Also give each call's `analysis.companies` names (its campaign's) to Whisper as hotwords. They come out
    spelt right ("Brightwave Energy", not "right with energy"), but with tiny.en on the demo calls ASR took 2-4x
    longer (temperature fallbacks) and once looped at a window's end: worth trying with larger models or a GPU."""
    seed: int | None = field(default=0, metadata={"hash": "when_set"})
    """Seed of CTranslate2's sampler: Whisper's temperature fallback samples, so without a seed the same calls
    can come out with different words on two runs. CTranslate2 4.8 seeds its sampler once per process (at its
    first draw), so reruns of the same calls give the same words; within one process a call's sampled fallbacks
    depend on those sampled before it. None = unseeded."""
    batch_size: int = 8
    """Packed windows decoded together in one CTranslate2 call (as faster-whisper's BatchedInferencePipeline
    does): faster on CPU and GPU; memory grows with it (about 30 s of audio features per window)."""
    share_windows: bool = _added(True)
    """Part-filled windows of different channels (the last of each, mostly) are decoded as one window, each
    channel's speech kept together with 1 s of silence between: fewer 30 s encoder passes. False = a window
    never holds two channels."""
    encoder_min_s: float | None = _added(None)
    """None: Whisper's encoder hears 30 s per window, the rest zero padding, as it was trained. A number (e.g. 20):
    a batch of windows is encoded only as long as its longest window plus 5 s of padding, at least this many
    seconds; the encoder, the decoder's attention and the word alignment cost about in proportion, so short calls
    and short windows cost less (LJSpeech's clips 1.6x faster). Off by default: with 10 s tiny.en looped on one of
    32 LJSpeech clips (a 9 s sentence three times), and with 1 s of padding it repeated a 6 s sentence."""
    temperatures: tuple[float, ...] = _added((0.0, 0.2, 0.4, 0.6, 0.8, 1.0))
    """Decoding temperatures: a window is decoded at the first (greedy or beam search when 0), and decoded again
    at the next one, sampling, while its text is too repetitive or too improbable (the two thresholds below);
    `[0.0]` = never fall back (faster, riskier on hard audio). faster-whisper's defaults."""
    best_of: int = _added(5)
    """Candidates sampled per window at a temperature above 0 (the most probable is kept)."""
    compression_ratio_threshold: float | None = _added(2.4)
    """A window's text whose gzip compression ratio is above this is too repetitive: fall back."""
    log_prob_threshold: float | None = _added(-1.0)
    """A window's text whose average token log probability is below this is too improbable: fall back."""
    no_speech_threshold: float | None = _added(0.6)
    """A window whose no-speech probability is above this and whose text is too improbable is silence."""
    multilingual_beam_size: int | None = _added(5)
    """Beam size with the multilingual model (`asr.beam_size` stays the English model's); None = asr.beam_size.
    5: on real 8 kHz Italian (bench/italian_bench.py) WER 12.4 % -> 11.1 % for about 1.4x the decoding time."""
    initial_prompt: str | None = _added(None)
    """Text Whisper hears as the words said before each window (faster-whisper's `initial_prompt`): names and
    phrases the calls use, in their language and spelling. None = no prompt."""
    script_prompt: tuple[str, ...] = _added(())
    """Languages whose calls get a prompt built from their campaign's script (the agent's opening and closing
    phrases) and company names, after `initial_prompt` (see README, ASR: Italian)."""

    def __post_init__(self):
        _in_range("asr.batch_size", self.batch_size, 1, 256)
        _in_range("asr.beam_size", self.beam_size, 1, 64)
        if self.multilingual_beam_size is not None:
            _in_range("asr.multilingual_beam_size", self.multilingual_beam_size, 1, 64)
        _in_range("asr.best_of", self.best_of, 1, 64)
        temps = self.temperatures
        if isinstance(temps, (int, float)) and not isinstance(temps, bool):
            temps = (float(temps),)
        temps = tuple(float(t) for t in temps)
        if not temps or any(not 0.0 <= t <= 2.0 for t in temps):
            raise ConfigError(Errors.E608, key="asr.temperatures", value=self.temperatures,
                              rule="must be one or more temperatures between 0 and 2")
        object.__setattr__(self, "temperatures", temps)
        if self.gap_s < 0 or self.window_s > 30.0 or self.max_region_s > self.window_s:
            raise ConfigError(Errors.E608, key="asr.window_s", value=(self.window_s, self.max_region_s, self.gap_s),
                              rule="need gap_s >= 0 and max_region_s <= window_s <= 30 (Whisper hears 30 s)")


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
    talk_bridge_s: float = _added(0.5)
    """Pauses of one party up to this long count as their talk time (talk ratio, speech rate, overtalk)."""


@dataclass(frozen=True, slots=True)
class RolesOptions:
    """How sure the pipeline must be of who is the agent before trusting it."""

    low_confidence: float = _added(0.65)
    """A role decision made from what the speakers say (greeting, name, company...) with a confidence under this
    (0.5 = a coin toss, 1 = certain) flags the call `W006 low-confidence role decision` for a reviewer; 0 never
    flags. The confidence grows with the margin between the two best speakers' scores of agent-like phrases
    (speech.roles): 0.64 at a margin of 1, 0.82 at 3, 0.93 at 6."""

    def __post_init__(self):
        _in_range("roles.low_confidence", self.low_confidence, 0.0, 1.0)


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
    sentiment_positive: float = _added(0.25)
    """An utterance whose sentiment (VADER-style compound score, -1..1) is at or above this is labelled
    positive."""
    sentiment_negative: float = _added(-0.25)
    """An utterance whose sentiment is at or below this is labelled negative (between the two: neutral)."""
    trajectory_change: float = _added(0.2)
    """A party's sentiment trajectory is improving (worsening) when the mean of their last third of utterances is
    at least this much above (below) the mean of their first third; else stable."""
    escalation_drop: float = _added(0.6)
    """A customer utterance is an escalation when its sentiment fell by at least this from the customer's previous
    utterance and is negative (at or below sentiment_negative)."""
    escalation_louder_db: float = _added(6.0)
    """... or when it is at least this many dB louder than the customer's median level and not better than half
    of sentiment_negative (needs 4 customer utterances with a level)."""

    def __post_init__(self):
        object.__setattr__(self, "companies", _companies_by_campaign(self.companies))
        _in_range("analysis.sentiment_positive", self.sentiment_positive, 0.0, 1.0)
        _in_range("analysis.sentiment_negative", self.sentiment_negative, -1.0, 0.0)
        _in_range("analysis.trajectory_change", self.trajectory_change, 0.0, 2.0)
        _in_range("analysis.escalation_drop", self.escalation_drop, 0.0, 2.0)
        _in_range("analysis.escalation_louder_db", self.escalation_louder_db, 0.0, 60.0)

    def companies_for(self, campaign: str | None) -> tuple[str, ...]:
        """The company names of a call of `campaign` (its own and the `"*"` ones)."""
        names: list[str] = []
        for key, values in self.companies:
            if key == "*" or key == campaign:
                names += [v for v in values if v not in names]
        return tuple(names)


# What the PII detector knows (qa_pipeline/privacy): the entity types a finding can have, each written as `[TYPE]` in
# place of the value in every text the pipeline writes.
PII_ENTITIES = (
    "CREDIT_CARD", "CARD_EXPIRY", "CARD_SECURITY_CODE", "IBAN", "IT_FISCAL_CODE", "IT_VAT_CODE", "IT_IDENTITY_CARD",
    "IT_PASSPORT", "IT_DRIVER_LICENSE", "PHONE_NUMBER", "EMAIL_ADDRESS", "PERSON", "LOCATION", "ADDRESS",
    "ACCOUNT_NUMBER",
)
PII_LANGUAGES = ("en", "it")


@dataclass(frozen=True, slots=True)
class PrivacyOptions:
    """The `privacy` section: what is found and redacted in every text the pipeline writes (qa_pipeline/privacy).

    Every option counts in both config hashes: the stored text is redacted, so a change is applied from the audio
    (or the imported transcript file) again, never from the stored text."""

    enabled: bool = True
    """Find personal data in the transcripts and write `[TYPE]` in its place in every dataset (utterances, words,
    evidence and reasons of compliance, events, flags, role evidence); the findings go to the `pii` dataset
    (type, utterance, character and time span, confidence, detector; never the value). Off: text is written as
    transcribed."""
    entities: tuple[str, ...] = PII_ENTITIES
    """The entity types redacted (a subset of qa_pipeline.config.PII_ENTITIES)."""
    languages: tuple[str, ...] = PII_LANGUAGES
    """Languages with a detector (en: Presidio on the English spaCy model with its NER; it: a blank Italian
    tokenizer with Presidio's Italian recognizers, names by context). A call in another language is searched with
    the first one's number, code, e-mail and phone recognizers."""
    keep_raw_text: bool = False
    """Also keep the original utterance text, in the restricted dataset `<data>/_restricted/utterances_raw/`
    (owner-only files and folders whatever QA_DATA_GROUP says): only the review app's unredacted permission
    reads it."""
    min_score: float = 0.5
    """A finding below this confidence (0..1) is not redacted."""
    min_scores: Any = ()
    """Per entity type, another threshold: a mapping such as {PHONE_NUMBER: 0.4}."""
    allow: tuple[str, ...] = ()
    """Words and names never redacted (brand names, product names); the call's analysis.companies are always
    allowed."""
    audio: bool = _added(True)
    """Write a redacted copy of each recording with findings (`<data>/redacted_audio/<call_date>/<key>.<ext>`):
    every finding's time span, padded by `audio_margin_ms`, replaced by silence or a tone (qa_pipeline.privacy.
    audio). The review app plays it to users without the unredacted permission; coaching packs cut from it."""
    audio_margin_ms: float = _added(250.0)
    """Padding on each side of a finding's word times (word times are imprecise)."""
    audio_fill: str = _added("silence")
    """What replaces a muted span: `silence` (digital zero) or `tone` (a 1 kHz beep at -20 dBFS)."""
    audio_format: str = _added("opus")
    """The redacted copy's format: `opus` (Ogg/Opus, small) or `wav` (16-bit PCM)."""
    audio_verify: bool = _added(True)
    """Re-transcribe each muted span's neighbourhood (+-2 s) with the same ASR and search it again; a finding
    there (a residual) mutes the whole utterance and flags the call (W008)."""
    retention_days: int | None = field(default=None, metadata={"hash": "never"})
    """Calls whose date is older than this many days are erased by the nightly flow (`qa-pipeline forget
    --before`); None: kept."""

    def __post_init__(self):
        unknown = [e for e in self.entities if e not in PII_ENTITIES]
        if unknown:
            raise ConfigError(Errors.E608, key="privacy.entities", value=unknown,
                              rule=f"known entity types are {', '.join(PII_ENTITIES)}")
        if not self.languages or any(lang not in PII_LANGUAGES for lang in self.languages):
            raise ConfigError(Errors.E608, key="privacy.languages", value=self.languages,
                              rule=f"one or more of {', '.join(PII_LANGUAGES)}")
        _in_range("privacy.min_score", self.min_score, 0.0, 1.0)
        _in_range("privacy.audio_margin_ms", self.audio_margin_ms, 0.0, 5000.0)
        if self.audio_fill not in ("silence", "tone"):
            raise ConfigError(Errors.E608, key="privacy.audio_fill", value=self.audio_fill,
                              rule="must be silence or tone")
        if self.audio_format not in ("opus", "wav"):
            raise ConfigError(Errors.E608, key="privacy.audio_format", value=self.audio_format,
                              rule="must be opus or wav")
        if self.retention_days is not None and not (isinstance(self.retention_days, int) and self.retention_days >= 1):
            raise ConfigError(Errors.E608, key="privacy.retention_days", value=self.retention_days,
                              rule="a whole number of days, at least 1 (or null: kept)")
        scores = self.min_scores
        if isinstance(scores, dict):
            scores = tuple(scores.items())
        if scores is None:
            scores = ()
        if not isinstance(scores, (tuple, list)) or not all(
                isinstance(x, (tuple, list)) and len(x) == 2 and x[0] in PII_ENTITIES and isinstance(x[1], (int, float))
                and not isinstance(x[1], bool) and 0.0 <= x[1] <= 1.0 for x in scores):
            raise ConfigError(Errors.E608, key="privacy.min_scores", value=self.min_scores,
                              rule="a mapping of entity type (privacy.entities) to a score between 0 and 1")
        object.__setattr__(self, "min_scores", tuple(sorted((str(k), float(v)) for k, v in scores)))
        object.__setattr__(self, "entities", tuple(self.entities))
        object.__setattr__(self, "languages", tuple(self.languages))

    def threshold(self, entity: str) -> float:
        """The confidence a finding of `entity` needs to be redacted."""
        return dict(self.min_scores).get(entity, self.min_score)


@dataclass(frozen=True, slots=True)
class DiarizationOptions:
    """How a mono call is diarized (qa_pipeline.speech.diarization.Diarizer): the config's `diarization` section.
    Times are in seconds.

    num_speakers: exact number of speakers to find (phone call: 2). None = estimate it within
        [min_speakers, max_speakers] with `clustering_threshold`.
    min_speakers / max_speakers: bounds used when num_speakers is None. max_speakers also caps how many
        speakers may talk at the same instant.
    segmentation_step: step of the 10 s segmentation window, as a fraction of the window (0.5 = 5 s). 0.5 is
        about 6x faster than pyannote's 0.1 for almost the same accuracy. Files shorter than `short_file_s` use
        `short_file_step` instead: they need more windows to have enough embeddings (measured on the two demo
        mono calls, 43-53 s: DER c0.25 10.4 % at 0.5, 5.3 % at 0.25), at half the speed (25x vs 48x realtime).
    short_file_s / short_file_step: see segmentation_step.
    clustering_threshold: cosine distance (0..2) under which two CAM++ embeddings are the same speaker; only
        decides the count when num_speakers is None.
    min_cluster_size: clusters with fewer embeddings (one per speaker per window) are merged into the nearest
        larger one (pyannote lowers it to 10% of the embeddings for short files).
    same_speaker_distance: opt-in. When num_speakers is forced (e.g. 2) but the clusters' centroids are closer
        than this cosine distance, they are merged as one voice and the result has fewer speakers than asked.
        Off by default: pyannote already returns one speaker for a one-voice recording when no second cluster of
        `min_cluster_size` embeddings exists (measured: 11 s and 100 s single-speaker files), and the two real
        parties of the SpokenWOZ call are only 0.29 apart, so a safe value is below ~0.15.
    min_duration_off: pyannote's own gap filling per speaker (also across the other speaker's words, which makes
        overlap); off, see bridge_pause_s.
    bridge_pause_s: a pause of at most this long between two consecutive turns of the same speaker, with nobody
        else talking in it, becomes part of the turn: people pause between sentences inside one turn, and
        turn-level references (and the talk-time metrics) count those pauses as speech. At 0.5 s it can never
        cost DER at a 0.25 s collar, whatever the reference's convention (a reference gap that short lies
        wholly inside its boundaries' collars). Measured: the demo calls' missed speech 11 % -> 2 %.
    resegment / resegment_piece_s / resegment_min_piece_s: a second pass on who-spoke, piece by piece of at most
        resegment_piece_s (see Diarizer._resegment); turns shorter than resegment_min_piece_s keep their speaker.
        0.5 s measured against 1.0 s: demo downmix confusion 22 s -> 10 s of 1,503 s (cpWER 27.2 % -> 25.5 %),
        SpokenWOZ 13.3 % -> 12.3 % DER (audible reference), AMI and the 3-speaker clip unchanged; 0.3 s gained a
        little more on the demo's synthetic voices but lost on AMI. Not applied to a pipeline_dir pipeline.
    fill_from_vad: opt-in. Speech webrtcvad hears that the segmentation model missed goes to the nearest turn's
        speaker. Measured off by default: on noisy downmixes it adds more false alarm (line noise, bleed) than it
        recovers once pauses are bridged (demo downmix DER 5.5 % -> 8.3 %).
    device: "cpu" or "cuda" (or "cuda:1").
    num_threads: torch intra-op threads while a call is diarized on the CPU (restored afterwards); None leaves
        torch's setting alone. 1 by default: segmentation-3.0's LSTM ran 2x faster on 1 thread than on 2 here,
        and the whole diarization 25.8x vs 17.7x realtime; more throughput comes from more workers.
    segmentation_batch_size / embedding_batch_size: windows per forward pass (memory per batch is
        batch x 10 s of audio; total memory does not grow with them).
    pipeline_dir: a local pyannote pipeline folder (holding config.yaml, e.g. a downloaded
        speaker-diarization-community-1) used instead of the bundled assembly. Loaded offline.
    """

    num_speakers: int | None = 2
    min_speakers: int = 1
    max_speakers: int = 3
    segmentation_step: float = 0.5
    short_file_s: float = 60.0
    short_file_step: float = 0.25
    clustering_threshold: float = 0.7
    min_cluster_size: int = 6
    same_speaker_distance: float | None = None
    min_duration_off: float = 0.0
    bridge_pause_s: float = 0.5
    resegment: bool = True
    resegment_piece_s: float = 2.0
    resegment_min_piece_s: float = 0.5
    fill_from_vad: bool = False
    device: str = "cpu"
    num_threads: int | None = 1
    segmentation_batch_size: int = 16
    embedding_batch_size: int = 16
    pipeline_dir: str | None = None

    def __post_init__(self):
        def invalid(key: str, rule: str) -> DiarizationError:
            return DiarizationError(Errors.E501, key=key, value=getattr(self, key), rule=rule)

        if self.num_speakers is not None and self.num_speakers < 1:
            raise invalid("num_speakers", "must be >= 1, or null to estimate it")
        if not 1 <= self.min_speakers <= self.max_speakers:
            raise invalid("min_speakers", f"need 1 <= min_speakers <= max_speakers (max_speakers = {self.max_speakers})")
        for name in ("segmentation_step", "short_file_step"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise invalid(name, "must be in (0, 1], a fraction of the 10 s window")
        if not 0.0 < self.clustering_threshold < 2.0:
            raise invalid("clustering_threshold", "a cosine distance, in (0, 2)")
        if not 0.3 <= self.resegment_min_piece_s <= self.resegment_piece_s:
            raise invalid("resegment_min_piece_s",
                          f"need 0.3 <= resegment_min_piece_s <= resegment_piece_s (= {self.resegment_piece_s}) s")
        if self.bridge_pause_s < 0:
            raise invalid("bridge_pause_s", "a duration in seconds, >= 0")
        if self.num_threads is not None and self.num_threads < 1:
            raise invalid("num_threads", "must be >= 1, or null to leave torch's setting alone")


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    ingest: IngestOptions = field(default_factory=IngestOptions)
    audio: AudioOptions = field(default_factory=AudioOptions)
    vad: VadOptions = field(default_factory=VadOptions)
    asr: AsrOptions = field(default_factory=AsrOptions)
    metrics: MetricsOptions = field(default_factory=MetricsOptions)
    roles: RolesOptions = field(default_factory=RolesOptions)
    analysis: AnalysisOptions = field(default_factory=AnalysisOptions)
    diarization: DiarizationOptions = field(default_factory=DiarizationOptions)
    privacy: PrivacyOptions = field(default_factory=PrivacyOptions)
    workers: int | None = None
    """Worker processes for a folder run, each with its own models. None (not set): the library runs one process,
    and `qa-pipeline run --task-runner none` picks them (pipeline.runner.auto_workers: one per core on the CPU)."""

    def hash(self) -> str:
        """Hash of every option that changes the outputs (not workers, not the ingest lookup)."""
        payload = {
            "audio": _hashed(self.audio),
            "vad": _hashed(self.vad),
            "asr": {k: v for k, v in _hashed(self.asr).items() if k not in ("device", "cpu_threads", "batch_size")},
            "metrics": _hashed(self.metrics),
            # the options set to something else than their default (as when this section was a plain mapping)
            "diarization": {k: v for k, v in _changed(self.diarization).items() if k not in ("device", "num_threads")},
            "hotwords": self.analysis.companies if self.asr.company_hotwords else [],  # they steer the transcription
        }
        if _changed(self.roles):  # a section added after hashes were stored: only when set
            payload["roles"] = _changed(self.roles)
        payload["privacy"] = self._privacy_payload()  # what is written is redacted: see PrivacyOptions
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]

    def analysis_hash(self) -> str:
        """Hash of the analysis options and the default scripts/lexicons: a change re-analyses stored transcripts
        without transcribing again."""
        h = hashlib.sha256(json.dumps(_hashed(self.analysis), sort_keys=True, default=str).encode())
        # an imported transcript is re-imported when this hash moves: a privacy change must reach it too
        h.update(json.dumps(self._privacy_payload(), sort_keys=True, default=str).encode())
        # only the packaged files analysis reads (the rubric and the model manifest live beside them)
        files = sorted((DEFAULTS_DIR / "scripts").glob("*.yaml")) + [DEFAULTS_DIR / n for n in ANALYSIS_DEFAULTS]
        if self.analysis.scripts_dir:
            files += sorted(Path(self.analysis.scripts_dir).glob("*.y*ml"))
        for f in files:
            h.update(f.name.encode() + f.read_bytes())
        return h.hexdigest()[:12]

    def _privacy_payload(self) -> dict:
        """The privacy options as hashed (in both hashes): all of them while redaction is on."""
        return _hashed(self.privacy) if self.privacy.enabled else {"enabled": False}


def _hashed(options) -> dict:
    """The options as hashed: all of them, less those added since (`_added`) while they keep their default."""
    values = dataclasses.asdict(options)
    for f in dataclasses.fields(options):
        if f.metadata.get("hash") == "never" or (
                f.metadata.get("hash") == "when_set" and getattr(options, f.name) == f.default):
            del values[f.name]
    return values


def _changed(options) -> dict:
    """The options set to something else than their default."""
    return {f.name: getattr(options, f.name) for f in dataclasses.fields(options)
            if getattr(options, f.name) != (f.default if f.default is not dataclasses.MISSING else f.default_factory())}


def _in_range(key: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not low <= value <= high:
        raise ConfigError(Errors.E608, key=key, value=value, rule=f"must be between {low:g} and {high:g}")


def _at_least(key: str, value: Any, low: float) -> None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not value >= low:
        raise ConfigError(Errors.E608, key=key, value=value, rule=f"must be at least {low:g}")


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
        raise ConfigError(Errors.E607, problem=f"{value!r} is {_kind(value)}")
    out = []
    for campaign, names in items:
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) and n.strip() for n in names):
            raise ConfigError(Errors.E607, problem=f"the names of {campaign!r} are not a list of non-empty names")
        out.append((str(campaign), tuple(n.strip() for n in names)))
    return tuple(out)


_SECTIONS = {
    "ingest": IngestOptions,
    "audio": AudioOptions,
    "vad": VadOptions,
    "asr": AsrOptions,
    "metrics": MetricsOptions,
    "roles": RolesOptions,
    "analysis": AnalysisOptions,
    "diarization": DiarizationOptions,
    "privacy": PrivacyOptions,
}

# --- types: every option is checked against its annotation when the file is read


def _kind(value: Any) -> str:
    """What a YAML value is, in words."""
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a text"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _accepts(hint: Any, value: Any) -> bool:
    if hint is Any:
        return True
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return any(_accepts(h, value) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:  # a whole number is a number too (kept as written: the config hash sees what was given)
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        return isinstance(value, (list, tuple)) and all(_accepts(item, v) for v in value)
    return isinstance(value, hint)


def _expected(hint: Any) -> str:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return " or ".join(_expected(h) for h in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        return f"a list of {_expected(typing.get_args(hint)[0])[2:]}s"  # "a text" -> "a list of texts"
    return {type(None): "null", bool: "true or false", int: "a whole number", float: "a number",
            str: "a text"}.get(hint, getattr(hint, "__name__", str(hint)))


def _build(cls, values: Any, section: str, source: str):
    if values is None:  # a section whose options are all commented out
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(Errors.E604, path=source, section=section, got=_kind(values))
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(Errors.E605, path=source, section=section, unknown=unknown, accepted=sorted(names))
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        if not _accepts(hints[key], value):
            hint, got = "", _kind(value)
            if isinstance(value, bool) and _accepts(hints[key], "text"):
                hint = ": quote it, YAML reads yes/no/on/off/true/false unquoted as a boolean"
            if isinstance(value, list) and _accepts(hints[key], ()):  # a list, with a wrong item
                item = next((v for v in value if not _accepts(hints[key], (v,))), None)
                got = f"a list holding {item!r}, {_kind(item)}"
            raise ConfigError(Errors.E606, path=source, key=f"{section}.{key}", value=value, got=got,
                              expected=_expected(hints[key]), hint=hint)
        kwargs[key] = tuple(value) if isinstance(value, list) else value
    try:
        return cls(**kwargs)
    except QAPipelineError as e:  # an option out of range: say which file
        raise e.located(f"config {source}") from None


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> PipelineConfig:
    """Read a YAML config (every key optional) and return the PipelineConfig. `overrides`: {"section.option":
    value} (or {"workers": n}) applied over the file, e.g. from the command line.

    Raises:
        ConfigError: the file is missing or not YAML; an unknown section or option; an option of the wrong type
            (the message names section.option, the type expected, the value and the file) or out of range.
        DiarizationError: a diarization option out of range (E501).
    """
    data: dict = {}
    source = "(defaults)"
    if path is not None:
        p = Path(path)
        source = str(p)
        if not p.is_file():
            raise ConfigError(Errors.E600, path=p)
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(Errors.E601, path=p, error=e) from e
        if not isinstance(data, dict):
            raise ConfigError(Errors.E602, path=p, got=_kind(data))
    if overrides:  # command-line options
        source = f"overrides {sorted(overrides)}" if path is None else f"{source} + overrides {sorted(overrides)}"
    for key, value in (overrides or {}).items():
        section, _, option = key.partition(".")
        if option:
            if data.get(section) is None:
                data[section] = {}
            if not isinstance(data[section], dict):
                raise ConfigError(Errors.E604, path=source, section=section, got=_kind(data[section]))
            data[section][option] = value
        else:
            data[section] = value
    allowed = [*_SECTIONS, "workers"]
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ConfigError(Errors.E603, path=source, unknown=unknown, accepted=allowed)
    kwargs: dict[str, Any] = {name: _build(cls, data[name], name, source) for name, cls in _SECTIONS.items()
                              if name in data}
    if "workers" in data:
        workers = data["workers"]
        if not _accepts(int, workers):
            raise ConfigError(Errors.E606, path=source, key="workers", value=workers, got=_kind(workers),
                              expected="a whole number", hint="")
        if workers < 1:
            raise ConfigError(Errors.E608, key="workers", value=workers, rule="must be >= 1").located(
                f"config {source}")
        kwargs["workers"] = workers
    return PipelineConfig(**kwargs)
