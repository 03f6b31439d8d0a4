"""Fit the role model's weights (qa_pipeline/defaults/roles_model.yaml) on real labelled dialogues.

    .venv/bin/python bench/fit_roles.py [--out qa_pipeline/defaults/roles_model.yaml] [--no-multiwoz]

The model (qa_pipeline/speech/roles.py) scores each speaker with w . f(speaker); with two speakers
P(A is the agent) = sigmoid(w . (f(A) - f(B))), a logistic regression without intercept on feature differences
(symmetric by construction: swapping the speakers flips the probability). The examples are the dialogues of
bench/roles_data.py, each seen at several points of the call (after 2, 4, 6... turns and whole), so the model also
decides early and from little; every dialogue weighs the same in the fit, and the real dialogues (Harper Valley,
ABCD) together as much as all the MultiWOZ pseudo-dialogues. L2-penalised (weights pulled to 0).

Over-fitting is checked by leave-one-dialogue-out cross-validation over the real dialogues (each held out in turn,
the model fitted on everything else) and 5-fold cross-validation over MultiWOZ (the sentences split into folds
before pseudo-dialogues are drawn, so no sentence is in both). The out-of-fold margins (whole dialogues, the real
ones also after 2, 4, ... turns) then calibrate one temperature (log loss), folded into the weights written.

`first_outbound` has no labelled outbound dialogue to learn from: its weight is a stated prior (the callee answers
"hello?" first, so the first speaker on an outbound call is most often the customer), not fitted."""

from __future__ import annotations

import argparse
import datetime as dt
import math
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import roles_data  # noqa: E402
from qa_pipeline.analysis.compliance import default_script  # noqa: E402
from qa_pipeline.pipeline.process import script_role_phrases  # noqa: E402
from qa_pipeline.speech.roles import FEATURES, ROLE_MODEL, speaker_features  # noqa: E402

PRIORS = {"first_outbound": -1.0}  # not fitted: no labelled outbound dialogue
FITTED = tuple(f for f in FEATURES if f not in PRIORS)
L2 = 0.01  # penalty on the sum of squared weights (the mean log loss is over examples weighing 1 in all)
REAL_SHARE = 0.5  # the real dialogues' share of the total weight (the MultiWOZ pseudo-dialogues have the rest)
N_PSEUDO = 600


def script_phrases(language: str = "en") -> tuple[str, ...]:
    return script_role_phrases(default_script(language))


def diffs(d: roles_data.Dialogue, phrases, *, prefixes: bool = True) -> list[np.ndarray]:
    """f(agent) - f(other) at several points of the dialogue (after 2, 4, ... turns, and whole)."""
    n = len(d.turns)
    points = sorted(set(list(range(2, n, 2)) + [n])) if prefixes else [n]
    other = next(s for s in d.speakers if s != d.agent)
    out = []
    for k in points:
        f = speaker_features(d.turns[:k], d.speakers, direction=d.direction, script_phrases=phrases)
        out.append(np.array([f[d.agent].values[x] - f[other].values[x] for x in FITTED]))
    return out


def examples(dialogues, phrases, group_weight: float):
    """(X, y, w): every difference and its mirror image; each dialogue's examples weigh `group_weight` in all."""
    xs, ys, ws = [], [], []
    for d in dialogues:
        ds = diffs(d, phrases)
        for x in ds:
            for sign, label in ((1.0, 1.0), (-1.0, 0.0)):
                xs.append(sign * x)
                ys.append(label)
                ws.append(group_weight / (2 * len(ds)))
    return np.array(xs), np.array(ys), np.array(ws)


def fit(x: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float = L2, iters: int = 50) -> np.ndarray:
    """Weighted L2-penalised logistic regression without intercept (Newton's method): minimises the weighted
    mean log loss + l2 * |beta|^2."""
    beta = np.zeros(x.shape[1])
    total = w.sum()
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(x @ beta)))
        grad = x.T @ (w * (p - y)) / total + 2 * l2 * beta
        hess = (x * (w * p * (1 - p))[:, None]).T @ x / total + 2 * l2 * np.eye(x.shape[1])
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return beta


def training_set(real, pseudo, phrases):
    parts = []
    if real:
        parts.append(examples(real, phrases, REAL_SHARE / len(real) * (1 if pseudo else 1 / REAL_SHARE)))
    if pseudo:
        parts.append(examples(pseudo, phrases, (1 - REAL_SHARE) / len(pseudo) * (1 if real else 1 / (1 - REAL_SHARE))))
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))


def whole_margins(beta, dialogues, phrases) -> list[float]:
    """The agent's margin (score(agent) - score(other)) on each whole dialogue."""
    return [float(diffs(d, phrases, prefixes=False)[0] @ beta) for d in dialogues]


def prefix_margins(beta, dialogues, phrases) -> list[float]:
    """The agent's margin after 2, 4, ... turns of each dialogue (decisions made early, from little)."""
    return [float(x @ beta) for d in dialogues for x in diffs(d, phrases)[:-1]]


def calibrate(margins: list[float]) -> float:
    """The temperature t minimising the log loss of sigmoid(t * margin) on out-of-fold margins (all labelled 1:
    margins are the true agent's)."""
    m = np.array(margins)
    best = (math.inf, 1.0)
    for t in np.linspace(0.05, 6.0, 596):
        loss = float(np.mean(np.log1p(np.exp(-t * m))))
        best = min(best, (loss, float(t)))
    return best[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROLE_MODEL)
    ap.add_argument("--no-multiwoz", action="store_true", help="fit on the shared/eval dialogues alone")
    args = ap.parse_args()
    phrases = script_phrases()
    real = roles_data.harper_valley() + roles_data.abcd()
    if not real:
        print("no real dialogues found under ../shared/eval: nothing to fit")
        return 1
    sentences = None if args.no_multiwoz else roles_data.multiwoz_sentences()
    pseudo = roles_data.multiwoz_pseudo(sentences, N_PSEUDO, seed=0) if sentences else []

    # leave one real dialogue out
    oof_real: list[float] = []
    oof_real_prefix: list[float] = []
    for i, held in enumerate(real):
        beta = fit(*training_set(real[:i] + real[i + 1:], pseudo, phrases))
        oof_real += whole_margins(beta, [held], phrases)
        oof_real_prefix += prefix_margins(beta, [held], phrases)
    # 5-fold over MultiWOZ sentences
    oof_pseudo: list[float] = []
    if sentences:
        rng = random.Random(1)
        folds = {role: [[] for _ in range(5)] for role in sentences}
        for role, ss in sentences.items():
            ss = ss[:]
            rng.shuffle(ss)
            for j, s in enumerate(ss):
                folds[role][j % 5].append(s)
        for k in range(5):
            train = {r: [s for j in range(5) if j != k for s in folds[r][j]] for r in folds}
            test = {r: folds[r][k] for r in folds}
            beta = fit(*training_set(real, roles_data.multiwoz_pseudo(train, N_PSEUDO, seed=10 + k), phrases))
            oof_pseudo += whole_margins(beta, roles_data.multiwoz_pseudo(test, 200, seed=100 + k), phrases)
    temperature = calibrate(oof_real + oof_real_prefix + oof_pseudo)
    beta = fit(*training_set(real, pseudo, phrases)) * temperature
    weights = {f: round(float(b), 4) for f, b in zip(FITTED, beta)}
    weights.update(PRIORS)
    weights = {f: weights[f] for f in FEATURES}

    def acc(ms):
        return round(sum(m > 0 for m in ms) / len(ms), 3) if ms else None

    def mean_p(ms):
        return round(float(np.mean([1 / (1 + math.exp(-temperature * m)) for m in ms])), 3) if ms else None

    cv = {
        "real_dialogues_leave_one_out": {"n": len(oof_real), "accuracy": acc(oof_real),
                                         "mean_probability_of_the_true_agent": mean_p(oof_real)},
        "real_dialogues_leave_one_out_early": {"n": len(oof_real_prefix), "accuracy": acc(oof_real_prefix),
                                               "mean_probability_of_the_true_agent": mean_p(oof_real_prefix)},
        "multiwoz_pseudo_5_fold": {"n": len(oof_pseudo), "accuracy": acc(oof_pseudo),
                                   "mean_probability_of_the_true_agent": mean_p(oof_pseudo)},
    }
    lines = [
        "# The role model's weights: generated by bench/fit_roles.py (do not edit by hand; rerun it).",
        "# score(speaker) = sum(weight * feature); P(A is the agent) = sigmoid(score(A) - score(B)) (softmax with",
        "# more speakers). Features: qa_pipeline/speech/roles.py. Calibrated: the weights include the temperature.",
        "version: 1",
        f"fitted: {dt.date.today().isoformat()}",
        "weights:",
        *[f"  {f}: {w}" + ("  # prior, not fitted (no labelled outbound dialogue)" if f in PRIORS else "")
          for f, w in weights.items()],
        f"temperature: {round(temperature, 3)}",
        "training:",
        f"  real_dialogues: {len(real)}  # " + ", ".join(f"{d.source}:{d.name}" for d in real),
        f"  multiwoz_pseudo_dialogues: {len(pseudo)}  # from convlab 3.0.1 (Apache-2.0; MultiWOZ: MIT)",
        f"  l2: {L2}",
        f"  real_share: {REAL_SHARE}",
        "cross_validation:",
        *[f"  {k}: {{n: {v['n']}, accuracy: {v['accuracy']}, mean_probability_of_the_true_agent: "
          f"{v['mean_probability_of_the_true_agent']}}}" for k, v in cv.items()],
    ]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
