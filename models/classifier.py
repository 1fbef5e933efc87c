"""Hierarchical appeal classifier: a supervised top level, then the leaf chosen by reading the appeal.

The top level (一级分类) is learnt from labelled appeals with a linear model over character and word
TF-IDF. The leaf is chosen among the leaves of the predicted top level by ``LeafScorer`` (examples,
names, descriptions, keywords). Only top levels with labelled appeals are predicted; the others are
listed in ``unsupported_``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from models.features import TextFeaturizer, prepare
from models.leaves import LeafScorer, describe_leaf
from triage.errors import LabelError, ModelNotReadyError
from triage.taxonomy import Taxonomy


@dataclass
class PathPrediction:
    """What the classifier says of one appeal (paths are full ``/``-joined leaf paths)."""

    level1: str
    subitem: str
    confidence: float
    confidence_level1: float
    top: list[dict[str, Any]]
    needs_review: bool
    review_reason: str
    explanation: dict[str, Any] = field(default_factory=dict)


class HierarchicalClassifier:
    """Top level by a linear model, leaf by prototype similarity under that top level.

    Example:
        >>> clf = HierarchicalClassifier(taxonomy=tax).fit(texts, labels)
        >>> clf.predict_paths(["学校周边有人卖三无食品"])[0].subitem  # doctest: +SKIP
        '教育文体/学校管理/校园周边环境'
    """

    def __init__(
        self, *, taxonomy: Taxonomy, C: float = 1.0, model: str = "svm", temperature: float = 0.04,
        review_threshold: float = 0.35, review_threshold_level1: float = 0.6, top_k: int = 3,
        leaf_evidence: float = 15.0,
    ) -> None:
        self.taxonomy = taxonomy
        self.C = C
        self.model = model
        self.temperature = temperature
        self.review_threshold = review_threshold
        self.review_threshold_level1 = review_threshold_level1
        self.top_k = top_k
        self.leaf_evidence = leaf_evidence

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> HierarchicalClassifier:
        """Learn from appeals labelled at any level (full paths or bare node names)."""
        if len(texts) != len(labels):
            raise LabelError(f"{len(texts)} texts but {len(labels)} labels")
        nodes = self.taxonomy.resolve_labels(list(labels))
        level1 = [n.path[0] for n in nodes]
        present = set(level1)
        self.classes_ = [r.name for r in self.taxonomy.roots if r.name in present]
        self.unsupported_ = [r.name for r in self.taxonomy.roots if r.name not in present]
        leaf_texts = [describe_leaf(leaf) for r in self.classes_ for leaf in self.taxonomy.leaves(r)]
        self.featurizer_ = TextFeaturizer()
        X = self.featurizer_.fit_transform(list(texts) + leaf_texts)[: len(texts)]
        y = np.array([self.classes_.index(c) for c in level1])
        self.level1_model_ = self._fit_level1(X, y)
        self.leaves_ = LeafScorer(temperature=self.temperature).fit(
            X, [n.key for n in nodes], taxonomy=self.taxonomy, roots=self.classes_,
            featurizer=self.featurizer_,
        )
        self.n_train_ = len(texts)
        return self

    def _fit_level1(self, X: Any, y: np.ndarray) -> Any:
        if len(self.classes_) == 1:
            return None
        if self.model == "logreg":
            return LogisticRegression(C=self.C * 20, max_iter=2000).fit(X, y)
        svm = LinearSVC(C=self.C, class_weight="balanced").fit(X, y)
        # Calibrate SVM margins into probabilities with a fixed softmax scale (cheap, monotone).
        self.margin_scale_ = 4.0
        return svm

    # -- prediction ------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "leaves_"):
            raise ModelNotReadyError("this classifier is not fitted yet: call fit() first")

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Top-level probabilities; columns follow ``classes_``."""
        self._check_fitted()
        if len(texts) == 0:
            return np.zeros((0, len(self.classes_)))
        X = self.featurizer_.transform(texts)
        return self._level1_proba(X, self.leaves_.scores(X))

    def _level1_proba(self, X: Any, leaf_scores: np.ndarray) -> np.ndarray:
        """Top-level probabilities from the linear model's margins plus the leaves' evidence.

        The best leaf similarity under each top level is added to its logit
        (``leaf_evidence`` × cosine): on the Teddy data this lifted level-1 macro-F1 by about
        0.6 points in cross-validation (β = 0 → 0.923, β = 15 → 0.930 on two folds).
        """
        if self.level1_model_ is None:
            return np.ones((X.shape[0], 1))
        if isinstance(self.level1_model_, LinearSVC):
            z = self.level1_model_.decision_function(X)
            if z.ndim == 1:  # two classes: the margin is that of classes_[1]
                z = np.column_stack([-z, z])
            z = z * self.margin_scale_
        else:
            z = np.log(np.clip(self.level1_model_.predict_proba(X), 1e-12, None))
        roots = self.leaves_.leaf_root_
        best = np.stack([leaf_scores[:, roots == r].max(axis=1)
                         for r in range(len(self.classes_))], axis=1)
        z = z + self.leaf_evidence * best
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The predicted leaf path of each appeal."""
        return [p.subitem for p in self.predict_paths(texts)]

    def predict_paths(
        self, texts: Sequence[str], *, explain: bool = True,
        within: Sequence[str | None] | None = None, features: Any = None,
    ) -> list[PathPrediction]:
        """Top-level, leaf, top-k alternatives, confidences and the review decision.

        ``explain=False`` skips the matched terms (batch jobs that write no explanation).
        ``within[i]``, a node path, confines appeal ``i`` to that node's subtree (a staff
        correction at any level): its top level is then certain and its leaf is chosen there.
        ``features``: ``featurizer_.transform(texts)`` when the caller has it already.
        """
        self._check_fitted()
        texts = list(texts)
        if not texts:
            return []
        X = features if features is not None else self.featurizer_.transform(texts)
        scores = self.leaves_.scores(X)
        p1 = self._level1_proba(X, scores)
        if within is not None:
            self._confine(p1, scores, within)
        choices = [self._choose(p1[i], scores[i : i + 1]) for i in range(len(texts))]
        leaves = np.array([c[1] for c in choices])
        terms = self._matched_terms(X, leaves) if explain else [[] for _ in texts]
        return [self._prediction(p1[i], *choices[i], terms[i]) for i in range(len(texts))]

    def _confine(self, p1: np.ndarray, scores: np.ndarray, within: Sequence[str | None]) -> None:
        keys = self.leaves_.leaf_keys_
        for i, node in enumerate(within):
            if not node or node.split("/")[0] not in self.classes_:
                continue
            p1[i] = 0.0
            p1[i, self.classes_.index(node.split("/")[0])] = 1.0
            outside = [j for j, key in enumerate(keys)
                       if not (key == node or key.startswith(node + "/"))]
            scores[i, outside] = -10.0  # far below any cosine: never chosen

    def _choose(self, p1: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, int, float, list]:
        """Top-level order, best leaf under the best top level, its probability, top-k pairs."""
        order = np.argsort(-p1)
        candidates: list[tuple[float, int]] = []
        best_leaf, best_p = -1, 0.0
        for rank, root in enumerate(order[: self.top_k]):
            columns, p = self.leaves_.proba_within(scores, int(root))
            for j in np.argsort(-p[0])[: self.top_k]:
                candidates.append((float(p1[root] * p[0, j]), int(columns[j])))
            if rank == 0:
                j = int(np.argmax(p[0]))
                best_leaf, best_p = int(columns[j]), float(p[0, j])
        # The chosen leaf comes first (it lies under the chosen top level), then the best others.
        chosen = [c for c in candidates if c[1] == best_leaf]
        others = sorted((c for c in candidates if c[1] != best_leaf), key=lambda c: -c[0])
        return order, best_leaf, best_p, (chosen + others)[: self.top_k]

    def _prediction(
        self, p1: np.ndarray, order: np.ndarray, leaf: int, leaf_p: float, candidates: list,
        terms: list[str],
    ) -> PathPrediction:
        keys = self.leaves_.leaf_keys_
        conf1 = float(p1[order[0]])
        conf = conf1 * leaf_p
        review, reason = self._review(conf1, conf)
        n_examples = int(self.leaves_.n_examples_[leaf])
        return PathPrediction(
            level1=self.classes_[int(order[0])], subitem=keys[leaf], confidence=round(conf, 4),
            confidence_level1=round(conf1, 4),
            top=[{"subitem": keys[j], "confidence": round(c, 4)} for c, j in candidates],
            needs_review=review, review_reason=reason,
            explanation={
                "level1_scores": {self.classes_[int(r)]: round(float(p1[r]), 4) for r in order[:3]},
                "leaf_examples": n_examples,
                "leaf_basis": "labelled examples" if n_examples else "name, description and keywords",
                "matched_terms": terms,
            },
        )

    def _review(self, conf1: float, conf: float) -> tuple[bool, str]:
        if conf1 < self.review_threshold_level1:
            return True, f"一级分类把握不足（{conf1:.2f} < {self.review_threshold_level1:.2f}）"
        if conf < self.review_threshold:
            return True, f"考核细目把握不足（{conf:.2f} < {self.review_threshold:.2f}）"
        return False, ""

    def _matched_terms(self, X: Any, leaves: np.ndarray, k: int = 6) -> list[list[str]]:
        """The features each appeal shares most with its chosen leaf's prototype."""
        shared = X.multiply(self.leaves_.prototypes_[leaves]).tocsr()
        names = self._feature_names()
        out = []
        for i in range(X.shape[0]):
            lo, hi = shared.indptr[i], shared.indptr[i + 1]
            top = shared.indices[lo:hi][np.argsort(-shared.data[lo:hi])[: 2 * k]]
            # char and word vocabularies share names (学 is both): keep each term once
            out.append(list(dict.fromkeys(str(names[t]) for t in top))[:k])
        return out

    def _feature_names(self) -> np.ndarray:
        if not hasattr(self, "_names"):
            f = self.featurizer_
            self._names = np.concatenate([f.char_.get_feature_names_out(),
                                          f.word_.get_feature_names_out()])
        return self._names

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_names", None)
        return state


__all__ = ["HierarchicalClassifier", "PathPrediction", "prepare"]
