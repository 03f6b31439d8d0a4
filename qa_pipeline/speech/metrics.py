"""Conversation metrics from who talks when: talk time and ratio, silence and holds, overtalk and interruptions,
speech rate, time to the agent's first word, longest monologue.

Talk is measured from the transcript's word intervals (small pauses bridged), not raw voice activity: hold music
and line noise then count as silence, as a QA reviewer would count them."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from qa_pipeline.config import MetricsOptions
from qa_pipeline.types import AGENT, ConversationMetrics, Utterance, Word

_STEP = 0.01  # seconds per grid cell


def talk_intervals(words: Sequence[Word], role_of: dict[str, str],
                   bridge_s: float = MetricsOptions().talk_bridge_s) -> dict[str, list[tuple[float, float]]]:
    """Per role, the union of its words' spans with pauses up to bridge_s (config `metrics.talk_bridge_s`)
    filled."""
    out: dict[str, list[tuple[float, float]]] = {}
    for w in sorted(words, key=lambda w: w.start):
        role = role_of.get(w.speaker, w.speaker)
        iv = out.setdefault(role, [])
        if iv and w.start - iv[-1][1] <= bridge_s:
            iv[-1] = (iv[-1][0], max(iv[-1][1], w.end))
        else:
            iv.append((w.start, w.end))
    return out


def _grid(intervals: Sequence[tuple[float, float]], n: int) -> np.ndarray:
    g = np.zeros(n, dtype=bool)
    for s, e in intervals:
        g[int(s / _STEP) : int(np.ceil(e / _STEP))] = True
    return g


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def conversation_metrics(
    duration_s: float,
    talk: dict[str, list[tuple[float, float]]],
    utterances: Sequence[Utterance],
    word_counts: dict[str, int],
    options: MetricsOptions = MetricsOptions(),
) -> ConversationMetrics:
    n = int(np.ceil(duration_s / _STEP)) + 1
    grids = {role: _grid(iv, n) for role, iv in talk.items()}
    any_talk = np.zeros(n, dtype=bool)
    for g in grids.values():
        any_talk |= g
    talk_s = {r: round(float(g.sum()) * _STEP, 2) for r, g in grids.items()}
    total = sum(talk_s.values()) or 1.0
    ratio = {r: round(t / total, 3) for r, t in talk_s.items()}
    wpm = {r: round(word_counts.get(r, 0) / (talk_s[r] / 60.0), 1) if talk_s[r] > 0 else 0.0 for r in talk_s}

    # silence: between the first and the last word, nobody talking
    silence_total = longest = 0.0
    longest_at = None
    holds: list[tuple[float, float]] = []
    talking = np.flatnonzero(any_talk)
    if talking.size:
        inner = ~any_talk[talking[0] : talking[-1] + 1]
        for s, e in _runs(inner):
            length = (e - s) * _STEP
            start = (talking[0] + s) * _STEP
            if length >= options.dead_air_min_s:
                silence_total += length
            if length > longest:
                longest, longest_at = length, start
            if length >= options.hold_min_s:
                holds.append((round(start, 2), round(start + length, 2)))

    # overtalk and interruptions: who started talking while the other was mid-turn
    roles = list(grids)
    overtalk = 0.0
    interruptions = {r: 0 for r in roles}
    if len(roles) >= 2:
        count = np.zeros(n, dtype=np.int8)
        for g in grids.values():
            count += g
        overtalk = float((count >= 2).sum()) * _STEP
        min_cells = int(options.interruption_min_overlap_s / _STEP)
        for r in roles:
            others = np.zeros(n, dtype=bool)
            for o in roles:
                if o != r:
                    others |= grids[o]
            for s, e in talk[r]:
                i = int(s / _STEP)
                if i < n and i > 0 and others[i] and others[i - 1]:
                    overlap = int(np.sum(others[i : int(np.ceil(e / _STEP))]))
                    if overlap >= min_cells:
                        interruptions[r] += 1

    agent_words = [u.start for u in utterances if u.role == AGENT]
    mono_s, mono_role, mono_at = 0.0, None, None
    run_start = run_end = None
    run_role = None
    for u in sorted(utterances, key=lambda u: u.start):
        if u.role == run_role and run_end is not None and u.start - run_end <= max(options.monologue_gap_s, 0):
            run_end = max(run_end, u.end)
        else:
            run_role, run_start, run_end = u.role, u.start, u.end
        if run_end - run_start > mono_s:
            mono_s, mono_role, mono_at = run_end - run_start, run_role, run_start
    return ConversationMetrics(
        duration_s=round(duration_s, 3),
        talk_s=talk_s,
        talk_ratio=ratio,
        words_per_minute=wpm,
        interruptions=interruptions,
        silence_total_s=round(silence_total, 2),
        silence_longest_s=round(longest, 2),
        silence_longest_at=None if longest_at is None else round(longest_at, 2),
        hold_count=len(holds),
        hold_total_s=round(sum(e - s for s, e in holds), 2),
        holds=tuple(holds),
        overtalk_s=round(overtalk, 2),
        agent_first_word_s=round(min(agent_words), 2) if agent_words else None,
        longest_monologue_s=round(mono_s, 2),
        longest_monologue_role=mono_role,
        longest_monologue_at=None if mono_at is None else round(mono_at, 2),
    )
