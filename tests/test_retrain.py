"""Retraining from corrections: gated, promoted without a restart, and rolled back."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

STALL = "西城区文昌街道文昌路夜市的烧烤摊每天摆到人行道上，烟熏火燎，晚上一点还在吆喝，行人只能走机动车道。"
STALLS = "城市管理/占道经营与流动摊贩/流动摊贩占道经营"


def _wait(client: TestClient, job_id: str) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in {"done", "failed"}:
            return job
        time.sleep(0.2)
    raise AssertionError("the retraining job did not finish in 120 s")


def test_retrain_learns_corrections_and_serving_switches(client: TestClient) -> None:
    first = client.get("/healthz").json()["model_version"]
    ticket = client.post("/v1/tickets", json={"text": STALL}).json()
    client.post(f"/v1/tickets/{ticket['id']}/corrections",
                json={"subitem": STALLS, "reviewer": "王芳"})
    started = client.post("/v1/models/retrain")
    assert started.status_code == 202
    job = _wait(client, started.json()["id"])
    assert job["status"] == "done", job
    report = job["result"]
    assert report["previous"] == first and report["n_corrections"] == 1
    assert set(report["frozen"]) == {"candidate", "active"}
    assert report["frozen"]["candidate"]["n"] == 70  # the demo test set, never trained on
    # the default model never saw the demo test set: the gate compares with it directly
    assert report["compared_with"] == "active" and "demo_test.csv" in report["comparison"]
    assert report["promoted"], report["reason"]
    assert client.get("/healthz").json()["model_version"] == report["candidate"]
    listing = client.get("/v1/models").json()
    assert listing["active"] == report["candidate"] and listing["count"] == 2
    scores = {m["version"]: m["score"] for m in listing["data"]}
    assert scores[first]["level1_macro_f1"] == report["frozen"]["active"]["level1_macro_f1"]
    assert scores[report["candidate"]] == {
        "level1_macro_f1": report["frozen"]["candidate"]["level1_macro_f1"],
        "measured_on": "frozen evaluation set: demo_test.csv (70 appeals)"}
    back = client.post(f"/v1/models/{first}/activate")
    assert back.status_code == 200
    assert client.get("/healthz").json()["model_version"] == first
    # the candidate, no longer serving, can be deleted; the active version cannot
    refused = client.delete(f"/v1/models/{first}")
    assert refused.status_code == 409 and "is active" in refused.json()["detail"]
    deleted = client.delete(f"/v1/models/{report['candidate']}")
    assert deleted.status_code == 200 and deleted.json()["freed_bytes"] > 0
    assert [m["version"] for m in client.get("/v1/models").json()["data"]] == [first]
    assert client.delete(f"/v1/models/{report['candidate']}").status_code == 404
    assert client.post("/v1/tickets", json={"text": STALL}).status_code == 201


def test_a_worse_candidate_is_kept_not_promoted(client: TestClient) -> None:
    first = client.get("/healthz").json()["model_version"]
    # Staff "correct" many clear appeals into one wrong category: the candidate gets worse.
    texts = ["幼儿园突然涨保育费，每月多收八百元", "公交车司机开车太猛，乘客摔倒",
             "楼下烧烤店油烟太大熏得开不了窗", "工地拖欠农民工工资三个月", "小区电梯经常困人"]
    for i, text in enumerate(texts * 8):
        ticket = client.post("/v1/tickets", json={"text": f"{text}（第{i}次反映）"}).json()
        client.post(f"/v1/tickets/{ticket['id']}/corrections",
                    json={"subitem": "公安政法/社会治安/涉黄涉赌举报", "reviewer": "测试"})
    job = _wait(client, client.post("/v1/models/retrain").json()["id"])
    report = job["result"]
    assert job["status"] == "done" and not report["promoted"]
    assert "kept as a candidate" in report["reason"]
    assert client.get("/healthz").json()["model_version"] == first


def test_unknown_job_and_version(client: TestClient) -> None:
    assert client.get("/v1/jobs/nope").status_code == 404
    response = client.post("/v1/models/nope/activate")
    assert response.status_code == 404 and "nope" in response.json()["detail"]


def test_the_version_a_running_retrain_started_from_cannot_be_deleted(
    client: TestClient, monkeypatch,
) -> None:
    """A rollback while a retraining runs makes its parent inactive, but the retraining still
    reads it (an accurate parent's fine-tuned encoder is copied into the candidate when it is
    written): until the job ends the parent is refused by delete and kept by prune."""
    import training.retrain as retraining
    from models.artifacts import Registry
    from triage.errors import ArtifactError

    first = client.get("/healthz").json()["model_version"]
    job = _wait(client, client.post("/v1/models/retrain").json()["id"])
    assert job["status"] == "done", job
    other = job["result"]["candidate"]
    assert client.post(f"/v1/models/{first}/activate").status_code == 200
    seen: dict[str, object] = {}
    train = retraining._train_candidate

    def rollback_and_delete(current, registry: Registry, *args, **kwargs):
        registry.activate(other)  # an administrator rolls over while the job runs
        try:
            registry.delete(current.version)
            seen["delete"] = "deleted"
        except ArtifactError as exc:
            seen["delete"] = exc.message
        seen["pruned"] = [v for v, _ in registry.prune(0)]
        return train(current, registry, *args, **kwargs)

    monkeypatch.setattr(retraining, "_train_candidate", rollback_and_delete)
    job = _wait(client, client.post("/v1/models/retrain").json()["id"])
    assert job["status"] == "done", job
    assert "a retraining started from it is running" in str(seen["delete"])
    assert seen["pruned"] == []
    # the job is over: the parent is an ordinary inactive version again
    assert client.delete(f"/v1/models/{first}").status_code == 200


def test_a_rollback_while_a_retrain_runs_is_not_overridden_by_its_candidate(
    client: TestClient, monkeypatch,
) -> None:
    """An administrator who activates another version while a retraining runs has the last word:
    the candidate passes the gate but is kept, not activated, and the report says why."""
    import training.retrain as retraining
    from models.artifacts import Registry

    first = client.get("/healthz").json()["model_version"]
    job = _wait(client, client.post("/v1/models/retrain").json()["id"])
    assert job["status"] == "done" and job["result"]["promoted"], job
    second = job["result"]["candidate"]
    train = retraining._train_candidate

    def rollback_meanwhile(current, registry: Registry, *args, **kwargs):
        registry.activate(first)  # the rollback, from another request, while the job trains
        return train(current, registry, *args, **kwargs)

    monkeypatch.setattr(retraining, "_train_candidate", rollback_meanwhile)
    job = _wait(client, client.post("/v1/models/retrain").json()["id"])
    assert job["status"] == "done", job
    result = job["result"]
    assert result["previous"] == second and not result["promoted"]
    assert f"{first} was activated while this retraining ran" in result["reason"]
    assert client.get("/v1/models").json()["active"] == first
    assert client.get("/healthz").json()["model_version"] == first
