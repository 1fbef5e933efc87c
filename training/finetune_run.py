"""The state a fine-tuning job carries between its steps, shared by the fine-tuning modules.

``Run`` is what a job has done and must do (and what a checkpoint restores); ``Job`` is the
objects one training call works with. Used by ``training.finetune``, its batch schedule
(``training.finetune_schedule``) and its checkpoints (``training.finetune_checkpoint``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Progress = Callable[[str, float], None]


@dataclass
class Run:
    """What a job carries between its steps (and what a checkpoint restores)."""

    settings: dict[str, Any]
    labels: list[str]
    per_epoch: int  # micro-batches per epoch
    total_micro: int
    total_steps: int
    step: int = 0
    micro: int = 0  # micro-batches consumed, always at an optimiser-step boundary
    seconds_before: float = 0.0  # training time of earlier (resumed) calls
    resumed_from: int = 0
    stopped: bool = False  # by the time budget
    seconds: float = 0.0  # training time so far, earlier calls included
    losses: list[float] = field(default_factory=list)  # per optimiser step, this call only


@dataclass
class Job:
    """The objects one training call works with."""

    model: Any
    optimizer: Any
    scheduler: Any
    run: Run
    started: float
    checkpoint_dir: Path | None
    say: Progress
    saved_step: int = -1
