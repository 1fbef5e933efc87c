"""Returns (退回) through the API: who may send a ticket back, and what a refused return leaves."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from triage.errors import ReturnRefusedError
from triage.returns import holder_named, names_holder

HOTLINE = "市12345热线办公室"  # Settings.default_department
# Routed by the responsibility list to 东城区城市管理和综合执法局, with 东城区和平街道办事处 co-handling.
STALLS = "东城区和平街道人民路菜市场门口天天有流动摊贩占道卖菜，早上七点堵得车过不去，城管来了就跑。"
LEAD, CO = "东城区城市管理和综合执法局", "东城区和平街道办事处"


def _ticket(client: TestClient) -> dict[str, Any]:
    ticket = client.post("/v1/tickets", json={"text": STALLS}).json()
    assert (ticket["prediction"]["department"], ticket["prediction"]["co_departments"]) == (
        LEAD, [CO])
    return ticket


def _stored(client: TestClient, ticket_id: int) -> dict[str, Any]:
    return client.get(f"/v1/tickets/{ticket_id}").json()


def _return(client: TestClient, ticket_id: int, unit: str, reason: str | None = None):
    return client.post(f"/v1/tickets/{ticket_id}/return", json={"unit": unit, "reason": reason})


def _refused(client: TestClient, ticket_id: int, unit: str) -> str:
    """Return as ``unit``, expect 409 with nothing stored, and give the sentence."""
    before = _stored(client, ticket_id)
    response = _return(client, ticket_id, unit, "不属于本单位职责")
    assert response.status_code == 409
    assert _stored(client, ticket_id) == before  # no return stored, no new routing
    return response.json()["detail"]


def _to_hotline(client: TestClient, ticket_id: int) -> None:
    """Let each unit the ticket reaches return it until it falls back to the hotline office."""
    for _ in range(6):
        department = _stored(client, ticket_id)["prediction"]["department"]
        if department == HOTLINE:
            return
        assert _return(client, ticket_id, department).status_code == 201
    pytest.fail("the ticket never fell back to the hotline office")


def test_the_lead_unit_returns_and_the_ticket_is_routed_around_it(client: TestClient) -> None:
    ticket = _ticket(client)
    response = _return(client, ticket["id"], LEAD, "摊贩在街道管辖的市场内")
    assert response.status_code == 201
    body = response.json()
    assert body["prediction"]["department"] == CO
    assert body["prediction"]["subitem"] == ticket["prediction"]["subitem"]
    assert [(r["unit"], r["reason"]) for r in body["returns"]] == [(LEAD, "摊贩在街道管辖的市场内")]
    queued = {i["ticket_id"]: i for i in client.get("/v1/review").json()["data"]}
    assert queued[ticket["id"]]["queue_reason"] == "disputed"
    assert f"被{LEAD}退回" in queued[ticket["id"]]["reasons"]


def test_a_co_handler_may_return_it(client: TestClient) -> None:
    ticket = _ticket(client)
    response = _return(client, ticket["id"], CO)
    assert response.status_code == 201
    body = response.json()
    assert [r["unit"] for r in body["returns"]] == [CO]
    assert CO not in [body["prediction"]["department"], *body["prediction"]["co_departments"]]


def test_a_unit_named_by_its_short_name_is_stored_under_the_routed_name(
        client: TestClient) -> None:
    ticket = _ticket(client)
    response = _return(client, ticket["id"], "东城区城管局")
    assert response.status_code == 201
    assert [r["unit"] for r in response.json()["returns"]] == [LEAD]
    assert response.json()["prediction"]["department"] != LEAD


def test_a_unit_that_does_not_hold_the_ticket_cannot_return_it(client: TestClient) -> None:
    ticket = _ticket(client)
    detail = _refused(client, ticket["id"], "火星局")
    assert detail == (f"火星局 cannot return ticket {ticket['id']}: only a unit that holds it can, "
                      f"and it is held by {LEAD} (lead) and {CO} (co-handler)")


def test_a_unit_the_ticket_has_left_cannot_return_it(client: TestClient) -> None:
    ticket = _ticket(client)
    assert _return(client, ticket["id"], CO).status_code == 201
    assert _return(client, ticket["id"], LEAD).status_code == 201
    holder = _stored(client, ticket["id"])["prediction"]["department"]
    assert holder not in {LEAD, CO, HOTLINE}
    detail = _refused(client, ticket["id"], "东城区市场监督管理局")
    assert f"it is held by {holder} (lead)" in detail


@pytest.mark.parametrize("again", [LEAD, "东城区城管局", f" {LEAD} "])
def test_a_second_return_by_the_same_unit_is_refused(client: TestClient, again: str) -> None:
    ticket = _ticket(client)
    assert _return(client, ticket["id"], LEAD, "不属于本单位职责").status_code == 201
    detail = _refused(client, ticket["id"], again)
    assert f"already returned ticket {ticket['id']} on " in detail
    assert "a unit returns a ticket once, so this return was not recorded again" in detail
    assert [r["unit"] for r in _stored(client, ticket["id"])["returns"]] == [LEAD]


def test_the_hotline_office_cannot_return_a_ticket_that_fell_back_to_it(
        client: TestClient) -> None:
    ticket = _ticket(client)
    _to_hotline(client, ticket["id"])
    held = _stored(client, ticket["id"])["prediction"]
    assert held["needs_review"] is True
    for _ in range(2):  # before the fix each try re-routed it to the office again
        detail = _refused(client, ticket["id"], HOTLINE)
        assert detail == (
            f"{HOTLINE} is the hotline office and does not return tickets: ticket {ticket['id']} "
            "stays in the review queue until a person dispatches it to a responsible unit by "
            "correcting its department")
    assert ticket["id"] in [i["ticket_id"] for i in client.get("/v1/review").json()["data"]]
    other = _refused(client, ticket["id"], "火星局")
    assert other.endswith(f"it is waiting at {HOTLINE} for a person to dispatch it")


def test_the_hotline_office_cannot_return_a_ticket_a_unit_holds(client: TestClient) -> None:
    ticket = _ticket(client)
    detail = _refused(client, ticket["id"], HOTLINE)
    assert detail == (f"{HOTLINE} is the hotline office and does not return tickets: ticket "
                      f"{ticket['id']} is not with it, it is held by {LEAD} (lead) and {CO} "
                      "(co-handler)")


def test_the_unit_a_person_dispatched_to_may_return_it(client: TestClient) -> None:
    ticket = _ticket(client)
    _to_hotline(client, ticket["id"])
    manual = "东城区市场监督管理局"
    corrected = client.post(f"/v1/tickets/{ticket['id']}/corrections",
                            json={"department": manual, "reviewer": "王"})
    assert corrected.status_code == 201
    assert f"held by {manual} (lead)" in _refused(client, ticket["id"], "火星局")
    response = _return(client, ticket["id"], manual, "不属于本单位职责")
    assert response.status_code == 201
    assert response.json()["returns"][-1]["unit"] == manual
    assert response.json()["prediction"]["department"] == HOTLINE


def test_after_a_staff_correction_a_return_routes_by_the_corrected_subitem(
    client: TestClient,
) -> None:
    ticket = _ticket(client)
    noise = "环境保护/噪声污染/社会生活噪声"  # the list: 市公安局 leads, 市生态环境局 co-handles
    corrected = client.post(f"/v1/tickets/{ticket['id']}/corrections",
                            json={"subitem": noise, "reviewer": "王芳"})
    assert corrected.status_code == 201
    body = _return(client, ticket["id"], LEAD, "摊贩的喇叭扰民，不是占道").json()
    latest = body["prediction"]
    assert (latest["subitem"], latest["level1"], latest["confidence"]) == (noise, "环境保护", 1.0)
    assert latest["department"] == "市公安局"
    assert latest["explanation"]["subitem_from"]["reviewer"] == "王芳"


# 流动摊贩 with no place named: the list's {district} and {street} stay 属地.
NO_PLACE = "路边天天有流动摊贩占道卖菜，早上七点堵得车过不去，城管来了就跑。"
# 邻里矛盾纠纷 in 西城区文昌街道: the list's {district}{street}办事处 leads.
NEIGHBOURS = ("我住在西城区文昌街道阳光新城，楼上住户每天晚上十一点以后还在家里拖桌椅、跳绳，上去敲门"
              "沟通过，对方态度很差。物业调解过两次没用，恳请社区和街道出面协调邻里矛盾。")


def test_a_ticket_held_by_a_placeholder_unit_is_reviewed_and_a_concrete_unit_returns_it(
        client: TestClient) -> None:
    ticket = client.post("/v1/tickets", json={"text": NO_PLACE}).json()
    prediction = ticket["prediction"]
    assert prediction["department"] == "属地区城市管理和综合执法局"
    assert prediction["needs_review"] is True
    assert "地址不明，需人工确定属地单位" in prediction["review_reason"]
    response = _return(client, ticket["id"], "东城区城市管理和综合执法局", "不在本区")
    assert response.status_code == 201, response.text
    body = response.json()
    # stored under the routed name, which re-routing leaves out
    assert [r["unit"] for r in body["returns"]] == ["属地区城市管理和综合执法局"]
    assert body["prediction"]["department"] != "属地区城市管理和综合执法局"
    # another body than the placeholder's is still no holder
    other = client.post("/v1/tickets", json={"text": NO_PLACE}).json()
    assert "cannot return ticket" in _refused(client, other["id"], "东城区教育局")


def test_a_street_office_named_without_its_district_is_the_holder(client: TestClient) -> None:
    ticket = client.post("/v1/tickets", json={"text": NEIGHBOURS}).json()
    assert ticket["prediction"]["department"] == "西城区文昌街道办事处"
    response = _return(client, ticket["id"], "文昌街道办事处")
    assert response.status_code == 201, response.text
    assert [r["unit"] for r in response.json()["returns"]] == ["西城区文昌街道办事处"]
    # a street office of another street, or of the same name in another district, is not
    other = client.post("/v1/tickets", json={"text": NEIGHBOURS}).json()
    _refused(client, other["id"], "和平街道办事处")
    _refused(client, other["id"], "东城区文昌街道办事处")


@pytest.mark.parametrize("unit", ["", "   "])
def test_an_empty_unit_is_refused_alike_with_its_field(client: TestClient, unit: str) -> None:
    ticket = _ticket(client)
    response = _return(client, ticket["id"], unit)
    assert response.status_code == 422
    assert response.json()["detail"] == "unit must not be empty"
    assert response.json()["errors"] == [{"field": "unit", "problem": "unit must not be empty"}]


def test_a_street_office_that_returned_without_its_district_is_told_it_returned_already(
        client: TestClient) -> None:
    ticket = client.post("/v1/tickets", json={"text": NEIGHBOURS}).json()
    assert _return(client, ticket["id"], "文昌街道办事处").status_code == 201
    # before: "cannot return ticket N: only a unit that holds it can", as if it never had it
    detail = _refused(client, ticket["id"], "文昌街道办事处")
    assert f"文昌街道办事处 already returned ticket {ticket['id']} on " in detail


# 路灯 with a place the gazetteer contradicts: an unsure top level, and a placeholder street office.
CONFLICT = "东城区西关街道路灯坏了好几天了，晚上很黑"


def test_a_return_keeps_the_classifiers_doubt_about_the_subitem(client: TestClient) -> None:
    ticket = client.post("/v1/tickets", json={"text": CONFLICT}).json()
    doubt = ticket["prediction"]["review_reason"].split("；")[0]
    assert doubt.startswith("一级分类把握不足"), ticket["prediction"]
    lead = ticket["prediction"]["department"]
    body = _return(client, ticket["id"], lead, "不归我们管").json()["prediction"]
    # a return is about the unit: the category is as unsure as before (it read False before)
    assert body["needs_review"] is True
    assert doubt in body["review_reason"]


def test_a_conflicting_returned_ticket_is_still_found_by_its_conflict_in_the_queue(
        client: TestClient) -> None:
    ticket = client.post("/v1/tickets", json={"text": CONFLICT}).json()
    conflict = ticket["prediction"]["explanation"]["routing"]["address"]["conflict"]
    assert conflict.startswith("诉求写的东城区与西关街道")
    assert _return(client, ticket["id"], "东城区和平街道办事处").status_code == 201
    found = client.get("/v1/review", params={"reason": "不符"}).json()["data"]
    [item] = [i for i in found if i["ticket_id"] == ticket["id"]]  # missing before
    assert item["queue_reason"] == "disputed"
    assert item["reasons"][0] == "被属地街道办事处退回"
    assert any(conflict in r for r in item["reasons"][1:])


def test_a_co_handlers_return_keeps_the_lead_a_person_dispatched_to(client: TestClient) -> None:
    ticket = _ticket(client)
    manual = "东城区市场监督管理局"
    assert client.post(f"/v1/tickets/{ticket['id']}/corrections",
                       json={"department": manual, "reviewer": "王"}).status_code == 201
    body = _return(client, ticket["id"], CO, "不属于本街道").json()["prediction"]
    # before: routed back to the list's lead, the unit the person had taken the ticket from
    assert body["department"] == manual
    assert CO not in body["co_departments"]
    assert body["explanation"]["department_from"]["reviewer"] == "王"
    # and the person's lead still holds it: it may return it, the list's lead may not
    assert "cannot return ticket" in _refused(client, ticket["id"], LEAD)
    assert _return(client, ticket["id"], manual).status_code == 201


def test_a_returned_event_is_refused_for_the_hotline_office_as_a_return_is(
        client: TestClient) -> None:
    ticket = _ticket(client)
    _to_hotline(client, ticket["id"])
    event = client.post(f"/v1/tickets/{ticket['id']}/events",
                        json={"type": "returned", "unit": HOTLINE})
    assert event.status_code == 409, event.text  # 201 before, while /return said 409
    assert event.json()["detail"].startswith(f"{HOTLINE} is the hotline office and does not "
                                             "return tickets")


@pytest.mark.parametrize("unit", [None, "  "])
def test_a_returned_event_without_a_unit_is_refused(client: TestClient, unit: str | None) -> None:
    ticket = _ticket(client)
    event = client.post(f"/v1/tickets/{ticket['id']}/events",
                        json={"type": "returned", "unit": unit})
    assert event.status_code == 422, event.text  # stored before, and counted as a return
    assert "returned event needs its unit" in event.json()["detail"]


# --- local placeholders (属地街道办事处, 属地镇人民政府, 属地乡人民政府): the street, town or
# township government the ticket reached returns it by its own name; a name no office has does not

@pytest.mark.parametrize(("holder", "unit"), [
    ("属地镇人民政府", "黄星镇人民政府"),
    ("属地镇人民政府", "A7县黄星镇人民政府"),
    ("属地镇人民政府", "黄星镇政府"),
    ("属地乡人民政府", "火场乡人民政府"),
    ("属地乡人民政府", "L3县火场乡人民政府"),
    ("属地街道办事处", "洋湖街道办事处"),
    ("属地街道办事处", "A3区洋湖街道办事处"),
    # the router placed a 镇人民政府 body as 火场乡人民政府 when the appeal named 火场乡; with no
    # place named, the local government a person sent it to may be of any of the three kinds
    ("属地镇人民政府", "火场乡人民政府"),
    ("属地街道办事处", "黄星镇人民政府"),
])
def test_the_local_government_it_reached_returns_a_local_placeholder(holder: str, unit: str) -> None:
    assert names_holder(holder, unit)
    assert holder_named(ticket_id=1, holders=[holder], unit=unit) == holder


@pytest.mark.parametrize(("holder", "unit"), [
    ("属地镇人民政府", "A3区镇人民政府"),
    ("属地乡人民政府", "K7县乡人民政府"),
    ("属地街道办事处", "A3区街道办事处"),
    ("属地街道办事处", "A3区街道办"),
    ("属地街道办事处", "东城区街道办事处"),
    ("属地镇人民政府", "北山区镇人民政府"),
    ("属地街道办事处", "街道办事处"),
    ("属地镇人民政府", "镇人民政府"),
    ("属地街道办事处", "某某街道办事处"),
    ("属地镇人民政府", "A3区住建局"),
    ("属地镇人民政府", "属地乡人民政府"),
])
def test_a_name_no_office_has_does_not_return_a_local_placeholder(holder: str, unit: str) -> None:
    assert not names_holder(holder, unit)
    with pytest.raises(ReturnRefusedError):
        holder_named(ticket_id=1, holders=[holder], unit=unit)


def test_other_placeholders_and_concrete_holders_are_as_before() -> None:
    assert names_holder("属地镇人民政府", "属地镇人民政府")  # a holder names itself
    assert names_holder("属地区城管局", "东城区城管局")
    assert not names_holder("属地区城管局", "东城区教育局")
    assert names_holder("西城区文昌街道办事处", "文昌街道办事处")
    assert not names_holder("西城区文昌街道办事处", "东城区文昌街道办事处")
    assert not names_holder("A7县黄星镇人民政府", "火场乡人民政府")


# CONFLICT (路灯 with a place the gazetteer contradicts): the street office is the placeholder
def test_a_street_office_of_no_name_is_refused_through_the_api(client: TestClient) -> None:
    ticket = client.post("/v1/tickets", json={"text": CONFLICT}).json()
    prediction = ticket["prediction"]
    assert "属地街道办事处" in [prediction["department"], *prediction["co_departments"]]
    before = client.get(f"/v1/tickets/{ticket['id']}").json()
    response = client.post(f"/v1/tickets/{ticket['id']}/return", json={"unit": "东城区街道办事处"})
    assert response.status_code == 409, response.text
    assert client.get(f"/v1/tickets/{ticket['id']}").json() == before
    event = client.post(f"/v1/tickets/{ticket['id']}/events",
                        json={"type": "returned", "unit": "东城区街道办事处"})
    assert event.status_code == 409, event.text
    assert client.post(f"/v1/tickets/{ticket['id']}/return",
                       json={"unit": "东城区和平街道办事处"}).status_code == 201
