"""Plain formatting functions, registered as Jinja filters by `qa_pipeline.render.make_environment`.

Each takes a value and returns text (never markup): the templates escape what these return like any other value."""

from __future__ import annotations

import datetime as dt
import math
import re

GOOD, FAIR = 80.0, 60.0  # score bands (percent of the scale) for the colours


def mmss(s: float | None, up: bool = False) -> str:
    """Seconds as mm:ss (h:mm:ss past the hour); rounded down, or up with `up`; "" for None."""
    if s is None:
        return ""
    s = max(0, int(math.ceil(s) if up else math.floor(s)))
    h, rem = divmod(s, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60:02d}:{rem % 60:02d}"


def span(start: float | None, end: float | None = None) -> str:
    """A time span "mm:ss–mm:ss" (start rounded down, end up); "" without a start."""
    if start is None:
        return ""
    return f"{mmss(start)}–{mmss(end, up=True)}" if end is not None else mmss(start)


def num(v: float | None, digits: int = 1) -> str:
    """A number with `digits` decimals; "–" for None."""
    if v is None:
        return "–"
    return f"{v:.{digits}f}"


def pts(v: float | None) -> str:
    """Points: up to 2 decimals, no trailing zeros ("1", "0.5", "2.25"); "n/a" for None."""
    if v is None:
        return "n/a"
    return f"{v:.2f}".rstrip("0").rstrip(".") if v != int(v) else str(int(v))


def g(v: float | None) -> str:
    """A number in its shortest form (Python's `:g`)."""
    return "" if v is None else f"{v:g}"


def band(v: float | None, scale: float = 100.0) -> str:
    """The colour band of a score on `scale`: good (>= 80 %), fair (>= 60 %), bad, or na for None."""
    if v is None:
        return "na"
    pct = 100.0 * v / scale if scale else v
    return "good" if pct >= GOOD else "fair" if pct >= FAIR else "bad"


def label(x: str | None) -> str:
    """An identifier as words: "customer_complaint" -> "customer complaint"."""
    return "" if x is None else str(x).replace("_", " ")


def anchor(x: object) -> str:
    """A value made safe as an HTML id fragment (anything but letters, digits, _ and - becomes _)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", str(x))


def utc(t: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A timestamp in UTC with a strftime format; "" for None."""
    if t is None:
        return ""
    return t.astimezone(dt.timezone.utc).strftime(fmt)


FILTERS = {"mmss": mmss, "span": span, "num": num, "pts": pts, "g": g, "band": band, "label": label,
           "anchor": anchor, "utc": utc}
