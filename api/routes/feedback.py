"""Return-visit feedback and handling events of a ticket."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from api.deps import SessionDep, SettingsDep, TicketId
from api.schemas import EventCreate, EventPublic, FeedbackCreate, FeedbackPublic
from models.sentiment import LoadedSentiment
from triage import feedback

router = APIRouter(prefix="/v1/tickets", tags=["feedback"])


def get_sentiment(request: Request) -> LoadedSentiment:
    return request.app.state.sentiment


SentimentDep = Annotated[LoadedSentiment, Depends(get_sentiment)]


@router.post("/{ticket_id}/feedback", status_code=status.HTTP_201_CREATED,
             response_model=FeedbackPublic)
def add_feedback(ticket_id: TicketId, body: FeedbackCreate, session: SessionDep,
                 sentiment: SentimentDep, settings: SettingsDep) -> FeedbackPublic:
    """A return visit's rating and words; the words are masked and scored."""
    row = feedback.record_feedback(session=session, sentiment=sentiment, ticket_id=ticket_id,
                                   rating=body.rating, text=body.text, channel=body.channel,
                                   at=body.at, zone=settings.timezone)
    return FeedbackPublic.model_validate(row, from_attributes=True)


@router.post("/{ticket_id}/events", status_code=status.HTTP_201_CREATED,
             response_model=EventPublic)
def add_event(ticket_id: TicketId, body: EventCreate, session: SessionDep,
              settings: SettingsDep) -> EventPublic:
    """One step of the ticket's handling (dispatched ... closed)."""
    row = feedback.record_event(session=session, ticket_id=ticket_id, type=body.type,
                                unit=body.unit, at=body.at, zone=settings.timezone,
                                hotline=settings.default_department)
    return EventPublic.model_validate(row, from_attributes=True)
