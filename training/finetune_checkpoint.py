"""Checkpoints of a fine-tuning job: save where it is, and resume from there.

A checkpoint holds only what trains (not the frozen embeddings), plus the optimiser, the
schedule, the position in the (seeded, length-bucketed) batch stream and a hash of the data and
settings, so an interrupted or budget-stopped job continues where it stopped; a checkpoint of
other data or settings is ignored, saying why. A checkpoint only serves to resume an unfinished
job: whoever stores the job's output removes it then (``remove_checkpoint``). A step's weight
update holds Ctrl-C back until it is complete (``triage.interrupts.uninterrupted``), so a checkpoint saved on an
interrupt is never a half-applied step.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch

from training.finetune_run import Job
from triage.errors import ArtifactError

CHECKPOINT_FILE = "finetune-checkpoint.pt"


def save_checkpoint(job: Job, seconds: float) -> None:
    """Write what trains and where the job is, atomically (a temporary file, then a rename).

    ``seconds`` is the job's training time so far, earlier (resumed) calls included.
    """
    if job.checkpoint_dir is None:
        return
    run, model = job.run, job.model
    job.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    state = {
        "trainable": {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad},
        "optimizer": job.optimizer.state_dict(), "scheduler": job.scheduler.state_dict(),
        "step": run.step, "micro": run.micro, "epoch": run.micro // run.per_epoch,
        "batch_in_epoch": run.micro % run.per_epoch, "labels": run.labels,
        "settings": run.settings, "rng": torch.get_rng_state(),
        "seconds": seconds,
    }
    tmp = job.checkpoint_dir / (CHECKPOINT_FILE + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, job.checkpoint_dir / CHECKPOINT_FILE)
    job.saved_step = run.step


def resume(job: Job) -> None:
    """Continue from the saved checkpoint when it was made by the same job (data and settings)."""
    if job.checkpoint_dir is None or not (job.checkpoint_dir / CHECKPOINT_FILE).is_file():
        return
    file, run = job.checkpoint_dir / CHECKPOINT_FILE, job.run
    try:
        saved = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - an unreadable checkpoint only costs the head start
        job.say(f"the checkpoint {file} cannot be read ({exc}); starting over", 0.0)
        return
    differs = _difference(saved.get("settings", {}), run.settings)
    if differs:
        job.say(f"the checkpoint {file} was made from {differs}; starting over", 0.0)
        return
    missing, unexpected = job.model.load_state_dict(saved["trainable"], strict=False)
    trainable = {n for n, p in job.model.named_parameters() if p.requires_grad}
    if unexpected or trainable & set(missing):
        raise ArtifactError(f"the checkpoint {file} does not fit this model (unexpected "
                            f"{unexpected[:3]}, missing {sorted(trainable & set(missing))[:3]}); "
                            f"give another checkpoint_dir")
    job.optimizer.load_state_dict(saved["optimizer"])
    job.scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["rng"])
    run.step = run.resumed_from = job.saved_step = int(saved["step"])
    run.micro, run.seconds_before = int(saved["micro"]), float(saved["seconds"])
    job.say(f"resuming from step {run.step}/{run.total_steps} (checkpoint {file})",
            run.step / run.total_steps)


def remove_checkpoint(checkpoint_dir: Path) -> None:
    """Delete the checkpoint in ``checkpoint_dir`` (and the directory, if nothing else is left)."""
    for name in (CHECKPOINT_FILE, CHECKPOINT_FILE + ".tmp"):
        (checkpoint_dir / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # not empty, or already gone: leave it
        checkpoint_dir.rmdir()


def _difference(saved: dict, current: dict) -> str:
    """'' when a checkpoint belongs to this job, else what differs, for a person to read."""
    if saved.get("data_sha256") != current["data_sha256"]:
        return "other training data (another data hash)"
    if saved.get("base") != current["base"]:
        return "another base encoder"
    changed = [f"{k} {saved.get(k)!r} → {v!r}" for k, v in current.items() if saved.get(k) != v]
    return f"other settings ({', '.join(changed)})" if changed else ""
