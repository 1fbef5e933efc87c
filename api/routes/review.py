"""The review queue (JSON)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import SessionDep, SettingsDep
from triage import queue

router = APIRouter(prefix="/v1/review", tags=["review"])


@router.get("")
def review_queue(
    session: SessionDep, settings: SettingsDep,
    unit: Annotated[str | None, Query(description="department of the latest prediction")] = None,
    category: Annotated[str | None, Query(description="top-level category")] = None,
    reason: Annotated[str | None, Query(description="review | disputed | audit, or words of "
                                                    "the reason")] = None,
    limit: Annotated[int, Query(ge=1, le=5_000)] = 1_000,
    offset: Annotated[int, Query(ge=0, description="items to skip (paging)")] = 0,
) -> dict[str, Any]:
    """Tickets that need a person, most urgent first: ``count`` on this page, ``total`` in the
    filtered queue (page on with ``offset``)."""
    items, total = queue.review_page(session=session, settings=settings, unit=unit or None,
                                     category=category or None, reason=reason or None,
                                     limit=limit, offset=offset)
    return {"data": [i.to_dict() for i in items], "count": len(items), "total": total,
            "offset": offset}
