"""The retraining gate is fair: it compares like with like, never scores a candidate on appeals it
was trained on, and says what it compared with what."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import DATASETS
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli import app
from triage.tables import read_table

runner = CliRunner()


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout[result.stdout.index("{"):])


def _train_own_file(tmp_path: Path) -> str:
    """`triage train` on a centre's own file (the demo appeals under another name)."""
    own = tmp_path / "my_appeals.csv"
    shutil.copy(DATASETS / "demo_appeals.csv", own)
    return _json(runner.invoke(app, [
        "train", "--data", str(own), "--text-column", "text", "--label-column", "label",
        "--taxonomy", str(DATASETS / "demo_taxonomy.csv"), "--activate"]))["version"]


def test_a_centre_model_is_gated_against_a_control_not_its_own_training_rows(
        home: Path, tmp_path: Path) -> None:
    first = _train_own_file(tmp_path)
    report = _json(runner.invoke(app, ["retrain"]))
    assert report["previous"] == first and report["n_corrections"] == 0
    assert report["promoted"], report["reason"]
    # The active model was trained on the evaluation tenth: it is not the baseline.
    assert report["compared_with"] == "control"
    assert "trained on 36 of the 36 evaluation appeals" in report["comparison"]
    evaluation = report["evaluation"]
    assert evaluation["n"] == 36 and "tenth of the base data" in evaluation["source"]
    assert report["frozen"]["active"]["level1_macro_f1"] == 1.0  # shown, but not compared with
    candidate, control = report["frozen"]["candidate"], report["frozen"]["control"]
    assert candidate == control and candidate["n"] == 36 and candidate["level1_macro_f1"] < 1.0
    figure = f"{candidate['level1_macro_f1']:.4f}"
    assert f"level1_macro_f1 {figure} vs {figure}" in report["reason"]
    assert "candidate vs control" in report["reason"]
    saved = json.loads((home / "models" / report["candidate"] / "retrain_report.json")
                       .read_text(encoding="utf-8"))
    assert saved["compared_with"] == "control" and saved["frozen"]["control"] == control
    # The promoted candidate never saw the evaluation tenth: the next gate compares with it.
    again = _json(runner.invoke(app, ["retrain"]))
    assert again["previous"] == report["candidate"] and again["compared_with"] == "active"
    assert again["frozen"]["active"] == candidate and "control" not in again["frozen"]
    assert again["promoted"], again["reason"]


def test_harmful_corrections_are_caught_against_the_control(home: Path, tmp_path: Path) -> None:
    first = _train_own_file(tmp_path)
    # Staff "correct" many clear appeals into one wrong category: the candidate gets worse.
    texts = ["幼儿园突然涨保育费，每月多收八百元", "公交车司机开车太猛，乘客摔倒",
             "楼下烧烤店油烟太大熏得开不了窗", "工地拖欠农民工工资三个月", "小区电梯经常困人"]
    _correct(home, [(f"{text}（第{i}次反映）", "公安政法/社会治安/涉黄涉赌举报")
                    for i, text in enumerate(texts * 8)])
    result = runner.invoke(app, ["retrain"])
    report = _json(result)
    assert "training the control on the same 384 base appeals" in result.stderr
    assert report["compared_with"] == "control" and report["n_corrections"] == 40
    assert report["n_base"] == 384  # 420 appeals less the 36 of the evaluation tenth
    assert "the same 384 base appeals without the corrections" in report["comparison"]
    candidate, control = report["frozen"]["candidate"], report["frozen"]["control"]
    assert candidate["level1_macro_f1"] < control["level1_macro_f1"]
    assert not report["promoted"]
    assert (f"level1_macro_f1 fell from {control['level1_macro_f1']:.4f} (control) to "
            f"{candidate['level1_macro_f1']:.4f} (candidate)") in report["reason"]
    assert "kept as a candidate" in report["reason"]
    rows = runner.invoke(app, ["models", "list"]).stdout
    assert f"*\t{first}" in rows  # the active model stays


def test_corrections_of_evaluation_appeals_are_set_aside(client: TestClient) -> None:
    test = read_table(DATASETS / "demo_test.csv")
    pairs = list(zip(test.column("text"), test.column("label"), strict=True))[:12]
    roots = client.get("/v1/taxonomy").json()["data"]
    wrong = "公安政法/社会治安/涉黄涉赌举报"  # one reviewer disagrees with the set's label
    for n, (text, label) in enumerate(pairs):
        ticket = client.post("/v1/tickets", json={"text": text}).json()
        path = wrong if n == 0 else _full_path(roots, label)
        created = client.post(f"/v1/tickets/{ticket['id']}/corrections",
                              json={"subitem": path, "reviewer": "王芳"})
        assert created.status_code == 201, created.text
    job = client.post("/v1/models/retrain").json()
    from test_retrain import _wait

    report = _wait(client, job["id"])["result"]
    assert report["n_corrections"] == 0 and report["set_aside"]["n"] == 12
    assert report["set_aside"]["label_differs"] == 1
    assert "check the evaluation file" in report["set_aside"]["why"]
    assert report["compared_with"] == "active"
    assert report["frozen"]["candidate"] == report["frozen"]["active"]  # nothing learnt from them
    stored = client.get(f"/v1/tickets/{ticket['id']}").json()
    assert stored["corrections"], "a set-aside correction stays stored"


def _correct(home: Path, corrections: list[tuple[str, str]]) -> None:
    """Staff correct tickets through the service on ``home``."""
    from api.app import create_app
    from triage.settings import Settings

    with TestClient(create_app(Settings(home=home, _env_file=None))) as client:
        for text, subitem in corrections:
            ticket = client.post("/v1/tickets", json={"text": text}).json()
            created = client.post(f"/v1/tickets/{ticket['id']}/corrections",
                                  json={"subitem": subitem, "reviewer": "王芳"})
            assert created.status_code == 201, created.text


def _full_path(roots: list[dict], label: str) -> str:
    """The full path of a label that may be a bare node name."""
    if "/" in label:
        return label
    stack = [(node, node["name"]) for node in roots]
    while stack:
        node, path = stack.pop(0)
        if node["name"] == label:
            return path
        stack.extend((child, f"{path}/{child['name']}") for child in node.get("children", []))
    raise AssertionError(label)


def test_a_fine_tuned_model_is_gated_against_a_control_sharing_its_encoder(
        tiny_encoder_env: Path, tmp_path: Path) -> None:
    own = tmp_path / "my_appeals.csv"
    shutil.copy(DATASETS / "demo_appeals.csv", own)
    _json(runner.invoke(app, [
        "train", "--data", str(own), "--text-column", "text", "--label-column", "label",
        "--taxonomy", str(DATASETS / "demo_taxonomy.csv"), "--preset", "accurate",
        "--time-budget", "0.05", "--holdout", "0", "--activate"]))
    _correct(tmp_path / "home", [("公交车司机开车太猛，急刹车乘客摔倒", "交通运输/公共交通/公交司乘服务")])
    report = _json(runner.invoke(app, ["retrain", "--tolerance", "1.0"]))
    assert report["compared_with"] == "control" and report["n_corrections"] == 1
    control = report["frozen"]["control"]
    assert control["n"] == 36 and 0.0 <= control["level1_macro_f1"] <= 1.0
    assert report["promoted"]  # within the tolerance of 1.0
    # the fine-tuned encoder read the evaluation tenth; both sides share it, and the report says so
    assert "read 36 of the evaluation appeals while fine-tuning" in report["comparison"]
