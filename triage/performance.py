"""Performance results (考核结果) per unit and period: pure computation and a ledger of frozen periods.

The caller loads one period's tickets as :class:`TicketFacts` rows (or :class:`FactColumns`) and
calls :func:`compute_results`; nothing here touches a database. Published periods are kept in a
:class:`ResultsLedger`, which never changes a published revision.

Formulas, per unit, over the tickets passed for the period (figures in ``PerformanceSettings``):

- **Deadlines.** Receipt deadline = ``dispatched_at + receipt_hours`` (default 2 hours).
  Completion deadline = the ``completion_working_days``-th working day after the dispatch date
  (default 5), at the dispatch clock time in dispatched_at's own UTC offset; 0 days means
  dispatched_at itself. Working days are Monday to Friday, minus ``holidays``, plus
  ``makeup_working_days`` (调休上班日). ``subitem_deadlines`` overrides either figure for a
  sub-item path or any ancestor prefix of it (names joined with ``/``); for each figure the deepest
  prefix that sets it wins, else the global figure.
- **Response rate (响应率)** = received_on_time / dispatched. dispatched counts every ticket of the
  unit; received_on_time those with ``received_at <= receipt deadline``.
- **Resolution rate (解决率)** = resolved / closed. closed counts tickets with ``closed_at`` set and
  a known outcome (``resolved`` not None); resolved those of them with ``resolved = True``. A closed
  ticket with no outcome is counted in ``closed_unjudged`` and left out of the rate.
- **Satisfaction rate (满意率)** = (满意 + w × 基本满意) / (rated + rated_by_sentiment),
  w = ``basic_weight`` (0.8). rated counts citizen ratings. A ticket with no rating but a sentiment
  label stands in through ``sentiment_rating`` (positive→满意, neutral→基本满意, negative→不满意)
  and is counted apart in rated_by_sentiment; satisfied / basic / dissatisfied count both kinds.
  A ticket whose feedback texts carry no sentiment evidence has neither and is not rated.
- **On-time completion rate (按时办结率)** = completed_on_time / dispatched, completed_on_time
  counting ``completed_at <= completion deadline``. A ticket not yet completed counts as late, so
  compute a period once its tickets are due.
- **Return rate (退回率)** = returned / dispatched. **Re-handling rate (重办率)** = reopened /
  dispatched.
- **Composite (综合得分)** = Σ wᵢ·rateᵢ / Σ wᵢ over the available rates among response (0.2),
  resolution (0.3), satisfaction (0.4) and on-time (0.1), minus 0.05 × return rate minus 0.05 ×
  re-handling rate, floored at 0. A rate whose denominator is 0 is None and leaves both sums, so
  the other weights are rescaled; if no rate is left the composite is None.
- **Rank** = 1 + the number of units with a strictly higher composite (compared at 6 decimals): ties
  share a rank and the next rank skips (1, 1, 3). A unit with no composite has no rank.
- **Warning (预警)**: green if composite >= ``green`` (0.90), yellow if >= ``yellow`` (0.80), else
  red. History rule: a composite at least ``history_drop`` (0.05) below the mean of the unit's
  previous ``history_periods`` (3) composites (fewer if fewer exist) is at least yellow. A unit
  with no composite is yellow, for a person to look at.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field, field_validator, model_validator

from triage.errors import PerformanceInputError

RATINGS = ("满意", "基本满意", "不满意")  # codes 1, 2, 3; 0 = none
SENTIMENTS = ("positive", "neutral", "negative")
RATE_NAMES = ("response_rate", "resolution_rate", "satisfaction_rate", "on_time_rate",
              "return_rate", "rehandling_rate")
WarningLevel = Literal["green", "yellow", "red"]
_DAY = 86_400


class DeadlineOverride(BaseModel):
    """Deadlines for one sub-item path prefix; an unset figure falls back to a shallower one."""

    receipt_hours: float | None = Field(None, gt=0)
    completion_working_days: int | None = Field(None, ge=0)


class CompositeWeights(BaseModel):
    """Weights of the composite: four rates add, return and re-handling rates subtract."""

    response: float = Field(0.2, ge=0)
    resolution: float = Field(0.3, ge=0)
    satisfaction: float = Field(0.4, ge=0)
    on_time: float = Field(0.1, ge=0)
    returned: float = Field(0.05, ge=0)
    rehandling: float = Field(0.05, ge=0)


class PerformanceSettings(BaseModel):
    """Every figure of the performance formulas (see the module docstring)."""

    receipt_hours: float = Field(2.0, gt=0, description="receive within this many hours")
    completion_working_days: int = Field(5, ge=0, description="complete within N working days")
    subitem_deadlines: dict[str, DeadlineOverride] = Field(
        default_factory=dict, description="per sub-item path prefix; the deepest wins")
    holidays: list[date] = Field(default_factory=list, description="weekdays that are not worked")
    makeup_working_days: list[date] = Field(default_factory=list, description="worked weekend days")
    basic_weight: float = Field(0.8, ge=0, le=1, description="w: 基本满意 counts as w of 满意")
    sentiment_rating: dict[str, str] = Field(
        default_factory=lambda: {"positive": "满意", "neutral": "基本满意", "negative": "不满意"})
    composite_weights: CompositeWeights = Field(default_factory=CompositeWeights)
    green: float = Field(0.90, ge=0, le=1, description="composite at or above: green")
    yellow: float = Field(0.80, ge=0, le=1, description="composite at or above: yellow, else red")
    history_periods: int = Field(3, ge=1, description="previous periods in the history mean")
    history_drop: float = Field(0.05, gt=0, description="drop below that mean that warns")

    @field_validator("subitem_deadlines")
    @classmethod
    def _normalise_paths(cls, value: dict[str, DeadlineOverride]) -> dict[str, DeadlineOverride]:
        return {key.strip("/"): override for key, override in value.items()}

    @model_validator(mode="after")
    def _check(self) -> PerformanceSettings:
        if self.yellow > self.green:
            raise ValueError(f"yellow threshold {self.yellow} is above green {self.green}")
        if set(self.sentiment_rating) != set(SENTIMENTS) or not set(
                self.sentiment_rating.values()) <= set(RATINGS):
            raise ValueError(f"sentiment_rating must map {SENTIMENTS} to ratings among {RATINGS}")
        return self

    def deadlines_for(self, subitem: str) -> tuple[float, int]:
        """(receipt hours, completion working days) for a sub-item path; the deepest prefix wins."""
        receipt, days = self.receipt_hours, self.completion_working_days
        parts = subitem.strip("/").split("/")
        for depth in range(1, len(parts) + 1):  # shallow to deep: deeper settings overwrite
            override = self.subitem_deadlines.get("/".join(parts[:depth]))
            if override is not None:
                if override.receipt_hours is not None:
                    receipt = override.receipt_hours
                if override.completion_working_days is not None:
                    days = override.completion_working_days
        return receipt, days


@dataclass(frozen=True, slots=True)
class TicketFacts:
    """What the formulas need from one ticket; every datetime tz-aware."""

    ticket_id: str
    unit: str
    subitem: str
    dispatched_at: datetime
    received_at: datetime | None = None
    resolved: bool | None = None
    closed_at: datetime | None = None
    completed_at: datetime | None = None
    returned: bool = False
    reopened: bool = False
    rating: str | None = None
    sentiment_label: str | None = None
    # feedback texts only, none with sentiment evidence (👍, "ok"): not rated, counted by reports
    feedback_uninformative: bool = False


@dataclass
class FactColumns:
    """Ticket facts as numpy columns: times in epoch seconds (NaN = never), codes as small ints.

    ``unit`` and ``subitem`` hold names, or integer codes into ``unit_names`` / ``subitem_names``
    when those are given (the fast form for millions of rows). ``dispatch_offset`` is the UTC offset
    (seconds) of the dispatch clock; ``resolved`` is 1, 0 or -1 (unknown); ``rating`` 1..3 in the
    order of ``RATINGS`` and ``sentiment`` 1..3 in the order of ``SENTIMENTS``, 0 for none.
    """

    unit: np.ndarray
    subitem: np.ndarray
    dispatched: np.ndarray
    dispatch_offset: np.ndarray
    received: np.ndarray
    closed: np.ndarray
    completed: np.ndarray
    resolved: np.ndarray
    returned: np.ndarray
    reopened: np.ndarray
    rating: np.ndarray
    sentiment: np.ndarray
    unit_names: np.ndarray | None = None
    subitem_names: np.ndarray | None = None

    def __post_init__(self) -> None:
        lengths = {f.name: len(getattr(self, f.name)) for f in fields(self)
                   if not f.name.endswith("_names")}
        if len(set(lengths.values())) > 1:
            raise PerformanceInputError(f"columns differ in length: {lengths}")

    def __len__(self) -> int:
        return len(self.unit)

    @classmethod
    def from_facts(cls, facts: Sequence[TicketFacts]) -> FactColumns:
        """Columns from rows; refuses naive datetimes and unknown rating or sentiment labels."""
        for row in facts:
            if row.dispatched_at.utcoffset() is None:
                raise PerformanceInputError(
                    f"ticket {row.ticket_id}: dispatched_at has no time zone; pass aware datetimes")
        unit_names, units = _factorize([r.unit for r in facts])
        subitem_names, subitems = _factorize([r.subitem for r in facts])
        return cls(
            unit=units, unit_names=unit_names, subitem=subitems, subitem_names=subitem_names,
            dispatched=_seconds([r.dispatched_at for r in facts]),
            dispatch_offset=np.array([_offset(r.dispatched_at) for r in facts], dtype=np.int64),
            received=_seconds([r.received_at for r in facts]),
            closed=_seconds([r.closed_at for r in facts]),
            completed=_seconds([r.completed_at for r in facts]),
            resolved=np.array([-1 if r.resolved is None else int(r.resolved) for r in facts],
                              dtype=np.int8),
            returned=np.array([r.returned for r in facts], dtype=bool),
            reopened=np.array([r.reopened for r in facts], dtype=bool),
            rating=_codes([r.rating for r in facts], RATINGS, "rating"),
            sentiment=_codes([r.sentiment_label for r in facts], SENTIMENTS, "sentiment_label"),
        )


    def categories(self, name: Literal["unit", "subitem"]) -> tuple[np.ndarray, np.ndarray]:
        """(names, integer code per row) of the unit or sub-item column."""
        values, names = getattr(self, name), getattr(self, f"{name}_names")
        if names is not None:
            return np.asarray(names).astype(str), np.asarray(values, dtype=np.int64)
        return _factorize(values.tolist())


def _factorize(values: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values (in order of appearance) and each row's index into them."""
    table: dict[str, int] = {}
    codes = np.fromiter((table.setdefault(v, len(table)) for v in values), dtype=np.int64,
                        count=len(values))
    return np.array([str(v) for v in table], dtype=str), codes


def _offset(moment: datetime) -> int:
    offset = moment.utcoffset()
    assert offset is not None  # checked by from_facts
    return int(offset.total_seconds())


def _seconds(values: list[datetime | None]) -> np.ndarray:
    for value in values:
        if value is not None and value.utcoffset() is None:
            raise PerformanceInputError(f"{value} has no time zone; pass aware datetimes")
    return np.array([np.nan if v is None else v.timestamp() for v in values], dtype=np.float64)


def _codes(values: list[str | None], labels: tuple[str, ...], name: str) -> np.ndarray:
    lookup: dict[str | None, int] = {None: 0, **{label: i + 1 for i, label in enumerate(labels)}}
    try:
        return np.array([lookup[v] for v in values], dtype=np.int8)
    except KeyError as error:
        raise PerformanceInputError(
            f"{name} {error.args[0]!r} is not one of {labels} (or None)") from None


@dataclass(frozen=True)
class UnitCounts:
    """The numerators and denominators behind one unit's rates."""

    dispatched: int = 0
    received_on_time: int = 0
    closed: int = 0
    closed_unjudged: int = 0
    resolved: int = 0
    rated: int = 0
    rated_by_sentiment: int = 0
    satisfied: int = 0
    basic: int = 0
    dissatisfied: int = 0
    completed_on_time: int = 0
    returned: int = 0
    reopened: int = 0


@dataclass(frozen=True)
class UnitResult:
    """One unit's results for one period; a rate is None when its denominator is 0."""

    unit: str
    period: str
    counts: UnitCounts
    response_rate: float | None
    resolution_rate: float | None
    satisfaction_rate: float | None
    on_time_rate: float | None
    return_rate: float | None
    rehandling_rate: float | None
    composite: float | None
    rank: int | None = None
    warning: WarningLevel = "yellow"
    warning_reasons: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the form the ledger stores)."""
        data = asdict(self)
        data["warning_reasons"] = list(self.warning_reasons)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UnitResult:
        return cls(**{**data, "counts": UnitCounts(**data["counts"]),
                      "warning_reasons": tuple(data.get("warning_reasons", ()))})


def compute_results(facts: Sequence[TicketFacts] | FactColumns, *, period: str,
                    settings: PerformanceSettings,
                    history: dict[str, list[float]] | None = None) -> list[UnitResult]:
    """Results of every unit in ``facts`` for ``period``, best rank first.

    ``history`` maps a unit to its composites of earlier periods, oldest first (see
    :meth:`ResultsLedger.history`).

    Example:
        >>> t = datetime(2024, 5, 6, 9, tzinfo=UTC)
        >>> row = TicketFacts("1", "东城街道", "城建/路灯", t, received_at=t, rating="满意")
        >>> [result] = compute_results([row], period="2024-05", settings=PerformanceSettings())
        >>> result.response_rate, result.satisfaction_rate, result.rank
        (1.0, 1.0, 1)
    """
    columns = facts if isinstance(facts, FactColumns) else FactColumns.from_facts(facts)
    units, unit_index = columns.categories("unit")
    counts = _count(columns, unit_index, len(units), settings)
    rates = _rates(counts, settings.basic_weight)
    composite = _composite(rates, settings.composite_weights)
    ranks = _ranks(composite)
    results = [_unit_result(str(unit), period, i, counts, rates, composite, ranks, settings,
                            (history or {}).get(str(unit), []))
               for i, unit in enumerate(units)]
    return sorted(results, key=lambda r: (r.rank is None, r.rank or 0, r.unit))


def _count(c: FactColumns, unit_index: np.ndarray, n_units: int,
           settings: PerformanceSettings) -> dict[str, np.ndarray]:
    receipt_s, completion_deadline = _deadlines(c, settings)
    closed = ~np.isnan(c.closed)
    rating = _effective_rating(c, settings)
    by_sentiment = (c.rating == 0) & (rating > 0)
    with np.errstate(invalid="ignore"):  # NaN (never) compares False: not on time
        masks = {
            "dispatched": np.ones(len(c), dtype=bool),
            "received_on_time": c.received <= c.dispatched + receipt_s,
            "closed": closed & (c.resolved >= 0),
            "closed_unjudged": closed & (c.resolved < 0),
            "resolved": closed & (c.resolved == 1),
            "rated": c.rating > 0,
            "rated_by_sentiment": by_sentiment,
            "satisfied": rating == 1,
            "basic": rating == 2,
            "dissatisfied": rating == 3,
            "completed_on_time": c.completed <= completion_deadline,
            "returned": c.returned.astype(bool),
            "reopened": c.reopened.astype(bool),
        }
    return {name: np.bincount(unit_index, weights=mask, minlength=n_units).astype(np.int64)
            for name, mask in masks.items()}


def _effective_rating(c: FactColumns, settings: PerformanceSettings) -> np.ndarray:
    """The citizen's rating code, or the code the sentiment stands in for when there is none."""
    stand_in = np.array([0] + [RATINGS.index(settings.sentiment_rating[s]) + 1 for s in SENTIMENTS],
                        dtype=np.int8)
    return np.where(c.rating > 0, c.rating, stand_in[c.sentiment])


def _deadlines(c: FactColumns, settings: PerformanceSettings) -> tuple[np.ndarray, np.ndarray]:
    """Per ticket: receipt allowance in seconds, completion deadline in epoch seconds."""
    subitems, sub_index = c.categories("subitem")
    per_subitem = [settings.deadlines_for(str(s)) for s in subitems]
    receipt_s = np.array([h * 3600.0 for h, _ in per_subitem])[sub_index]
    days = np.array([d for _, d in per_subitem], dtype=np.int64)[sub_index]
    local = c.dispatched + c.dispatch_offset
    local_day = np.floor(local / _DAY).astype(np.int64)
    deadline_day = _add_working_days(local_day, days, settings)
    return receipt_s, c.dispatched + (deadline_day - local_day) * float(_DAY)


def _add_working_days(day: np.ndarray, n: np.ndarray, settings: PerformanceSettings) -> np.ndarray:
    """The n-th working day after each day (days since 1970-01-01); n = 0 keeps the day."""
    if len(day) == 0:
        return day
    start, end = int(day.min()), int(day.max()) + int(n.max()) * 2 + 14
    while True:
        calendar = np.arange(start, end + 1, dtype=np.int64)
        working = _working(calendar, settings)
        workdays = calendar[working]
        position = np.searchsorted(workdays, day, side="right") + n - 1
        if position.max(initial=-1) < len(workdays):  # long holidays: extend and try again
            break
        end += int(n.max()) * 2 + 14
    return np.where(n == 0, day, workdays[np.clip(position, 0, len(workdays) - 1)])


def _working(calendar: np.ndarray, settings: PerformanceSettings) -> np.ndarray:
    weekday = (calendar + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    epoch = date(1970, 1, 1)
    holidays = np.array([(d - epoch).days for d in settings.holidays], dtype=np.int64)
    makeup = np.array([(d - epoch).days for d in settings.makeup_working_days], dtype=np.int64)
    return ((weekday < 5) & ~np.isin(calendar, holidays)) | np.isin(calendar, makeup)


def _rates(counts: dict[str, np.ndarray], basic_weight: float) -> dict[str, np.ndarray]:
    """Every rate as a float array, NaN where the denominator is 0."""
    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.maximum(den, 1), np.nan)

    rated = counts["rated"] + counts["rated_by_sentiment"]
    return {
        "response_rate": ratio(counts["received_on_time"], counts["dispatched"]),
        "resolution_rate": ratio(counts["resolved"], counts["closed"]),
        "satisfaction_rate": ratio(counts["satisfied"] + basic_weight * counts["basic"], rated),
        "on_time_rate": ratio(counts["completed_on_time"], counts["dispatched"]),
        "return_rate": ratio(counts["returned"], counts["dispatched"]),
        "rehandling_rate": ratio(counts["reopened"], counts["dispatched"]),
    }


def _composite(rates: dict[str, np.ndarray], w: CompositeWeights) -> np.ndarray:
    positive = np.stack([rates["response_rate"], rates["resolution_rate"],
                         rates["satisfaction_rate"], rates["on_time_rate"]], axis=1)
    weights = np.array([w.response, w.resolution, w.satisfaction, w.on_time])
    available = ~np.isnan(positive)
    total = (available * weights).sum(axis=1)
    score = np.where(available, positive, 0.0) @ weights
    penalty = (w.returned * np.nan_to_num(rates["return_rate"])
               + w.rehandling * np.nan_to_num(rates["rehandling_rate"]))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, np.maximum(score / np.maximum(total, 1e-300) - penalty, 0.0),
                        np.nan)


def _ranks(composite: np.ndarray) -> np.ndarray:
    """Competition ranks (1, 1, 3) on the composite at 6 decimals; 0 where there is none."""
    rounded = np.round(composite, 6)
    known = rounded[~np.isnan(rounded)]
    higher = (known[None, :] > rounded[:, None]).sum(axis=1)
    return np.where(np.isnan(rounded), 0, higher + 1)


def _unit_result(unit: str, period: str, i: int, counts: dict[str, np.ndarray],
                 rates: dict[str, np.ndarray], composite: np.ndarray, ranks: np.ndarray,
                 settings: PerformanceSettings, history: list[float]) -> UnitResult:
    score = None if np.isnan(composite[i]) else float(composite[i])
    warning, reasons = warn(score, history, settings)
    return UnitResult(
        unit=unit, period=period,
        counts=UnitCounts(**{name: int(values[i]) for name, values in counts.items()}),
        **{name: None if np.isnan(rates[name][i]) else float(rates[name][i])
           for name in RATE_NAMES},
        composite=score, rank=int(ranks[i]) or None, warning=warning,
        warning_reasons=tuple(reasons))


def warn(composite: float | None, history: Iterable[float | None],
         settings: PerformanceSettings) -> tuple[WarningLevel, list[str]]:
    """The warning colour and its reasons (Chinese) from the thresholds and the unit's history."""
    if composite is None:
        return "yellow", ["本期没有可计算的指标（各项分母均为 0），需人工复核。"]
    reasons: list[str] = []
    level: WarningLevel = "green"
    if composite < settings.yellow:
        level = "red"
        reasons.append(f"综合得分 {composite:.3f} 低于黄色阈值 {settings.yellow:.2f}，亮红灯。")
    elif composite < settings.green:
        level = "yellow"
        reasons.append(f"综合得分 {composite:.3f} 低于绿色阈值 {settings.green:.2f}，亮黄灯。")
    past = [h for h in history if h is not None][-settings.history_periods:]
    if past:
        mean = sum(past) / len(past)
        # 1e-9: a drop of exactly history_drop must warn despite float rounding
        if mean - composite >= settings.history_drop - 1e-9:
            reasons.append(f"综合得分 {composite:.3f} 比前 {len(past)} 期均值 {mean:.3f} "
                           f"下降 {mean - composite:.3f}（达到 {settings.history_drop:.2f}），"
                           f"至少亮黄灯。")
            level = "yellow" if level == "green" else level
    return level, reasons
