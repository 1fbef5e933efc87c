"""Learned router: the unit that should handle an appeal, learnt from past tickets and their units.

History is past appeals with the unit that handled each (a department column, or the unit read
from the government's reply by ``triage.units.handling_unit``). A linear model over the appeal's
TF-IDF features learns:

- every unit with at least ``min_count`` past tickets, by its own name (``A7县教育局``);
- every rarer unit by its place-free body (``教育局``, ``街道办事处``, ``镇人民政府``): the back-off.
  A back-off answer is placed by the appeal's own address (``A3区`` + ``教育局``, or the street or
  town the appeal names + ``街道办事处``), so the answer is still a standard, placed unit name.

With ``pool_categories`` (the default) a second linear model learns the kind of unit (教育, 住建,
街道乡镇 ...: ``triage.units.unit_category``) from the same tickets, and ``p(unit) = p(kind) x
p(unit | kind)``; the lead is the likeliest unit of the likeliest kind. Many units share a kind, so
the kind model pools their evidence. Both models also see the kinds of unit the appeal itself names
(某某派出所, 某某社区: ``mention_weight``). Measured on the shared replies, cross-validated: see
``training/routing_benchmark.py``.

Features come from the router's own ``TextFeaturizer`` (``fit`` / ``predict_proba``), or from the
caller (``fit_features`` / ``predict_proba_features``), so that a service that has already
featurised a ticket for the classifier pays only for the linear model here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.svm import LinearSVC

from models.features import TextFeaturizer
from triage.errors import LabelError, ModelNotReadyError
from triage.text import clean
from triage.units import find_units, local_body, place_unit, relocate, unit_category

_CATEGORIES = ("公积金", "医保", "教育", "公安", "住建", "人社", "卫健", "交通", "生态环境", "市场监管",
               "自然资源规划", "城管", "水务", "商务", "文旅", "民政", "税务", "发改", "农业农村", "街道乡镇")


@dataclass
class RoutePrediction:
    """Where the router sends one appeal, how sure it is, and why."""

    lead: str
    co_handlers: list[str]
    confidence: float
    explanation: dict[str, Any] = field(default_factory=dict)


class HistoryRouter:
    """Handling unit from appeal text: a linear model over past units, backing off to unit kinds.

    Example:
        >>> router = HistoryRouter(min_count=1, min_df=1).fit(
        ...     ["学校乱收费", "小区噪音扰民", "学校补课"], ["市教育局", "A3区洋湖街道办事处", "市教育局"])
        >>> router.predict(["学校周末补课收费"])
        ['市教育局']
    """

    def __init__(
        self, *, min_count: int = 3, C: float = 1.0, margin_scale: float = 4.0,
        pool_categories: bool = True, mention_weight: float = 0.5, min_df: int = 2,
        co_ratio: float = 0.5, max_co: int = 2,
    ) -> None:
        self.min_count = min_count
        self.C = C
        self.margin_scale = margin_scale
        self.pool_categories = pool_categories
        self.mention_weight = mention_weight
        self.min_df = min_df
        self.co_ratio = co_ratio
        self.max_co = max_co

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, texts: Sequence[str], units: Sequence[str]) -> HistoryRouter:
        """Learn from past appeals (title + detail) and the standard name of their handling unit."""
        self._check_lengths(texts, units)
        self.featurizer_ = TextFeaturizer(min_df=self.min_df)
        X = self.featurizer_.fit_transform(list(texts))
        return self.fit_features(X, units, texts=texts)

    def fit_features(
        self, X: Any, units: Sequence[str], *, texts: Sequence[str] | None = None,
    ) -> HistoryRouter:
        """Learn from precomputed, L2-normalised features (e.g. the classifier's TF-IDF).

        ``texts``, when given, feed the units-named-in-the-appeal features and the explanation.
        """
        self._check_lengths(range(X.shape[0]), units)
        counts = Counter(units)
        labels = [u if counts[u] >= self.min_count else local_body(u) for u in units]
        self.classes_ = sorted(set(labels))
        # a unit of no known kind is its own kind: only units of a kind pool their evidence
        self.categories_ = [unit_category(c) or c for c in self.classes_]
        self.placed_ = np.array([local_body(c) != c for c in self.classes_])
        y = np.array([self.classes_.index(label) for label in labels])
        X = sp.csr_matrix(X)
        # the history kept feature-major: a ticket's few features pick their rows (fast nearest)
        self.history_T_ = X.T.tocsr()
        self.units_ = list(units)
        self.snippets_ = [clean(str(t))[:80] for t in texts] if texts is not None else []
        Xm = sp.hstack([X, self._mentions(texts, X.shape[0])], format="csr")
        self.kinds_ = sorted(set(self.categories_))
        self.class_kind_ = np.array([self.kinds_.index(k) for k in self.categories_])
        self.unit_weights_ = self._fit_linear(Xm, y)
        self.kind_weights_ = self._fit_linear(Xm, self.class_kind_[y]) if self.pool_categories \
            else None
        self.n_train_ = len(units)
        return self

    def _fit_linear(self, X: sp.csr_matrix, y: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Weights (features x classes, float32) and biases of a one-vs-rest linear SVM.

        Only the weights are kept: prediction is one sparse-dense product, without the
        estimator's per-call input checks (a ticket at a time must stay well under 5 ms).
        """
        n = int(y.max()) + 1
        if n < 2:
            return None
        svm = LinearSVC(C=self.C, random_state=0).fit(X, y)
        W, b = svm.coef_, svm.intercept_
        if n == 2:  # one margin, that of the second class
            W, b = np.vstack([-W, W]), np.concatenate([-b, b])
        return np.ascontiguousarray(W.T, dtype=np.float32), b.astype(np.float32)

    @staticmethod
    def _check_lengths(texts: Sequence[Any], units: Sequence[str]) -> None:
        if len(texts) != len(units):
            raise LabelError(f"{len(texts)} tickets but {len(units)} units: give one unit a ticket")
        if not len(units):
            raise LabelError("no past tickets to learn routing from: give at least one")
        blank = [i + 1 for i, u in enumerate(units) if not str(u).strip()]
        if blank:
            raise LabelError(f"tickets {blank[:5]} have no unit: drop them or name their unit")

    def _mentions(self, texts: Sequence[str] | None, n: int) -> np.ndarray:
        """The kinds of unit each appeal itself names (学校, 某某派出所, 某某社区 ...), by rank."""
        block = np.zeros((n, len(_CATEGORIES)), dtype=np.float32)
        if not self.mention_weight or texts is None:
            return block
        for i, text in enumerate(texts):
            kinds = [unit_category(u.name) for u in find_units(str(text)[:2000]) if u.kind != "self"]
            for rank, kind in enumerate(k for k in dict.fromkeys(kinds) if k):
                block[i, _CATEGORIES.index(kind)] = self.mention_weight / (1 + rank)
        return block

    # -- prediction ------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise ModelNotReadyError("this router is not fitted yet: call fit() with past tickets first")

    def _features(self, texts: Sequence[str]) -> sp.csr_matrix:
        self._check_fitted()
        if not hasattr(self, "featurizer_"):
            raise ModelNotReadyError("this router was fitted on precomputed features: "
                                     "call the *_features methods with the same features")
        return self.featurizer_.transform(list(texts))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probability of each class; columns follow ``classes_``."""
        texts = list(texts)
        if not texts:
            self._check_fitted()
            return np.zeros((0, len(self.classes_)))
        return self.predict_proba_features(self._features(texts), texts=texts)

    def predict_proba_features(self, X: Any, *, texts: Sequence[str] | None = None) -> np.ndarray:
        """``predict_proba`` on precomputed features (``texts`` as given to ``fit_features``)."""
        self._check_fitted()
        X = sp.csr_matrix(X)
        mentions = self._mentions(texts, X.shape[0])
        p = self._softmax(self.unit_weights_, X, mentions, len(self.classes_))
        if self.kind_weights_ is None:
            return p
        # p(unit) = p(kind) x p(unit | kind): the kind model pools the evidence of its units
        kinds = self._softmax(self.kind_weights_, X, mentions, len(self.kinds_))
        within = np.zeros_like(kinds)
        np.add.at(within.T, self.class_kind_, p.T)
        return kinds[:, self.class_kind_] * p / within[:, self.class_kind_]

    def _softmax(self, weights: tuple[np.ndarray, np.ndarray] | None, X: sp.csr_matrix,
                 mentions: np.ndarray, n: int) -> np.ndarray:
        """Margins to probabilities by a fixed softmax scale (cheap, monotone)."""
        if weights is None:
            return np.ones((X.shape[0], n))
        W, b = weights
        z = np.asarray(X @ W[: X.shape[1]]) + mentions @ W[X.shape[1] :] + b
        z = z * self.margin_scale
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def _order(self, p: np.ndarray) -> tuple[list[int], str, float]:
        """Class indices, lead first; the lead's kind of unit and that kind's pooled probability."""
        order = [int(j) for j in np.argsort(-p)]
        if not self.pool_categories:
            kind = self.categories_[order[0]]
            return order, kind, float(p[[j for j in order if self.categories_[j] == kind]].sum())
        mass: Counter[str] = Counter()
        for j, kind in enumerate(self.categories_):
            mass[kind] += float(p[j])
        kind = max(mass, key=mass.__getitem__)
        lead = next(j for j in order if self.categories_[j] == kind)
        return [lead] + [j for j in order if j != lead], kind, mass[kind]

    def _name(self, j: int, text: str) -> str:
        """Class ``j`` as a unit name for this appeal: back-off classes take the appeal's place."""
        label = self.classes_[j]
        return relocate(label, text) if self.placed_[j] else place_unit(label, text)

    def predict_top(self, texts: Sequence[str], k: int = 3) -> list[list[tuple[str, float]]]:
        """The ``k`` likeliest units of each appeal, lead first, with their probabilities."""
        texts = list(texts)
        return self._top(self.predict_proba(texts), texts, k)

    def _top(self, P: np.ndarray, texts: Sequence[str], k: int) -> list[list[tuple[str, float]]]:
        out = []
        for p, text in zip(P, texts, strict=True):
            named: dict[str, float] = {}
            for j in self._order(p)[0]:
                name = self._name(j, text)
                named[name] = named.get(name, 0.0) + float(p[j])
                if len(named) > k:
                    break
            out.append([(u, round(q, 4)) for u, q in list(named.items())[:k]])
        return out

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The lead unit of each appeal (a standard name with its place)."""
        return [top[0][0] for top in self.predict_top(texts, k=1)]

    def predict_features(self, X: Any, texts: Sequence[str]) -> list[str]:
        """``predict`` on precomputed features; ``texts`` give the place of back-off answers."""
        return [t[0][0] for t in self._top(self.predict_proba_features(X, texts=texts), texts, 1)]

    def route(self, texts: Sequence[str], *, k_similar: int = 3) -> list[RoutePrediction]:
        """Lead unit, co-handlers, confidence and an explanation (kind, similar past tickets)."""
        texts = list(texts)
        if not texts:
            self._check_fitted()
            return []
        return self.route_features(self._features(texts), texts, k_similar=k_similar)

    def route_features(
        self, X: Any, texts: Sequence[str], *, k_similar: int = 3,
    ) -> list[RoutePrediction]:
        """``route`` on precomputed features: what routing adds to an already featurised ticket."""
        texts = list(texts)
        P = self.predict_proba_features(X, texts=texts)
        similar = self.nearest_features(X, k=k_similar)
        return [self._route(p, text, near) for p, text, near in zip(P, texts, similar, strict=True)]

    def _route(self, p: np.ndarray, text: str, near: list[tuple[int, float]]) -> RoutePrediction:
        order, kind, mass = self._order(p)
        lead = self._name(order[0], text)
        co = [n for n in dict.fromkeys(self._name(j, text) for j in order[1:]
                                       if p[j] >= self.co_ratio * p[order[0]]) if n != lead]
        return RoutePrediction(
            lead=lead, co_handlers=co[: self.max_co], confidence=round(float(p[order[0]]), 4),
            explanation={
                "unit_kind": kind, "unit_kind_confidence": round(mass, 4),
                "basis": ("past tickets of this unit" if self.placed_[order[0]]
                          else "past tickets of this kind of unit, placed by the appeal's address"),
                "similar_tickets": [self._describe(i, s) for i, s in near],
            },
        )

    def _describe(self, i: int, similarity: float) -> dict[str, Any]:
        item: dict[str, Any] = {"index": i, "unit": self.units_[i], "similarity": round(similarity, 4)}
        if self.snippets_:
            item["text"] = self.snippets_[i]
        return item

    def nearest(self, texts: Sequence[str], k: int = 3) -> list[list[tuple[int, float]]]:
        """For each appeal, the ``k`` most similar past tickets: (index into the history, cosine)."""
        texts = list(texts)
        if not texts:
            self._check_fitted()
            return []
        return self.nearest_features(self._features(texts), k=k)

    def nearest_features(self, X: Any, k: int = 3) -> list[list[tuple[int, float]]]:
        """``nearest`` on precomputed features (rows L2-normalised, as ``TextFeaturizer`` gives)."""
        self._check_fitted()
        S = (sp.csr_matrix(X) @ self.history_T_).toarray()
        k = min(k, S.shape[1])
        out = []
        for row in S:
            top = np.argpartition(-row, k - 1)[:k] if k else []
            out.append([(int(i), round(float(row[i]), 4)) for i in sorted(top, key=lambda i: -row[i])])
        return out


__all__ = ["HistoryRouter", "RoutePrediction"]
