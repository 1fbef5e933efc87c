"""Data-access functions. They add and flush but never commit: the caller owns the transaction."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from triage.store.models import Correction, Event, Feedback, Prediction, Return, Ticket

PREDICTION_FIELDS = frozenset(
    c.key for c in Prediction.__table__.columns if c.key not in {"id", "ticket_id", "created_at"}
)
CORRECTION_FIELDS = frozenset(
    c.key for c in Correction.__table__.columns if c.key not in {"id", "ticket_id", "created_at"}
)


def text_sha256(text: str) -> str:
    """Hex SHA-256 of the UTF-8 encoded text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_keys(kind: str, values: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = set(values) - allowed
    if unknown:
        raise ValueError(f"unknown {kind} field(s): {sorted(unknown)}; allowed: {sorted(allowed)}")


def add_ticket(
    session: Session,
    *,
    text: str,
    title: str | None,
    channel: str | None,
    client_id: str | None,
    received_at: datetime,
) -> Ticket:
    """Store a ticket (``text``/``title`` must already be masked); ``received_at`` must be aware."""
    if received_at.tzinfo is None or received_at.utcoffset() is None:
        raise ValueError("received_at must be timezone-aware")
    ticket = Ticket(
        text=text,
        title=title,
        channel=channel,
        client_id=client_id,
        received_at=received_at,
        text_sha256=text_sha256(text),
    )
    session.add(ticket)
    session.flush()
    return ticket


def get_ticket(session: Session, ticket_id: int, *, lock: bool = False) -> Ticket | None:
    """Ticket by primary key, or None; ``lock``: SELECT ... FOR UPDATE (PostgreSQL; a no-op on
    SQLite), re-read even when the session holds it already."""
    if lock:
        return session.get(Ticket, ticket_id, with_for_update=True, populate_existing=True)
    return session.get(Ticket, ticket_id)


def get_ticket_by_client_id(session: Session, client_id: str) -> Ticket | None:
    """Ticket by the client-supplied id, or None."""
    return session.scalars(select(Ticket).where(Ticket.client_id == client_id)).one_or_none()


def add_prediction(
    session: Session, *, ticket: Ticket, prediction: Mapping[str, Any]
) -> Prediction:
    """Append a prediction; keys are Prediction column names except id/ticket_id/created_at."""
    _check_keys("prediction", prediction, PREDICTION_FIELDS)
    row = Prediction(ticket=ticket, **dict(prediction))
    session.add(row)
    session.flush()
    return row


def latest_prediction(session: Session, ticket: Ticket) -> Prediction | None:
    """The most recently stored prediction of ``ticket``, or None."""
    stmt = (
        select(Prediction)
        .where(Prediction.ticket_id == ticket.id)
        .order_by(Prediction.id.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


def latest_correction(prediction: Prediction, field: str) -> Correction | None:
    """The latest correction of ``prediction`` that sets ``field`` (``"department"``: a person's
    dispatch; ``"subitem"``: a person's sub-item), or None."""
    return max((c for c in prediction.ticket.corrections
                if c.prediction_id == prediction.id and getattr(c, field)),
               key=lambda c: c.id, default=None)


def add_correction(session: Session, *, ticket: Ticket, values: Mapping[str, Any]) -> Correction:
    """Record a reviewer correction; keys are Correction columns except id/ticket_id/created_at.

    If ``model_version`` is missing it is taken from the referenced prediction (``prediction_id``).
    """
    _check_keys("correction", values, CORRECTION_FIELDS)
    data = dict(values)
    if data.get("model_version") is None and data.get("prediction_id") is not None:
        referenced = session.get(Prediction, data["prediction_id"])
        if referenced is not None:
            data["model_version"] = referenced.model_version
    row = Correction(ticket=ticket, **data)
    session.add(row)
    session.flush()
    return row


def count_tickets(session: Session) -> int:
    """Number of stored tickets."""
    return session.scalar(select(func.count()).select_from(Ticket)) or 0


def add_return(
    session: Session, *, ticket: Ticket, unit: str, reason: str | None,
    prediction: Prediction | None,
) -> Return:
    """Record that ``unit`` sent the ticket back."""
    row = Return(ticket=ticket, unit=unit, reason=reason,
                 prediction_id=prediction.id if prediction is not None else None)
    session.add(row)
    session.flush()
    return row


def add_feedback(session: Session, *, ticket: Ticket, values: Mapping[str, Any]) -> Feedback:
    """Store one return-visit feedback (``text`` already masked)."""
    row = Feedback(ticket=ticket, **dict(values))
    session.add(row)
    session.flush()
    return row


def add_event(session: Session, *, ticket: Ticket, type: str, unit: str | None,
              at: datetime) -> Event:
    """Store one handling event."""
    row = Event(ticket=ticket, type=type, unit=unit, at=at)
    session.add(row)
    session.flush()
    return row
