"""The rubric: criteria, their weights, the items scored per call, their points and every threshold they use, read
from YAML (`qa_pipeline/defaults/rubric.yaml` unless another file is given) and validated when loaded."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from qa_pipeline.config import DEFAULTS_DIR
from qa_pipeline.errors import ConfigError, Errors

DEFAULT_RUBRIC = DEFAULTS_DIR / "rubric.yaml"
CRITERIA = ("tasks_completed", "quality", "targets", "divisions_complaints", "customer_complaints")
ITEMS = {
    "tasks_completed": ("outcome_achieved",),
    "quality": ("script_compliance", "courtesy", "listening", "clarity", "calm_with_negative_customer",
                "objections_handled", "complaint_handling", "correct_information"),
    "targets": ("handle_time", "conversion", "resolution", "hold_time"),
}
SALES = ("telesales_cold", "telesales_warm", "telesales_hot", "order")
DEFAULT_TARGETS = {"handle_time_s": 420, "hold_time_s": 60}


class RubricError(ConfigError):
    code = "E620"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The QA thresholds items are judged by; each is an option of its item in the rubric file."""

    severity_weights: dict = field(default_factory=lambda: {"critical": 3.0, "major": 2.0, "minor": 1.0, "info": 0.5})
    max_interruptions: int = 1  # listening: the agent cuts in at most this often
    talk_ratio_min: float = 0.3  # listening: the agent's share of the talk time
    talk_ratio_max: float = 0.7
    wpm_min: float = 110.0  # clarity: the agent's speech rate, words per minute
    wpm_max: float = 190.0
    min_word_probability: float = 0.7  # clarity: mean ASR word probability (a clear transcript)
    negative_customer_at: float = -0.25  # calm: the customer's sentiment reaches this (or lower)
    calm_agent_min: float = 0.0  # calm: the agent's mean sentiment stays at least this

    @property
    def other_severity_weight(self) -> float:
        """The weight of a severity the rubric does not list: that of `info`."""
        return float(self.severity_weights.get("info", 0.5))


# item -> {option: (rubric key, expected type name, Thresholds field)}; numbers are int or float, never bool
ITEM_OPTIONS: dict[tuple[str, str], dict[str, tuple[str, str]]] = {
    ("quality", "script_compliance"): {"severity_weights": ("mapping of severity to number", "severity_weights")},
    ("quality", "listening"): {"max_interruptions": ("integer", "max_interruptions"),
                               "talk_ratio_min": ("number", "talk_ratio_min"),
                               "talk_ratio_max": ("number", "talk_ratio_max")},
    ("quality", "clarity"): {"wpm_min": ("number", "wpm_min"), "wpm_max": ("number", "wpm_max"),
                             "min_word_probability": ("number", "min_word_probability")},
    ("quality", "calm_with_negative_customer"): {"negative_customer_at": ("number", "negative_customer_at"),
                                                 "calm_agent_min": ("number", "calm_agent_min")},
}
ITEM_KEYS = ("max_points", "description")


@dataclass(frozen=True, slots=True)
class Rubric:
    version: str
    scale: float
    weights: dict
    max_points: dict  # (criterion, item) -> points
    targets: dict  # campaign -> {handle_time_s, hold_time_s}
    target_calls_per_week: float
    penalties: dict  # criterion -> points per justified complaint
    path: str
    thresholds: Thresholds = field(default_factory=Thresholds)


def _error(path: Path, problem: str) -> RubricError:
    """E620, naming the rubric file and the problem (the key, what was expected, what was found)."""
    return RubricError(Errors.E620, path=path, problem=problem)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _type_name(v: Any) -> str:
    return type(v).__name__


def _option(path: Path, key: str, value: Any, expected: str) -> Any:
    """`value` checked against `expected` ("number", "integer" or the severity mapping); RubricError otherwise."""
    if expected == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif expected == "number":
        if _is_number(value):
            return float(value)
    elif isinstance(value, dict) and value and all(isinstance(k, str) and _is_number(v) and v >= 0
                                                   for k, v in value.items()):
        return {k: float(v) for k, v in value.items()}
    raise _error(path, f"{key} must be a {expected}, not {value!r} ({_type_name(value)})")


def load_rubric(path: str | Path | None = None, overrides: dict | None = None) -> Rubric:
    """Read and validate a rubric YAML (defaults/rubric.yaml when None).

    `overrides` set values under `criteria` by dotted key: {"quality.weight": 0.5,
    "quality.items.clarity.wpm_min": 100}.

    Raises:
        RubricError: naming the file, the offending key and what was expected.
    """
    path = Path(path) if path else DEFAULT_RUBRIC
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise _error(path, f"cannot be read as YAML ({e})") from e
    if not isinstance(data, dict) or not isinstance(data.get("criteria"), dict):
        raise _error(path, "needs `version` and `criteria` (a mapping)")
    for key, value in (overrides or {}).items():  # "quality.weight": 0.5
        node = data["criteria"]
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    crit = data["criteria"]
    unknown = set(crit) - set(CRITERIA)
    if unknown:
        raise _error(path, f"unknown criteria {sorted(unknown)}; known: {list(CRITERIA)}")
    weights, max_points, penalties = {}, {}, {}
    options: dict[str, Any] = {}
    for name in CRITERIA:
        spec = crit.get(name) or {}
        if not isinstance(spec, dict):
            raise _error(path, f"criteria.{name} must be a mapping, not {spec!r} ({_type_name(spec)})")
        w = spec.get("weight", 0.0)
        if not _is_number(w) or w < 0:
            raise _error(path, f"criteria.{name}.weight must be a number >= 0, not {w!r}")
        weights[name] = float(w)
        items = spec.get("items") or {}
        if not isinstance(items, dict):
            raise _error(path, f"criteria.{name}.items must be a mapping, not {items!r} "
                              f"({_type_name(items)})")
        for item, ispec in items.items():
            where = f"criteria.{name}.items.{item}"
            if item not in ITEMS.get(name, ()):
                raise _error(path, f"{where} is not a known item; known: {ITEMS.get(name, ())}")
            ispec = ispec or {}
            if not isinstance(ispec, dict):
                raise _error(path, f"{where} must be a mapping, not {ispec!r} ({_type_name(ispec)})")
            allowed = ITEM_OPTIONS.get((name, item), {})
            extra = set(ispec) - set(ITEM_KEYS) - set(allowed)
            if extra:
                raise _error(path, f"{where}: unknown option(s) {sorted(extra)}; known: "
                                  f"{list(ITEM_KEYS) + list(allowed)}")
            mp = ispec.get("max_points", 1)
            if not _is_number(mp) or mp < 0:
                raise _error(path, f"{where}.max_points must be a number >= 0, not {mp!r} "
                                  f"({_type_name(mp)})")
            max_points[(name, item)] = float(mp)
            for key, (expected, attr) in allowed.items():
                if key in ispec:
                    options[attr] = _option(path, f"{where}.{key}", ispec[key], expected)
        if "penalty_per_complaint" in spec:
            penalties[name] = float(_option(path, f"criteria.{name}.penalty_per_complaint",
                                            spec["penalty_per_complaint"], "number"))
    if sum(weights.values()) <= 0:
        raise _error(path, "the criteria weights add up to 0")
    targets_spec = crit.get("targets") or {}
    targets = targets_spec.get("targets") or {}
    if not isinstance(targets, dict):
        raise _error(path, "criteria.targets.targets must be a mapping of campaign to targets")
    for campaign, t in targets.items():
        if not isinstance(t, dict):
            raise _error(path, f"criteria.targets.targets.{campaign} must be a mapping, not {t!r}")
        for key, value in t.items():
            if key not in DEFAULT_TARGETS:
                raise _error(path, f"criteria.targets.targets.{campaign}.{key} is not a target; "
                                  f"known: {list(DEFAULT_TARGETS)}")
            _option(path, f"criteria.targets.targets.{campaign}.{key}", value, "number")
    if "default" not in targets:
        targets = {"default": dict(DEFAULT_TARGETS), **targets}
    calls_per_week = (crit.get("tasks_completed") or {}).get("target_calls_per_week", 10)
    calls_per_week = _option(path, "criteria.tasks_completed.target_calls_per_week", calls_per_week, "number")
    for key in ("scale",):
        if key in data:
            _option(path, key, data[key], "number")
    th = Thresholds(**options)
    if th.talk_ratio_min > th.talk_ratio_max or th.wpm_min > th.wpm_max:
        raise _error(path, f"a band's minimum is above its maximum (listening talk_ratio_min/max "
                          f"{th.talk_ratio_min}/{th.talk_ratio_max}, clarity wpm_min/max {th.wpm_min}/{th.wpm_max})")
    return Rubric(version=str(data.get("version", "1")), scale=float(data.get("scale", 100)), weights=weights,
                  max_points=max_points, targets=targets, target_calls_per_week=calls_per_week,
                  penalties=penalties, path=str(path), thresholds=th)


def iso_week(ts: dt.datetime | dt.date | None) -> str | None:
    if ts is None:
        return None
    y, w, _ = ts.isocalendar()
    return f"{y}-W{w:02d}"
