"""Intake routes: create tickets (one or a batch), read one back."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import MemoryDep, ModelDep, SessionDep, SettingsDep, TicketId
from api.schemas import (
    CorrectionCreate,
    CorrectionPublic,
    ReturnCreate,
    TicketCreate,
    TicketPublic,
    TicketsCreate,
    TicketsPublic,
)
from api.views import ticket_public
from triage import intake, returns, review

router = APIRouter(prefix="/v1/tickets", tags=["tickets"])


def _item(body: TicketCreate) -> intake.TicketIn:
    return intake.TicketIn(**body.model_dump())


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TicketPublic)
def create_ticket(body: TicketCreate, session: SessionDep, loaded: ModelDep,
                  settings: SettingsDep, memory: MemoryDep) -> TicketPublic:
    """Mask, store and classify one appeal; a repeated ``client_id`` returns the stored ticket."""
    [ticket] = intake.create_tickets(session=session, loaded=loaded, settings=settings,
                                     items=[_item(body)], memory=memory)
    return ticket_public(ticket)


@router.post("/batch", status_code=status.HTTP_201_CREATED, response_model=TicketsPublic)
def create_tickets(body: TicketsCreate, session: SessionDep, loaded: ModelDep,
                   settings: SettingsDep, memory: MemoryDep) -> TicketsPublic:
    """Up to 1,000 appeals, stored all together or not at all."""
    tickets = intake.create_tickets(session=session, loaded=loaded, settings=settings,
                                    items=[_item(t) for t in body.tickets], memory=memory)
    data = [ticket_public(t) for t in tickets]
    return TicketsPublic(data=data, count=len(data))


@router.get("/{ticket_id}", response_model=TicketPublic)
def read_ticket(ticket_id: TicketId, session: SessionDep) -> TicketPublic:
    """The ticket with its latest prediction and its corrections."""
    return ticket_public(intake.get_ticket(session=session, ticket_id=ticket_id),
                        with_corrections=True)


@router.post("/{ticket_id}/return", status_code=status.HTTP_201_CREATED,
             response_model=TicketPublic)
def return_ticket(ticket_id: TicketId, body: ReturnCreate, session: SessionDep, loaded: ModelDep,
                  settings: SettingsDep) -> TicketPublic:
    """A unit sends the ticket back (退回): recorded, and the ticket is routed again without it."""
    ticket = returns.record_return(session=session, loaded=loaded, settings=settings,
                                   ticket_id=ticket_id, unit=body.unit, reason=body.reason)
    return ticket_public(ticket, with_corrections=True)


@router.post("/{ticket_id}/corrections", status_code=status.HTTP_201_CREATED,
             response_model=CorrectionPublic)
def correct_ticket(ticket_id: TicketId, body: CorrectionCreate, session: SessionDep,
                   loaded: ModelDep, memory: MemoryDep) -> CorrectionPublic:
    """A reviewer's fix (sub-item at any level, department, sentiment); reused at once for the
    same complaint reworded. The prediction it corrects is kept as it was."""
    row = review.record_correction(
        session=session, loaded=loaded, memory=memory, ticket_id=ticket_id, subitem=body.subitem,
        department=body.department, sentiment=body.sentiment, reviewer=body.reviewer,
        note=body.note)
    return CorrectionPublic.model_validate(row, from_attributes=True)
