"""The correction memory: each field of a ticket's correction kept until corrected again, and no
claim of a correction when nothing would be applied."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from fastapi.testclient import TestClient

from models.memory import CorrectionMemory

SMOKE = "我家楼下的烧烤摊每天晚上油烟很大，窗户都不敢开，衣服上全是烟味。西城区文昌街道锦绣社区"
TWIN_1 = "我家楼下那个烧烤摊天天晚上油烟特别大，窗户都不敢开，晒的衣服全是烟味。西城区文昌街道锦绣社区"
TWIN_2 = "楼下烧烤摊每天晚上油烟太大了，窗户不敢开，衣服上都是烟味。西城区文昌街道锦绣社区"
CITY = "城市管理/市容环境卫生"
BUREAU = "西城区城市管理和综合执法局"


def _post(client: TestClient, text: str) -> dict:
    return client.post("/v1/tickets", json={"text": text}).json()["prediction"]


def _correct(client: TestClient, ticket_id: int, **fields: str) -> None:
    response = client.post(f"/v1/tickets/{ticket_id}/corrections", json=fields)
    assert response.status_code == 201, response.text


def test_a_department_correction_keeps_the_earlier_subitem_correction(client: TestClient) -> None:
    first = client.post("/v1/tickets", json={"text": SMOKE}).json()
    assert not first["prediction"]["subitem"].startswith(CITY + "/")  # the model's answer differs
    _correct(client, first["id"], subitem=CITY, reviewer="甲")
    assert _post(client, TWIN_1)["subitem"].startswith(CITY + "/")
    _correct(client, first["id"], department=BUREAU, reviewer="乙")
    again = _post(client, TWIN_2)
    assert again["subitem"].startswith(CITY + "/") and again["department"] == BUREAU
    memory = again["explanation"]["memory"]
    assert (memory["ticket_id"], memory["subitem"], memory["department"]) == (
        first["id"], CITY, BUREAU)


def _memory(vectors: dict[str, list[float]]) -> CorrectionMemory:
    return CorrectionMemory(featurize=lambda texts: sp.csr_matrix(
        np.array([vectors[t] for t in texts], dtype=float)), threshold=0.5)


def test_a_later_correction_of_one_field_replaces_only_that_field() -> None:
    memory = _memory({"a": [1, 0], "b": [0.9, 0.1]})
    memory.add(1, "a", subitem="城市管理/市容环境卫生", department=None)
    memory.add(1, "a", subitem=None, department=BUREAU)
    memory.add(1, "a", subitem="城市管理/园林绿化", department=None)
    recall = memory.recall(["b"])[0]
    assert recall is not None
    assert (recall.subitem, recall.department) == ("城市管理/园林绿化", BUREAU)


def test_a_correction_with_nothing_to_apply_is_not_recalled() -> None:
    memory = _memory({"a": [1, 0], "b": [0, 1], "a2": [0.9, 0.1]})
    memory.add(1, "a", subitem=None, department=None)  # e.g. its sub-item left the taxonomy
    memory.add(2, "b", subitem=None, department=BUREAU)
    assert len(memory) == 1
    assert memory.recall(["a2"]) == [None]


def test_after_a_taxonomy_switch_only_what_still_applies_is_recalled(loaded_demo,
                                                                     tmp_path) -> None:
    """A sub-item the active taxonomy no longer has is dropped, not replaced by the older
    correction it superseded; a ticket left with nothing to apply is not recalled at all."""
    from datetime import UTC, datetime

    from triage import store
    from triage.review import load_memory

    engine = store.make_engine(f"sqlite:///{tmp_path / 'memory.db'}")
    store.migrate(engine)
    gone = "城市管理/已撤销的细目"
    assert gone not in loaded_demo.taxonomy
    with store.session_scope(store.make_session_factory(engine)) as session:
        both = store.add_ticket(session, text=SMOKE, title=None, channel=None, client_id=None,
                                received_at=datetime.now(UTC))
        lost = store.add_ticket(session, text="小区门口的共享单车堆成山，堵住了盲道和消防通道。",
                                title=None, channel=None, client_id=None,
                                received_at=datetime.now(UTC))
        for ticket, values in ((both, {"subitem": CITY}), (both, {"department": BUREAU}),
                               (both, {"subitem": gone}), (lost, {"subitem": gone})):
            store.add_correction(session, ticket=ticket, values={
                **values, "model_version": loaded_demo.version, "reviewer": "甲"})
        memory = load_memory(session=session, loaded=loaded_demo, threshold=0.5)
    engine.dispose()
    assert len(memory) == 1
    recall = memory.recall([TWIN_1])[0]
    assert recall is not None
    assert (recall.ticket_id, recall.subitem, recall.department) == (both.id, None, BUREAU)
    assert memory.recall(["小区门口共享单车堆成了山，把盲道和消防通道都堵住了。"]) == [None]
