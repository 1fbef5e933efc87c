"""Staff corrections through the API: stored beside the prediction, reused at once for rewordings."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

# A real hotline would file this under 社会生活噪声 or 餐饮油烟; the staff decide 占道经营.
ORIGINAL = "西城区文昌街道文昌路夜市的烧烤摊每天摆到人行道上，烟熏火燎，晚上一点还在吆喝，行人只能走机动车道。"
REWORDED = "文昌路夜市那些烧烤摊天天占着人行道摆摊，油烟很大，半夜一点还在吆喝，路人都得绕到机动车道上走。"
UNRELATED = "我孩子今年九月上小学，家住北山区青山镇，按划片应该读青山小学，但学校说学位满了让我们去十公里外。"
STALLS = "城市管理/占道经营与流动摊贩/流动摊贩占道经营"


def _post(client: TestClient, text: str) -> dict:
    return client.post("/v1/tickets", json={"text": text}).json()


def test_correction_is_stored_beside_the_prediction(client: TestClient) -> None:
    ticket = _post(client, ORIGINAL)
    before = ticket["prediction"]
    response = client.post(f"/v1/tickets/{ticket['id']}/corrections",
                           json={"subitem": STALLS, "reviewer": "王芳", "note": "夜市占道"})
    assert response.status_code == 201
    body = response.json()
    assert body["subitem"] == STALLS and body["reviewer"] == "王芳"
    assert body["model_version"] == before["model_version"]
    assert body["before"]["subitem"] == before["subitem"]
    stored = client.get(f"/v1/tickets/{ticket['id']}").json()
    assert stored["prediction"]["subitem"] == before["subitem"]  # never overwritten
    assert stored["corrections"][0]["subitem"] == STALLS


def test_reworded_complaint_gets_the_correction_at_once(client: TestClient) -> None:
    ticket = _post(client, ORIGINAL)
    client.post(f"/v1/tickets/{ticket['id']}/corrections",
                json={"subitem": "城市管理/占道经营与流动摊贩", "department": "西城区城市管理和综合执法局",
                      "reviewer": "王芳"})
    again = _post(client, REWORDED)["prediction"]
    assert again["subitem"].startswith("城市管理/占道经营与流动摊贩/")
    assert again["department"] == "西城区城市管理和综合执法局"
    assert again["explanation"]["memory"]["ticket_id"] == ticket["id"]
    other = _post(client, UNRELATED)["prediction"]
    assert "memory" not in other["explanation"]


@pytest.mark.parametrize("payload, words", [
    ({"subitem": "不存在/的分类", "reviewer": "王芳"}, "not a path in the taxonomy"),
    ({"reviewer": "王芳"}, "needs a subitem, a department or a sentiment"),
    ({"subitem": STALLS}, "reviewer is required"),
    ({"sentiment": "angry", "reviewer": "王芳"}, "not one of positive"),
])
def test_bad_corrections_are_refused_plainly(client: TestClient, payload: dict, words: str) -> None:
    ticket = _post(client, ORIGINAL)
    response = client.post(f"/v1/tickets/{ticket['id']}/corrections", json=payload)
    assert response.status_code == 422 and words in response.json()["detail"]
    assert client.get(f"/v1/tickets/{ticket['id']}").json()["corrections"] == []
