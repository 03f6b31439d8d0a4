"""Typed records passed between the stages. Frozen and slotted: a stage returns new records, never mutates."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

AGENT = "agent"
CUSTOMER = "customer"
UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class CallMeta:
    """What is known about a call before its audio is heard (manifest, sidecar or file name)."""

    path: str
    call_id: str  # the user's id if given, else derived from the audio hash
    audio_sha256: str
    agent_id: str | None = None
    team: str | None = None
    campaign: str | None = None
    direction: str | None = None  # inbound / outbound
    call_type: str | None = None  # information, order, complaint, support, survey, telesales_cold/warm/hot
    started_at: str | None = None  # ISO 8601
    language: str | None = None  # ISO 639-1, None = detect
    declared_channels: int | None = None
    agent_channel: str | None = None  # left / right / auto; None = config default
    metadata_source: str = "none"  # manifest / sidecar / filename / none
    issues: tuple[str, ...] = ()  # e.g. "unknown_agent", "missing_metadata"


@dataclass(frozen=True, slots=True)
class Audio:
    """Decoded audio. shape: (n_channels, n_samples) float32 in [-1, 1] at sample_rate."""

    samples: np.ndarray
    sample_rate: int
    source_sample_rate: int
    source_channels: int
    codec: str

    @property
    def duration_s(self) -> float:
        return self.samples.shape[1] / self.sample_rate

    @property
    def n_channels(self) -> int:
        return self.samples.shape[0]


@dataclass(frozen=True, slots=True)
class SpeechRegion:
    """A stretch of speech on one channel (or on the mixed channel of a mono call)."""

    channel: int
    start: float  # seconds from call start
    end: float


@dataclass(frozen=True, slots=True)
class Word:
    start: float
    end: float
    text: str
    probability: float
    speaker: str  # "ch0"/"ch1" on stereo, "spk0".. after diarization, "unknown" otherwise


@dataclass(frozen=True, slots=True)
class AsrInfo:
    model_name: str
    model_version: str
    language: str
    language_probability: float
    speech_s: float  # audio actually fed to the model
    windows: int


@dataclass(frozen=True, slots=True)
class Transcript:
    words: tuple[Word, ...]
    info: AsrInfo


@dataclass(frozen=True, slots=True)
class SpeakerTurn:
    speaker: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Diarization:
    """Exclusive turns (one speaker at a time, for word assignment) and the regions where speakers overlap."""

    turns: tuple[SpeakerTurn, ...]
    overlaps: tuple[tuple[float, float], ...]
    speakers: tuple[str, ...]
    method: str


@dataclass(frozen=True, slots=True)
class RoleDecision:
    """Which speaker is the agent, how it was decided and how sure we are."""

    roles: dict  # speaker label -> agent / customer / unknown
    method: str  # config / greeting / first_speaker / metadata / none
    confidence: float  # 0..1
    evidence: str = ""


@dataclass(frozen=True, slots=True)
class Utterance:
    index: int
    speaker: str
    role: str
    start: float
    end: float
    text: str
    mean_probability: float
    n_words: int


@dataclass(frozen=True, slots=True)
class ConversationMetrics:
    duration_s: float
    talk_s: dict = field(default_factory=dict)  # role -> seconds
    talk_ratio: dict = field(default_factory=dict)  # role -> share of total talk
    words_per_minute: dict = field(default_factory=dict)
    interruptions: dict = field(default_factory=dict)  # role -> times this party cut in
    silence_total_s: float = 0.0
    silence_longest_s: float = 0.0
    silence_longest_at: float | None = None
    hold_count: int = 0
    hold_total_s: float = 0.0
    holds: tuple[tuple[float, float], ...] = ()
    overtalk_s: float = 0.0
    agent_first_word_s: float | None = None
    longest_monologue_s: float = 0.0
    longest_monologue_role: str | None = None
    longest_monologue_at: float | None = None
