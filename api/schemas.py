"""Request and response bodies of the HTTP API (one schema per direction)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    StringConstraints,
    model_validator,
)


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {k: _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


class Incoming(BaseModel):
    """A request body: unknown fields refused; NUL characters dropped from every string (they
    mean nothing in an appeal, and PostgreSQL text cannot hold them: a 500 there before)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _drop_nul(cls, data: Any) -> Any:
        return _without_nul(data)


class TicketCreate(Incoming):

    text: str = Field(min_length=1, max_length=20_000, description="the appeal, 1–20,000 characters")
    title: str | None = Field(None, max_length=500)
    channel: str | None = Field(None, max_length=64, description="phone, web, community ...")
    client_id: str | None = Field(None, min_length=1, max_length=128,
                                  description="makes a retry idempotent")
    received_at: datetime | None = None


class TicketsCreate(Incoming):

    tickets: list[TicketCreate] = Field(min_length=1, max_length=1_000)


class Alternative(BaseModel):
    subitem: str
    confidence: float


class PredictionPublic(BaseModel):
    level1: str
    subitem: str
    confidence: float
    confidence_level1: float | None
    department: str
    co_departments: list[str]
    needs_review: bool
    review_reason: str | None
    district: str | None = None
    street: str | None = None
    community: str | None = None
    top: list[Alternative]
    explanation: dict[str, Any]
    model_version: str
    created_at: datetime


class CorrectionPublic(BaseModel):
    id: int
    ticket_id: int
    subitem: str | None
    department: str | None
    sentiment: str | None
    reviewer: str
    note: str | None
    model_version: str
    before: dict[str, Any]
    created_at: datetime


class ReturnCreate(Incoming):

    # stripped first: a unit of spaces only is as empty as "" (one 422 with its field for both)
    unit: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] \
        = Field(description="the unit sending the ticket back")
    reason: str | None = Field(None, max_length=2_000)


class ReturnPublic(BaseModel):
    id: int
    unit: str
    reason: str | None
    created_at: datetime


class TicketPublic(BaseModel):
    id: int
    client_id: str | None
    channel: str | None
    received_at: datetime
    title: str | None
    text: str
    prediction: PredictionPublic | None
    corrections: list[CorrectionPublic] = []
    returns: list[ReturnPublic] = []


class TicketsPublic(BaseModel):
    data: list[TicketPublic]
    count: int


class TaxonomyPublic(BaseModel):
    version: str
    data: list[dict[str, Any]]


class HealthPublic(BaseModel):
    status: str
    model_version: str | None


def _rating(value: Any) -> Any:
    """A rating word or a whole score as JSON gives it; ``true`` or ``3.5`` is no rating."""
    if value is None or isinstance(value, str) or (
            isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 4.0 is the score 4
    raise ValueError(f"rating must be 满意, 基本满意 or 不满意, or a whole number from 1 to 5; "
                     f"got {json.dumps(value, ensure_ascii=False, default=str)}")


Rating = Annotated[StrictStr | StrictInt | None, BeforeValidator(_rating)]


class FeedbackCreate(Incoming):

    rating: Rating = Field(None, description="满意 / 基本满意 / 不满意, or 1–5")
    text: str | None = Field(None, max_length=5_000, description="what the citizen said")
    channel: str | None = Field(None, max_length=64)
    at: datetime | None = None


class FeedbackPublic(BaseModel):
    id: int
    ticket_id: int
    rating: str | None
    text: str | None
    channel: str | None
    at: datetime
    sentiment_label: str | None
    sentiment_score: float | None
    reasons: list[str]
    evidence: dict[str, Any]
    needs_review: bool
    review_reason: str | None
    sentiment_version: str | None


class EventCreate(Incoming):

    type: str = Field(description="dispatched, received, replied, resolved, unresolved, "
                                  "returned, reopened or closed")
    unit: str | None = Field(None, max_length=200)
    at: datetime | None = None


class EventPublic(BaseModel):
    id: int
    ticket_id: int
    type: str
    unit: str | None
    at: datetime


class CorrectionCreate(Incoming):

    subitem: str | None = Field(None, max_length=500, description="a node path at any level")
    department: str | None = Field(None, max_length=200)
    sentiment: str | None = Field(None, description="positive, neutral or negative")
    reviewer: str = Field(min_length=1, max_length=128)
    note: str | None = Field(None, max_length=2_000)
