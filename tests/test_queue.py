"""The review queue: who is in it, in which order, and how a correction takes a ticket out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from triage.queue import urgency_of

VAGUE = "你好，我想反映一下情况，希望有关部门重视一下，谢谢。"
GAS = "东城区和平街道幸福里社区3栋楼道里一直有燃气味，担心会爆炸，物业说不归他们管。"
CLEAR = "东城区和平街道幼儿园突然涨保育费，每月多收八百元，也没有开家长会说明，要求退还多收的费用。"


@pytest.fixture
def client(make_client) -> TestClient:
    return make_client(review_audit_every=1000)


def _post(client: TestClient, text: str, hours_ago: float = 0) -> dict:
    at = (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat()
    return client.post("/v1/tickets", json={"text": text, "received_at": at}).json()


def test_unsure_and_disputed_tickets_are_queued_most_urgent_first(client: TestClient) -> None:
    vague = _post(client, VAGUE)
    clear = _post(client, CLEAR)
    overdue = _post(client, VAGUE + "上周就打过电话了。", hours_ago=5)
    client.post(f"/v1/tickets/{clear['id']}/feedback", json={"rating": "不满意", "text": "没解决"})
    body = client.get("/v1/review").json()
    ids = [i["ticket_id"] for i in body["data"]]
    assert ids[0] == overdue["id"] and body["data"][0]["overdue"]
    assert set(ids) >= {vague["id"], clear["id"], overdue["id"]}
    disputed = next(i for i in body["data"] if i["ticket_id"] == clear["id"])
    assert disputed["queue_reason"] == "disputed" and "群众不满意" in disputed["reasons"]


def test_the_queue_pages_with_offset_and_says_its_total(client: TestClient) -> None:
    for i in range(5):
        _post(client, f"{VAGUE}（第{i}次）", hours_ago=i)
    whole = client.get("/v1/review").json()
    order = [i["ticket_id"] for i in whole["data"]]
    assert whole["total"] == whole["count"] == len(order) >= 5
    pages = [client.get("/v1/review", params={"limit": 2, "offset": o}).json()
             for o in range(0, len(order), 2)]
    assert [i["ticket_id"] for p in pages for i in p["data"]] == order
    assert all(p["total"] == len(order) and p["count"] == len(p["data"]) for p in pages)
    assert client.get("/v1/review", params={"offset": -1}).status_code == 422


def test_danger_words_raise_severity(make_client) -> None:
    c = make_client(review_audit_every=1)
    gas, plain = _post(c, GAS), _post(c, VAGUE)
    items = {i["ticket_id"]: i for i in c.get("/v1/review").json()["data"]}
    assert items[gas["id"]]["severity"] == 3.0
    assert items[plain["id"]]["severity"] == 1.0


def test_correction_takes_a_ticket_out_and_filters_work(client: TestClient) -> None:
    vague = _post(client, VAGUE)
    assert vague["id"] in [i["ticket_id"] for i in client.get("/v1/review").json()["data"]]
    client.post(f"/v1/tickets/{vague['id']}/corrections",
                json={"subitem": "民政与社区/社区治理与邻里纠纷/社区居委会服务与作风", "reviewer": "李静"})
    assert vague["id"] not in [i["ticket_id"] for i in client.get("/v1/review").json()["data"]]
    none = client.get("/v1/review", params={"category": "不存在的分类"}).json()
    assert (none["data"], none["count"], none["total"]) == ([], 0, 0)


def test_audit_sample_includes_confident_tickets(make_client) -> None:
    c = make_client(review_audit_every=1)
    ticket = c.post("/v1/tickets", json={"text": CLEAR}).json()
    assert not ticket["prediction"]["needs_review"]  # a confident prediction ...
    items = c.get("/v1/review", params={"reason": "audit"}).json()["data"]
    assert [i["ticket_id"] for i in items] == [ticket["id"]]  # ... still audited


def test_urgency_rises_as_the_deadline_nears() -> None:
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    later, _ = urgency_of(now + timedelta(hours=10), now)
    sooner, _ = urgency_of(now + timedelta(hours=1), now)
    late, overdue = urgency_of(now - timedelta(minutes=1), now)
    assert later < sooner < late and overdue


def _review_ids(client: TestClient, **params: str) -> list[int]:
    return [i["ticket_id"] for i in client.get("/v1/review", params=params).json()["data"]]


def test_dissatisfaction_after_a_correction_puts_the_ticket_back_as_disputed(
        client: TestClient) -> None:
    ticket = _post(client, CLEAR)
    client.post(f"/v1/tickets/{ticket['id']}/corrections",
                json={"subitem": "教育文体/学前教育/幼儿园收费与退费", "reviewer": "李静"})
    assert ticket["id"] not in _review_ids(client)
    client.post(f"/v1/tickets/{ticket['id']}/feedback",
                json={"rating": "不满意", "text": "水还是黄的，问题根本没解决，推来推去"})
    items = {i["ticket_id"]: i for i in
             client.get("/v1/review", params={"reason": "disputed"}).json()["data"]}
    assert ticket["id"] in items and "群众不满意" in items[ticket["id"]]["reasons"]


def test_dissatisfaction_seen_before_the_correction_does_not_bring_it_back(
        client: TestClient) -> None:
    ticket = _post(client, CLEAR)
    client.post(f"/v1/tickets/{ticket['id']}/feedback", json={"rating": "不满意", "text": "没解决"})
    assert ticket["id"] in _review_ids(client, reason="disputed")
    client.post(f"/v1/tickets/{ticket['id']}/corrections",
                json={"subitem": "教育文体/学前教育/幼儿园收费与退费", "reviewer": "李静"})
    client.post(f"/v1/tickets/{ticket['id']}/feedback", json={"text": "谢谢，已经退费了"})
    assert ticket["id"] not in _review_ids(client)


def test_a_return_after_a_correction_puts_the_ticket_back_as_disputed(client: TestClient) -> None:
    ticket = _post(client, CLEAR)
    unit = ticket["prediction"]["department"]
    client.post(f"/v1/tickets/{ticket['id']}/corrections",
                json={"subitem": "教育文体/学前教育/幼儿园收费与退费", "reviewer": "李静"})
    assert ticket["id"] not in _review_ids(client)
    returned = client.post(f"/v1/tickets/{ticket['id']}/return",
                           json={"unit": unit, "reason": "不归我们管"})
    assert returned.status_code == 201, returned.text
    items = {i["ticket_id"]: i for i in
             client.get("/v1/review", params={"reason": "disputed"}).json()["data"]}
    assert f"被{unit}退回" in items[ticket["id"]]["reasons"]


def test_a_disputed_ticket_shows_and_filters_by_the_unit_a_person_dispatched_it_to(
        backend_client: TestClient) -> None:
    client = backend_client  # the queue filter is SQL: both databases
    ticket = _post(client, CLEAR)
    manual = "东城区市场监督管理局"
    assert ticket["prediction"]["department"] != manual
    client.post(f"/v1/tickets/{ticket['id']}/corrections",
                json={"department": manual, "reviewer": "李静"})
    client.post(f"/v1/tickets/{ticket['id']}/feedback", json={"rating": "不满意", "text": "没解决"})
    # before: the routed lead the person had taken it from, and not found under its real unit
    [item] = client.get("/v1/review", params={"unit": manual}).json()["data"]
    assert (item["ticket_id"], item["department"]) == (ticket["id"], manual)
    assert ticket["id"] not in _review_ids(client, unit=ticket["prediction"]["department"])


@pytest.mark.parametrize("node", ["城乡建设/物业管理/物业收费与维修资金", "城乡建设/物业管理", "城乡建设"],
                         ids=["leaf", "middle", "top"])
def test_a_disputed_ticket_shows_and_filters_by_the_subitem_a_person_corrected_it_to(
        backend_client: TestClient, node: str) -> None:
    client = backend_client  # the queue filter is SQL: both databases
    ticket = _post(client, CLEAR)
    predicted = ticket["prediction"]["level1"]
    assert predicted != "城乡建设"
    corrected = client.post(f"/v1/tickets/{ticket['id']}/corrections",
                            json={"subitem": node, "reviewer": "李静"})
    assert corrected.status_code == 201, corrected.text
    client.post(f"/v1/tickets/{ticket['id']}/feedback", json={"rating": "不满意", "text": "没解决"})
    # before: the model's sub-item and top level, found under the top level the person moved it
    # from and not under the one they gave it (a top level, a middle node or a leaf)
    [item] = client.get("/v1/review", params={"category": "城乡建设"}).json()["data"]
    assert (item["ticket_id"], item["subitem"], item["level1"]) == (ticket["id"], node, "城乡建设")
    assert item["queue_reason"] == "disputed"
    assert ticket["id"] not in _review_ids(client, category=predicted)


def test_a_disputed_ticket_is_timed_and_weighed_by_the_subitem_a_person_corrected_it_to(
        make_client) -> None:
    # the corrected node has its own receipt deadline and severity: the queue follows the person,
    # not the model's first guess
    node = "城乡建设/物业管理/物业收费与维修资金"
    client = make_client(review_audit_every=1000, severity_by_subitem={node: 4.0},
                         performance={"subitem_deadlines": {node: {"receipt_hours": 1}}})
    ticket = _post(client, CLEAR)
    assert not ticket["prediction"]["subitem"].startswith("城乡建设/物业管理")
    client.post(f"/v1/tickets/{ticket['id']}/corrections", json={"subitem": node, "reviewer": "李静"})
    client.post(f"/v1/tickets/{ticket['id']}/feedback", json={"rating": "不满意", "text": "没解决"})
    [item] = [i for i in client.get("/v1/review").json()["data"] if i["ticket_id"] == ticket["id"]]
    received = datetime.fromisoformat(item["received_at"])
    assert datetime.fromisoformat(item["deadline"]) - received == timedelta(hours=1)
    assert item["severity"] == 4.0
