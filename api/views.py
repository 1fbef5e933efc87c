"""Turning stored rows into public schemas."""

from __future__ import annotations

from api.schemas import CorrectionPublic, PredictionPublic, ReturnPublic, TicketPublic
from triage.store import Prediction, Ticket


def prediction_public(row: Prediction | None) -> PredictionPublic | None:
    if row is None:
        return None
    return PredictionPublic.model_validate(row, from_attributes=True)


def ticket_public(ticket: Ticket, *, with_corrections: bool = False) -> TicketPublic:
    latest = ticket.predictions[-1] if ticket.predictions else None
    corrections = ([CorrectionPublic.model_validate(c, from_attributes=True)
                    for c in ticket.corrections] if with_corrections else [])
    return TicketPublic(
        id=ticket.id, client_id=ticket.client_id, channel=ticket.channel,
        received_at=ticket.received_at, title=ticket.title, text=ticket.text,
        prediction=prediction_public(latest), corrections=corrections,
        returns=[ReturnPublic.model_validate(r, from_attributes=True) for r in ticket.returns]
        if with_corrections else [],
    )
