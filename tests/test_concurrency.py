"""Requests arriving together, on SQLite and on PostgreSQL: every one lands or gets a sentence,
and the checks that guard the data hold (a unit returns a ticket once, a period is published
once), never a 500."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.testclient import TestClient

# Routed by the demo responsibility list to 东城区城市管理和综合执法局, co-handled by the street.
STALLS = "东城区和平街道人民路菜市场门口天天有流动摊贩占道卖菜，早上七点堵得车过不去，城管来了就跑。"
LEAD, CO = "东城区城市管理和综合执法局", "东城区和平街道办事处"


def _together(n: int, call: Callable[[int], Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(call, range(n)))


def test_parallel_tickets_all_land(backend_client: TestClient) -> None:
    answers = _together(12, lambda i: backend_client.post(
        "/v1/tickets", json={"text": f"{STALLS}（第{i}次）", "client_id": f"p-{i}"}))
    assert [a.status_code for a in answers] == [201] * 12
    assert len({a.json()["id"] for a in answers}) == 12


def test_a_unit_returning_a_ticket_several_times_at_once_returns_it_once(
    backend_client: TestClient,
) -> None:
    ticket = backend_client.post("/v1/tickets", json={"text": STALLS}).json()
    assert ticket["prediction"]["department"] == LEAD
    answers = _together(6, lambda i: backend_client.post(
        f"/v1/tickets/{ticket['id']}/return", json={"unit": LEAD, "reason": f"非本单位职责{i}"}))
    assert sorted(a.status_code for a in answers) == [201] + [409] * 5
    assert "already returned" in next(a for a in answers if a.status_code == 409).json()["detail"]
    stored = backend_client.get(f"/v1/tickets/{ticket['id']}").json()
    assert [r["unit"] for r in stored["returns"]] == [LEAD]


def test_holders_returning_at_once_are_all_routed_around(backend_client: TestClient) -> None:
    ticket = backend_client.post("/v1/tickets", json={"text": STALLS}).json()
    answers = _together(2, lambda i: backend_client.post(
        f"/v1/tickets/{ticket['id']}/return", json={"unit": (LEAD, CO)[i]}))
    assert [a.status_code for a in answers] == [201, 201]
    latest = backend_client.get(f"/v1/tickets/{ticket['id']}").json()["prediction"]
    assert latest["department"] not in (LEAD, CO)
    assert not set(latest["co_departments"]) & {LEAD, CO}


def test_a_period_published_twice_at_once_is_published_once(backend_client: TestClient) -> None:
    answers = _together(4, lambda i: backend_client.post(
        "/v1/reports/periods", json={"from": "2026-09-01", "to": "2026-09-30", "by": f"科长{i}"}))
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409]
    state = backend_client.get("/v1/reports/periods/2026-09-01..2026-09-30").json()
    assert len(state["revisions"]) == 1


def test_nul_characters_are_dropped_not_a_500(backend_client: TestClient) -> None:
    ticket = backend_client.post("/v1/tickets", json={"text": STALLS + "\u0000"}).json()["id"]
    corrected = backend_client.post(f"/v1/tickets/{ticket}/corrections",
                                    json={"department": "东城区市场监督管理局\u0000",
                                          "reviewer": "王\u0000芳"})
    assert corrected.status_code == 201, corrected.text
    assert corrected.json()["reviewer"] == "王芳"
    event = backend_client.post(f"/v1/tickets/{ticket}/events",
                                json={"type": "dispatched", "unit": "东城区\u0000城管"})
    assert event.status_code == 201, event.text
    assert event.json()["unit"] == "东城区城管"
