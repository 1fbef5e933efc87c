"""Returns (退回): a unit sends a ticket back; the ticket is routed again without that unit.

Every return is kept: it is a routing correction the next retraining learns from.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from models.artifacts import LoadedModel
from triage import store
from triage.errors import InvalidTicketError
from triage.intake import classify_text, dispatcher_of, get_ticket
from triage.settings import Settings


def record_return(
    *, session: Session, loaded: LoadedModel, settings: Settings, ticket_id: int, unit: str,
    reason: str | None,
) -> store.Ticket:
    """Store the return and append a prediction routed around every unit that returned it."""
    ticket = get_ticket(session=session, ticket_id=ticket_id)
    unit = unit.strip()
    if not unit:
        raise InvalidTicketError("unit is empty: name the unit that sends the ticket back")
    latest = store.latest_prediction(session, ticket)
    if latest is None:
        raise InvalidTicketError(f"ticket {ticket_id} has no prediction to return")
    store.add_return(session, ticket=ticket, unit=unit, reason=reason, prediction=latest)
    returned = [r.unit for r in ticket.returns]
    [route] = dispatcher_of(loaded).route(
        [classify_text(ticket.title, ticket.text)], [latest.subitem],
        default_unit=settings.default_department, exclude=[returned])
    explanation = dict(latest.explanation or {})
    explanation["routing"] = route.explanation
    reasons = [r for r in (route.review_reason,) if r]
    store.add_prediction(session, ticket=ticket, prediction={
        "model_version": loaded.version, "level1": latest.level1, "subitem": latest.subitem,
        "confidence": latest.confidence, "confidence_level1": latest.confidence_level1,
        "department": route.lead, "co_departments": route.co,
        "needs_review": route.needs_review, "review_reason": "；".join(reasons) or None,
        "district": route.address.district or None, "street": route.address.street or None,
        "community": route.address.community or None, "top": latest.top,
        "explanation": explanation,
    })
    session.refresh(ticket)
    return ticket
