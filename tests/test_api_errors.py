"""What a client or a staff member sees when a request cannot be served: a status and a sentence
(a page on the staff pages), never a 500, a server path or validation-library internals."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from models.classifier import HierarchicalClassifier, _readable_terms
from triage.text import below, has_text

APPEAL = "东城区和平街道人民路菜市场门口天天有流动摊贩占道卖菜，早上七点堵得车过不去。"
TOO_BIG = 2**63  # one past the largest id SQLite stores


@pytest.fixture
def ticket_id(client: TestClient) -> int:
    return client.post("/v1/tickets", json={"text": APPEAL}).json()["id"]


# --- ticket ids -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/v1/tickets/{id}", None),
    ("POST", "/v1/tickets/{id}/feedback", {"rating": "满意"}),
    ("POST", "/v1/tickets/{id}/events", {"type": "dispatched"}),
    ("POST", "/v1/tickets/{id}/corrections", {"department": "市公安局", "reviewer": "王芳"}),
    ("POST", "/v1/tickets/{id}/return", {"unit": "市公安局"}),
])
@pytest.mark.parametrize("bad_id", [TOO_BIG, 0])
def test_a_ticket_id_no_ticket_can_have_is_not_found(client: TestClient, method: str, path: str,
                                                     body: dict | None, bad_id: int) -> None:
    response = client.request(method, path.format(id=bad_id), json=body)
    assert response.status_code == 404
    assert f"there is no ticket {bad_id}" in response.json()["detail"]


def test_the_staff_page_of_an_impossible_ticket_id_is_a_404_page(client: TestClient) -> None:
    page = client.get(f"/review/{TOO_BIG}")
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]
    assert 'href="/review"' in page.text


def test_the_staff_page_of_an_unknown_ticket_is_a_404_page_with_a_way_back(
        client: TestClient) -> None:
    page = client.get("/review/999999")
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]
    assert "没有找到这个工单" in page.text and "there is no ticket 999999" in page.text
    assert 'href="/review"' in page.text
    assert client.get("/v1/tickets/999999").json() == {"detail": "there is no ticket 999999"}


# --- ticket text ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["\u200b\u200b", "\ufeff", "\u200c\u200d \u2060", "\U000e0041"])
def test_text_of_invisible_characters_only_is_empty(client: TestClient, text: str) -> None:
    response = client.post("/v1/tickets", json={"text": text})
    assert response.status_code == 422 and "text is empty" in response.json()["detail"]
    assert client.get("/v1/tickets/1").status_code == 404  # nothing stored


def test_invisible_characters_around_words_are_fine() -> None:
    assert has_text("\u200b噪音扰民\u200b") and not has_text(" \u200b\t\ufeff")


# --- feedback ratings -----------------------------------------------------------------------------

@pytest.mark.parametrize("rating", [True, False, 3.5, [1], {"score": 5}])
def test_a_rating_that_is_no_rating_gets_one_plain_sentence(client: TestClient, ticket_id: int,
                                                            rating: object) -> None:
    response = client.post(f"/v1/tickets/{ticket_id}/feedback", json={"rating": rating})
    assert response.status_code == 422
    body = response.json()
    assert body["detail"] == ("rating must be 满意, 基本满意 or 不满意, or a whole number from 1 to "
                              f"5; got {json.dumps(rating, ensure_ascii=False)}")
    assert [e["field"] for e in body["errors"]] == ["rating"]


@pytest.mark.parametrize(("rating", "stored"), [("满意", "满意"), (4, "满意"), (4.0, "满意"),
                                                ("3", "基本满意"), (1, "不满意")])
def test_ratings_as_words_and_whole_scores_are_accepted(client: TestClient, ticket_id: int,
                                                        rating: object, stored: str) -> None:
    response = client.post(f"/v1/tickets/{ticket_id}/feedback", json={"rating": rating})
    assert response.status_code == 201 and response.json()["rating"] == stored


# --- request bodies -------------------------------------------------------------------------------

@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=gbk"])
def test_a_body_not_in_utf8_is_asked_for_in_utf8(client: TestClient, content_type: str) -> None:
    body = json.dumps({"text": APPEAL}, ensure_ascii=False).encode("gbk")
    response = client.post("/v1/tickets", content=body, headers={"content-type": content_type})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "not UTF-8" in detail and "send the JSON encoded as UTF-8" in detail
    assert ("charset=gbk" in detail) is ("gbk" in content_type)


def test_malformed_json_is_named_as_such_on_the_body(client: TestClient) -> None:
    response = client.post("/v1/tickets", content=b'{"text": ',
                           headers={"content-type": "application/json"})
    assert response.status_code == 422
    body = response.json()
    assert body["detail"].startswith("the body is not valid JSON")
    assert "character 9" in body["detail"]
    assert [e["field"] for e in body["errors"]] == ["body"]


# --- periods and models ---------------------------------------------------------------------------

def test_republishing_a_period_names_the_http_call_that_corrects_it(client: TestClient) -> None:
    body = {"from": "2026-11-01", "to": "2026-11-30", "by": "考核办张明"}
    assert client.post("/v1/reports/periods", json=body).status_code == 201
    again = client.post("/v1/reports/periods", json=body)
    assert again.status_code == 409
    detail = again.json()["detail"]
    assert "frozen" in detail and "call correct(" not in detail
    assert "POST /v1/reports/periods/2026-11-01..2026-11-30/corrections" in detail


def test_an_unknown_model_version_is_named_without_a_server_path(client: TestClient) -> None:
    response = client.post("/v1/models/nope/activate")
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert "'nope'" in detail and "/" not in detail.replace("GET /v1/models", "")


@pytest.mark.parametrize(("method", "path"), [("DELETE", "/v1/models/{v}"),
                                              ("POST", "/v1/models/{v}/activate")])
def test_a_version_name_too_long_for_a_file_is_not_found(client: TestClient, method: str,
                                                        path: str) -> None:
    """No version has such a name (at most 128 characters): 404, not the file system's error."""
    response = client.request(method, path.format(v="v" * 300))
    assert response.status_code == 404
    assert "GET /v1/models lists the versions" in response.json()["detail"]


# --- what the staff pages show --------------------------------------------------------------------

@pytest.mark.parametrize(("value", "threshold", "shown"), [
    (0.597, 0.6, "0.59 < 0.60"), (0.5999, 0.6, "0.59 < 0.60"), (0.15, 0.6, "0.15 < 0.60"),
    (0.29, 0.3, "0.29 < 0.30"), (0.6049, 0.605, "0.604 < 0.605"), (0.8999, 0.9, "0.89 < 0.90"),
])
def test_a_value_under_its_threshold_is_never_shown_at_it(value: float, threshold: float,
                                                          shown: str) -> None:
    assert below(value, threshold) == shown


def test_the_review_reason_of_a_value_just_under_the_threshold(demo_taxonomy) -> None:
    model = HierarchicalClassifier(taxonomy=demo_taxonomy, review_threshold=0.5,
                                   review_threshold_level1=0.6)
    assert model._review(0.597, 0.9) == (True, "一级分类把握不足（0.59 < 0.60）")
    assert model._review(0.9, 0.4999) == (True, "考核细目把握不足（0.49 < 0.50）")


def test_matched_terms_hold_no_bare_punctuation_or_redundant_characters() -> None:
    terms = ["电梯", "，", "梯", "物业", " ", "，物", "修", "坏 了", "。。"]
    assert _readable_terms(terms) == ["电梯", "物业", "修", "坏 了"]


def test_a_correction_to_an_unknown_subitem_says_so_without_file_rows(client: TestClient,
                                                                      ticket_id: int) -> None:
    response = client.post(f"/v1/tickets/{ticket_id}/corrections",
                           json={"subitem": "环境保护/不存在", "reviewer": "王芳"})
    detail = response.json()["detail"]
    assert response.status_code == 422 and "环境保护/不存在" in detail and "rows" not in detail


def test_a_ticket_received_in_the_future_is_refused(client: TestClient) -> None:
    response = client.post("/v1/tickets", json={"text": APPEAL, "received_at": "2099-01-01T09:00:00"})
    assert response.status_code == 422 and "in the future" in response.json()["detail"]
    today = client.post("/v1/tickets", json={"text": APPEAL, "received_at": "2026-12-01T09:00:00"})
    assert today.status_code == 201
