"""Words grouped into utterances per speaker, with roles."""

from __future__ import annotations

from typing import Mapping, Sequence

from qa_pipeline.types import UNKNOWN, Utterance, Word


def group_utterances(words: Sequence[Word], roles: Mapping[str, str], *, max_gap_s: float = 1.0) -> tuple[Utterance, ...]:
    """One utterance per run of a speaker's words with no pause longer than max_gap_s.

    Runs are built per speaker (so overtalk on stereo does not chop both parties' sentences), then ordered by
    start time and numbered.
    """
    by_speaker: dict[str, list[Word]] = {}
    for w in sorted(words, key=lambda w: (w.start, w.end)):
        by_speaker.setdefault(w.speaker, []).append(w)
    groups: list[list[Word]] = []
    for ws in by_speaker.values():
        current = [ws[0]]
        for w in ws[1:]:
            if w.start - current[-1].end > max_gap_s:
                groups.append(current)
                current = []
            current.append(w)
        groups.append(current)
    groups.sort(key=lambda g: (g[0].start, g[-1].end))
    out = []
    for i, g in enumerate(groups):
        text = " ".join(w.text for w in g).replace(" ,", ",").replace(" .", ".")
        out.append(
            Utterance(
                index=i,
                speaker=g[0].speaker,
                role=roles.get(g[0].speaker, UNKNOWN),
                start=g[0].start,
                end=max(w.end for w in g),
                text=text,
                mean_probability=round(sum(w.probability for w in g) / len(g), 4),
                n_words=len(g),
            )
        )
    return tuple(out)
