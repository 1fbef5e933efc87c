"""Publishing a period's performance results: frozen once published, corrected by revisions.

The ledger (``triage.ledger``) is rebuilt from the ``published_results`` rows on every use, which
checks the chain of digests: an edited row makes it refuse to load.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from triage import store
from triage.errors import InvalidTicketError, PeriodFrozenError
from triage.ledger import ResultsLedger, Revision
from triage.performance import UnitResult, compute_results
from triage.reports import load_facts, period_bounds
from triage.settings import Settings


def period_key(start: date, end: date) -> str:
    return f"{start.isoformat()}..{end.isoformat()}"


def parse_period(key: str) -> tuple[date, date]:
    first, _, last = key.partition("..")
    try:
        return date.fromisoformat(first), date.fromisoformat(last)
    except ValueError:
        raise InvalidTicketError(
            f"period {key!r} is not written as YYYY-MM-DD..YYYY-MM-DD") from None


def load_ledger(session: Session) -> ResultsLedger:
    rows = session.scalars(select(store.PublishedRevision).order_by(store.PublishedRevision.id))
    return ResultsLedger.from_records([row.record for row in rows])


def compute_period(*, session: Session, settings: Settings, start: date, end: date,
                   ledger: ResultsLedger) -> list[UnitResult]:
    """Results of a period from the store, each unit judged against its published history."""
    lo, hi = period_bounds(start, end, settings.timezone)
    facts = load_facts(session=session, start=lo, end=hi)
    key = period_key(start, end)
    history = ledger.history(before=key)
    return compute_results(facts, period=key, settings=settings.performance, history=history)


def publish(*, session: Session, settings: Settings, start: date, end: date, by: str) -> Revision:
    """Freeze a period's results (a second publication is refused: correct it instead)."""
    ledger = load_ledger(session)
    _refuse_republishing(ledger, period_key(start, end))
    results = compute_period(session=session, settings=settings, start=start, end=end,
                             ledger=ledger)
    revision = ledger.publish(period_key(start, end), results, by=by)
    _store(session, revision)
    return revision


def _refuse_republishing(ledger: ResultsLedger, key: str) -> None:
    """A published period stays as published; the refusal names the HTTP call that corrects it
    (the ledger's own message names its Python method)."""
    if not ledger.revisions(key):
        return
    latest = ledger.current(key)
    raise PeriodFrozenError(
        f"period {key} is frozen: published as revision {latest.revision} by {latest.by} at "
        f"{latest.at.isoformat()}. Publishing again does not change it; to correct it, "
        f"POST /v1/reports/periods/{key}/corrections with {{\"by\": ..., \"reason\": ...}}, "
        f"which records revision {latest.revision + 1} and keeps the earlier ones")


def correct(*, session: Session, settings: Settings, key: str, by: str, reason: str) -> Revision:
    """A new, recorded revision of a published period from a fresh computation."""
    start, end = parse_period(key)
    ledger = load_ledger(session)
    results = compute_period(session=session, settings=settings, start=start, end=end,
                             ledger=ledger)
    revision = ledger.correct(key, results, by=by, reason=reason)
    _store(session, revision)
    return revision


def status(*, session: Session, settings: Settings, key: str) -> dict[str, Any]:
    """The current revision, every revision, and whether a recomputation would differ."""
    start, end = parse_period(key)
    ledger = load_ledger(session)
    current = ledger.current(key)
    fresh = compute_period(session=session, settings=settings, start=start, end=end,
                           ledger=ledger)
    return {"period": key, "current": current.to_dict(),
            "revisions": [{k: v for k, v in r.to_dict().items() if k != "results"}
                          for r in ledger.revisions(key)],
            "recompute_matches": ledger.recompute_matches(key, fresh),
            "differences": ledger.differences(key, fresh)}


def _store(session: Session, revision: Revision) -> None:
    """Add the revision; one that another request stored first (same period and number, on
    PostgreSQL, where two requests can read the ledger at once) is refused, not a 500."""
    try:
        with session.begin_nested():
            session.add(store.PublishedRevision(period=revision.period, revision=revision.revision,
                                                record=revision.to_dict()))
    except IntegrityError:
        raise PeriodFrozenError(
            f"period {revision.period} was published or corrected by another request at the same "
            f"moment (revision {revision.revision}): GET /v1/reports/periods/{revision.period} "
            "shows it; correct it if it still needs correcting") from None
