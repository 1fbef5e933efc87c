"""A memory of staff corrections, consulted before the model.

A correction takes effect at once for near-duplicates: the same complaint reworded, not only the
identical text. Each corrected appeal is kept as its feature vector (the classifier's character and
word TF-IDF, L2-normalised); a new appeal whose cosine similarity to a corrected one reaches the
threshold takes that correction, and the explanation names the ticket it was like.

With an encoder (a version trained with the accurate preset) each corrected appeal also keeps its
sentence embedding, and a rewording that shares few characters still matches when the embeddings'
cosine reaches ``encoder_threshold``. On the shared Teddy appeals (e5-small, raw appeals, twins
excluded) a nearest neighbour at cosine ≥ 0.95 had the same top-level category in 96.8% of cases
(7.2% of appeals have one), at ≥ 0.93 in 91.2%. Cosine ranges differ between encoders, so the
threshold is calibrated on each version's training appeals
(``models.fusion.calibrate_neighbour_threshold``) unless set.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Recall:
    """The correction an appeal matches: which ticket, how similar, what staff decided."""

    ticket_id: int
    similarity: float
    subitem: str | None
    department: str | None
    encoder_similarity: float | None = None


class CorrectionMemory:
    """Corrected appeals as sparse vectors; per ticket, the latest correction of each field wins.

    A correction names a sub-item, a department or both; a later correction of one field keeps
    the earlier correction of the other. A ticket with neither (its sub-item gone from the
    taxonomy, no department) is not remembered: a match would claim a correction not applied.

    Example:
        >>> memory = CorrectionMemory(featurize=model.featurizer_.transform, threshold=0.5)
        >>> memory.add(7, "楼下烧烤油烟大", subitem="环境保护/大气污染/餐饮油烟污染", department=None)
        >>> memory.recall(["楼下烧烤店油烟太大了"])[0].ticket_id  # doctest: +SKIP
        7
    """

    def __init__(self, *, featurize: Callable[[Sequence[str]], sp.csr_matrix],
                 threshold: float = 0.5, embed: Callable[[Sequence[str]], np.ndarray] | None = None,
                 encoder_threshold: float = 0.95) -> None:
        self.featurize = featurize
        self.threshold = threshold
        self.embed = embed
        self.encoder_threshold = encoder_threshold
        self._rows: dict[int, tuple[sp.csr_matrix, str | None, str | None]] = {}
        self._vectors: dict[int, np.ndarray] = {}
        self._matrix: sp.csr_matrix | None = None
        self._dense: np.ndarray | None = None
        self._ids: list[int] = []
        self._lock = threading.Lock()

    def add(self, ticket_id: int, text: str, *, subitem: str | None, department: str | None) -> None:
        """Remember a correction of one ticket; a field given as None keeps its earlier value."""
        with self._lock:
            _, old_subitem, old_department = self._rows.get(ticket_id, (None, None, None))
        subitem, department = subitem or old_subitem, department or old_department
        if not (subitem or department):
            self.forget(ticket_id)
            return
        vector = self.featurize([text])
        dense = self.embed([text])[0] if self.embed is not None else None
        with self._lock:
            self._rows[ticket_id] = (vector, subitem, department)
            if dense is not None:
                self._vectors[ticket_id] = dense
            self._matrix = None

    def forget(self, ticket_id: int) -> None:
        """Drop what is remembered of one ticket, if anything."""
        with self._lock:
            if self._rows.pop(ticket_id, None) is not None:
                self._vectors.pop(ticket_id, None)
                self._matrix = None

    def __len__(self) -> int:
        return len(self._rows)

    def _index(self) -> tuple[sp.csr_matrix | None, np.ndarray | None, list[int]]:
        with self._lock:
            if self._matrix is None and self._rows:
                self._ids = list(self._rows)
                self._matrix = sp.vstack([self._rows[i][0] for i in self._ids], format="csr")
                self._dense = (np.stack([self._vectors[i] for i in self._ids])
                               if self.embed is not None else None)
            return self._matrix, self._dense, list(self._ids)

    def recall(self, texts: Sequence[str], *, features: sp.csr_matrix | None = None,
               exclude: Sequence[int | None] | None = None) -> list[Recall | None]:
        """The most similar corrected appeal for each text, if it reaches the threshold."""
        matrix, dense, ids = self._index()
        if matrix is None or not len(texts):
            return [None] * len(texts)
        X = features if features is not None else self.featurize(texts)
        similarity = (X @ matrix.T).toarray()
        semantic = self.embed(list(texts)) @ dense.T if dense is not None and self.embed else None
        # One scale for both: a match is a score ≥ 1 (a threshold reached), the best score wins.
        score = similarity / self.threshold
        if semantic is not None:
            score = np.maximum(score, semantic / self.encoder_threshold)
        out: list[Recall | None] = []
        for i in range(len(texts)):
            if exclude is not None and exclude[i] in ids:
                score[i, ids.index(exclude[i])] = -1.0
            j = int(np.argmax(score[i]))
            if score[i, j] < 1.0:
                out.append(None)
                continue
            _, subitem, department = self._rows[ids[j]]
            out.append(Recall(ids[j], round(float(similarity[i, j]), 4), subitem, department,
                              None if semantic is None else round(float(semantic[i, j]), 4)))
        return out
