"""Report data: ticket facts read from the store, and the satisfaction report built on them.

A ticket belongs to a period when it was dispatched in it. Its unit is the dispatched event's unit
(else the latest routing); its sub-item the latest staff correction (else the prediction). Its
rating is the latest explicit one by the time the citizen gave it; the sentiment of its latest
text with any stands in only where no feedback carries a rating (``triage.feedback.verdict_of``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from triage import store
from triage.errors import InvalidTicketError
from triage.feedback import verdict_of
from triage.performance import PerformanceSettings, TicketFacts, compute_results
from triage.settings import Settings

# Days a period may span: beyond them the bounds overflow Python's datetimes (9999-12-31 + 1 day,
# or 0001-01-01 00:00 in UTC+8 read as UTC).
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(9998, 12, 31)


def period_bounds(start: date, end: date, zone: str) -> tuple[datetime, datetime]:
    """[start 00:00, end+1 00:00) in the centre's time zone."""
    if end < start:
        raise InvalidTicketError(f"to ({end}) is before from ({start})")
    for name, day in (("from", start), ("to", end)):
        if not FIRST_DAY <= day <= LAST_DAY:
            raise InvalidTicketError(
                f"{name} ({day}) is out of range: give days between {FIRST_DAY} and {LAST_DAY}")
    tz = ZoneInfo(zone)
    return (datetime.combine(start, time(), tz), datetime.combine(end + timedelta(days=1), time(), tz))


def load_facts(*, session: Session, start: datetime, end: datetime) -> list[TicketFacts]:
    """Facts of every ticket first dispatched in [start, end)."""
    dispatched = select(store.Event.ticket_id).where(
        store.Event.type == "dispatched", store.Event.at >= start, store.Event.at < end)
    tickets = session.scalars(
        select(store.Ticket).where(store.Ticket.id.in_(dispatched)).options(
            selectinload(store.Ticket.events), selectinload(store.Ticket.feedback),
            selectinload(store.Ticket.predictions), selectinload(store.Ticket.corrections),
            selectinload(store.Ticket.returns))).all()
    facts = [_facts(t) for t in tickets]
    return [f for f in facts if f is not None and start <= f.dispatched_at < end]


def _first(events: list[store.Event], kind: str, after: datetime | None = None) -> store.Event | None:
    return next((e for e in events if e.type == kind and (after is None or e.at >= after)), None)


def _facts(ticket: store.Ticket) -> TicketFacts | None:
    events = sorted(ticket.events, key=lambda e: (e.at, e.id))
    dispatched = _first(events, "dispatched")
    if dispatched is None:
        return None
    latest = ticket.predictions[-1] if ticket.predictions else None
    corrected = next((c.subitem for c in reversed(ticket.corrections) if c.subitem), None)
    outcome = [e for e in events if e.type in {"resolved", "unresolved"}]
    received = _first(events, "received", dispatched.at)
    closed = _first(events, "closed", dispatched.at)
    completed = _first(events, "replied", dispatched.at) or closed
    verdict = verdict_of(ticket.feedback)
    return TicketFacts(
        ticket_id=str(ticket.id),
        unit=dispatched.unit or (latest.department if latest else "未知单位"),
        subitem=corrected or (latest.subitem if latest else ""),
        dispatched_at=dispatched.at,
        received_at=received.at if received else None,
        resolved=(outcome[-1].type == "resolved") if outcome else None,
        closed_at=closed.at if closed else None,
        completed_at=completed.at if completed else None,
        returned=bool(ticket.returns) or any(e.type == "returned" for e in events),
        reopened=any(e.type == "reopened" for e in events),
        rating=verdict.rating,
        sentiment_label=verdict.sentiment_label,
        feedback_uninformative=verdict.uninformative,
    )


def satisfaction_report(
    *, session: Session, settings: Settings, start: date, end: date, unit: str | None = None,
    subitem: str | None = None,
) -> dict[str, Any]:
    """By unit (all rates, rank, warnings), by sub-item, weekly trend, top dissatisfaction reasons
    with masked example quotes."""
    lo, hi = period_bounds(start, end, settings.timezone)
    facts = load_facts(session=session, start=lo, end=hi)
    if unit:
        facts = [f for f in facts if f.unit == unit]
    if subitem:
        facts = [f for f in facts if f.subitem == subitem or f.subitem.startswith(subitem + "/")]
    period = f"{start.isoformat()}..{end.isoformat()}"
    perf = settings.performance
    return {
        "from": start.isoformat(), "to": end.isoformat(), "tickets": len(facts),
        # tickets left unrated because their feedback texts said nothing the model could read
        "feedback_uninformative": sum(f.feedback_uninformative for f in facts),
        "formulas": _formulas(perf),
        "by_unit": [_shown(r.to_dict())
                    for r in compute_results(facts, period=period, settings=perf)]
        if facts else [],
        "by_subitem": _grouped(facts, lambda f: f.subitem or "未分类", period, perf),
        "trend": sorted(_grouped(facts, lambda f: _week(f.dispatched_at, settings.timezone),
                                 period, perf), key=lambda g: g["key"]),
        "top_reasons": _reasons(session, [int(f.ticket_id) for f in facts]),
    }


def _shown(result: dict[str, Any]) -> dict[str, Any]:
    """A unit's results as the report shows them: the composite to 4 decimals (the sum of its
    weighted rates reads 0.8200000000000001 otherwise). Published periods keep the exact value:
    their digests are computed on it."""
    composite = result.get("composite")
    return {**result, "composite": None if composite is None else round(composite, 4)}


def _grouped(facts: list[TicketFacts], key: Any, period: str,
             perf: PerformanceSettings) -> list[dict[str, Any]]:
    """Satisfaction of groups of tickets (the unit column stands for the group)."""
    if not facts:
        return []
    results = compute_results([replace(f, unit=key(f)) for f in facts], period=period,
                              settings=perf)
    return [{"key": r.unit, "tickets": r.counts.dispatched, "rated": r.counts.rated,
             "rated_by_sentiment": r.counts.rated_by_sentiment,
             "satisfaction_rate": r.satisfaction_rate} for r in results]


def _week(moment: datetime, zone: str) -> str:
    year, week, _ = moment.astimezone(ZoneInfo(zone)).isocalendar()
    return f"{year}-W{week:02d}"


def _reasons(session: Session, ticket_ids: list[int], examples: int = 3) -> list[dict[str, Any]]:
    if not ticket_ids:
        return []
    rows = session.scalars(select(store.Feedback).where(
        store.Feedback.ticket_id.in_(ticket_ids)).order_by(store.Feedback.id)).all()
    counts: Counter[str] = Counter()
    quotes: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        for reason in row.reasons or []:
            counts[reason] += 1
            if row.text and len(quotes[reason]) < examples:
                quotes[reason].append(row.text)  # stored masked
    return [{"reason": r, "count": n, "examples": quotes[r]} for r, n in counts.most_common()]


def _formulas(perf: PerformanceSettings) -> dict[str, str]:
    w = perf.basic_weight
    return {
        "response_rate": f"received within {perf.receipt_hours:g} h / dispatched",
        "resolution_rate": "resolved / closed",
        "satisfaction_rate": f"(满意 + {w:g} × 基本满意) / rated; sentiment stands in for a "
                             "missing rating and is counted apart",
        "on_time_rate": f"completed within {perf.completion_working_days} working days / dispatched",
    }


def today() -> date:
    return datetime.now(UTC).date()


UNIT_COLUMNS = ["rank", "unit", "dispatched", "response_rate", "resolution_rate",
                "satisfaction_rate", "on_time_rate", "return_rate", "rehandling_rate", "composite",
                "warning", "rated", "rated_by_sentiment", "satisfied", "basic", "dissatisfied",
                "warning_reasons"]


def unit_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The by-unit table of a report, flat, for CSV/XLSX."""
    rows = []
    for r in report["by_unit"]:
        counts = r["counts"]
        rows.append({
            **{k: r.get(k) for k in UNIT_COLUMNS if k in r},
            **{k: counts.get(k) for k in ("dispatched", "rated", "rated_by_sentiment",
                                          "satisfied", "basic", "dissatisfied")},
            "warning_reasons": "|".join(r.get("warning_reasons", [])),
        })
    return rows


def write_xlsx(path: Any, columns: list[str], rows: list[dict[str, Any]]) -> None:
    """One sheet with a header row."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "by_unit"
    sheet.append(columns)
    for row in rows:
        sheet.append([row.get(c) for c in columns])
    book.save(path)


def write_unit_csv(handle: Any, rows: list[dict[str, Any]]) -> None:
    """The by-unit table as CSV into an open text handle."""
    import csv

    writer = csv.DictWriter(handle, fieldnames=UNIT_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
