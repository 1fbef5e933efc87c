"""Returns of a ticket the router sent to a local placeholder (属地街道办事处, 属地镇人民政府,
属地乡人民政府): the street, town or township government it reached sends it back by its own
name; a name no office has (A3区镇人民政府) does not."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from triage.errors import ReturnRefusedError
from triage.returns import holder_named, names_holder


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


# 路灯 with a place the gazetteer contradicts: the street office is the placeholder 属地街道办事处
CONFLICT = "东城区西关街道路灯坏了好几天了，晚上很黑"


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
