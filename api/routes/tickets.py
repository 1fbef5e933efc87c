"""Intake routes: create tickets (one or a batch), read one back."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import ModelDep, SessionDep, SettingsDep
from api.schemas import ReturnCreate, TicketCreate, TicketPublic, TicketsCreate, TicketsPublic
from api.views import ticket_public
from triage import intake, returns

router = APIRouter(prefix="/v1/tickets", tags=["tickets"])


def _item(body: TicketCreate) -> intake.TicketIn:
    return intake.TicketIn(**body.model_dump())


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TicketPublic)
def create_ticket(body: TicketCreate, session: SessionDep, loaded: ModelDep,
                  settings: SettingsDep) -> TicketPublic:
    """Mask, store and classify one appeal; a repeated ``client_id`` returns the stored ticket."""
    [ticket] = intake.create_tickets(session=session, loaded=loaded, settings=settings,
                                     items=[_item(body)])
    return ticket_public(ticket)


@router.post("/batch", status_code=status.HTTP_201_CREATED, response_model=TicketsPublic)
def create_tickets(body: TicketsCreate, session: SessionDep, loaded: ModelDep,
                   settings: SettingsDep) -> TicketsPublic:
    """Up to 1,000 appeals, stored all together or not at all."""
    tickets = intake.create_tickets(session=session, loaded=loaded, settings=settings,
                                    items=[_item(t) for t in body.tickets])
    data = [ticket_public(t) for t in tickets]
    return TicketsPublic(data=data, count=len(data))


@router.get("/{ticket_id}", response_model=TicketPublic)
def read_ticket(ticket_id: int, session: SessionDep) -> TicketPublic:
    """The ticket with its latest prediction and its corrections."""
    return ticket_public(intake.get_ticket(session=session, ticket_id=ticket_id),
                        with_corrections=True)


@router.post("/{ticket_id}/return", status_code=status.HTTP_201_CREATED,
             response_model=TicketPublic)
def return_ticket(ticket_id: int, body: ReturnCreate, session: SessionDep, loaded: ModelDep,
                  settings: SettingsDep) -> TicketPublic:
    """A unit sends the ticket back (退回): recorded, and the ticket is routed again without it."""
    ticket = returns.record_return(session=session, loaded=loaded, settings=settings,
                                   ticket_id=ticket_id, unit=body.unit, reason=body.reason)
    return ticket_public(ticket, with_corrections=True)
