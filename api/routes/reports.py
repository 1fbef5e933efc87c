"""Satisfaction reports."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query

from triage import reports

from api.deps import SessionDep, SettingsDep

router = APIRouter(prefix="/v1/reports", tags=["reports"])


@router.get("/satisfaction")
def satisfaction(
    session: SessionDep, settings: SettingsDep,
    start: Annotated[date, Query(alias="from", description="first day, YYYY-MM-DD")],
    end: Annotated[date, Query(alias="to", description="last day, YYYY-MM-DD")],
    unit: Annotated[str | None, Query(description="one unit only")] = None,
    subitem: Annotated[str | None, Query(description="a node path: its sub-items only")] = None,
) -> dict[str, Any]:
    """Rates by unit (with rank and warnings), by sub-item, weekly trend and top reasons."""
    return reports.satisfaction_report(session=session, settings=settings, start=start, end=end,
                                       unit=unit or None, subitem=subitem or None)
