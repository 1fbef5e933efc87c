"""Published performance results: a period, once published, is frozen.

Recomputing never silently changes a published period: a correction is a new revision with who,
why and when, chained to the previous one by a SHA-256 digest so that an altered record is refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from triage.errors import NotFoundError, PerformanceInputError, PeriodFrozenError
from triage.performance import UnitResult


@dataclass(frozen=True)
class Revision:
    """One published version of a period's results; revision 1 is the first publication.

    ``digest`` hashes the revision together with the digest of the one recorded before it (in
    any period), so an edited record breaks the chain and the ledger refuses to load it.
    """

    period: str
    revision: int
    results: tuple[UnitResult, ...]
    by: str
    at: datetime
    reason: str | None = None
    digest: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"period": self.period, "revision": self.revision, "by": self.by,
                "at": self.at.isoformat(), "reason": self.reason, "digest": self.digest,
                "results": [r.to_dict() for r in self.results]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Revision:
        return cls(period=data["period"], revision=int(data["revision"]), by=data["by"],
                   at=datetime.fromisoformat(data["at"]), reason=data.get("reason"),
                   digest=data.get("digest", ""),
                   results=tuple(UnitResult.from_dict(r) for r in data["results"]))

    def chained_digest(self, previous: str) -> str:
        body = {**self.to_dict(), "digest": None, "previous": previous}
        text = json.dumps(body, ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ResultsLedger:
    """Published periods, in memory: a period is frozen once published; corrections append.

    Stored as a list of dicts (:meth:`to_records` / :meth:`from_records`), one per revision.

    Example:
        >>> ledger = ResultsLedger()
        >>> ledger.publish("2024-05", [], by="考核科").revision
        1
    """

    def __init__(self) -> None:
        self._log: list[Revision] = []
        self._periods: dict[str, list[Revision]] = {}

    def publish(self, period: str, results: Sequence[UnitResult], *, by: str,
                at: datetime | None = None) -> Revision:
        """Freeze ``period`` with ``results`` as revision 1; refuses a period already published."""
        if period in self._periods:
            latest = self._periods[period][-1]
            raise PeriodFrozenError(
                f"period {period} is frozen: published as revision {latest.revision} by "
                f"{latest.by} at {latest.at.isoformat()}. Recomputing does not change it; to "
                f"correct it, call correct({period!r}, results, by=..., reason=...), which "
                f"records revision {latest.revision + 1} and keeps the earlier ones")
        return self._append(period, results, by=by, reason=None, at=at)

    def correct(self, period: str, results: Sequence[UnitResult], *, by: str, reason: str,
                at: datetime | None = None) -> Revision:
        """Record a new revision of a published period; earlier revisions stay as they were."""
        if not reason.strip():
            raise PerformanceInputError(f"a correction of {period} needs a reason; none given")
        latest = self.current(period)
        if not self.differences(period, results):
            raise PerformanceInputError(
                f"the correction of {period} equals revision {latest.revision}; nothing to record")
        return self._append(period, results, by=by, reason=reason.strip(), at=at)

    def current(self, period: str) -> Revision:
        """The latest revision of ``period``."""
        if period not in self._periods:
            known = ", ".join(sorted(self._periods)) or "none"
            raise NotFoundError(f"period {period} is not published (published: {known}); "
                                f"publish it first")
        return self._periods[period][-1]

    def revisions(self, period: str) -> list[Revision]:
        """Every revision of ``period``, oldest first (empty if never published)."""
        return list(self._periods.get(period, []))

    def periods(self) -> list[str]:
        return sorted(self._periods)

    def recompute_matches(self, period: str, results: Sequence[UnitResult]) -> bool:
        """Whether freshly computed ``results`` equal the current revision of ``period``.

        Floats compare to 1e-9; the unit set, every count, rate, rank and warning must match.
        """
        return not self.differences(period, results)

    def differences(self, period: str, results: Sequence[UnitResult]) -> list[str]:
        """How ``results`` differ from the current revision, one line per unit and field."""
        published = {r.unit: r.to_dict() for r in self.current(period).results}
        fresh = {r.unit: r.to_dict() for r in results}
        lines = [f"{unit}: published only" for unit in sorted(published.keys() - fresh.keys())]
        lines += [f"{unit}: new in the recomputation"
                  for unit in sorted(fresh.keys() - published.keys())]
        for unit in sorted(published.keys() & fresh.keys()):
            old, new = _flatten(published[unit]), _flatten(fresh[unit])
            lines += [f"{unit}: {key} {old.get(key)!r} -> {new.get(key)!r}"
                      for key in sorted(old.keys() | new.keys())
                      if not _same(old.get(key), new.get(key))]
        return lines

    def history(self, *, before: str, units: Iterable[str] | None = None) -> dict[str, list[float]]:
        """Each unit's composites in the current revisions of the periods before ``before``.

        Periods are ordered as strings ("2024-04" < "2024-05"); oldest first, ready for
        :func:`compute_results`.
        """
        wanted = None if units is None else set(units)
        history: dict[str, list[float]] = {}
        for period in (p for p in self.periods() if p < before):
            for result in self.current(period).results:
                if result.composite is not None and (wanted is None or result.unit in wanted):
                    history.setdefault(result.unit, []).append(result.composite)
        return history

    def to_records(self) -> list[dict[str, Any]]:
        """Every revision in the order recorded, as JSON-ready dicts."""
        return [revision.to_dict() for revision in self._log]

    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]]) -> ResultsLedger:
        """Rebuild from :meth:`to_records`; refuses out-of-order or altered records."""
        ledger = cls()
        for record in records:
            revision = Revision.from_dict(record)
            expected = len(ledger._periods.get(revision.period, [])) + 1
            if revision.revision != expected:
                raise PerformanceInputError(
                    f"period {revision.period}: expected revision {expected}, found "
                    f"{revision.revision}; records must come in the order recorded")
            if revision.digest != revision.chained_digest(ledger._last_digest()):
                raise PerformanceInputError(
                    f"period {revision.period} revision {revision.revision}: digest does not match "
                    f"its content; the record was altered after it was written")
            ledger._store(revision)
        return ledger

    def _append(self, period: str, results: Sequence[UnitResult], *, by: str, reason: str | None,
                at: datetime | None) -> Revision:
        if not by.strip():
            raise PerformanceInputError("say who publishes: `by` is empty")
        for result in results:
            if result.period != period:
                raise PerformanceInputError(
                    f"a result of {result.unit} is for period {result.period}, not {period}")
        revision = Revision(period=period, revision=len(self._periods.get(period, [])) + 1,
                            results=tuple(results), by=by, reason=reason,
                            at=at or datetime.now(UTC))
        revision = Revision(**{**_shallow(revision),
                               "digest": revision.chained_digest(self._last_digest())})
        self._store(revision)
        return revision

    def _store(self, revision: Revision) -> None:
        self._log.append(revision)
        self._periods.setdefault(revision.period, []).append(revision)

    def _last_digest(self) -> str:
        return self._log[-1].digest if self._log else ""


def _shallow(revision: Revision) -> dict[str, Any]:
    return {f.name: getattr(revision, f.name) for f in fields(revision)}


def _flatten(data: dict[str, Any]) -> dict[str, Any]:
    flat = {k: v for k, v in data.items() if k != "counts"}
    flat.update({f"counts.{k}": v for k, v in data["counts"].items()})
    return flat


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-9
    return a == b
