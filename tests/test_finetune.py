"""Fine-tuning the encoder on a tiny BERT: it learns, it loads, it stops on time and resumes."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
from conftest import DATASETS

from models.encoder import Encoder
from models.encoder_files import fingerprint
from training import finetune
from training.finetune import finetune_encoder, load_head
from training.finetune_checkpoint import CHECKPOINT_FILE
from training.finetune_schedule import Plan
from triage.errors import ArtifactError, LabelError
from triage.interrupts import uninterrupted
from triage.tables import read_table

CLASSES = ("城乡建设", "教育文体", "卫生计生", "公安政法")
# Settings that let a random tiny model learn 40 appeals in about a second on one thread.
FAST = {"max_chars": 48, "batch_size": 8, "grad_accum": 1, "lr": 1e-2, "head_lr": 1e-1,
        "threads": 1}


@pytest.fixture(scope="module")
def appeals() -> tuple[list[str], list[str]]:
    """40 demo appeals, 10 from each of four top-level classes, with their level-1 labels."""
    table = read_table(DATASETS / "demo_appeals.csv")
    texts: list[str] = []
    labels: list[str] = []
    for text, path in zip(table.column("text"), table.column("label"), strict=True):
        level1 = path.split("/")[0]
        if level1 in CLASSES and labels.count(level1) < 10:
            texts.append(text)
            labels.append(level1)
    assert len(texts) == 40
    return texts, labels


@pytest.fixture(scope="module")
def tuned(tiny_encoder: Path, appeals, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    texts, labels = appeals
    out = tmp_path_factory.mktemp("tuned") / "encoder"
    return out, finetune_encoder(tiny_encoder, texts, labels, out, epochs=20, **FAST)


def head_accuracy(directory: Path, texts: list[str], labels: list[str]) -> float:
    names, weight, bias = load_head(directory)
    vectors = Encoder(directory, backend="torch", max_chars=FAST["max_chars"], threads=1).encode(texts)
    predicted = [names[i] for i in np.argmax(vectors @ weight.T + bias, axis=1)]
    return float(np.mean([p == g for p, g in zip(predicted, labels, strict=True)]))


def stamp(directory: Path) -> dict:
    return json.loads((directory / "triage-encoder.json").read_text())


def test_fine_tuning_gets_the_training_appeals_right(tuned, appeals, tmp_path: Path,
                                                     tiny_encoder: Path) -> None:
    texts, labels = appeals
    untrained = tmp_path / "untrained"
    finetune_encoder(tiny_encoder, texts, labels, untrained, time_budget_min=0, **FAST)
    out, metrics = tuned
    before, after = head_accuracy(untrained, texts, labels), head_accuracy(out, texts, labels)
    assert before <= 0.5 < 0.9 <= after
    assert metrics["train_loss"] < np.log(len(CLASSES)) / 2
    assert metrics["steps"] == metrics["total_steps"] == 100
    assert not metrics["stopped_by_budget"] and metrics["resumed_from_step"] == 0


def test_the_output_is_an_encoder_directory_with_its_head(tuned, tiny_encoder: Path) -> None:
    out, _ = tuned
    written = stamp(out)
    assert written["finetuned_from"] == fingerprint(tiny_encoder)
    assert fingerprint(out) == written["tensor_sha256"] != fingerprint(tiny_encoder)
    assert written["labels"] == sorted(CLASSES) == load_head(out)[0]
    assert (written["steps"], written["epochs_done"], written["stopped_by_budget"]) == (100, 20, False)
    assert not out.with_name(out.name + ".partial").exists()


@pytest.mark.slow
def test_the_output_embeds_alike_on_torch_and_onnx(tuned, appeals) -> None:
    out, _ = tuned
    texts = appeals[0][:12]
    on_torch = Encoder(out, backend="torch", threads=1).encode(texts)
    on_onnx = Encoder(out, threads=1).encode(texts)  # exported to ONNX int8 on this first load
    assert (on_torch * on_onnx).sum(axis=1).min() >= 0.99


def test_no_time_left_still_writes_a_loadable_encoder(tiny_encoder: Path, appeals,
                                                      tmp_path: Path) -> None:
    base = tmp_path / "e5-like"
    shutil.copytree(tiny_encoder, base, ignore=shutil.ignore_patterns("onnx"))
    base_stamp = stamp(base) | {"query_prefix": "query: "}
    (base / "triage-encoder.json").write_text(json.dumps(base_stamp))
    out = tmp_path / "out"
    metrics = finetune_encoder(base, *appeals, out, time_budget_min=0, **FAST)
    assert metrics["stopped_by_budget"] and metrics["steps"] == 0
    assert stamp(out)["stopped_by_budget"] is True
    assert stamp(out)["query_prefix"] == "query: "
    encoder = Encoder(out, backend="torch", threads=1)
    assert encoder.prefix == "query: "
    same = Encoder(base, backend="torch", threads=1).encode(["路灯不亮了"])
    assert np.allclose(encoder.encode(["路灯不亮了"]), same, atol=1e-6)  # no step, same weights


def test_texts_are_prepared_as_the_encoder_prepares_them(tiny_encoder: Path) -> None:
    encoder = Encoder(tiny_encoder, backend="torch", prefix="query: ", max_chars=20, threads=1)
    texts = ["  路灯\n不亮了 ", "投诉：" + "情况说明" * 20 + "请尽快处理"]
    assert finetune._prepared(texts, "query: ", 20) == [encoder._prepare(t) for t in texts]


class StepClock:
    """A fake clock for the budget: each optimiser step takes one minute."""

    def __init__(self) -> None:
        self.now = 0.0
        self.messages: list[str] = []

    def __call__(self) -> float:
        return self.now

    def progress(self, message: str, fraction: float) -> None:
        self.messages.append(message)
        if message.startswith("fine-tuning the encoder: step"):
            self.now += 60.0


def test_a_stopped_job_resumes_where_it_stopped(tiny_encoder: Path, appeals, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    texts, labels = appeals
    settings = {**FAST, "epochs": 2, "checkpoint_every": 1, "checkpoint_dir": tmp_path / "ckpt"}
    clock = StepClock()
    monkeypatch.setattr(finetune, "_now", clock)
    first = finetune_encoder(tiny_encoder, texts, labels, tmp_path / "out", time_budget_min=2.5,
                             progress=clock.progress, **settings)
    assert (first["steps"], first["stopped_by_budget"]) == (3, True)
    assert stamp(tmp_path / "out")["steps"] == 3
    assert (tmp_path / "ckpt" / CHECKPOINT_FILE).is_file()
    monkeypatch.undo()

    messages: list[str] = []
    second = finetune_encoder(tiny_encoder, texts, labels, tmp_path / "out",
                              progress=lambda m, f: messages.append(m), **settings)
    assert second["resumed_from_step"] == 3 and second["steps_this_run"] == 7
    assert (second["steps"], second["stopped_by_budget"]) == (10, False)
    assert any(m.startswith("resuming from step 3/10") for m in messages)

    whole = finetune_encoder(tiny_encoder, texts, labels, tmp_path / "whole", epochs=2, **FAST)
    assert whole["steps"] == 10
    assert fingerprint(tmp_path / "out") == fingerprint(tmp_path / "whole")  # the same weights


@pytest.mark.parametrize("change", ["data", "settings"])
def test_a_checkpoint_of_another_job_is_not_resumed(change: str, tiny_encoder: Path, appeals,
                                                    tmp_path: Path) -> None:
    texts, labels = appeals
    settings = {**FAST, "epochs": 1, "checkpoint_dir": tmp_path / "ckpt"}
    done = finetune_encoder(tiny_encoder, texts, labels, tmp_path / "a", **settings)
    assert done["steps"] == 5 and (tmp_path / "ckpt" / CHECKPOINT_FILE).is_file()
    if change == "data":
        texts, labels = texts[1:], labels[1:]
    else:
        settings["epochs"] = 2
    messages: list[str] = []
    again = finetune_encoder(tiny_encoder, texts, labels, tmp_path / "b", time_budget_min=0,
                             progress=lambda m, f: messages.append(m), **settings)
    assert again["resumed_from_step"] == 0 and again["steps"] == 0
    expected = "other training data" if change == "data" else "other settings (epochs 1 → 2)"
    assert any(expected in m and "starting over" in m for m in messages)


@pytest.mark.parametrize(("texts", "labels", "says"), [
    ([], [], "empty"),
    (["路灯不亮了", "井盖丢了"], ["城市管理"], "2 texts and 1 labels"),
    (["路灯不亮了", "井盖丢了"], ["城市管理", "城市管理"], "at least two labels"),
    (["路灯不亮了", "  "], ["城市管理", "教育文体"], "rows 2 have an empty text"),
])
def test_unusable_labels_are_refused_saying_why(texts, labels, says, tiny_encoder: Path,
                                                tmp_path: Path) -> None:
    with pytest.raises(LabelError, match=says):
        finetune_encoder(tiny_encoder, texts, labels, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_base_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no config.json"):
        finetune_encoder(tmp_path, ["路灯不亮了", "学校乱收费"], ["城市管理", "教育文体"],
                         tmp_path / "out")


def test_an_output_directory_holding_other_files_is_left_alone(tiny_encoder: Path,
                                                               tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(ArtifactError, match="not a fine-tuned encoder"):
        finetune_encoder(tiny_encoder, ["路灯不亮了", "学校乱收费"], ["城市管理", "教育文体"],
                         tmp_path / "out")
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"


def test_a_budget_too_short_for_every_step_still_decays_the_learning_rate() -> None:
    plan = Plan(100)  # 10 warm-up steps, then down to zero at step 100
    assert plan(4) == pytest.approx(0.5) and plan(55) == pytest.approx(0.5)
    plan.replan(step=20, seconds_per_step=10.0, seconds_left=100.0)  # 10 more steps fit
    assert plan.end == 30
    assert plan(20) == pytest.approx(0.5) and plan(29) < 0.1 and plan(30) == 0.0
    plan.replan(step=20, seconds_per_step=1.0, seconds_left=1e6)  # time for all: the full plan
    assert plan.end == 100


def interrupt_after(step: int, messages: list[str]):
    """A progress callback that records messages and presses Ctrl-C once ``step`` is done."""

    def progress(message: str, fraction: float) -> None:
        messages.append(message)
        if message.startswith(f"fine-tuning the encoder: step {step}/"):
            raise KeyboardInterrupt

    return progress


def test_an_interrupted_job_keeps_its_steps_and_resumes(tiny_encoder: Path, appeals,
                                                        tmp_path: Path) -> None:
    texts, labels = appeals
    settings = {**FAST, "epochs": 2, "checkpoint_dir": tmp_path / "ckpt"}  # checkpoint_every 50
    messages: list[str] = []
    with pytest.raises(KeyboardInterrupt, match=r"^interrupted at step 4/10; run the same "
                                                r"command to resume$"):
        finetune_encoder(tiny_encoder, texts, labels, tmp_path / "out",
                         progress=interrupt_after(4, messages), **settings)
    assert (tmp_path / "ckpt" / CHECKPOINT_FILE).is_file()
    assert not (tmp_path / "out").exists()  # nothing half-written to use by mistake

    messages.clear()
    again = finetune_encoder(tiny_encoder, texts, labels, tmp_path / "out",
                             progress=lambda m, f: messages.append(m), **settings)
    assert any(m.startswith("resuming from step 4/10") for m in messages)
    assert (again["resumed_from_step"], again["steps_this_run"], again["steps"]) == (4, 6, 10)
    whole = finetune_encoder(tiny_encoder, texts, labels, tmp_path / "whole", epochs=2, **FAST)
    assert fingerprint(tmp_path / "out") == fingerprint(Path(whole["out_dir"]))  # same weights


def test_an_interrupt_during_the_weight_update_lets_the_step_finish(sigint: object) -> None:
    """Ctrl-C (or SIGTERM passed on as one) in the middle of a step stops after it; also in a
    process that ignores Ctrl-C, where only a SIGTERM can be what arrived."""
    done: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        with uninterrupted():
            signal.raise_signal(signal.SIGINT)  # Ctrl-C while the weights are half updated
            done.append("the update finished")
    assert done == ["the update finished"]


@pytest.mark.parametrize("minutes", [-1.0, float("nan"), float("inf")])
def test_a_time_budget_that_is_not_minutes_is_refused(minutes: float, tiny_encoder: Path,
                                                      tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"time_budget_min is minutes, 0 or more; got {minutes}"):
        finetune_encoder(tiny_encoder, ["路灯不亮了", "学校乱收费"], ["城市管理", "教育文体"],
                         tmp_path / "out", time_budget_min=minutes)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("total", "warmup"), [(14, 5), (4, 2), (1, 1), (100, 10), (335, 33)])
def test_a_short_plan_still_warms_up(total: int, warmup: int) -> None:
    # 420 demo appeals are 14 steps: a 10% warm-up of one step put Adam's first, full-size
    # update at the peak rate, and the loss rose from 2.30 (chance) to 4.9
    plan = Plan(total)
    assert plan.warmup == warmup
    assert [plan(step) for step in range(warmup)] == pytest.approx(
        [(step + 1) / warmup for step in range(warmup)])
