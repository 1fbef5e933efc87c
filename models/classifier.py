"""Hierarchical appeal classifier: a supervised top level, then the leaf chosen by reading the appeal.

The top level (一级分类) is learnt from labelled appeals with a linear model over character and word
TF-IDF. The leaf is chosen among the leaves of the predicted top level by ``LeafScorer`` (examples,
names, descriptions, keywords). Only top levels with labelled appeals are predicted; the others are
listed in ``unsupported_``.

With an encoder (``fit(..., embed=encoder.encode)``: the ``accurate`` preset) an ``EmbeddingHead``
adds the encoder's evidence: its level-1 log-probabilities are fused with the TF-IDF model's and
its leaf similarities with the TF-IDF leaf scores. The fusion weight and a cascade threshold are
chosen by cross-validation on the training appeals (``models.fusion.choose_fusion``): appeals the
TF-IDF model is sure of skip the encoder. The encoder itself is not pickled; ``attach_encoder``
gives a loaded model its encoder back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC

from models.features import TextFeaturizer, prepare
from models.fusion import (
    EmbeddingHead,
    FusionChoice,
    calibrate_neighbour_threshold,
    choose_fusion,
)
from models.leaves import LeafScorer, describe_leaf
from triage.errors import LabelError, ModelNotReadyError
from triage.glossary import Glossary
from triage.taxonomy import Taxonomy
from triage.text import below

# Punctuation, symbols or spaces at either end of a term (character n-grams span "，物"): they
# explain nothing to staff, and a term made only of them ("，") is dropped.
_EDGE_NOISE = re.compile(r"^[\W_]+|[\W_]+$")


def _readable_terms(terms: Sequence[str]) -> list[str]:
    """Matched terms worth showing: trimmed of punctuation and spaces, none left empty, and no
    single character already inside a longer term shown (梯 next to 电梯)."""
    kept = list(dict.fromkeys(t for t in (_EDGE_NOISE.sub("", term) for term in terms) if t))
    longer = [t for t in kept if len(t) > 1]
    return [t for t in kept if len(t) > 1 or not any(t in other for other in longer)]


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
        self, *, taxonomy: Taxonomy, C: float = 1.0, model: str = "svm", temperature: float = 0.02,
        review_threshold: float = 0.35, review_threshold_level1: float = 0.6, top_k: int = 3,
        leaf_evidence: float = 15.0, encoder_weight: float | None = None,
        cascade: float | None = None, leaf_encoder_weight: float = 1.0, fusion_folds: int = 3,
        glossary: Glossary | None = None, leaf_cascade: float | None = None,
        leaf_guide_weight: float = 0.0,
    ) -> None:
        self.taxonomy = taxonomy
        self.C = C
        self.model = model
        self.temperature = temperature
        self.review_threshold = review_threshold
        self.review_threshold_level1 = review_threshold_level1
        self.top_k = top_k
        self.leaf_evidence = leaf_evidence
        self.encoder_weight = encoder_weight
        self.cascade = cascade
        self.leaf_encoder_weight = leaf_encoder_weight
        self.fusion_folds = fusion_folds
        self.glossary = glossary
        self.leaf_cascade = leaf_cascade
        self.leaf_guide_weight = leaf_guide_weight

    # -- fitting ---------------------------------------------------------------------------
    def fit(
        self, texts: Sequence[str], labels: Sequence[str], *,
        embed: Callable[[Sequence[str]], np.ndarray] | None = None,
        guide_embed: Callable[[Sequence[str]], np.ndarray] | None = None,
    ) -> HierarchicalClassifier:
        """Learn from appeals labelled at any level (full paths or bare node names).

        ``guide_embed``: another encoder that helps choose the training appeals' leaves (with
        ``leaf_guide_weight``) in place of ``embed``, at training time only: an encoder as it
        comes, when ``embed`` is one fine-tuned on the top levels.

        ``embed`` (texts → unit-length embeddings, e.g. ``Encoder.encode``) adds the encoder's
        evidence; the fitted model then needs an encoder at prediction (``attach_encoder``).
        """
        if len(texts) != len(labels):
            raise LabelError(f"{len(texts)} texts but {len(labels)} labels")
        nodes = self.taxonomy.resolve_labels(list(labels))
        level1 = [n.path[0] for n in nodes]
        present = set(level1)
        self.classes_ = [r.name for r in self.taxonomy.roots if r.name in present]
        self.unsupported_ = [r.name for r in self.taxonomy.roots if r.name not in present]
        leaf_texts = [describe_leaf(leaf, self.glossary)
                      for r in self.classes_ for leaf in self.taxonomy.leaves(r)]
        self.featurizer_ = TextFeaturizer()
        X = self.featurizer_.fit_transform(list(texts) + leaf_texts)[: len(texts)]
        y = np.array([self.classes_.index(c) for c in level1])
        self.level1_model_ = self._fit_level1(X, y)
        # with an encoder and ``leaf_guide_weight``, it also helps choose the training appeals'
        # pseudo leaves (``LeafScorer.fit``; ``training.jobs.guide_encoder`` says which encoder);
        # the prototypes stay TF-IDF
        use_encoder = embed is not None and self.level1_model_ is not None
        embedded = (embed(list(texts)), embed(leaf_texts)) if use_encoder else None
        guide = None
        if use_encoder and self.leaf_guide_weight:
            guide = embedded if guide_embed is None else (guide_embed(list(texts)),
                                                          guide_embed(leaf_texts))
        self.leaves_ = LeafScorer(temperature=self.temperature).fit(
            X, [n.key for n in nodes], taxonomy=self.taxonomy, roots=self.classes_,
            featurizer=self.featurizer_, glossary=self.glossary,
            guide=guide, guide_weight=self.leaf_guide_weight,
        )
        self.n_train_ = len(texts)
        self.head_: EmbeddingHead | None = None
        self.fusion_: FusionChoice | None = None
        if embedded is not None:
            self._fit_encoder_part(list(texts), list(labels), y, *embedded)
        del self.leaves_.assignment_
        return self

    def _fit_encoder_part(
        self, texts: list[str], labels: list[str], y: np.ndarray, E: np.ndarray,
        E_leaves: np.ndarray,
    ) -> None:
        self.head_ = EmbeddingHead().fit(
            E, y, len(self.classes_), leaf_assignment=self.leaves_.assignment_, leaf_meta=E_leaves)
        self.memory_threshold_ = calibrate_neighbour_threshold(E, y)
        if self.encoder_weight is not None and self.cascade is not None:
            self.fusion_ = FusionChoice(self.encoder_weight, self.cascade, *[float("nan")] * 4)
            return
        tfidf, encoder = self._out_of_fold(texts, labels, y, E)
        choice = choose_fusion(y, tfidf, encoder)
        if self.encoder_weight is not None:
            choice.weight = self.encoder_weight
        if self.cascade is not None:
            choice.cascade = self.cascade
        self.fusion_ = choice

    def _out_of_fold(
        self, texts: list[str], labels: list[str], y: np.ndarray, E: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """TF-IDF probabilities and encoder log-probabilities of each appeal, from models that
        did not see it (``fusion_folds`` folds of the training appeals)."""
        k = len(self.classes_)
        tfidf, encoder = np.zeros((len(texts), k)), np.zeros((len(texts), k))
        folds = min(self.fusion_folds, int(np.bincount(y).min()))
        if folds < 2:
            tfidf[np.arange(len(y)), y] = 1.0
            return tfidf, encoder
        params = {n: getattr(self, n)
                  for n in ("C", "model", "temperature", "leaf_evidence", "glossary")}
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
        for train, test in splitter.split(np.zeros(len(y)), y):
            inner = HierarchicalClassifier(taxonomy=self.taxonomy, **params).fit(
                [texts[i] for i in train], [labels[i] for i in train])
            columns = [self.classes_.index(c) for c in inner.classes_]
            tfidf[np.ix_(test, columns)] = inner.predict_proba([texts[i] for i in test])
            head = EmbeddingHead().fit(E[train], y[train], k)
            encoder[test] = head.level1_log_proba(E[test])
        return tfidf, encoder

    # -- the encoder -------------------------------------------------------------------------
    @property
    def needs_encoder(self) -> bool:
        return getattr(self, "head_", None) is not None

    def attach_encoder(self, encoder: Any) -> HierarchicalClassifier:
        """Give a fitted (or unpickled) model the encoder it was trained with."""
        self.encoder_ = encoder
        return self

    def _fuse(
        self, texts: list[str], p1: np.ndarray, scores: np.ndarray,
    ) -> np.ndarray:
        """Fuse the encoder's evidence into ``p1`` and ``scores`` in place for the appeals the
        cascade sends to it; returns which appeals those were."""
        use = np.zeros(len(texts), dtype=bool)
        if not self.needs_encoder:
            return use
        encoder = getattr(self, "encoder_", None)
        if encoder is None:
            raise ModelNotReadyError("this model was trained with an encoder and none is "
                                     "attached: load it through models.artifacts.load_model")
        assert self.head_ is not None and self.fusion_ is not None
        unsure = p1.max(axis=1) < self.fusion_.cascade
        use = unsure | self._leaf_unsure(p1, scores)
        if not use.any():
            return use
        rows = np.flatnonzero(use)
        E = encoder.encode([texts[i] for i in rows])
        z = np.log(np.clip(p1[rows], 1e-12, None)) + self.fusion_.weight * self.head_.level1_log_proba(E)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        # the top level is fused where it was unsure (the cascade chosen for it); the leaves of
        # every appeal the encoder read take its leaf similarities, averaged with the words'
        # so that the scores keep the scale the leaf temperature is set for (summed, they made
        # the leaf confidence of those appeals overconfident: held-out fold 1, 2026-12-07, mean
        # confidence 0.777 against leaf accuracy 0.598 on the test set, 0.655 averaged; the
        # same leaves either way)
        p1[rows[unsure[rows]]] = (p / p.sum(axis=1, keepdims=True))[unsure[rows]]
        w = self.leaf_encoder_weight
        scores[rows] = (scores[rows] + w * self.head_.leaf_scores(E)) / (1.0 + w)
        return use

    def _leaf_unsure(self, p1: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Appeals whose best leaf under their best top level is below ``leaf_cascade`` (none
        when it is unset, as in versions saved before it existed).

        Sending them to the encoder too (held-out fold 1, the encoder fine-tuned 251 steps,
        2026-12-06): leaf accuracy test / development 0.557 / 0.540 off, 0.592 / 0.540 at 0.5,
        0.575 / 0.567 at 0.9; 79-96% of unseen appeals then go to the encoder, and 400 of them
        run at 30-37 appeals/s instead of 92 (README, preset accurate). Off by default."""
        threshold = getattr(self, "leaf_cascade", None)
        unsure = np.zeros(len(p1), dtype=bool)
        if threshold is None or not len(p1):
            return unsure
        top = p1.argmax(axis=1)
        for root in np.unique(top):
            rows = np.flatnonzero(top == root)
            _, p = self.leaves_.proba_within(scores[rows], int(root))
            unsure[rows] = p.max(axis=1) < threshold
        return unsure

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
        texts = list(texts)
        X = self.featurizer_.transform(texts)
        scores = self.leaves_.scores(X)
        p1 = self._level1_proba(X, scores)
        self._fuse(texts, p1, scores)
        return p1

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
        encoded = self._fuse(texts, p1, scores)
        if within is not None:
            self._confine(p1, scores, within)
        choices = [self._choose(p1[i], scores[i : i + 1]) for i in range(len(texts))]
        leaves = np.array([c[1] for c in choices])
        terms = self._matched_terms(X, leaves) if explain else [[] for _ in texts]
        out = [self._prediction(p1[i], *choices[i], terms[i]) for i in range(len(texts))]
        if self.needs_encoder:
            for prediction, used in zip(out, encoded, strict=True):
                prediction.explanation["encoder"] = bool(used)
        return out

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
            return True, f"一级分类把握不足（{below(conf1, self.review_threshold_level1)}）"
        if conf < self.review_threshold:
            return True, f"考核细目把握不足（{below(conf, self.review_threshold)}）"
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
            out.append(_readable_terms(list(dict.fromkeys(str(names[t]) for t in top)))[:k])
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
        state.pop("encoder_", None)  # loaded separately (models.artifacts), never pickled
        return state


__all__ = ["HierarchicalClassifier", "PathPrediction", "prepare"]
