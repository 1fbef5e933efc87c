"""The staff review pages (Chinese, server-rendered): the queue and one ticket.

The pages only read; every change goes through the JSON API from ``api/static/review.js``
(``POST /v1/tickets/{id}/corrections``), so the browser and scripts share one code path.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from api.deps import ModelDep, SessionDep, SettingsDep, TicketId
from api.views import ticket_public
from triage import intake, queue

router = APIRouter(tags=["ui"], include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).resolve().parents[1] / "templates")
REASON_NAMES = {"review": "待复核", "disputed": "有争议", "audit": "抽检"}
SENTIMENT_NAMES = {"positive": "正面", "neutral": "中性", "negative": "负面"}
ROUTING_SOURCES = {"responsibility list": "权责清单", "history": "历史派单",
                   "taxonomy": "分类默认部门", "default": "默认单位（无可派单位）"}


def _local(value: datetime | None, zone: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored (UTC) timestamp in the centre's time zone."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(ZoneInfo(zone)).strftime(fmt)


templates.env.filters["local"] = _local
# The taxonomy is embedded in the ticket page: plain UTF-8 keeps it a third of the escaped size.
templates.env.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "sort_keys": False}


@router.get("/")
def home() -> RedirectResponse:
    """The service's address opens the staff page (the review queue), not a 404."""
    return RedirectResponse("/review", status_code=307)


@router.get("/review", response_class=HTMLResponse)
def queue_page(
    request: Request, session: SessionDep, settings: SettingsDep, loaded: ModelDep,
    unit: Annotated[str | None, Query()] = None,
    category: Annotated[str | None, Query()] = None,
    reason: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=5_000)] = 1_000,
    saved: Annotated[int | None, Query(description="the ticket just saved")] = None,
) -> HTMLResponse:
    """The review queue, most urgent first, with filters, bulk accept and keyboard shortcuts."""
    items = queue.review_queue(session=session, settings=settings, unit=unit or None,
                               category=category or None, reason=reason or None, limit=limit)
    return templates.TemplateResponse(request, "review_queue.html", {
        "items": items, "unit": unit or "", "category": category or "", "reason": reason or "",
        "limit": limit, "saved": saved, "categories": [r.name for r in loaded.taxonomy.roots],
        "units": sorted({i.department for i in items if i.department}),
        "reason_names": REASON_NAMES, "zone": settings.timezone,
        "filters": urlencode({k: v for k, v in {"unit": unit, "category": category,
                                                "reason": reason}.items() if v})})


@router.get("/review/{ticket_id}", response_class=HTMLResponse)
def ticket_page(request: Request, ticket_id: TicketId, session: SessionDep, settings: SettingsDep,
                loaded: ModelDep) -> HTMLResponse:
    """One ticket: masked text, suggestions, explanation, taxonomy and department pickers."""
    row = intake.get_ticket(session=session, ticket_id=ticket_id)
    ticket = ticket_public(row, with_corrections=True)
    feedback = row.feedback[-1] if row.feedback else None
    back = _back_url(request)
    page = {"ticket_id": ticket.id, "back": back, "taxonomy": loaded.taxonomy.to_dict(),
            "supported": list(loaded.model.classes_),
            "prediction": ticket.prediction.model_dump(include={"subitem", "department"})
            if ticket.prediction else None}
    return templates.TemplateResponse(request, "review_ticket.html", {
        "ticket": ticket, "prediction": ticket.prediction, "page": page, "back": back,
        "units": _prediction_units(ticket.prediction), "zone": settings.timezone,
        "feedback": feedback, "sentiment_names": SENTIMENT_NAMES,
        "routing_sources": ROUTING_SOURCES, "taxonomy_version": loaded.taxonomy.version})


def _back_url(request: Request) -> str:
    """The queue with the filters the reviewer came from (the detail link carries them)."""
    params = {k: v for k, v in request.query_params.items()
              if k in {"unit", "category", "reason", "limit"} and v}
    return "/review" + (f"?{urlencode(params)}" if params else "")


def _prediction_units(prediction: Any) -> list[str]:
    """Units the prediction names (lead, co-handlers, routing history), for the department list."""
    if prediction is None:
        return []
    history = (prediction.explanation.get("routing") or {}).get("history") or []
    units = [prediction.department, *prediction.co_departments,
             *(h.get("unit", "") for h in history if isinstance(h, dict))]
    return list(dict.fromkeys(u for u in units if u))
