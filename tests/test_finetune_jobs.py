"""Fine-tuning as `triage train --preset accurate` runs it: the budget, Ctrl-C, a budget too short
for one step, and the checkpoint left behind (tiny BERT, through the CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from training import finetune
from training.jobs import finetune_budget
from triage.errors import TriageError
from triage.settings import PROJECT_ROOT, get_settings

DATASETS = PROJECT_ROOT / "datasets"
runner = CliRunner()


def train_accurate(*extra: str):
    return runner.invoke(app, [
        "train", "--data", str(DATASETS / "demo_appeals.csv"), "--text-column", "text",
        "--label-column", "label", "--taxonomy", str(DATASETS / "demo_taxonomy.csv"),
        "--preset", "accurate", "--holdout", "0", *extra])


def checkpoints() -> list[Path]:
    return sorted((get_settings().home / "checkpoints").glob("*/finetune-checkpoint.pt"))


def said(stream: str) -> str:
    """What the CLI printed, with the console's line wrapping undone."""
    return " ".join(stream.split())


def manifest(version: Path) -> dict:
    return json.loads((version / "manifest.json").read_text())


@pytest.mark.parametrize(("budget", "shown"), [("-1", "-1"), ("nan", "nan"), ("inf", "inf")])
def test_a_time_budget_that_is_not_minutes_is_refused_in_one_line(
        budget: str, shown: str, tiny_encoder_env: Path, tmp_path: Path) -> None:
    result = train_accurate("--time-budget", budget, "--output", str(tmp_path / "v"))
    assert result.exit_code == 2
    assert result.output.strip() == f"error: --time-budget is minutes, 0 or more; got {shown}"
    assert not (tmp_path / "v").exists()


def test_an_endless_finetune_minutes_setting_is_refused(tiny_encoder_env: Path) -> None:
    # the settings refuse TRIAGE_FINETUNE_MINUTES=inf when read; one built in code is checked too
    settings = get_settings().model_copy(update={"finetune_minutes": float("inf")})
    with pytest.raises(TriageError, match="^TRIAGE_FINETUNE_MINUTES is minutes, 0 or more; "
                                          "got inf$"):
        finetune_budget("accurate", None, settings)


def test_ctrl_c_keeps_the_steps_done_and_the_same_command_resumes(
        tiny_encoder_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_step = finetune._step

    def step_then_ctrl_c(job, group) -> None:
        if job.run.step == 3:
            raise KeyboardInterrupt  # Ctrl-C during step 4
        real_step(job, group)

    monkeypatch.setattr(finetune, "_step", step_then_ctrl_c)
    command = ("--time-budget", "5", "--output", str(tmp_path / "v"))
    result = train_accurate(*command)
    assert result.exit_code == 130  # the shell's code for Ctrl-C, as scripts expect
    assert "error: interrupted at step 3/14; run the same command to resume" in said(result.output)
    assert not (tmp_path / "v").exists() and len(checkpoints()) == 1

    monkeypatch.undo()
    result = train_accurate(*command)
    assert result.exit_code == 0, result.output
    assert "resuming from step 3/14" in said(result.stderr)
    assert manifest(tmp_path / "v")["metrics"]["finetune"]["steps"] == 14


def test_a_budget_too_short_for_one_step_uses_the_encoder_as_it_is(
        tiny_encoder_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(finetune, "_over_budget", lambda budget, started: True)
    result = train_accurate("--time-budget", "0.01", "--output", str(tmp_path / "v"))
    assert result.exit_code == 0, result.output
    assert said(result.stderr).count("no fine-tuning step fitted in the time budget (0.01 min): "
                               "using the encoder as it is") == 1
    written = manifest(tmp_path / "v")
    assert written["encoder"]["source"] == str(tiny_encoder_env)  # as --time-budget 0 gives
    assert not (tmp_path / "v" / "encoder").exists()  # no copy of unchanged weights
    assert "finetune" not in written["metrics"]


def test_a_finished_fine_tuning_leaves_no_checkpoint_behind(tiny_encoder_env: Path,
                                                            tmp_path: Path) -> None:
    result = train_accurate("--time-budget", "5", "--output", str(tmp_path / "v"))
    assert result.exit_code == 0, result.output
    assert manifest(tmp_path / "v")["metrics"]["finetune"]["stopped_by_budget"] is False
    assert checkpoints() == []


def test_a_fine_tuning_the_budget_stopped_keeps_its_checkpoint(
        tiny_encoder_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    steps_allowed = iter([False, False])
    monkeypatch.setattr(finetune, "_over_budget",
                        lambda budget, started: next(steps_allowed, True))
    result = train_accurate("--time-budget", "5", "--output", str(tmp_path / "v"))
    assert result.exit_code == 0, result.output
    tuned = manifest(tmp_path / "v")["metrics"]["finetune"]
    assert (tuned["steps"], tuned["stopped_by_budget"]) == (2, True)
    assert len(checkpoints()) == 1  # the next run continues from step 2


def test_sigterm_stops_training_as_ctrl_c_does(
        tiny_encoder_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        sigint: object) -> None:
    """A scheduler stopping a nightly training (SIGTERM) keeps the steps done and leaves no
    scratch behind; before, the process died at once: no checkpoint of the last steps, and its
    scratch directory stayed in TRIAGE_HOME/tmp. Also when the process ignores Ctrl-C, as a job
    a script starts with ``&`` does: there SIGTERM, passed on as SIGINT, once did nothing."""
    import os
    import signal

    real_step = finetune._step

    def step_then_sigterm(job, group) -> None:
        if job.run.step == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        real_step(job, group)

    monkeypatch.setattr(finetune, "_step", step_then_sigterm)
    before = signal.getsignal(signal.SIGTERM)
    result = train_accurate("--time-budget", "5", "--output", str(tmp_path / "v"))
    assert result.exit_code == 130
    assert "error: interrupted at step" in said(result.output)
    assert len(checkpoints()) == 1 and not (tmp_path / "v").exists()
    scratch = get_settings().home / "tmp"
    assert not scratch.exists() or not any(scratch.iterdir())
    assert signal.getsignal(signal.SIGTERM) is before  # the command put the handler back
    assert signal.getsignal(signal.SIGINT) is sigint
