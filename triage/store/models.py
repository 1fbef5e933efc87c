"""SQLAlchemy models for tickets, their (append-only) predictions and reviewer corrections.

Portable across SQLite and PostgreSQL. All datetimes are timezone-aware UTC in Python.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Current time as an aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetime stored as UTC; naive values are rejected, results are always aware.

    SQLite has no time zones, so values are normalised to UTC before binding and
    re-tagged as UTC when read back. PostgreSQL uses ``timestamp with time zone``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime not allowed (use an aware datetime): {value!r}")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Ticket(Base):
    """One incoming appeal. ``title`` and ``text`` hold already-masked text."""

    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    channel: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    text_sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)

    predictions: Mapped[list[Prediction]] = relationship(
        back_populates="ticket",
        order_by="Prediction.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
    corrections: Mapped[list[Correction]] = relationship(
        back_populates="ticket",
        order_by="Correction.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
    returns: Mapped[list[Return]] = relationship(
        back_populates="ticket",
        order_by="Return.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
    feedback: Mapped[list[Feedback]] = relationship(
        back_populates="ticket",
        order_by="Feedback.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
    events: Mapped[list[Event]] = relationship(
        back_populates="ticket",
        order_by="Event.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    def __repr__(self) -> str:
        return f"Ticket(id={self.id!r}, client_id={self.client_id!r})"


class Prediction(Base):
    """One model output for a ticket. Append-only: rows are never updated."""

    __tablename__ = "predictions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False, index=True
    )
    model_version: Mapped[str] = mapped_column(String(128), nullable=False)
    level1: Mapped[str] = mapped_column(Text, nullable=False)
    subitem: Mapped[str] = mapped_column(Text, nullable=False)
    confidence: Mapped[float] = mapped_column(Float, nullable=False)
    confidence_level1: Mapped[float | None] = mapped_column(Float)
    department: Mapped[str] = mapped_column(Text, nullable=False)
    co_departments: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    needs_review: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    review_reason: Mapped[str | None] = mapped_column(Text)
    district: Mapped[str | None] = mapped_column(Text)
    street: Mapped[str | None] = mapped_column(Text)
    community: Mapped[str | None] = mapped_column(Text)
    top: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False, default=list)
    explanation: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="predictions")

    def __repr__(self) -> str:
        return f"Prediction(id={self.id!r}, ticket_id={self.ticket_id!r}, subitem={self.subitem!r})"


class Correction(Base):
    """A reviewer's correction of a ticket's routing; ``before`` snapshots the corrected values."""

    __tablename__ = "corrections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False, index=True
    )
    prediction_id: Mapped[int | None] = mapped_column(
        ForeignKey("predictions.id", ondelete="SET NULL"), index=True
    )
    model_version: Mapped[str] = mapped_column(String(128), nullable=False)
    subitem: Mapped[str | None] = mapped_column(Text)
    department: Mapped[str | None] = mapped_column(Text)
    sentiment: Mapped[str | None] = mapped_column(String(32))
    before: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    reviewer: Mapped[str] = mapped_column(String(128), nullable=False)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="corrections")
    prediction: Mapped[Prediction | None] = relationship()

    def __repr__(self) -> str:
        return f"Correction(id={self.id!r}, ticket_id={self.ticket_id!r})"


class Return(Base):
    """A unit sent the ticket back (退回): a routing correction for later training."""

    __tablename__ = "returns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False, index=True
    )
    prediction_id: Mapped[int | None] = mapped_column(
        ForeignKey("predictions.id", ondelete="SET NULL"), index=True
    )
    unit: Mapped[str] = mapped_column(Text, nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="returns")

    def __repr__(self) -> str:
        return f"Return(id={self.id!r}, ticket_id={self.ticket_id!r}, unit={self.unit!r})"


class Feedback(Base):
    """A citizen's rating and words on a return visit (回访), with the sentiment read from them."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False, index=True
    )
    rating: Mapped[str | None] = mapped_column(String(16))
    rating_raw: Mapped[str | None] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    sentiment_label: Mapped[str | None] = mapped_column(String(16))
    sentiment_score: Mapped[float | None] = mapped_column(Float)
    reasons: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    needs_review: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    review_reason: Mapped[str | None] = mapped_column(Text)
    sentiment_version: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="feedback")


class Event(Base):
    """A step in a ticket's handling: dispatched, received, replied, resolved ... closed."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False, index=True
    )
    type: Mapped[str] = mapped_column(String(32), nullable=False)
    unit: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="events")


class PublishedRevision(Base):
    """One published revision of a period's performance results (see ``triage.ledger``)."""

    __tablename__ = "published_results"
    __table_args__ = (UniqueConstraint("period", "revision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    period: Mapped[str] = mapped_column(String(64), nullable=False)
    revision: Mapped[int] = mapped_column(Integer, nullable=False)
    record: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


@event.listens_for(PublishedRevision, "before_update")
def _published_results_are_append_only(mapper: Any, connection: Any,
                                       target: PublishedRevision) -> None:
    raise ValueError("published results are append-only: correct a period with a new revision")


@event.listens_for(Prediction, "before_update")
def _predictions_are_append_only(mapper: Any, connection: Any, target: Prediction) -> None:
    raise ValueError(f"predictions are append-only; refusing to update Prediction {target.id}")
