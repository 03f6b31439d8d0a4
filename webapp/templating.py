"""Pages are rendered with the report's environment (`qa_pipeline.render.make_environment`: autoescape, strict
undefined, the formatting filters) whose loader is extended with the app's templates: `webapp/templates/` first,
then the render layer's, so the app's pages import the shared partials (quote, evidence_list, flag_row,
call_meta, score_cell) exactly as the weekly report does.

Every page gets: `user`, `csrf_token` (the session's, or the login form's), `csp_nonce`, `can(capability)`,
`path` (the current path, for the navigation)."""

from __future__ import annotations

from pathlib import Path

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from qa_pipeline.render import make_environment
from webapp.lifecycle import ANSWER_LABEL
from webapp.scope import can

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"


def make_app_environment() -> jinja2.Environment:
    env = make_environment()
    env.loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(TEMPLATES_DIR)), env.loader])
    env.filters["pct"] = lambda v, digits=0: "–" if v is None else f"{100 * v:.{digits}f} %"
    # a call id as shown: whole when short (a manifest's own ids), else its first 12 characters (SHA-256 ids)
    env.filters["short_id"] = lambda v: v if len(v or "") <= 20 else f"{v[:12]}…"
    env.filters["answer"] = lambda v: ANSWER_LABEL.get(v or "", (v or "–").replace("_", " "))
    return env


class Pages:
    """Renders the app's templates into responses."""

    def __init__(self, env: jinja2.Environment | None = None):
        self.env = env or make_app_environment()

    def render(self, request: Request, name: str, *, status: int = 200, headers: dict | None = None,
               csrf_token: str | None = None, **context) -> HTMLResponse:
        user = getattr(request.state, "user", None)
        html = self.env.get_template(name).render(
            user=user, csrf_token=csrf_token or getattr(request.state, "csrf_token", None),
            csp_nonce=getattr(request.state, "csp_nonce", ""), path=request.url.path,
            can=lambda capability: user is not None and can(user, capability), **context)
        return HTMLResponse(html, status_code=status, headers=headers)
