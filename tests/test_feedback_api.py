"""Return-visit feedback and handling events through the API."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

APPEAL = "东城区和平街道人民路菜市场门口天天有流动摊贩占道卖菜，早上七点堵得车过不去。"


@pytest.fixture
def ticket_id(client: TestClient) -> int:
    return client.post("/v1/tickets", json={"text": APPEAL}).json()["id"]


def test_feedback_words_are_masked_and_scored(client: TestClient, ticket_id: int) -> None:
    response = client.post(f"/v1/tickets/{ticket_id}/feedback", json={
        "rating": 2, "text": "推来推去一个月了还没人管，我电话13812345678你们打都不打"})
    assert response.status_code == 201
    body = response.json()
    assert body["rating"] == "不满意" and "13812345678" not in body["text"]
    assert body["sentiment_label"] == "negative" and body["sentiment_score"] < 0
    assert "passed_the_buck" in body["reasons"] and body["evidence"]["passed_the_buck"]
    assert not body["needs_review"] and body["sentiment_version"]


def test_feedback_that_contradicts_its_rating_is_flagged(client: TestClient, ticket_id: int) -> None:
    body = client.post(f"/v1/tickets/{ticket_id}/feedback",
                       json={"rating": "满意", "text": "根本没解决，态度还很差"}).json()
    assert body["needs_review"] and "满意" in body["review_reason"]


@pytest.mark.parametrize("payload, words", [
    ({"rating": 7}, "score from 1 to 5"), ({"rating": "还行"}, "not one of"),
    ({}, "needs a rating, a text, or both"),
])
def test_bad_feedback_is_refused_plainly(client: TestClient, ticket_id: int, payload: dict,
                                         words: str) -> None:
    response = client.post(f"/v1/tickets/{ticket_id}/feedback", json=payload)
    assert response.status_code == 422 and words in response.json()["detail"]


def test_events_are_recorded_in_order(client: TestClient, ticket_id: int) -> None:
    for kind, at in (("dispatched", "2026-11-02T09:00:00+08:00"),
                     ("received", "2026-11-02T09:40:00+08:00"),
                     ("closed", "2026-11-05T17:00:00+08:00")):
        response = client.post(f"/v1/tickets/{ticket_id}/events",
                               json={"type": kind, "unit": "东城区城市管理和综合执法局", "at": at})
        assert response.status_code == 201
    closed = datetime.fromisoformat(response.json()["at"])
    assert closed == datetime(2026, 11, 5, 9, 0, tzinfo=UTC)  # the same instant, any zone
    bad = client.post(f"/v1/tickets/{ticket_id}/events", json={"type": "finished"})
    assert bad.status_code == 422 and "dispatched" in bad.json()["detail"]
    assert client.post("/v1/tickets/999/events", json={"type": "closed"}).status_code == 404


def _handle(client: TestClient, unit: str, day: str, rating: str | None, text: str | None,
            resolved: bool = True, received_after_minutes: int = 30) -> int:
    ticket = client.post("/v1/tickets", json={"text": APPEAL}).json()["id"]
    received = f"{day}T09:{received_after_minutes:02d}:00+08:00" if received_after_minutes < 60 \
        else f"{day}T12:00:00+08:00"
    for kind, at in (("dispatched", f"{day}T09:00:00+08:00"), ("received", received),
                     ("resolved" if resolved else "unresolved", f"{day}T15:00:00+08:00"),
                     ("closed", f"{day}T16:00:00+08:00")):
        client.post(f"/v1/tickets/{ticket}/events", json={"type": kind, "unit": unit, "at": at})
    if rating or text:
        client.post(f"/v1/tickets/{ticket}/feedback", json={"rating": rating, "text": text})
    return ticket


def test_satisfaction_report_by_unit_with_reasons(client: TestClient) -> None:
    a, b = "东城区城市管理和综合执法局", "东城区和平街道办事处"
    _handle(client, a, "2026-11-02", "满意", "很快就处理好了，满意")
    _handle(client, a, "2026-11-03", "基本满意", None)
    _handle(client, b, "2026-11-04", "不满意", "推来推去一个月没人管", resolved=False,
            received_after_minutes=180)
    _handle(client, b, "2026-11-05", None, "态度很差，根本没解决")  # sentiment stands in
    _handle(client, a, "2026-12-20", "满意", None)  # outside the period
    response = client.get("/v1/reports/satisfaction", params={"from": "2026-11-01",
                                                              "to": "2026-11-30"})
    assert response.status_code == 200
    body = response.json()
    assert body["tickets"] == 4
    units = {u["unit"]: u for u in body["by_unit"]}
    assert units[a]["satisfaction_rate"] == pytest.approx((1 + 0.8) / 2)
    assert units[b]["satisfaction_rate"] == 0.0
    assert units[b]["counts"]["rated_by_sentiment"] == 1
    assert units[b]["response_rate"] == 0.5 and units[a]["rank"] == 1
    reasons = {r["reason"]: r for r in body["top_reasons"]}
    assert reasons["passed_the_buck"]["examples"] == ["推来推去一个月没人管"]
    only_b = client.get("/v1/reports/satisfaction",
                        params={"from": "2026-11-01", "to": "2026-11-30", "unit": b}).json()
    assert [u["unit"] for u in only_b["by_unit"]] == [b]


def test_report_dates_are_checked(client: TestClient) -> None:
    bad = client.get("/v1/reports/satisfaction", params={"from": "2026-13-01", "to": "2026-11-30"})
    assert bad.status_code == 422 and "from" in bad.json()["detail"]
    backwards = client.get("/v1/reports/satisfaction",
                           params={"from": "2026-11-30", "to": "2026-11-01"})
    assert backwards.status_code == 422 and "before" in backwards.json()["detail"]
    # "all time" as far as a date goes is out of range, said plainly on every report path
    everything = {"from": "0001-01-01", "to": "9999-12-31"}
    for path in ("/v1/reports/satisfaction", "/v1/reports/satisfaction/export",
                 "/reports/satisfaction"):
        far = client.get(path, params=everything)
        assert far.status_code == 422 and "out of range" in far.text, path
    published = client.post("/v1/reports/periods", json={**everything, "by": "王科长"})
    assert published.status_code == 422 and "out of range" in published.json()["detail"]
    assert client.get("/healthz").status_code == 200


def test_report_page_and_exports(client: TestClient) -> None:
    unit = "东城区城市管理和综合执法局"
    _handle(client, unit, "2026-11-02", "不满意", "推来推去一个月没人管，电话13812345678")
    page = client.get("/reports/satisfaction", params={"from": "2026-11-01", "to": "2026-11-30"})
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert unit in page.text and "推诿扯皮" in page.text and "<svg" in page.text
    assert "13812345678" not in page.text and "[手机号]" in page.text
    csv_export = client.get("/v1/reports/satisfaction/export",
                            params={"from": "2026-11-01", "to": "2026-11-30", "format": "csv"})
    assert csv_export.status_code == 200
    lines = csv_export.content.decode("utf-8").splitlines()
    assert lines[0].startswith("rank,unit,dispatched") and unit in lines[1]
    xlsx = client.get("/v1/reports/satisfaction/export",
                      params={"from": "2026-11-01", "to": "2026-11-30", "format": "xlsx"})
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"


def test_a_published_period_is_frozen_and_corrected_by_revisions(client: TestClient) -> None:
    unit = "东城区城市管理和综合执法局"
    first = _handle(client, unit, "2026-11-02", "满意", None)
    body = {"from": "2026-11-01", "to": "2026-11-30", "by": "考核办张明"}
    published = client.post("/v1/reports/periods", json=body)
    assert published.status_code == 201
    period = published.json()["period"]
    assert published.json()["revision"] == 1
    assert published.json()["results"][0]["satisfaction_rate"] == 1.0
    again = client.post("/v1/reports/periods", json=body)
    assert again.status_code == 409 and "frozen" in again.json()["detail"]
    # Late feedback changes what a recomputation would say, but not the published figures.
    client.post(f"/v1/tickets/{first}/feedback", json={"rating": "不满意", "text": "又坏了"})
    state = client.get(f"/v1/reports/periods/{period}").json()
    assert state["current"]["results"][0]["satisfaction_rate"] == 1.0
    assert not state["recompute_matches"] and state["differences"]
    fixed = client.post(f"/v1/reports/periods/{period}/corrections",
                        json={"by": "考核办张明", "reason": "回访补录"})
    assert fixed.status_code == 201 and fixed.json()["revision"] == 2
    state = client.get(f"/v1/reports/periods/{period}").json()
    assert [r["revision"] for r in state["revisions"]] == [1, 2]
    assert state["current"]["results"][0]["satisfaction_rate"] == 0.0
    assert state["recompute_matches"]


def test_unknown_or_malformed_period(client: TestClient) -> None:
    assert client.get("/v1/reports/periods/2026-01-01..2026-01-31").status_code == 404
    bad = client.get("/v1/reports/periods/november")
    assert bad.status_code == 422 and "YYYY-MM-DD" in bad.json()["detail"]


def test_an_event_time_without_a_zone_is_local_time(client: TestClient, ticket_id: int) -> None:
    body = client.post(f"/v1/tickets/{ticket_id}/events",
                       json={"type": "received", "at": "2026-11-02T09:30:00"}).json()
    assert datetime.fromisoformat(body["at"]) == datetime(2026, 11, 2, 1, 30, tzinfo=UTC)


def test_composite_reads_to_four_decimals_in_json_and_csv(client: TestClient) -> None:
    unit = "东城区城市管理和综合执法局"
    for day, rating, resolved in (("2026-11-02", "满意", True), ("2026-11-03", "基本满意", True),
                                  ("2026-11-04", "不满意", False)):
        _handle(client, unit, day, rating, None, resolved=resolved)
    period = {"from": "2026-11-01", "to": "2026-11-30"}
    [row] = client.get("/v1/reports/satisfaction", params=period).json()["by_unit"]
    assert row["composite"] is not None and row["composite"] == round(row["composite"], 4)
    assert 0 < row["composite"] < 1  # thirds: 0.xxxxxxxx before
    csv_export = client.get("/v1/reports/satisfaction/export", params={**period, "format": "csv"})
    header, line = csv_export.content.decode("utf-8").splitlines()[:2]
    shown = line.split(",")[header.split(",").index("composite")]
    assert len(shown.split(".")[-1]) <= 4, shown


def test_a_returned_event_needs_a_unit_that_holds_the_ticket(client: TestClient,
                                                              ticket_id: int) -> None:
    stranger = client.post(f"/v1/tickets/{ticket_id}/events",
                           json={"type": "returned", "unit": "完全无关的单位"})
    assert stranger.status_code == 409
    assert stranger.json()["detail"].startswith(
        f"完全无关的单位 cannot return ticket {ticket_id}: only a unit that holds it can")
    # the lead and co-handler of the dispatch hold it, under any spelling
    for unit in ("东城区城管局", "东城区和平街道办事处"):
        held = client.post(f"/v1/tickets/{ticket_id}/events",
                           json={"type": "returned", "unit": unit})
        assert held.status_code == 201, held.text
    # a unit a dispatched event sent it to holds it too
    client.post(f"/v1/tickets/{ticket_id}/events",
                json={"type": "dispatched", "unit": "东城区市场监督管理局"})
    assert client.post(f"/v1/tickets/{ticket_id}/events",
                       json={"type": "returned", "unit": "东城区市场监督管理局"}).status_code == 201
    # other events name any unit
    assert client.post(f"/v1/tickets/{ticket_id}/events",
                       json={"type": "received", "unit": "完全无关的单位"}).status_code == 201
