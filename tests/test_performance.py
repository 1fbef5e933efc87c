"""Performance results: every rate by hand, deadlines, ranking, warnings and the frozen ledger."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pytest
from pydantic import ValidationError

from triage.errors import NotFoundError, PerformanceInputError, PeriodFrozenError
from triage.ledger import ResultsLedger
from triage.performance import (
    FactColumns,
    PerformanceSettings,
    TicketFacts,
    compute_results,
    warn,
)

CST = timezone(timedelta(hours=8))
MON = datetime(2024, 5, 13, 9, 0, tzinfo=CST)  # a Monday
H = timedelta(hours=1)
D = timedelta(days=1)


def fact(ticket_id: str, unit: str = "东华门街道", subitem: str = "城建/路灯", *,
         dispatched: datetime = MON, **kwargs) -> TicketFacts:
    return TicketFacts(ticket_id=ticket_id, unit=unit, subitem=subitem, dispatched_at=dispatched,
                       **kwargs)


def good(ticket_id: str, unit: str) -> TicketFacts:
    """Received, resolved, completed on time and rated 满意."""
    return fact(ticket_id, unit, received_at=MON + H, resolved=True, closed_at=MON + D,
                completed_at=MON + D, rating="满意")


def results(facts, settings: PerformanceSettings | None = None, **kwargs):
    return compute_results(facts, period="2024-05", settings=settings or PerformanceSettings(),
                           **kwargs)


def by_unit(facts, settings: PerformanceSettings | None = None, **kwargs):
    return {r.unit: r for r in results(facts, settings, **kwargs)}


@pytest.fixture
def five_tickets() -> list[TicketFacts]:
    return [
        fact("1", received_at=MON + H, resolved=True, closed_at=MON + D, completed_at=MON + D,
             rating="满意"),
        fact("2", received_at=MON + 3 * H, resolved=False, closed_at=MON + 8 * D,
             completed_at=MON + 8 * D, rating="基本满意"),
        fact("3", sentiment_label="negative"),  # never received, open: sentiment stands in
        fact("4", received_at=MON + 2 * H, resolved=None, closed_at=MON + D, rating="不满意",
             returned=True),  # received exactly at the deadline; closed with no outcome
        fact("5", received_at=MON + H / 2, resolved=True, closed_at=MON + 2 * D,
             completed_at=MON + 2 * D, reopened=True),
    ]


def test_every_rate_by_hand(five_tickets):
    [r] = results(five_tickets)
    c = r.counts
    assert (c.dispatched, c.received_on_time, c.resolved) == (5, 3, 2)
    assert (c.closed, c.closed_unjudged) == (3, 1)
    assert (c.rated, c.rated_by_sentiment, c.satisfied, c.basic, c.dissatisfied) == (3, 1, 1, 1, 2)
    assert (c.completed_on_time, c.returned, c.reopened) == (2, 1, 1)
    assert r.response_rate == pytest.approx(3 / 5)
    assert r.resolution_rate == pytest.approx(2 / 3)
    assert r.satisfaction_rate == pytest.approx((1 + 0.8 * 1) / 4)
    assert r.on_time_rate == pytest.approx(2 / 5)
    assert r.return_rate == pytest.approx(1 / 5)
    assert r.rehandling_rate == pytest.approx(1 / 5)
    composite = 0.2 * 0.6 + 0.3 * (2 / 3) + 0.4 * 0.45 + 0.1 * 0.4 - 0.05 * 0.2 - 0.05 * 0.2
    assert r.composite == pytest.approx(composite)  # 0.52
    assert (r.unit, r.period, r.rank, r.warning) == ("东华门街道", "2024-05", 1, "red")
    assert "低于黄色阈值" in r.warning_reasons[0]


def test_basic_weight_comes_from_settings(five_tickets):
    [r] = results(five_tickets, PerformanceSettings(basic_weight=0.5))
    assert r.satisfaction_rate == pytest.approx((1 + 0.5) / 4)


def test_sentiment_stands_in_only_for_a_missing_rating_and_is_counted_apart():
    facts = [fact("1", sentiment_label="positive"), fact("2", sentiment_label="neutral"),
             fact("3", rating="不满意", sentiment_label="positive"), fact("4")]
    [r] = results(facts)
    c = r.counts
    assert (c.rated, c.rated_by_sentiment) == (1, 2)
    assert (c.satisfied, c.basic, c.dissatisfied) == (1, 1, 1)
    assert r.satisfaction_rate == pytest.approx(1.8 / 3)


def test_deepest_prefix_wins_per_figure():
    settings = PerformanceSettings(subitem_deadlines={
        "城建": {"receipt_hours": 4, "completion_working_days": 3},
        "城建/路灯/": {"receipt_hours": 1},
        "城建/路灯/维修": {"completion_working_days": 1},
    })
    assert settings.deadlines_for("城建/路灯/维修") == (1, 1)
    assert settings.deadlines_for("城建/路灯") == (1, 3)
    assert settings.deadlines_for("城建/道路") == (4, 3)
    assert settings.deadlines_for("城建路灯/亮化") == (2, 5)  # a prefix of names, not of text
    assert settings.deadlines_for("教育/招生") == (2, 5)


def test_subitem_override_changes_receipt_on_time():
    settings = PerformanceSettings(subitem_deadlines={"城建": {"receipt_hours": 4},
                                                      "城建/路灯": {"receipt_hours": 1}})
    facts = [fact("1", "甲", "城建/路灯/维修", received_at=MON + 1.5 * H),
             fact("2", "乙", "城建/道路", received_at=MON + 3 * H),
             fact("3", "丙", "教育", received_at=MON + 3 * H)]
    rows = by_unit(facts, settings)
    assert [rows[u].counts.received_on_time for u in "甲乙丙"] == [0, 1, 0]


def on_time(dispatched: datetime, completed: datetime, settings: PerformanceSettings) -> bool:
    [r] = results([fact("1", dispatched=dispatched, completed_at=completed)], settings)
    return r.counts.completed_on_time == 1


@pytest.mark.parametrize(("dispatched", "deadline", "settings"), [
    (datetime(2024, 5, 16, 15, 30, tzinfo=CST), datetime(2024, 5, 23, 15, 30, tzinfo=CST), {}),
    (datetime(2024, 5, 17, 10, tzinfo=CST), datetime(2024, 5, 20, 10, tzinfo=CST),
     {"completion_working_days": 1}),  # Friday -> Monday
    (datetime(2024, 5, 18, 10, tzinfo=CST), datetime(2024, 5, 20, 10, tzinfo=CST),
     {"completion_working_days": 1}),  # Saturday -> Monday
    (datetime(2024, 5, 17, 1, tzinfo=CST), datetime(2024, 5, 20, 1, tzinfo=CST),
     {"completion_working_days": 1}),  # Friday in Beijing though Thursday in UTC
    (datetime(2024, 5, 17, 10, tzinfo=CST), datetime(2024, 5, 21, 10, tzinfo=CST),
     {"completion_working_days": 1, "holidays": [date(2024, 5, 20)]}),
    (datetime(2024, 5, 10, 10, tzinfo=CST), datetime(2024, 5, 11, 10, tzinfo=CST),
     {"completion_working_days": 1, "makeup_working_days": [date(2024, 5, 11)]}),
    (datetime(2024, 5, 18, 10, tzinfo=CST), datetime(2024, 5, 18, 10, tzinfo=CST),
     {"completion_working_days": 0}),
])
def test_completion_deadline_in_working_days(dispatched, deadline, settings):
    settings = PerformanceSettings(**settings)
    assert on_time(dispatched, deadline, settings)
    assert not on_time(dispatched, deadline + timedelta(minutes=1), settings)


def test_long_holiday_extends_the_calendar():
    holidays = [date(2024, 5, 13) + timedelta(days=i) for i in range(40)]
    settings = PerformanceSettings(completion_working_days=1, holidays=holidays)
    deadline = datetime(2024, 6, 24, 9, tzinfo=CST)  # first weekday after the 40 days
    assert on_time(MON, deadline, settings)
    assert not on_time(MON, deadline + timedelta(minutes=1), settings)


def test_ranking_with_ties():
    facts = [good("1", "甲"), good("2", "乙"), good("3", "丙"),
             fact("4", "丙", received_at=MON + 5 * H), good("5", "丁"),
             fact("6", "丁", received_at=MON + 5 * H)]
    rows = results(facts)
    assert [(r.unit, r.rank) for r in rows] == [("乙", 1), ("甲", 1), ("丁", 3), ("丙", 3)]
    assert rows[0].composite == pytest.approx(1.0)


@pytest.mark.parametrize(("composite", "colour"), [
    (0.95, "green"), (0.90, "green"), (0.85, "yellow"), (0.80, "yellow"), (0.79, "red")])
def test_warning_by_threshold(composite, colour):
    level, reasons = warn(composite, [], PerformanceSettings())
    assert level == colour
    assert (reasons == []) == (colour == "green")


def test_warning_by_history_drop():
    settings = PerformanceSettings()
    level, reasons = warn(0.93, [0.50, 0.99, 0.97, 0.98], settings)  # mean of the last 3 = 0.98
    assert level == "yellow"
    assert "前 3 期均值 0.980" in reasons[0]
    assert warn(0.93, [0.98, 0.98], settings)[0] == "yellow"  # exactly 0.05 below the mean
    assert warn(0.93, [0.50, 0.96, 0.97, 0.98], settings) == ("green", [])  # 0.04 below
    level, reasons = warn(0.70, [0.90, 0.90, 0.90], settings)
    assert level == "red" and len(reasons) == 2  # never lowered to yellow


def test_history_is_passed_through_compute_results():
    returned = fact("2", "乙", received_at=MON + H, resolved=True, closed_at=MON + D,
                    completed_at=MON + D, rating="满意", returned=True)
    rows = by_unit([good("1", "甲"), returned], history={"甲": [1.0], "乙": [1.0, 1.0, 1.0]})
    assert rows["甲"].warning == "green"
    assert rows["乙"].composite == pytest.approx(0.95)  # 1 - 0.05 x return rate 1
    assert rows["乙"].warning == "yellow"
    assert "下降 0.050" in rows["乙"].warning_reasons[0]


def test_zero_denominators_give_none_and_composite_uses_the_rest():
    # received on time and completed, never closed, never rated
    [r] = results([fact("1", received_at=MON + H, completed_at=MON + D),
                   fact("2", received_at=MON + 3 * H)])
    assert r.resolution_rate is None and r.satisfaction_rate is None
    assert r.composite == pytest.approx((0.2 * 0.5 + 0.1 * 0.5) / 0.3)


def test_no_rate_at_all_gives_no_composite_no_rank_and_a_yellow_warning():
    weights = {"response": 0, "on_time": 0}
    rows = by_unit([fact("1", "甲"), good("2", "乙")],
                   PerformanceSettings(composite_weights=weights))
    assert (rows["甲"].composite, rows["甲"].rank, rows["甲"].warning) == (None, None, "yellow")
    assert rows["乙"].rank == 1
    assert results([]) == []


def test_columns_give_the_same_results_as_rows(five_tickets):
    facts = [*five_tickets, good("6", "乙")]
    coded = FactColumns.from_facts(facts)
    assert results(coded) == results(facts)
    named = replace(coded, unit=np.array([f.unit for f in facts], dtype=object), unit_names=None,
                    subitem=np.array([f.subitem for f in facts], dtype=object), subitem_names=None)
    assert results(named) == results(facts)


def test_bad_input_is_refused():
    with pytest.raises(PerformanceInputError, match="time zone"):
        results([fact("1", dispatched=datetime(2024, 5, 13, 9))])
    with pytest.raises(PerformanceInputError, match="time zone"):
        results([fact("1", received_at=datetime(2024, 5, 13, 9))])
    with pytest.raises(PerformanceInputError, match="'很好' is not one of"):
        results([fact("1", rating="很好")])
    with pytest.raises(ValidationError, match="yellow threshold"):
        PerformanceSettings(green=0.7, yellow=0.8)


# --- the ledger of published periods -------------------------------------------------------------

AT = datetime(2024, 6, 3, 10, tzinfo=UTC)


def test_publish_freezes_the_period(five_tickets):
    ledger = ResultsLedger()
    first = ledger.publish("2024-05", results(five_tickets), by="考核科", at=AT)
    assert (first.revision, first.by, first.reason) == (1, "考核科", None)
    with pytest.raises(PeriodFrozenError, match=r"2024-05 is frozen.*correct\(") as error:
        ledger.publish("2024-05", results(five_tickets[:2]), by="考核科")
    assert error.value.status_code == 409
    assert ledger.current("2024-05") is first


def test_correction_is_a_new_revision_and_keeps_the_old(five_tickets):
    ledger = ResultsLedger()
    original = results(five_tickets)
    ledger.publish("2024-05", original, by="考核科", at=AT)
    fixed = results(five_tickets[:4])
    second = ledger.correct("2024-05", fixed, by="复核组", reason="5号工单属重复派单，听证后剔除",
                            at=AT + D)
    assert (second.revision, second.by, second.reason, second.at) == (
        2, "复核组", "5号工单属重复派单，听证后剔除", AT + D)
    assert [r.revision for r in ledger.revisions("2024-05")] == [1, 2]
    assert list(ledger.revisions("2024-05")[0].results) == original
    assert ledger.current("2024-05") is second
    assert ledger.revisions("2024-06") == []


def test_correction_needs_a_reason_a_change_and_a_published_period(five_tickets):
    ledger = ResultsLedger()
    with pytest.raises(NotFoundError, match="not published"):
        ledger.correct("2024-05", results(five_tickets), by="复核组", reason="x")
    ledger.publish("2024-05", results(five_tickets), by="考核科")
    with pytest.raises(PerformanceInputError, match="needs a reason"):
        ledger.correct("2024-05", results(five_tickets[:1]), by="复核组", reason=" ")
    with pytest.raises(PerformanceInputError, match="nothing to record"):
        ledger.correct("2024-05", results(five_tickets), by="复核组", reason="重算")
    with pytest.raises(PerformanceInputError, match="for period 2024-05, not 2024-04"):
        ledger.publish("2024-04", results(five_tickets), by="考核科")


def test_recompute_matches_tells_a_changed_recomputation(five_tickets):
    ledger = ResultsLedger()
    ledger.publish("2024-05", results(five_tickets), by="考核科")
    assert ledger.recompute_matches("2024-05", results(five_tickets))
    late = [*five_tickets, fact("6", received_at=MON + 9 * H)]  # a ticket loaded late
    assert not ledger.recompute_matches("2024-05", results(late))
    changes = ledger.differences("2024-05", results(late))
    assert "东华门街道: counts.dispatched 5 -> 6" in changes
    assert ledger.current("2024-05").results[0].counts.dispatched == 5  # nothing changed


def test_ledger_round_trip_and_tamper_evidence(five_tickets):
    ledger = ResultsLedger()
    april = compute_results([good("1", "甲")], period="2024-04", settings=PerformanceSettings())
    ledger.publish("2024-04", april, by="考核科", at=AT)
    ledger.publish("2024-05", results(five_tickets), by="考核科", at=AT)
    ledger.correct("2024-05", results(five_tickets[:3]), by="复核组", reason="听证更正", at=AT + D)
    records = json.loads(json.dumps(ledger.to_records(), ensure_ascii=False))
    again = ResultsLedger.from_records(records)
    assert again.to_records() == ledger.to_records()
    assert again.current("2024-05").reason == "听证更正"
    records[1]["results"][0]["composite"] = 0.99
    with pytest.raises(PerformanceInputError, match="altered"):
        ResultsLedger.from_records(records)
    with pytest.raises(PerformanceInputError, match="expected revision 1"):
        ResultsLedger.from_records(ledger.to_records()[2:])


def test_history_from_the_ledger_feeds_the_warning():
    ledger = ResultsLedger()
    for month in ("2024-02", "2024-03", "2024-04"):
        ledger.publish(month, compute_results([good("1", "甲")], period=month,
                                              settings=PerformanceSettings()), by="考核科")
    history = ledger.history(before="2024-05")
    assert history == {"甲": [1.0, 1.0, 1.0]}
    assert ledger.history(before="2024-03") == {"甲": [1.0]}
    returned = fact("1", "甲", received_at=MON + H, resolved=True, closed_at=MON + D,
                    completed_at=MON + D, rating="满意", returned=True)
    [r] = results([returned], history=history)
    assert (r.composite, r.warning) == (pytest.approx(0.95), "yellow")
