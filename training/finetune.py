"""Fine-tune the sentence encoder on labelled appeals, on a CPU, within a time budget, resumably.

The model is the transformers encoder of ``base_dir``, mean pooled and L2-normalised exactly as
``models.encoder.Encoder.encode`` returns it, then dropout and a linear head over the labels:
``logits = SCALE · (e @ W.T) + b`` with ``e`` the unit-length embedding and the fixed scale 20 (a
unit vector's logits would otherwise be too flat to train). So ``softmax(Encoder.encode(texts) @
W.T + b)`` with ``load_head``'s ``W`` (already multiplied by the scale) is the head's prediction.

The embedding layer is frozen by default: in multilingual-e5 it holds 96M of the 118M parameters
(the XLM-R vocabulary, most of it never seen in appeals), so leaving it out makes steps cheaper,
checkpoints three times smaller and keeps the rare tokens' vectors as pretrained. Checkpoints hold only what trains, plus the optimiser, the schedule, the
position in the (seeded, length-bucketed) batch stream and a hash of the data and settings, so an
interrupted or budget-stopped job continues where it stopped. The output is a new encoder
directory that ``Encoder`` loads (torch, or ONNX exported on first load), with the head beside it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the usual name

from models.artifacts import data_hash
from models.e5_rebuild import STAMP, tensor_digest, write_sentence_transformers_config
from models.encoder import fingerprint, head_tail, query_prefix
from triage.errors import ArtifactError, LabelError

SCALE = 20.0
HEAD_FILE = "classifier_head.pt"
CHECKPOINT_FILE = "finetune-checkpoint.pt"
WARMUP_FRACTION = 0.1
BUCKET_BATCHES = 50  # batches sorted by length together: little padding, order still random
Progress = Callable[[str, float], None]
_now = time.monotonic  # the budget's clock (tests replace it)


@dataclass
class _Run:
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
class _Job:
    """The objects one training call works with."""

    model: Any
    optimizer: Any
    scheduler: Any
    run: _Run
    started: float
    checkpoint_dir: Path | None
    say: Progress
    saved_step: int = -1


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
    the head, a linear schedule with 10% warm-up; ``batch_size`` × ``grad_accum`` appeals per
    optimiser step. The job stops after the optimiser step during which ``time_budget_min``
    minutes (counted from the call) ran out, and still writes ``out_dir``. With ``checkpoint_dir``, the trainable state is saved every
    ``checkpoint_every`` steps (and when the budget stops the job); a later call with the same
    data and settings continues from it, other data or settings start over (said via
    ``progress``).

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


def _new_run(settings: dict[str, Any], classes: list[str], n: int) -> _Run:
    epochs, batch_size, grad_accum = settings["epochs"], settings["batch_size"], settings["grad_accum"]
    if not epochs > 0 or batch_size < 1 or grad_accum < 1:
        raise ValueError(f"epochs must be > 0, batch_size and grad_accum ≥ 1 (got {epochs}, "
                         f"{batch_size}, {grad_accum})")
    per_epoch = math.ceil(n / batch_size)
    total_micro = max(1, round(epochs * per_epoch))
    return _Run(settings=settings, labels=classes, per_epoch=per_epoch, total_micro=total_micro,
                total_steps=math.ceil(total_micro / grad_accum))


REPLAN_AFTER, REPLAN_EVERY = 5, 5


def _epochs_done(run: _Run) -> float:
    return round(run.micro / run.per_epoch, 4)


class _Plan:
    """Linear warm-up then linear decay to zero at ``end``, which a time budget may pull in.

    Under a budget that cannot cover every step, the decay is planned to finish when the budget
    runs out (re-estimated from the measured time per step), so a cut-short run still ends at a
    low learning rate instead of stopping at its peak.
    """

    def __init__(self, total_steps: int) -> None:
        self.total = total_steps
        self.end = total_steps
        self.warmup = max(1, int(WARMUP_FRACTION * total_steps))

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        span = max(1, self.end - self.warmup)
        return max(0.0, (self.end - step) / span)

    def replan(self, step: int, seconds_per_step: float, seconds_left: float) -> None:
        reachable = step + int(max(0.0, seconds_left) / max(seconds_per_step, 1e-9))
        self.end = max(self.warmup + 1, min(self.total, reachable))


def _optimiser(model: Any, run: _Run, lr: float, head_lr: float) -> tuple[Any, Any]:
    body = [p for p in model.encoder.parameters() if p.requires_grad]
    groups = [{"params": body, "lr": lr}, {"params": list(model.head.parameters()), "lr": head_lr}]
    optimizer = torch.optim.AdamW(groups, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _Plan(run.total_steps))
    return optimizer, scheduler


# -- batches -----------------------------------------------------------------------------------
def _epoch_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """One epoch's batches: shuffled, sorted by length within windows, in shuffled order."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    window = batch_size * BUCKET_BATCHES
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window].tolist(), key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _micro_batches(run: _Run, lengths: Sequence[int]) -> Iterator[tuple[int, list[int]]]:
    """(micro-batch index, example indices) from ``run.micro`` to the end, across epochs."""
    micro = run.micro
    while micro < run.total_micro:
        epoch, position = divmod(micro, run.per_epoch)
        batches = _epoch_batches(lengths, run.settings["batch_size"], run.settings["seed"], epoch)
        for batch in batches[position:]:
            if micro >= run.total_micro:
                return
            yield micro, batch
            micro += 1


def _tensors(batch: list[int], ids: list[list[int]], targets: list[int],
             pad_id: int | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Padded token ids, attention mask and gold label indices of one micro-batch."""
    width = max(len(ids[i]) for i in batch)
    padded = torch.full((len(batch), width), pad_id or 0, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, i in enumerate(batch):
        padded[row, : len(ids[i])] = torch.tensor(ids[i])
        mask[row, : len(ids[i])] = 1
    return padded, mask, torch.tensor([targets[i] for i in batch])


# -- training ----------------------------------------------------------------------------------
def _fit(base_dir: Path, texts: list[str], labels: list[str], out_dir: Path, run: _Run, *,
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
    job = _Job(model, optimizer, scheduler, run, started, checkpoint_dir, say)
    _resume(job)
    _train(job, ids, targets, tokenizer.pad_token_id, budget=budget,
           checkpoint_every=checkpoint_every)
    run.seconds = run.seconds_before + (_now() - started)
    say("writing the fine-tuned encoder", 1.0)
    _write_output(out_dir, model, tokenizer, base_dir, _stamp(run, prefix))


def _train(job: _Job, ids: list[list[int]], targets: list[int], pad_id: int | None, *,
           budget: float | None, checkpoint_every: int) -> None:
    """Optimiser steps until the end or the budget (checked before each step)."""
    run = job.run
    job.model.train()
    group: list[list[int]] = []
    plan = job.scheduler.lr_lambdas[0]
    first_step, first_time = run.step, _now()
    for micro, batch in _micro_batches(run, [len(x) for x in ids]):
        if not group and _over_budget(budget, job.started):
            run.stopped = True
            break
        group.append(batch)
        if len(group) < min(run.settings["grad_accum"], run.total_micro - run.micro):
            continue
        _step(job, [_tensors(b, ids, targets, pad_id) for b in group])
        run.micro, group = micro + 1, []
        done = run.step - first_step
        if budget is not None and done >= REPLAN_AFTER and done % REPLAN_EVERY == 0:
            plan.replan(run.step, (_now() - first_time) / done,
                        budget * 60 - (_now() - job.started))
        job.say(f"fine-tuning the encoder: step {run.step}/{run.total_steps}, "
                f"loss {run.losses[-1]:.3f}", run.step / run.total_steps)
        if checkpoint_every > 0 and run.step % checkpoint_every == 0:
            _save_checkpoint(job)
    job.model.eval()
    if run.losses and job.saved_step != run.step:
        _save_checkpoint(job)  # where the job stopped, so a later call loses nothing


def _step(job: _Job, group: list[tuple[Any, Any, Any]]) -> None:
    """One optimiser step over a group of micro-batches (gradient accumulation)."""
    total = 0.0
    for ids, mask, gold in group:
        loss = F.cross_entropy(job.model(ids, mask), gold) / len(group)
        loss.backward()
        total += float(loss.detach())
    trainable = [p for p in job.model.parameters() if p.requires_grad]
    torch.nn.utils.clip_grad_norm_(trainable, 1.0)
    job.optimizer.step()
    job.scheduler.step()
    job.optimizer.zero_grad(set_to_none=True)
    job.run.step += 1
    job.run.losses.append(total)


def _over_budget(budget: float | None, started: float) -> bool:
    return budget is not None and _now() - started >= budget * 60


# -- checkpoints -------------------------------------------------------------------------------
def _save_checkpoint(job: _Job) -> None:
    """Write what trains and where the job is, atomically (a temporary file, then a rename)."""
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
        "seconds": run.seconds_before + (_now() - job.started),
    }
    tmp = job.checkpoint_dir / (CHECKPOINT_FILE + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, job.checkpoint_dir / CHECKPOINT_FILE)
    job.saved_step = run.step


def _resume(job: _Job) -> None:
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


def _difference(saved: dict, current: dict) -> str:
    """'' when a checkpoint belongs to this job, else what differs, for a person to read."""
    if saved.get("data_sha256") != current["data_sha256"]:
        return "other training data (another data hash)"
    if saved.get("base") != current["base"]:
        return "another base encoder"
    changed = [f"{k} {saved.get(k)!r} → {v!r}" for k, v in current.items() if saved.get(k) != v]
    return f"other settings ({', '.join(changed)})" if changed else ""


# -- output ------------------------------------------------------------------------------------
def _stamp(run: _Run, prefix: str) -> dict[str, Any]:
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
