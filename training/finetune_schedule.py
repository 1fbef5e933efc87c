"""The plan of a fine-tuning run, step by step: which appeals each micro-batch holds, and the
learning rate of each optimiser step.

The batch stream is seeded and length-bucketed (shuffled, sorted by length within windows of
``BUCKET_BATCHES`` batches, the batches in shuffled order), so it depends only on the lengths, the
seed and the position in it: a resumed job continues the very stream it stopped in. The learning
rate warms up linearly (over 10% of the steps, and at least ``MIN_WARMUP`` steps of a short run),
then decays linearly to zero, at the end a time budget may pull in.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from training.finetune_run import Run

WARMUP_FRACTION = 0.1
# Adam's first updates are full-size whatever the gradient: on the 420 demo appeals (14 steps) a
# one-step warm-up sent e5-small's loss from 2.30 (chance, 10 labels) to 4.93 at step 2; five
# steps keep it at 2.56 at most and under chance by step 5. At most half of a very short run.
MIN_WARMUP = 5
BUCKET_BATCHES = 50  # batches sorted by length together: little padding, order still random


class Plan:
    """Linear warm-up then linear decay to zero at ``end``, which a time budget may pull in.

    Under a budget that cannot cover every step, the decay is planned to finish when the budget
    runs out (re-estimated from the measured time per step), so a cut-short run still ends at a
    low learning rate instead of stopping at its peak.
    """

    def __init__(self, total_steps: int) -> None:
        self.total = total_steps
        self.end = total_steps
        self.warmup = max(1, int(WARMUP_FRACTION * total_steps),
                          min(MIN_WARMUP, total_steps // 2))

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        span = max(1, self.end - self.warmup)
        return max(0.0, (self.end - step) / span)

    def replan(self, step: int, seconds_per_step: float, seconds_left: float) -> None:
        reachable = step + int(max(0.0, seconds_left) / max(seconds_per_step, 1e-9))
        self.end = max(self.warmup + 1, min(self.total, reachable))


def epoch_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """One epoch's batches: shuffled, sorted by length within windows, in shuffled order."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    window = batch_size * BUCKET_BATCHES
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window].tolist(), key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def micro_batches(run: Run, lengths: Sequence[int]) -> Iterator[tuple[int, list[int]]]:
    """(micro-batch index, example indices) from ``run.micro`` to the end, across epochs."""
    micro = run.micro
    while micro < run.total_micro:
        epoch, position = divmod(micro, run.per_epoch)
        batches = epoch_batches(lengths, run.settings["batch_size"], run.settings["seed"], epoch)
        for batch in batches[position:]:
            if micro >= run.total_micro:
                return
            yield micro, batch
            micro += 1


def tensors(batch: list[int], ids: list[list[int]], targets: list[int],
            pad_id: int | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Padded token ids, attention mask and gold label indices of one micro-batch."""
    width = max(len(ids[i]) for i in batch)
    padded = torch.full((len(batch), width), pad_id or 0, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, i in enumerate(batch):
        padded[row, : len(ids[i])] = torch.tensor(ids[i])
        mask[row, : len(ids[i])] = 1
    return padded, mask, torch.tensor([targets[i] for i in batch])
