"""The encoder's part of the classifier: level-1 evidence and leaf prototypes in embedding space.

``EmbeddingHead`` learns, from unit-length appeal embeddings (``models.encoder.Encoder``):

- a logistic regression over the top-level categories, whose log-probabilities are added to the
  TF-IDF model's with weight ``weight`` (chosen by cross-validation on the training appeals in
  ``choose_fusion``);
- one prototype per leaf: its description's embedding plus the centroid of the appeals the TF-IDF
  leaf scorer assigned to it. Leaves with few or no examples still get a prototype from their
  name and description, which the encoder reads with its knowledge of the language rather than
  by shared characters.

``choose_fusion`` also picks the cascade threshold: an appeal whose TF-IDF top-level confidence
reaches it skips the encoder, which keeps the accurate preset fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score


class EmbeddingHead:
    """Level-1 logistic regression and leaf prototypes over appeal embeddings."""

    def __init__(self, *, C: float = 10.0, meta_weight: float = 1.0) -> None:
        self.C = C
        self.meta_weight = meta_weight

    def fit(
        self, E: np.ndarray, y: np.ndarray, n_classes: int, *,
        leaf_assignment: np.ndarray | None = None, leaf_meta: np.ndarray | None = None,
    ) -> EmbeddingHead:
        """``y``: level-1 indices; ``leaf_assignment[i]``: appeal i's leaf (−1: none);
        ``leaf_meta``: the leaves' description embeddings (none: level 1 only)."""
        present = np.unique(y)
        self.n_classes_ = n_classes
        self.present_ = present
        self.model_ = (LogisticRegression(C=self.C, max_iter=3000).fit(E, y)
                       if len(present) > 1 else None)
        if leaf_meta is None:
            return self
        protos = self.meta_weight * leaf_meta.astype(np.float32)
        rows = (np.flatnonzero(leaf_assignment >= 0) if leaf_assignment is not None
                else np.zeros(0, dtype=np.int64))
        if len(rows):
            sums = np.zeros_like(protos)
            np.add.at(sums, leaf_assignment[rows], E[rows])
            norms = np.linalg.norm(sums, axis=1, keepdims=True)
            protos = protos + np.where(norms > 0, sums / np.clip(norms, 1e-12, None), 0.0)
        self.prototypes_ = protos / np.clip(np.linalg.norm(protos, axis=1, keepdims=True), 1e-12,
                                            None)
        return self

    def level1_log_proba(self, E: np.ndarray) -> np.ndarray:
        """Log-probabilities over all ``n_classes`` (classes never seen get a floor)."""
        out = np.full((E.shape[0], self.n_classes_), np.log(1e-6))
        if self.model_ is None:
            out[:, self.present_] = 0.0
            return out
        out[:, self.model_.classes_] = np.log(np.clip(self.model_.predict_proba(E), 1e-6, None))
        return out

    def leaf_scores(self, E: np.ndarray) -> np.ndarray:
        """Cosine of each appeal to each leaf prototype (n × leaves)."""
        return E @ self.prototypes_.T


def calibrate_neighbour_threshold(
    E: np.ndarray, y: np.ndarray, *, precision: float = 0.95, min_support: int = 20,
    grid: Sequence[float] = tuple(np.round(np.arange(0.80, 0.995, 0.01), 2)), chunk: int = 2048,
) -> float | None:
    """The lowest cosine at which an appeal's nearest other appeal shares its top level with the
    given ``precision`` (over at least ``min_support`` appeals), or None if no cosine does.

    The correction memory reuses a correction for an appeal this near (``models.memory``); each
    encoder has its own range of cosines (e5's sit between 0.8 and 1.0), so the threshold is read
    off the training appeals rather than fixed. Identical texts are not counted as neighbours.
    """
    n = len(y)
    if n < 2:
        return None
    best = np.full(n, -1.0)
    nearest = np.zeros(n, dtype=np.int64)
    for start in range(0, n, chunk):
        S = E[start : start + chunk] @ E.T
        rows = np.arange(S.shape[0])
        S[rows, start + rows] = -1.0
        S[S > 0.99999] = -1.0  # the same text again
        nearest[start : start + chunk] = S.argmax(axis=1)
        best[start : start + chunk] = S[rows, nearest[start : start + chunk]]
    same = y[nearest] == y
    for t in grid:
        hit = best >= t
        if hit.sum() >= min_support and same[hit].mean() >= precision:
            return float(t)
    return None


@dataclass
class FusionChoice:
    """What cross-validation on the training appeals chose, with the figures behind it."""

    weight: float
    cascade: float
    macro_f1_tfidf: float
    macro_f1_fused: float
    macro_f1_cascade: float
    encoder_share: float


WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
CASCADES = (0.8, 0.9, 0.95, 0.98, 0.99, 1.01)


def choose_fusion(
    y: np.ndarray, tfidf_proba: np.ndarray, encoder_log_proba: np.ndarray, *,
    weights: Sequence[float] = WEIGHTS, cascades: Sequence[float] = CASCADES,
    tolerance: float = 0.002,
) -> FusionChoice:
    """Pick the fusion weight and the cascade threshold from out-of-fold predictions.

    The weight maximises fused macro-F1 (ties go to the smaller weight; 0 means the encoder does
    not help and is never called: cascade 0); the threshold is the lowest that keeps the cascade
    within ``tolerance`` of always using the encoder (1.01 means every appeal uses it).
    """
    log_t = np.log(np.clip(tfidf_proba, 1e-12, None))
    base = f1_score(y, log_t.argmax(1), average="macro")
    scored = [(f1_score(y, (log_t + w * encoder_log_proba).argmax(1), average="macro"), w)
              for w in weights]
    best_f1, weight = max(scored, key=lambda s: (s[0], -s[1]))
    if weight == 0.0:
        return FusionChoice(weight=0.0, cascade=0.0, macro_f1_tfidf=float(base),
                            macro_f1_fused=float(best_f1), macro_f1_cascade=float(base),
                            encoder_share=0.0)
    fused = (log_t + weight * encoder_log_proba).argmax(1)
    confident = tfidf_proba.max(axis=1)
    cascade, cascade_f1, share = 1.01, best_f1, 1.0
    for tau in sorted(cascades):
        use = confident < tau
        f1 = f1_score(y, np.where(use, fused, log_t.argmax(1)), average="macro")
        if f1 >= best_f1 - tolerance:
            cascade, cascade_f1, share = tau, f1, float(use.mean())
            break
    return FusionChoice(weight=float(weight), cascade=float(cascade), macro_f1_tfidf=float(base),
                        macro_f1_fused=float(best_f1), macro_f1_cascade=float(cascade_f1),
                        encoder_share=share)
