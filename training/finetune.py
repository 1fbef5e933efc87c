"""Fine-tune the sentence encoder on labelled appeals, on a CPU, within a time budget, resumably.

The model is the transformers encoder of ``base_dir``, mean pooled and L2-normalised exactly as
``models.encoder.Encoder.encode`` returns it, then dropout and a linear head over the labels:
``logits = SCALE · (e @ W.T) + b`` with ``e`` the unit-length embedding and the fixed scale 20 (a
unit vector's logits would otherwise be too flat to train). So ``softmax(Encoder.encode(texts) @
W.T + b)`` with ``load_head``'s ``W`` (already multiplied by the scale) is the head's prediction.

The embedding layer is frozen by default: in multilingual-e5 it holds 96M of the 118M parameters
(the XLM-R vocabulary, most of it never seen in appeals), so leaving it out makes steps cheaper,
checkpoints three times smaller and keeps the rare tokens' vectors as pretrained. The output is a
new encoder directory that ``Encoder`` loads (torch, or ONNX exported on first load), with the
head beside it.

This module checks the data, builds the model, runs the training loop under the time budget and
writes the output; the batch stream and learning-rate plan are ``training.finetune_schedule``'s,
saving and resuming checkpoints ``training.finetune_checkpoint``'s, the state they share
``training.finetune_run``'s.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the usual name

from models.artifacts import data_hash
from models.e5_rebuild import STAMP, tensor_digest, write_sentence_transformers_config
from models.encoder import head_tail
from models.encoder_files import fingerprint, query_prefix
from training.finetune_checkpoint import resume, save_checkpoint
from training.finetune_run import Job, Progress, Run
from training.finetune_schedule import Plan, micro_batches, tensors
from triage.errors import ArtifactError, LabelError
from triage.interrupts import uninterrupted

SCALE = 20.0
HEAD_FILE = "classifier_head.pt"
REPLAN_AFTER, REPLAN_EVERY = 5, 5  # under a budget: re-plan the decay every 5 steps of a call
_now = time.monotonic  # the budget's clock (tests replace it)


class FinetuneInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a fine-tuning job; the message says where and whether it can resume."""


def finetune_encoder(
    base_dir: Path, texts: Sequence[str], labels: Sequence[str], out_dir: Path, *,
    max_length: int = 128, max_chars: int = 200, epochs: float = 1.0, batch_size: int = 16,
    grad_accum: int = 2, lr: float = 5e-5, head_lr: float = 1e-2, freeze_embeddings: bool = True,
    time_budget_min: float | None = None, checkpoint_dir: Path | None = None,
    checkpoint_every: int = 50, seed: int = 0, progress: Progress | None = None, threads: int = 2,
) -> dict[str, Any]:
    """Fine-tune the encoder in ``base_dir`` on (text, label) pairs; write it to ``out_dir``.

    ``max_length`` tokens of ``max_chars`` characters (head and tail, with the base's query prefix,
    as ``Encoder`` prepares them) per appeal; ``lr`` for the transformer layers, ``head_lr`` for
    the head, a linear schedule with 10% warm-up (at least 5 steps of a short run);
    ``batch_size`` × ``grad_accum`` appeals per optimiser step. The job stops after the
    optimiser step during which ``time_budget_min`` minutes (counted from the call) ran out, and
    still writes ``out_dir`` (0: no step, the base's weights). With ``checkpoint_dir``, the
    trainable state is saved every ``checkpoint_every`` steps, when the job ends and when it is
    interrupted (Ctrl-C); a later call with the same data and settings continues from it, other
    data or settings start over (said via ``progress``). The checkpoint stays after a finished
    job: the caller removes it (``finetune_checkpoint.remove_checkpoint``) once it has stored
    what it made.

    Raises:
        FinetuneInterrupted: on Ctrl-C (a ``KeyboardInterrupt``), after saving the checkpoint;
            its message says at which step and how to resume. ``out_dir`` is not written.

    Returns:
        ``steps``, ``total_steps``, ``steps_this_run``, ``resumed_from_step``, ``epochs_done``,
        ``seconds``, ``train_loss`` (mean over the last steps of this call, None without steps),
        ``stopped_by_budget``, ``labels`` and ``out_dir``.

    Example:
        >>> finetune_encoder(base, ["路灯不亮了", "学校乱收费"], ["城市管理", "教育文体"],
        ...                  Path("var/encoders/tuned"), time_budget_min=30)  # doctest: +SKIP
        {'steps': 1, 'stopped_by_budget': False, ...}
    """
    started = _now()
    if time_budget_min is not None and not (math.isfinite(time_budget_min)
                                            and time_budget_min >= 0):
        raise ValueError(f"time_budget_min is minutes, 0 or more; got {time_budget_min} "
                         f"(None: no limit)")
    texts, labels = [str(t) for t in texts], [str(lab) for lab in labels]
    classes = _check_data(texts, labels)
    base_dir, out_dir = Path(base_dir), Path(out_dir)
    _check_base(base_dir)
    _check_out_dir(out_dir)
    settings = {"data_sha256": data_hash(texts, labels), "base": fingerprint(base_dir),
                "max_length": max_length, "max_chars": max_chars, "epochs": epochs,
                "batch_size": batch_size, "grad_accum": grad_accum, "lr": lr, "head_lr": head_lr,
                "freeze_embeddings": freeze_embeddings, "seed": seed}
    run = _new_run(settings, classes, len(texts))
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[]):  # the caller's random state stays as it was
            torch.manual_seed(seed)
            _fit(base_dir, texts, labels, out_dir, run, budget=time_budget_min, started=started,
                 checkpoint_dir=None if checkpoint_dir is None else Path(checkpoint_dir),
                 checkpoint_every=checkpoint_every, say=progress or _silent)
    finally:
        torch.set_num_threads(previous_threads)
    recent = run.losses[-10:]
    return {"steps": run.step, "total_steps": run.total_steps,
            "steps_this_run": run.step - run.resumed_from, "resumed_from_step": run.resumed_from,
            "epochs_done": _epochs_done(run), "seconds": round(run.seconds, 2),
            "train_loss": float(np.mean(recent)) if recent else None,
            "stopped_by_budget": run.stopped, "labels": classes, "out_dir": str(out_dir)}


def _silent(message: str, fraction: float) -> None:
    """The default progress callback: says nothing."""


def load_head(out_dir: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Labels, ``W`` (labels × dim, the scale folded in) and ``b`` of a fine-tuned encoder's head.

    Probabilities are ``softmax(E @ W.T + b)`` for ``E = Encoder(out_dir).encode(texts)``.

    Example:
        >>> labels, w, b = load_head(Path("var/encoders/tuned"))  # doctest: +SKIP
        >>> logits = Encoder(Path("var/encoders/tuned")).encode(["路灯不亮了"]) @ w.T + b  # doctest: +SKIP
    """
    file = Path(out_dir) / HEAD_FILE
    if not file.is_file():
        raise ArtifactError(f"{out_dir} has no {HEAD_FILE}: it is not a directory written by "
                            f"training.finetune (fine-tune an encoder into it first)")
    saved = torch.load(file, map_location="cpu", weights_only=True)
    weight = saved["weight"].float().numpy() * float(saved.get("scale", SCALE))
    return list(saved["labels"]), weight.astype(np.float32), saved["bias"].float().numpy()


# -- checks and loading ------------------------------------------------------------------------
def _check_data(texts: list[str], labels: list[str]) -> list[str]:
    """The sorted label set, after the checks that make training meaningful."""
    if len(texts) != len(labels):
        raise LabelError(f"fine-tuning needs one label per text: got {len(texts)} texts and "
                         f"{len(labels)} labels")
    if not texts:
        raise LabelError("fine-tuning needs labelled appeals: the training data is empty")
    empty = [i + 1 for i, (t, lab) in enumerate(zip(texts, labels, strict=True))
             if not t.strip() or not lab.strip()]
    if empty:
        raise LabelError(f"rows {', '.join(map(str, empty[:10]))} have an empty text or label "
                         f"(rows count from 1)")
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise LabelError(f"fine-tuning a classifier needs at least two labels; every appeal is "
                         f"labelled {classes[0]!r}")
    return classes


def _check_out_dir(out_dir: Path) -> None:
    """Refuse to replace anything but an empty directory or an earlier fine-tuning's output."""
    if out_dir.is_file() or (out_dir.is_dir() and any(out_dir.iterdir())
                             and not (out_dir / HEAD_FILE).is_file()):
        raise ArtifactError(f"{out_dir} already holds files that are not a fine-tuned encoder; "
                            f"choose a new output directory (nothing was changed)")


def _check_base(base_dir: Path) -> None:
    if not (base_dir / "config.json").is_file():
        raise ArtifactError(f"{base_dir} is not an encoder directory (no config.json): give the "
                            f"directory of a transformers model, e.g. the one locate_encoder returns")


def _load_base(base_dir: Path) -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer  # after models.encoder set HF_HUB_OFFLINE

    try:
        return AutoTokenizer.from_pretrained(str(base_dir)), AutoModel.from_pretrained(str(base_dir))
    except Exception as exc:  # noqa: BLE001 - any loader failure is one user-facing error
        raise ArtifactError(f"cannot load the encoder in {base_dir}: {exc}") from exc


def _prepared(texts: Sequence[str], prefix: str, max_chars: int) -> list[str]:
    # The same string Encoder._prepare builds, so training sees what serving embeds.
    return [prefix + head_tail(" ".join(str(t).split()), max_chars) for t in texts]


# -- the model and its optimiser ---------------------------------------------------------------
class _Classifier(torch.nn.Module):
    """Encoder, mean pooling, L2 normalisation, dropout, ``SCALE`` · linear head."""

    def __init__(self, encoder: Any, n_labels: int, freeze_embeddings: bool) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = torch.nn.Dropout(0.1)
        self.head = torch.nn.Linear(encoder.config.hidden_size, n_labels)
        # Zero start: every label equally likely, rather than random logits of ±SCALE·|w|.
        torch.nn.init.zeros_(self.head.weight)
        torch.nn.init.zeros_(self.head.bias)
        if freeze_embeddings:
            for parameter in _embedding_module(encoder).parameters():
                parameter.requires_grad_(False)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        unit = F.normalize(pooled, dim=-1, eps=1e-12)
        return SCALE * F.linear(self.dropout(unit), self.head.weight) + self.head.bias


def _embedding_module(encoder: Any) -> Any:
    module = getattr(encoder, "embeddings", None)
    return module if module is not None else encoder.get_input_embeddings()


def _new_run(settings: dict[str, Any], classes: list[str], n: int) -> Run:
    epochs, batch_size, grad_accum = settings["epochs"], settings["batch_size"], settings["grad_accum"]
    if not epochs > 0 or batch_size < 1 or grad_accum < 1:
        raise ValueError(f"epochs must be > 0, batch_size and grad_accum ≥ 1 (got {epochs}, "
                         f"{batch_size}, {grad_accum})")
    per_epoch = math.ceil(n / batch_size)
    total_micro = max(1, round(epochs * per_epoch))
    return Run(settings=settings, labels=classes, per_epoch=per_epoch, total_micro=total_micro,
               total_steps=math.ceil(total_micro / grad_accum))


def _epochs_done(run: Run) -> float:
    return round(run.micro / run.per_epoch, 4)


def _optimiser(model: Any, run: Run, lr: float, head_lr: float) -> tuple[Any, Any]:
    body = [p for p in model.encoder.parameters() if p.requires_grad]
    groups = [{"params": body, "lr": lr}, {"params": list(model.head.parameters()), "lr": head_lr}]
    optimizer = torch.optim.AdamW(groups, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, Plan(run.total_steps))
    return optimizer, scheduler


# -- training ----------------------------------------------------------------------------------
def _fit(base_dir: Path, texts: list[str], labels: list[str], out_dir: Path, run: Run, *,
         budget: float | None, started: float, checkpoint_dir: Path | None,
         checkpoint_every: int, say: Progress) -> None:
    """Load, resume, train, write ``out_dir``; the outcome is recorded in ``run``."""
    tokenizer, encoder = _load_base(base_dir)
    prefix, settings = query_prefix(base_dir), run.settings
    ids = tokenizer(_prepared(texts, prefix, settings["max_chars"]), truncation=True,
                    max_length=settings["max_length"])["input_ids"]
    index = {label: i for i, label in enumerate(run.labels)}
    targets = [index[label] for label in labels]
    model = _Classifier(encoder, len(run.labels), settings["freeze_embeddings"])
    optimizer, scheduler = _optimiser(model, run, settings["lr"], settings["head_lr"])
    job = Job(model, optimizer, scheduler, run, started, checkpoint_dir, say)
    resume(job)
    _train(job, ids, targets, tokenizer.pad_token_id, budget=budget,
           checkpoint_every=checkpoint_every)
    run.seconds = run.seconds_before + (_now() - started)
    say("writing the fine-tuned encoder", 1.0)
    _write_output(out_dir, model, tokenizer, base_dir, _stamp(run, prefix))


def _train(job: Job, ids: list[list[int]], targets: list[int], pad_id: int | None, *,
           budget: float | None, checkpoint_every: int) -> None:
    """Optimiser steps until the end or the budget; on Ctrl-C, save where the job is."""
    try:
        _steps(job, ids, targets, pad_id, budget=budget, checkpoint_every=checkpoint_every)
    except KeyboardInterrupt as exc:
        _save_where_stopped(job)
        run = job.run
        kept = ("run the same command to resume" if job.checkpoint_dir is not None
                else "nothing was kept (no checkpoint_dir)")
        raise FinetuneInterrupted(f"interrupted at step {run.step}/{run.total_steps}; "
                                  f"{kept}") from exc
    _save_where_stopped(job)


def _save_where_stopped(job: Job) -> None:
    """A checkpoint of the last step, unless one was just saved, so a later call loses nothing."""
    job.model.eval()
    if job.run.step > 0 and job.saved_step != job.run.step:
        save_checkpoint(job, _seconds(job))


def _steps(job: Job, ids: list[list[int]], targets: list[int], pad_id: int | None, *,
           budget: float | None, checkpoint_every: int) -> None:
    """Optimiser steps until the end or the budget (checked before each step)."""
    run = job.run
    job.model.train()
    group: list[list[int]] = []
    plan = job.scheduler.lr_lambdas[0]
    first_step, first_time = run.step, _now()
    for micro, batch in micro_batches(run, [len(x) for x in ids]):
        if not group and _over_budget(budget, job.started):
            run.stopped = True
            break
        group.append(batch)
        if len(group) < min(run.settings["grad_accum"], run.total_micro - run.micro):
            continue
        _step(job, [tensors(b, ids, targets, pad_id) for b in group])
        run.micro, group = micro + 1, []
        done = run.step - first_step
        if budget is not None and done >= REPLAN_AFTER and done % REPLAN_EVERY == 0:
            plan.replan(run.step, (_now() - first_time) / done,
                        budget * 60 - (_now() - job.started))
        job.say(f"fine-tuning the encoder: step {run.step}/{run.total_steps}, "
                f"loss {run.losses[-1]:.3f}", run.step / run.total_steps)
        if checkpoint_every > 0 and run.step % checkpoint_every == 0:
            save_checkpoint(job, _seconds(job))


def _step(job: Job, group: list[tuple[Any, Any, Any]]) -> None:
    """One optimiser step over a group of micro-batches (gradient accumulation)."""
    total = 0.0
    for ids, mask, gold in group:
        loss = F.cross_entropy(job.model(ids, mask), gold) / len(group)
        loss.backward()
        total += float(loss.detach())
    trainable = [p for p in job.model.parameters() if p.requires_grad]
    with uninterrupted():
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        job.optimizer.step()
        job.scheduler.step()
        job.optimizer.zero_grad(set_to_none=True)
        job.run.step += 1
        job.run.losses.append(total)


def _over_budget(budget: float | None, started: float) -> bool:
    return budget is not None and _now() - started >= budget * 60


def _seconds(job: Job) -> float:
    """The job's training time so far, earlier (resumed) calls included."""
    return job.run.seconds_before + (_now() - job.started)


# -- output ------------------------------------------------------------------------------------
def _stamp(run: Run, prefix: str) -> dict[str, Any]:
    settings = run.settings
    return {"query_prefix": prefix, "finetuned_from": settings["base"], "labels": run.labels,
            "steps": run.step, "total_steps": run.total_steps, "epochs_done": _epochs_done(run),
            "stopped_by_budget": run.stopped, "train_seconds": round(run.seconds, 2),
            "max_length": settings["max_length"], "max_chars": settings["max_chars"],
            "data_sha256": settings["data_sha256"], "scale": SCALE}


def _write_output(out_dir: Path, model: Any, tokenizer: Any, base_dir: Path, stamp: dict) -> None:
    """Build the encoder directory beside ``out_dir``, then move it into place."""
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    encoder = model.encoder.eval()
    encoder.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    write_sentence_transformers_config(tmp, _max_seq_length(base_dir))
    head = model.head
    torch.save({"labels": stamp["labels"], "weight": head.weight.detach().clone(),
                "bias": head.bias.detach().clone(), "scale": SCALE}, tmp / HEAD_FILE)
    state = {k: v.detach().float().numpy() for k, v in encoder.state_dict().items()}
    stamp = {**stamp, "tensor_sha256": tensor_digest(state)}
    (tmp / STAMP).write_text(json.dumps(stamp, ensure_ascii=False, indent=2))
    _swap_into_place(tmp, out_dir)


def _swap_into_place(tmp: Path, out_dir: Path) -> None:
    # Only an earlier fine-tuning output is ever replaced (``_check_out_dir`` refused the rest).
    old = out_dir.with_name(out_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out_dir.exists():
        out_dir.rename(old)
    tmp.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)


def _max_seq_length(base_dir: Path) -> int:
    config = base_dir / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text()).get("max_seq_length", 512))
    return 512
