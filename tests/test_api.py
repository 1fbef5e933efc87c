"""The intake API as a client sees it: status codes, bodies, what is stored."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from triage.settings import Settings

APPEAL = ("关于小区电梯经常困人的投诉我住东城区和平街道锦绣花园小区5栋，电梯这个月已经坏了三次，"
          "上周六还把一位老人困在里面四十分钟，物业只说在等配件。联系电话13812345678。")


def test_health_names_the_loaded_model(client: TestClient) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["model_version"]


def test_ticket_is_masked_classified_and_stored(client: TestClient) -> None:
    response = client.post("/v1/tickets", json={"text": APPEAL, "channel": "phone"})
    assert response.status_code == 201
    body = response.json()
    assert "13812345678" not in body["text"] and "[手机号]" in body["text"]
    p = body["prediction"]
    assert p["subitem"].startswith(p["level1"] + "/")
    assert p["subitem"] == "城乡建设/物业管理/物业服务与公共设施维护"
    assert p["department"] and p["model_version"] == client.get("/healthz").json()["model_version"]
    assert len(p["top"]) == 3 and p["top"][0]["subitem"] == p["subitem"]
    stored = client.get(f"/v1/tickets/{body['id']}").json()
    assert stored["text"] == body["text"] and stored["prediction"]["subitem"] == p["subitem"]
    assert stored["corrections"] == []


def test_retry_with_client_id_stores_once(client: TestClient) -> None:
    first = client.post("/v1/tickets", json={"text": APPEAL, "client_id": "call-42"}).json()
    again = client.post("/v1/tickets", json={"text": APPEAL, "client_id": "call-42"}).json()
    assert again == first
    other = client.post("/v1/tickets", json={"text": APPEAL, "client_id": "call-43"}).json()
    assert other["id"] == first["id"] + 1


def test_a_client_id_reused_for_another_appeal_is_refused_not_swallowed(client: TestClient) -> None:
    first = client.post("/v1/tickets", json={"text": APPEAL, "client_id": "call-7"}).json()
    other = client.post("/v1/tickets", json={"text": "路灯坏了一个月没人修", "client_id": "call-7"})
    assert other.status_code == 409
    assert "call-7" in other.json()["detail"] and f"ticket {first['id']}" in other.json()["detail"]
    assert client.get(f"/v1/tickets/{first['id']}").json()["text"] == first["text"]
    # in a batch: all or nothing, the new appeal in it is not stored either
    batch = client.post("/v1/tickets/batch", json={"tickets": [
        {"text": "小区门口垃圾没人清运", "client_id": "call-8"},
        {"text": "路灯坏了一个月没人修", "client_id": "call-7"}]})
    assert batch.status_code == 409
    twice = client.post("/v1/tickets/batch", json={"tickets": [
        {"text": "小区门口垃圾没人清运", "client_id": "call-9"},
        {"text": "路灯坏了一个月没人修", "client_id": "call-9"}]})
    assert twice.status_code == 409 and "in this batch" in twice.json()["detail"]
    fresh = client.post("/v1/tickets", json={"text": "小区门口垃圾没人清运", "client_id": "call-8"})
    assert fresh.status_code == 201 and fresh.json()["id"] == first["id"] + 1


@pytest.mark.parametrize("body, words", [
    ({"text": ""}, "text must not be empty"),
    ({"text": "字" * 20_001}, "at most 20000"),
    ({}, "text is required"),
    ({"text": "噪音", "colour": "red"}, "colour is not a field"),
])
def test_bad_input_gets_a_sentence(client: TestClient, body: dict, words: str) -> None:
    response = client.post("/v1/tickets", json=body)
    assert response.status_code == 422
    assert words in response.json()["detail"]


def test_body_that_is_not_json_is_refused_plainly(client: TestClient) -> None:
    response = client.post("/v1/tickets", content="噪音".encode("gbk"),
                           headers={"content-type": "application/json"})
    assert response.status_code in (400, 422)
    assert "Traceback" not in response.text and response.json()["detail"]


def test_batch_is_all_or_nothing(client: TestClient) -> None:
    good = {"text": APPEAL}
    bad = client.post("/v1/tickets/batch", json={"tickets": [good, {"text": ""}]})
    assert bad.status_code == 422 and "tickets.1.text" in bad.json()["detail"]
    ok = client.post("/v1/tickets/batch", json={"tickets": [good, good]})
    assert ok.status_code == 201 and ok.json()["count"] == 2
    first_id = ok.json()["data"][0]["id"]
    assert first_id == 1  # the refused batch stored nothing before it


def test_batch_over_the_limit_is_refused(client: TestClient) -> None:
    response = client.post("/v1/tickets/batch", json={"tickets": [{"text": "噪音"}] * 1001})
    assert response.status_code == 422 and "at most 1000" in response.json()["detail"]


def test_unknown_ticket_is_404(client: TestClient) -> None:
    response = client.get("/v1/tickets/999")
    assert response.status_code == 404 and "no ticket 999" in response.json()["detail"]


def test_taxonomy_lists_the_tree(client: TestClient) -> None:
    body = client.get("/v1/taxonomy").json()
    assert len(body["version"]) == 16 and len(body["data"]) >= 8
    first = body["data"][0]
    assert {"name", "code", "description", "keywords", "department", "children"} <= set(first)


def test_service_runs_on_postgresql(trained_home: Path, tmp_path: Path) -> None:
    """With TRIAGE_DATABASE_URL naming PostgreSQL, tickets are stored there."""
    import os
    import uuid

    from sqlalchemy import create_engine, text

    url = os.environ.get("TRIAGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    admin_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        admin = create_engine(admin_url)
        with admin.connect():
            pass
    except Exception as exc:  # noqa: BLE001 - any connection failure means no server here
        pytest.skip(f"PostgreSQL not reachable at {url}: {exc}")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        home = tmp_path / "home"
        shutil.copytree(trained_home, home)
        sep = "&" if "?" in url else "?"
        settings = Settings(home=home, database_url=f"{url}{sep}options=-csearch_path%3D{schema}",
                            _env_file=None)
        with TestClient(create_app(settings)) as client:
            created = client.post("/v1/tickets", json={"text": APPEAL, "client_id": "pg-1"})
            assert created.status_code == 201
            again = client.post("/v1/tickets", json={"text": APPEAL, "client_id": "pg-1"})
            assert again.json() == created.json()
        with admin.connect() as conn:
            count = conn.execute(text(f'SELECT count(*) FROM "{schema}".tickets')).scalar()
            stored = conn.execute(text(f'SELECT text FROM "{schema}".tickets')).scalar()
        assert count == 1 and "[手机号]" in stored
        assert not (home / "triage.db").exists()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


STALLS = "东城区和平街道人民路菜市场门口天天有流动摊贩占道卖菜，早上七点堵得车过不去，城管来了就跑。"


def test_ticket_is_routed_by_the_responsibility_list_and_address(client: TestClient) -> None:
    p = client.post("/v1/tickets", json={"text": STALLS}).json()["prediction"]
    assert p["subitem"] == "城市管理/占道经营与流动摊贩/流动摊贩占道经营"
    assert p["department"] == "东城区城市管理和综合执法局"
    assert p["co_departments"] == ["东城区和平街道办事处"]
    assert (p["district"], p["street"]) == ("东城区", "和平街道")
    assert p["explanation"]["routing"]["source"] == "responsibility list"


def test_a_return_reroutes_around_the_unit_and_is_kept(client: TestClient) -> None:
    ticket = client.post("/v1/tickets", json={"text": STALLS}).json()
    first = ticket["prediction"]["department"]
    response = client.post(f"/v1/tickets/{ticket['id']}/return",
                           json={"unit": first, "reason": "摊贩在街道管辖的市场内，应由街道处理"})
    assert response.status_code == 201
    body = response.json()
    assert body["prediction"]["department"] != first
    assert body["prediction"]["subitem"] == ticket["prediction"]["subitem"]
    assert [r["unit"] for r in body["returns"]] == [first]
    stored = client.get(f"/v1/tickets/{ticket['id']}").json()
    assert stored["prediction"]["department"] == body["prediction"]["department"]
    assert stored["returns"][0]["reason"].startswith("摊贩")


def test_return_needs_a_unit_and_a_ticket(client: TestClient) -> None:
    assert client.post("/v1/tickets/999/return", json={"unit": "市教育局"}).status_code == 404
    ticket = client.post("/v1/tickets", json={"text": STALLS}).json()
    bad = client.post(f"/v1/tickets/{ticket['id']}/return", json={"unit": ""})
    assert bad.status_code == 422 and "unit must not be empty" in bad.json()["detail"]


def test_the_service_address_opens_the_review_queue(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == "/review"
    page = client.get("/")
    assert page.status_code == 200 and "<h1>复核队列</h1>" in page.text


def test_parallel_writers_all_land_on_sqlite(client: TestClient) -> None:
    """An intake system posting in parallel, and two staff saving at once, on the default SQLite:
    every request lands (before, 19 of 20 parallel posts failed with 'database is locked')."""
    from concurrent.futures import ThreadPoolExecutor

    def post(i: int) -> tuple[int, int | None]:
        response = client.post("/v1/tickets", json={"text": f"{APPEAL}（第{i}次）",
                                                    "client_id": f"parallel-{i}"})
        return response.status_code, response.json().get("id")

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(post, range(20)))
    assert [status for status, _ in answers] == [201] * 20
    assert len({ticket for _, ticket in answers}) == 20
    assert all(client.get(f"/v1/tickets/{ticket}").json()["prediction"] for _, ticket in answers)
    ticket = client.post("/v1/tickets", json={"text": APPEAL}).json()["id"]

    def feedback(i: int) -> int:
        return client.post(f"/v1/tickets/{ticket}/feedback",
                           json={"text": f"处理得很好，谢谢（{i}）"}).status_code

    with ThreadPoolExecutor(max_workers=5) as pool:
        assert list(pool.map(feedback, range(5))) == [201] * 5
