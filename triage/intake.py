"""The service behind ``POST /v1/tickets``: mask, store, classify, route, record the prediction."""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.artifacts import LoadedModel
from models.memory import CorrectionMemory
from triage import store
from triage.errors import ClientIdConflictError, InvalidTicketError, NotFoundError
from triage.predicting import classify_text, predict_records
from triage.settings import Settings
from triage.text import clean, has_text

# A clock a little ahead, or a time zone misread, is not a future ticket.
FUTURE_TOLERANCE = timedelta(days=1)


@dataclass
class TicketIn:
    """One incoming appeal as the intake API receives it."""

    text: str
    title: str | None = None
    channel: str | None = None
    client_id: str | None = None
    received_at: datetime | None = None


def _validate(item: TicketIn, settings: Settings) -> None:
    if not has_text(item.text):
        raise InvalidTicketError("text is empty: send the appeal's wording in `text` (spaces and "
                                 "invisible characters such as zero-width spaces do not count)")
    if len(item.text) > settings.max_text_chars:
        raise InvalidTicketError(
            f"text has {len(item.text)} characters; at most {settings.max_text_chars} are accepted")
    received = _aware(item.received_at, settings)
    if received is not None and received > datetime.now(UTC) + FUTURE_TOLERANCE:
        # a ticket received in the future is never overdue and skews every response time
        raise InvalidTicketError(
            f"received_at ({received.isoformat()}) is in the future: send when the appeal was "
            "received (a time without a zone is read in the centre's time zone)")


def create_tickets(
    *, session: Session, loaded: LoadedModel, settings: Settings, items: list[TicketIn],
    memory: CorrectionMemory | None = None,
) -> list[store.Ticket]:
    """Store and classify appeals in the caller's transaction (all or nothing).

    A ``client_id`` seen before returns the ticket stored then, unchanged and without a new
    prediction. The appeals are classified before the first statement of the transaction: on
    SQLite a writing transaction holds the database's one write lock, and a batch read by the
    encoder takes seconds (an appeal resent under a known ``client_id`` is classified for nothing).
    """
    for item in items:
        _validate(item, settings)
    # masked and normalised once: what is stored, classified and compared with a retry
    items = [replace(i, text=clean(i.text), title=clean(i.title) if i.title else None)
             for i in items]
    texts = [classify_text(t.title, t.text) for t in items]
    unique = list(dict.fromkeys(texts))
    predicted = dict(zip(unique, predict_records(loaded=loaded, settings=settings, memory=memory,
                                                 texts=unique), strict=True))
    results: list[store.Ticket] = []
    fresh: list[store.Ticket] = []
    seen: dict[str, store.Ticket] = {}
    for item in items:
        in_batch = bool(item.client_id) and item.client_id in seen
        known = _known(session, seen, item.client_id)
        if known is None:
            known, created = _add(session, item, settings)
            if created:
                fresh.append(known)
            if item.client_id:
                seen[item.client_id] = known
        _same_appeal(known, item, in_batch=in_batch)
        results.append(known)
    for ticket in fresh:
        record = predicted[classify_text(ticket.title, ticket.text)]
        store.add_prediction(session, ticket=ticket, prediction=copy.deepcopy(record))
    return results


def _add(session: Session, item: TicketIn, settings: Settings) -> tuple[store.Ticket, bool]:
    """Store a ticket; if a concurrent retry stored the same ``client_id`` first, return that one."""
    try:
        with session.begin_nested():
            ticket = store.add_ticket(
                session, text=item.text, title=item.title,
                channel=item.channel, client_id=item.client_id,
                received_at=_aware(item.received_at, settings) or datetime.now(UTC),
            )
        return ticket, True
    except IntegrityError:
        winner = store.get_ticket_by_client_id(session, item.client_id) if item.client_id else None
        if winner is None:
            raise
        return winner, False


def _same_appeal(ticket: store.Ticket, item: TicketIn, *, in_batch: bool = False) -> None:
    """A ``client_id`` makes a retry idempotent; another appeal under it would be lost silently
    (the caller would get the earlier ticket back), so it is refused with the ticket it names."""
    if item.client_id and (ticket.text != item.text or (ticket.title or None) != item.title):
        if in_batch:  # the earlier one is not stored either: the batch is refused whole
            raise ClientIdConflictError(
                f"client_id {item.client_id!r} is given to two different appeals in this batch: "
                "give each appeal its own client_id (nothing of the batch was stored)")
        raise ClientIdConflictError(
            f"client_id {item.client_id!r} was already used for a different appeal (ticket "
            f"{ticket.id}): a retry resends the same title and text; a new appeal needs a new "
            "client_id")


def _known(session: Session, seen: dict[str, store.Ticket], client_id: str | None) -> store.Ticket | None:
    """The ticket already stored (or earlier in this batch) under ``client_id``."""
    if not client_id:
        return None
    return seen.get(client_id) or store.get_ticket_by_client_id(session, client_id)


def _aware(moment: datetime | None, settings: Settings) -> datetime | None:
    """A time without a zone is the centre's local time (``TRIAGE_TIMEZONE``)."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=ZoneInfo(settings.timezone))
    return moment


def get_ticket(*, session: Session, ticket_id: int, lock: bool = False) -> store.Ticket:
    """The ticket, or NotFoundError; ``lock`` holds its row until the transaction ends."""
    ticket = store.get_ticket(session, ticket_id, lock=lock)
    if ticket is None:
        raise NotFoundError(f"there is no ticket {ticket_id}")
    return ticket
