"""Which feedback a ticket's satisfaction counts: the latest explicit rating by the time the
citizen gave it, the latest readable text only where no rating exists, and texts that say nothing
left unrated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

APPEAL = "东城区和平街道人民路菜市场门口天天有流动摊贩占道卖菜，早上七点堵得车过不去。"
UNIT = "东城区城市管理和综合执法局"
PERIOD = {"from": "2026-11-01", "to": "2026-11-30"}


def _dispatched(client: TestClient) -> int:
    ticket = client.post("/v1/tickets", json={"text": APPEAL}).json()["id"]
    client.post(f"/v1/tickets/{ticket}/events",
                json={"type": "dispatched", "unit": UNIT, "at": "2026-11-02T09:00:00+08:00"})
    return ticket


def _feedback(client: TestClient, ticket: int, **body: str) -> dict:
    response = client.post(f"/v1/tickets/{ticket}/feedback", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _unit(client: TestClient) -> dict:
    report = client.get("/v1/reports/satisfaction", params=PERIOD).json()
    return {u["unit"]: u for u in report["by_unit"]}[UNIT]


@pytest.mark.parametrize("note_at", ["2026-10-10T10:00:00+08:00", "2026-11-20T10:00:00+08:00"])
def test_a_note_without_a_rating_does_not_replace_the_rating(client: TestClient,
                                                             note_at: str) -> None:
    ticket = _dispatched(client)
    _feedback(client, ticket, rating="不满意", at="2026-11-10T10:00:00+08:00")
    _feedback(client, ticket, text="谢谢，已经修好了", at=note_at)
    counts = _unit(client)["counts"]
    assert (counts["dissatisfied"], counts["satisfied"], counts["rated"]) == (1, 0, 1)
    assert _unit(client)["satisfaction_rate"] == 0.0


def test_the_latest_rating_is_the_one_given_last_not_the_one_stored_last(
        client: TestClient) -> None:
    ticket = _dispatched(client)
    _feedback(client, ticket, rating="满意", at="2026-11-12T10:00:00+08:00")
    _feedback(client, ticket, rating="不满意", at="2026-11-05T10:00:00+08:00")  # entered late
    counts = _unit(client)["counts"]
    assert (counts["satisfied"], counts["dissatisfied"]) == (1, 0)


def test_without_a_rating_the_latest_text_by_time_stands_in(client: TestClient) -> None:
    ticket = _dispatched(client)
    _feedback(client, ticket, text="态度很差，根本没解决", at="2026-11-10T10:00:00+08:00")
    _feedback(client, ticket, text="谢谢，已经修好了", at="2026-11-05T10:00:00+08:00")
    counts = _unit(client)["counts"]
    assert (counts["rated_by_sentiment"], counts["dissatisfied"], counts["satisfied"]) == (1, 1, 0)


def test_feedback_given_in_the_future_is_refused_plainly(client: TestClient) -> None:
    ticket = _dispatched(client)
    later = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    response = client.post(f"/v1/tickets/{ticket}/feedback",
                           json={"rating": "满意", "text": "谢谢", "at": later})
    assert response.status_code == 422
    assert "in the future" in response.json()["detail"]
    assert "Traceback" not in response.text
    soon = (datetime.now(UTC) + timedelta(hours=12)).isoformat()  # clocks differ: a day's grace
    assert client.post(f"/v1/tickets/{ticket}/feedback",
                       json={"rating": "满意", "at": soon}).status_code == 201


@pytest.mark.parametrize("text", ["👍👍", "ok thanks", "x"])
def test_a_text_that_says_nothing_is_not_a_rating(client: TestClient, text: str) -> None:
    ticket = _dispatched(client)
    body = _feedback(client, ticket, text=text, at="2026-11-10T10:00:00+08:00")
    assert body["sentiment_label"] is None and body["sentiment_score"] is None
    report = client.get("/v1/reports/satisfaction", params=PERIOD).json()
    unit = {u["unit"]: u for u in report["by_unit"]}[UNIT]
    assert (unit["counts"]["rated"], unit["counts"]["rated_by_sentiment"]) == (0, 0)
    assert unit["counts"]["basic"] == 0 and unit["satisfaction_rate"] is None
    assert report["feedback_uninformative"] == 1


def test_a_text_that_says_nothing_does_not_hide_an_earlier_one(client: TestClient) -> None:
    ticket = _dispatched(client)
    _feedback(client, ticket, text="态度很差，根本没解决", at="2026-11-05T10:00:00+08:00")
    _feedback(client, ticket, text="ok", at="2026-11-10T10:00:00+08:00")
    report = client.get("/v1/reports/satisfaction", params=PERIOD).json()
    counts = {u["unit"]: u for u in report["by_unit"]}[UNIT]["counts"]
    assert (counts["rated_by_sentiment"], counts["dissatisfied"]) == (1, 1)
    assert report["feedback_uninformative"] == 0
