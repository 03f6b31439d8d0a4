"""The queue: GET / (the page; with HX-Request, only the table, for htmx filter changes)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from webapp.queue import QueueFilters, queue_page
from webapp.routes.common import app_state, current_user

router = APIRouter()


@router.get("/")
def queue_view(request: Request):
    st = app_state(request)
    user = current_user(request)
    filters = QueueFilters.from_params(request.query_params, page_sizes=st.settings.page_sizes)
    with st.db.read() as s:
        page = queue_page(s, user, filters)
        options = None if request.headers.get("hx-request") else st.options.get(s, user)
    name = "queue_rows.html" if options is None else "queue.html"
    return st.pages.render(request, name, page=page, filters=filters, options=options,
                           page_sizes=st.settings.page_sizes)
