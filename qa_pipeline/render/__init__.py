"""HTML rendering: Jinja2 templates (`qa_pipeline/render/templates/`) filled from typed view models.

`make_environment()` builds the environment every page is rendered with: templates from this package, autoescape
on, undefined names are errors, and the formatting filters of `qa_pipeline.render.filters`. The partials under
`templates/partials/` are macros other pages reuse (quote, evidence list, flag row, call meta, score cell, charts):

    {% from "partials/quote.html" import quote %}
    {% from "partials/evidence.html" import evidence_list %}
    {% from "partials/flags.html" import flags_table, flag_row %}
    {% from "partials/call.html" import call_meta %}
    {% from "partials/score.html" import score_cell, score_pill, delta %}

Every value printed by a template is HTML-escaped (Python's `html.escape`, quotes included); only the macros'
own output is markup. The environment is built per caller (no module-level instance): hold the one you make."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from qa_pipeline.render.filters import FILTERS

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def _finalize(value: Any) -> Any:
    """What `{{ value }}` prints: markup as is, None as nothing, anything else escaped with `html.escape`."""
    if hasattr(value, "__html__"):
        return value
    if value is None:
        return ""
    return Markup(html.escape(str(value), quote=True))


def make_environment(templates_dir: str | Path | None = None) -> jinja2.Environment:
    """A Jinja2 environment over the package's templates (or `templates_dir`), autoescaping and strict.

    Filters: mmss, span, num, pts, g, band, label, anchor, utc (see `qa_pipeline.render.filters`)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir or TEMPLATES_DIR)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "htm", "xml", "svg"),
                                            default_for_string=True, default=True),
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,
    )
    env.filters.update(FILTERS)
    return env


__all__ = ["TEMPLATES_DIR", "make_environment"]
