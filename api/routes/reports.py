"""Satisfaction reports: JSON, an HTML page with charts, CSV/XLSX export."""

from __future__ import annotations

import io
import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ConfigDict, Field

from api.deps import SessionDep, SettingsDep
from api.schemas import Incoming
from triage import publishing, reports

router = APIRouter(tags=["reports"])
templates = Jinja2Templates(directory=Path(__file__).resolve().parents[1] / "templates")
REASON_NAMES = {"not_resolved": "问题未解决", "slow": "办理拖延", "poor_attitude": "态度差",
                "passed_the_buck": "推诿扯皮", "reply_unclear": "答复不清", "repeat_problem": "问题反复",
                "other": "其他"}

From = Annotated[date, Query(alias="from", description="first day, YYYY-MM-DD")]
To = Annotated[date, Query(alias="to", description="last day, YYYY-MM-DD")]
Unit = Annotated[str | None, Query(description="one unit only")]
Subitem = Annotated[str | None, Query(description="a node path: its sub-items only")]


def _report(session: Any, settings: Any, start: date, end: date, unit: str | None,
            subitem: str | None) -> dict[str, Any]:
    return reports.satisfaction_report(session=session, settings=settings, start=start, end=end,
                                       unit=unit or None, subitem=subitem or None)


@router.get("/v1/reports/satisfaction")
def satisfaction(session: SessionDep, settings: SettingsDep, start: From, end: To,
                 unit: Unit = None, subitem: Subitem = None) -> dict[str, Any]:
    """Rates by unit (with rank and warnings), by sub-item, weekly trend and top reasons."""
    return _report(session, settings, start, end, unit, subitem)


@router.get("/v1/reports/satisfaction/export")
def export(session: SessionDep, settings: SettingsDep, start: From, end: To,
           unit: Unit = None, subitem: Subitem = None,
           format: Literal["csv", "xlsx"] = "csv") -> Response:
    """The by-unit table as CSV (UTF-8, no BOM) or XLSX."""
    rows = reports.unit_rows(_report(session, settings, start, end, unit, subitem))
    name = f"satisfaction_{start}_{end}.{format}"
    headers = {"content-disposition": f'attachment; filename="{name}"'}
    if format == "csv":
        buffer = io.StringIO()
        reports.write_unit_csv(buffer, rows)
        return Response(buffer.getvalue().encode("utf-8"), media_type="text/csv; charset=utf-8",
                        headers=headers)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        reports.write_xlsx(path, reports.UNIT_COLUMNS, rows)
        data = path.read_bytes()
    return Response(data, headers=headers, media_type=(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))


class PublishCreate(Incoming):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: date = Field(alias="from")
    end: date = Field(alias="to")
    by: str = Field(min_length=1, max_length=128)


class PeriodCorrection(Incoming):

    by: str = Field(min_length=1, max_length=128)
    reason: str = Field(min_length=1, max_length=2_000)


@router.post("/v1/reports/periods", status_code=status.HTTP_201_CREATED)
def publish_period(body: PublishCreate, session: SessionDep, settings: SettingsDep) -> dict:
    """Publish (freeze) a period's performance results; a second publication is refused."""
    return publishing.publish(session=session, settings=settings, start=body.start,
                              end=body.end, by=body.by).to_dict()


@router.post("/v1/reports/periods/{period}/corrections", status_code=status.HTTP_201_CREATED)
def correct_period(period: str, body: PeriodCorrection, session: SessionDep,
                   settings: SettingsDep) -> dict:
    """A new revision of a published period, with who and why; the earlier ones stay."""
    return publishing.correct(session=session, settings=settings, key=period, by=body.by,
                              reason=body.reason).to_dict()


@router.get("/v1/reports/periods/{period}")
def read_period(period: str, session: SessionDep, settings: SettingsDep) -> dict:
    """The published results, their revisions, and whether recomputing now would differ."""
    return publishing.status(session=session, settings=settings, key=period)


@router.get("/reports/satisfaction", response_class=HTMLResponse)
def page(request: Request, session: SessionDep, settings: SettingsDep,
         start: Annotated[date | None, Query(alias="from")] = None,
         end: Annotated[date | None, Query(alias="to")] = None,
         unit: Unit = None, subitem: Subitem = None) -> HTMLResponse:
    """The report page for staff (Chinese), charts drawn as SVG; defaults to this month."""
    today = reports.today()
    start = start or today.replace(day=1)
    end = end or today
    report = _report(session, settings, start, end, unit, subitem)
    return templates.TemplateResponse(request, "report.html", {
        "report": report, "unit": unit, "subitem": subitem, "reason_names": REASON_NAMES,
        "basic_weight": settings.performance.basic_weight})
