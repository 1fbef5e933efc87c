"""Return-visit feedback and handling events: validated, masked, scored, stored.

Ratings are 满意 / 基本满意 / 不满意 or 1–5 (5, 4 → 满意; 3 → 基本满意; 2, 1 → 不满意). Free text is
masked, then scored by the sentiment model (score, label, dissatisfaction reasons); feedback whose
words contradict its rating is flagged for review.

A text the sentiment model finds no evidence in (no sentiment word, no dissatisfaction reason and a
score inside its neutral band: 👍, "ok", "x", 嗯) is stored with no sentiment label and no score:
it is not a rating, so it never stands in for one in the satisfaction rate (reports count such
texts apart). ``at`` is when the citizen said it; more than a day ahead of now is refused, as a
ticket's ``received_at`` is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from models.sentiment import LoadedSentiment, SentimentResult
from triage import store
from triage.errors import InputFileError, InvalidTicketError, ReturnRefusedError, TriageError
from triage.intake import FUTURE_TOLERANCE, get_ticket
from triage.returns import current_holders, holder_named
from triage.text import clean
from triage.units import same_unit

RATINGS = ("满意", "基本满意", "不满意")
_RATING_CODES = {"5": "满意", "4": "满意", "3": "基本满意", "2": "不满意", "1": "不满意",
                 **{r: r for r in RATINGS}}
EVENT_TYPES = ("dispatched", "received", "replied", "resolved", "unresolved", "returned",
               "reopened", "closed")


def normalize_rating(value: str | int | None) -> str | None:
    """满意 / 基本满意 / 不满意 from a rating word or a 1–5 score; a clear error otherwise."""
    if value is None or str(value).strip() == "":
        return None
    rating = _RATING_CODES.get(str(value).strip().removesuffix(".0"))
    if rating is None:
        raise InvalidTicketError(
            f"rating {value!r} is not one of 满意, 基本满意, 不满意 or a score from 1 to 5")
    return rating


def _moment(at: datetime | None, zone: str) -> datetime:
    """Now, or ``at``; a time without a zone is the centre's local time (as at intake)."""
    if at is None:
        return datetime.now(UTC)
    return at if at.tzinfo else at.replace(tzinfo=ZoneInfo(zone))


def _said_at(at: datetime | None, zone: str) -> datetime:
    """When the citizen gave the feedback; a time in the future is refused (it would be the
    ticket's latest word until that day came, whatever the citizen says in between)."""
    moment = _moment(at, zone)
    if moment > datetime.now(UTC) + FUTURE_TOLERANCE:
        raise InvalidTicketError(
            f"at ({moment.isoformat()}) is in the future: send when the citizen gave the feedback "
            "(a time without a zone is read in the centre's time zone)")
    return moment


def record_feedback(
    *, session: Session, sentiment: LoadedSentiment, ticket_id: int, rating: str | int | None,
    text: str | None, channel: str | None = None, at: datetime | None = None,
    zone: str = "Asia/Shanghai",
) -> store.Feedback:
    """Store a return visit's rating and words with the sentiment read from them."""
    ticket = get_ticket(session=session, ticket_id=ticket_id)
    normalized = normalize_rating(rating)
    words = clean(text) if text and text.strip() else None
    if normalized is None and words is None:
        raise InvalidTicketError("feedback needs a rating, a text, or both")
    values: dict[str, Any] = {"rating": normalized, "rating_raw": None if rating is None else
                              str(rating), "text": words, "channel": channel,
                              "at": _said_at(at, zone), "sentiment_version": sentiment.version}
    if words is not None:
        result = (sentiment.model.check_rating(words, normalized) if normalized
                  else sentiment.model.predict([words])[0])
        values.update(_sentiment_values(result))
    return store.add_feedback(session, ticket=ticket, values=values)


def _sentiment_values(result: SentimentResult) -> dict[str, Any]:
    """What is stored of the text's sentiment; nothing of a text with no evidence (not rated)."""
    if not result.informative:
        return {"sentiment_label": None, "sentiment_score": None, "reasons": [], "evidence": {},
                "needs_review": False, "review_reason": None}
    return {"sentiment_label": result.label, "sentiment_score": round(float(result.score), 4),
            "reasons": list(result.reasons), "evidence": dict(result.evidence),
            "needs_review": result.needs_review, "review_reason": result.review_reason or None}


@dataclass(frozen=True)
class Verdict:
    """What a ticket's feedback counts as in the satisfaction rate.

    ``rating``: the latest explicit rating, by the time the citizen gave it (``at``, then the
    order stored); a later text without a rating does not replace it. ``sentiment_label``: the
    sentiment of the latest text that has one; it stands in only where ``rating`` is None.
    ``uninformative``: the ticket has texts, but none with a rating or any sentiment evidence.
    """

    rating: str | None
    sentiment_label: str | None
    uninformative: bool


def said_when(row: store.Feedback) -> tuple[datetime, int]:
    """Order of a ticket's feedback: when the citizen gave it, then the order stored."""
    return row.at, row.id


def verdict_of(feedback: Sequence[store.Feedback]) -> Verdict:
    """The verdict of one ticket's feedback rows (in any order)."""
    ordered = sorted(feedback, key=said_when)
    rated = [f.rating for f in ordered if f.rating]
    read = [f.sentiment_label for f in ordered if f.text and f.sentiment_label]
    return Verdict(rating=rated[-1] if rated else None, sentiment_label=read[-1] if read else None,
                   uninformative=not rated and not read and any(f.text for f in ordered))


def is_unhappy(row: store.Feedback) -> bool:
    """A dissatisfied rating, or words read as negative."""
    return row.rating == "不满意" or row.sentiment_label == "negative"


def dissatisfied(feedback: Sequence[store.Feedback]) -> bool:
    """The citizen is dissatisfied: the verdict says so, or their latest word (by ``at``) does."""
    if not feedback:
        return False
    verdict = verdict_of(feedback)
    if verdict.rating == "不满意" or (verdict.rating is None
                                       and verdict.sentiment_label == "negative"):
        return True
    return is_unhappy(max(feedback, key=said_when))


def record_event(
    *, session: Session, ticket_id: int, type: str, unit: str | None, at: datetime | None,
    zone: str = "Asia/Shanghai", hotline: str = "",
) -> store.Event:
    """Store one handling event of a known type.

    A ``returned`` event counts against its unit in the return rate, so, as for
    ``POST /return``, its unit must hold the ticket (``ReturnRefusedError`` otherwise): the lead
    or a co-handler of the latest dispatch, or a unit an earlier ``dispatched`` or ``received``
    event names (the centre's own dispatch, recorded as events). It is stored under the name it
    was sent with.
    """
    if type not in EVENT_TYPES:
        raise InvalidTicketError(f"event type {type!r} is not one of {', '.join(EVENT_TYPES)}")
    ticket = get_ticket(session=session, ticket_id=ticket_id)
    unit = (unit or "").strip() or None
    if type == "returned":
        if unit is None:
            raise InvalidTicketError(
                "a returned event needs its unit: name the unit that sends the ticket back (a "
                "return counts against it)")
        if hotline and same_unit(unit, hotline):
            raise ReturnRefusedError(
                f"{hotline} is the hotline office and does not return tickets: a person there "
                f"dispatches ticket {ticket.id} to a responsible unit by correcting its department")
        holder_named(ticket_id=ticket.id, holders=_event_holders(session, ticket), unit=unit,
                     hotline=hotline)
    return store.add_event(session, ticket=ticket, type=type, unit=unit, at=_moment(at, zone))


def _event_holders(session: Session, ticket: store.Ticket) -> list[str]:
    """The units a ticket has reached: its current dispatch, then units its events name."""
    latest = store.latest_prediction(session, ticket)
    holders = current_holders(latest) if latest is not None else []
    named = [e.unit for e in ticket.events if e.type in {"dispatched", "received"} and e.unit]
    return list(dict.fromkeys([*holders, *named]))


def import_rows(
    *, session: Session, rows: list[dict[str, str]], row_numbers: list[int], kind: str,
    sentiment: LoadedSentiment | None = None, zone: str = "Asia/Shanghai", hotline: str = "",
) -> int:
    """Import feedback (``ticket_id, rating, text, channel, at``) or events (``ticket_id, type,
    unit, at``) rows, all or none: every bad row is named in one error and nothing is stored."""
    problems: list[str] = []
    done = 0
    for row, number in zip(rows, row_numbers, strict=True):
        try:
            with session.begin_nested():
                _import_one(session, row, kind, sentiment, zone, hotline)
            done += 1
        except (TriageError, ValueError) as exc:
            problems.append(f"row {number}: {getattr(exc, 'message', str(exc))}")
    if problems:
        session.rollback()
        shown = "; ".join(problems[:20]) + (f"; and {len(problems) - 20} more" if len(problems) > 20
                                            else "")
        raise InputFileError(f"nothing was imported: {shown}")
    return done


def _import_one(session: Session, row: dict[str, str], kind: str,
                sentiment: LoadedSentiment | None, zone: str, hotline: str = "") -> None:
    raw_id = (row.get("ticket_id") or "").strip()
    if not raw_id.isdigit():
        raise InvalidTicketError(f"ticket_id {raw_id!r} is not a ticket number")
    at = _parse_time(row.get("at"))
    if kind == "events":
        record_event(session=session, ticket_id=int(raw_id), type=(row.get("type") or "").strip(),
                     unit=row.get("unit"), at=at, zone=zone, hotline=hotline)
        return
    assert sentiment is not None
    record_feedback(session=session, sentiment=sentiment, ticket_id=int(raw_id),
                    rating=row.get("rating") or None, text=row.get("text") or None,
                    channel=row.get("channel") or None, at=at, zone=zone)


def _parse_time(value: str | None) -> datetime | None:
    if not value or not value.strip():
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidTicketError(f"at {value!r} is not a time like 2026-11-02T09:30:00+08:00") from None
