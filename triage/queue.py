"""The review queue: what staff should look at, most urgent first.

A ticket is in the queue when its latest prediction needs review, when it is disputed (the
citizen was dissatisfied, or a unit returned it), or when it falls in the small audit sample of
confident predictions (every Nth ticket), so the automatic path stays measured. A correction of
the latest prediction takes it out, until a dispute arrives after it: dissatisfied feedback or a
return stored after the correction puts the ticket back as disputed (staff have not seen it yet).

priority = P(wrong) × severity × urgency, where P(wrong) = 1 − confidence (at least 0.5 for a
disputed ticket), severity comes from settings per sub-item and rises with words such as 燃气 or
坠落, and urgency grows as the receipt deadline nears; an overdue ticket comes before any other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, selectinload

from triage import store
from triage.feedback import dissatisfied, is_unhappy
from triage.settings import Settings

OVERDUE_BASE = 1_000.0


@dataclass
class QueueItem:
    """One ticket waiting for a reviewer."""

    ticket_id: int
    title: str | None
    text: str
    received_at: datetime
    deadline: datetime
    overdue: bool
    queue_reason: str  # review | disputed | audit
    reasons: list[str]
    level1: str
    subitem: str
    confidence: float
    department: str
    co_departments: list[str]
    top: list[dict[str, Any]]
    explanation: dict[str, Any]
    model_version: str
    severity: float
    priority: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def severity_of(text: str, subitem: str, settings: Settings) -> float:
    """Settings per sub-item (deepest matching path), raised by dangerous words in the text."""
    base = 1.0
    best = -1
    for path, value in settings.severity_by_subitem.items():
        if (subitem == path or subitem.startswith(path + "/")) and path.count("/") > best:
            base, best = value, path.count("/")
    if any(word in text for word in settings.severity_keywords):
        base *= settings.severity_keyword_factor
    return base


def urgency_of(deadline: datetime, now: datetime) -> tuple[float, bool]:
    """Grows as the deadline nears; overdue tickets sort before all others."""
    hours_left = (deadline - now).total_seconds() / 3600
    if hours_left < 0:
        return OVERDUE_BASE + (-hours_left), True
    return 1.0 + 24.0 / (hours_left + 1.0), False


def review_queue(
    *, session: Session, settings: Settings, now: datetime | None = None, unit: str | None = None,
    category: str | None = None, reason: str | None = None, limit: int = 1_000,
) -> list[QueueItem]:
    """Queue items, most urgent first, filtered by unit, top-level category or reason."""
    return review_page(session=session, settings=settings, now=now, unit=unit,
                       category=category, reason=reason, limit=limit)[0]


def review_page(
    *, session: Session, settings: Settings, now: datetime | None = None, unit: str | None = None,
    category: str | None = None, reason: str | None = None, limit: int = 1_000, offset: int = 0,
) -> tuple[list[QueueItem], int]:
    """``limit`` queue items from ``offset`` on (most urgent first), and how many the filtered
    queue holds in all."""
    now = now or datetime.now(UTC)
    predictions = session.scalars(_candidates(settings, unit, category).options(
        selectinload(store.Prediction.ticket).selectinload(store.Ticket.corrections),
        selectinload(store.Prediction.ticket).selectinload(store.Ticket.feedback),
        selectinload(store.Prediction.ticket).selectinload(store.Ticket.returns))).all()
    items = [item for p in predictions if (item := _item(p, settings, now)) is not None]
    items = [i for i in items if _matches(i, unit, category, reason)]
    items.sort(key=lambda i: (-i.priority, i.received_at))
    return items[offset : offset + limit], len(items)


def _candidates(settings: Settings, unit: str | None, category: str | None) -> Select:
    """Latest predictions that may be queued, narrowed in SQL (the exact rules run after)."""
    P = store.Prediction
    latest_ids = select(func.max(P.id)).group_by(P.ticket_id)
    returned = select(store.Return.ticket_id)
    unhappy = select(store.Feedback.ticket_id).where(
        or_(store.Feedback.rating == "不满意", store.Feedback.sentiment_label == "negative"))
    reviewed = select(store.Correction.prediction_id).where(
        store.Correction.prediction_id.is_not(None))
    disputed = or_(P.ticket_id.in_(returned), P.ticket_id.in_(unhappy))
    query = select(P).where(
        P.id.in_(latest_ids), or_(P.id.not_in(reviewed), disputed),
        or_(P.needs_review.is_(True), disputed, P.ticket_id % settings.review_audit_every == 0))
    if unit:  # the routed lead, or the lead a person dispatched the prediction to
        manual = select(store.Correction.prediction_id).where(store.Correction.department == unit)
        query = query.where(or_(P.department == unit, P.id.in_(manual)))
    if category:  # the predicted top level, or a node a person moved the prediction under
        manual = select(store.Correction.prediction_id).where(or_(
            store.Correction.subitem == category,
            store.Correction.subitem.startswith(category + "/", autoescape=True)))
        query = query.where(or_(P.level1 == category, P.id.in_(manual)))
    return query


def _queue_reason(p: store.Prediction, settings: Settings) -> tuple[str, list[str]] | None:
    ticket = p.ticket
    reviewed = [c.created_at for c in ticket.corrections if c.prediction_id == p.id]
    disputes = _disputes(ticket, since=max(reviewed) if reviewed else None)
    if disputes:
        # what else is doubtful about the prediction stays in view (an address conflict ...), and
        # the queue filtered by its words still finds the ticket
        # (a prediction staff reviewed has had its doubts seen)
        doubts = [p.review_reason] if p.needs_review and p.review_reason and not reviewed else []
        return "disputed", disputes + doubts
    if reviewed:
        return None  # staff reviewed this prediction and nothing was disputed since
    if p.needs_review:
        return "review", [p.review_reason or "需人工复核"]
    if ticket.id % settings.review_audit_every == 0:
        return "audit", ["随机抽检"]
    return None


def _disputes(ticket: store.Ticket, *, since: datetime | None) -> list[str]:
    """Returns and the citizen's dissatisfaction, counting only what was stored after ``since``
    (the review of the latest prediction), when there was one."""
    def fresh(row: store.Return | store.Feedback) -> bool:
        return since is None or row.created_at > since

    disputes = []
    returns = [r for r in ticket.returns if fresh(r)]
    if returns:
        disputes.append(f"被{returns[-1].unit}退回")
    if dissatisfied(ticket.feedback) and any(is_unhappy(f) for f in ticket.feedback if fresh(f)):
        disputes.append("群众不满意")
    return disputes


def _item(p: store.Prediction, settings: Settings, now: datetime) -> QueueItem | None:
    found = _queue_reason(p, settings)
    if found is None:
        return None
    kind, reasons = found
    ticket = p.ticket
    # what a person corrected shows, its top level with it, and sets the deadline and severity
    subitem = _subitem(p)
    receipt_hours, _ = settings.performance.deadlines_for(subitem)
    deadline = ticket.received_at + timedelta(hours=receipt_hours)
    urgency, overdue = urgency_of(deadline, now)
    wrong = 1.0 - float(p.confidence)
    if kind == "disputed":
        wrong = max(wrong, 0.5)
    severity = severity_of(ticket.text, subitem, settings)
    level1 = p.level1 if subitem == p.subitem else subitem.split("/")[0]
    return QueueItem(
        ticket_id=ticket.id, title=ticket.title, text=ticket.text, received_at=ticket.received_at,
        deadline=deadline, overdue=overdue, queue_reason=kind, reasons=reasons, level1=level1,
        subitem=subitem, confidence=float(p.confidence), department=_lead(p),
        co_departments=list(p.co_departments or []), top=list(p.top or []),
        explanation=dict(p.explanation or {}), model_version=p.model_version, severity=severity,
        priority=round(max(wrong, 0.01) * severity * urgency, 6),
    )


def _lead(p: store.Prediction) -> str:
    """The unit leading the prediction's dispatch: a person's, if any, else the routed lead."""
    manual = store.latest_correction(p, "department")
    return manual.department if manual else p.department


def _subitem(p: store.Prediction) -> str:
    """The prediction's node: a person's sub-item correction (a node at any level), if any,
    else the predicted sub-item."""
    manual = store.latest_correction(p, "subitem")
    return manual.subitem if manual else p.subitem


def _matches(item: QueueItem, unit: str | None, category: str | None, reason: str | None) -> bool:
    if unit and item.department != unit:
        return False
    if category and item.level1 != category:
        return False
    return not reason or reason == item.queue_reason or any(reason in r for r in item.reasons)
