"""Persistence layer: models, engine/session helpers, migrations and repository functions."""

from triage.store.db import (
    make_engine,
    make_session_factory,
    migrate,
    session_scope,
    writing_session,
)
from triage.store.models import (
    Base,
    Correction,
    Event,
    Feedback,
    Prediction,
    PublishedRevision,
    Return,
    Ticket,
)
from triage.store.repository import (
    add_correction,
    add_event,
    add_feedback,
    add_prediction,
    add_return,
    add_ticket,
    count_tickets,
    get_ticket,
    get_ticket_by_client_id,
    latest_correction,
    latest_prediction,
)

__all__ = [
    "Base",
    "Correction",
    "Event",
    "Feedback",
    "Prediction",
    "PublishedRevision",
    "Return",
    "Ticket",
    "add_correction",
    "add_event",
    "add_feedback",
    "add_prediction",
    "add_return",
    "add_ticket",
    "count_tickets",
    "get_ticket",
    "get_ticket_by_client_id",
    "latest_correction",
    "latest_prediction",
    "make_engine",
    "make_session_factory",
    "migrate",
    "session_scope",
    "writing_session",
]
