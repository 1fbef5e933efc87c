"""Learned router: the unit that should handle an appeal, learnt from past tickets and their units.

History is past appeals with the unit that handled each (a department column, or the unit read
from the government's reply by ``triage.reply_units.handling_unit``) and, from replies, the kind
of unit the reply names first (``triage.unit_kinds.reply_kind``: the official reading routing is
measured by). Two linear models over the appeal's TF-IDF features learn:

- the unit: every unit with at least ``min_count`` past tickets by its own name (``A7县教育局``),
  every rarer unit by its place-free body (``教育局``, ``街道办事处``: the back-off), placed by the
  appeal's own address (``A3区`` + ``教育局``, or the street or town the appeal names);
- the kind of unit (教育, 住建, 街道乡镇 ...), from the reply's own reading where there is one
  (a reply that names a kind but no unit ``handling_unit`` can read still teaches the kind), else
  from the unit's name. ``p(unit) = p(kind) x p(unit | kind)``; the lead is the likeliest unit of
  the likeliest kind, and a kind no past unit has gets its standard body (``kind_unit``: 民政 ->
  ``A3区民政局``), so the lead is always a placed unit name.

Units are told apart by their standard names (``triage.units.unit_key``: 市城市管理局 and 市城管局
are one unit), and answered in the centre's own words: a unit the history names, in any spelling,
comes out as the spelling the history used most for it (市城市管理局); only units the history never
named (a kind's body, a rare unit's body placed by the appeal) keep the standard name. A city the
history never names by its letter is the centre's own: with a history of 市城市管理局, an appeal
from A市 still goes to 市城市管理局, not to an A市城管局 the centre never heard of.

Besides the TF-IDF features, both models see the kinds of unit the appeal itself names (某某派出所,
某某社区: ``mention_weight``) and the kinds whose duties it speaks of (宅基地, 低保: ``topic_weight``,
``triage.unit_kinds.KIND_TOPICS``); the kind's margins also get a vote of the ``k_vote`` most
similar past tickets (``vote_weight``).

Measured on the shared replies (``training/routing_benchmark.py``: 1,942 appeals, 1,016 of them
with a reply that names a typed unit; 5 folds grouped by identical text; gold = the shared
``unit_type`` of the reply), the lead unit's kind is right on 0.626 of held-out appeals (0.624
before a lead's name was checked by the same reading: ``keep_kind``). Before (kinds from
``handling_unit`` only, no duty words, no vote, mention_weight 0.5): 0.596. Taking one part out
(measured at 0.624): kinds from ``handling_unit`` only 0.608, no duty words 0.609, no vote 0.612,
mention_weight 0.5 0.620. Always 街道乡镇: 0.325; TF-IDF + LinearSVC on the gold kinds: 0.579. C
(0.5 to 2) and k_vote (10 or 20) change it by 0.001; class weights, a calibrated stacker and title
features did not help (the benchmark's docstring). Rare kinds stay weak (农业农村, 民政, 水务,
商务, 税务: recall 0 on 4 to 14 appeals each); 街道乡镇 is over-predicted (recall 0.85, precision
0.59). One ticket at a time on 2 shared cores: routing adds 1.3 to 2.3 ms on features the caller
has computed; 3.7 to 4.7 ms end to end with the router's own featurising (up to 6 ms when the
cores are busy).

Features come from the router's own ``TextFeaturizer`` (``fit`` / ``predict_proba``), or from the
caller (``fit_features`` / ``predict_proba_features``), so that a service that has already
featurised a ticket for the classifier pays only for the linear models here.
"""

from __future__ import annotations

import re
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
from triage.unit_kinds import KIND_BODY, KINDS, topic_kinds, unit_category
from triage.unit_mentions import find_units
from triage.units import keep_kind, kind_unit, local_body, place_unit, relocate, unit_key

_CHUNK = 256  # tickets a block when comparing with the history (bounded memory for big batches)
_CITY = re.compile(r"[A-Z]市")  # a city by its letter code (A市); 市 alone is the centre's own


@dataclass
class RoutePrediction:
    """Where the router sends one appeal, how sure it is, and why."""

    lead: str
    co_handlers: list[str]
    confidence: float
    explanation: dict[str, Any] = field(default_factory=dict)


@dataclass
class RankedUnits:
    """The likeliest units of one appeal, lead first, and how sure the router is of the lead's
    kind of unit (the pooled probability of every unit of that kind: a far better guide to
    whether the lead is right than the lead's own share, see ``training/routing_benchmark.py``)."""

    units: list[tuple[str, float]]
    kind: str
    kind_confidence: float


class HistoryRouter:
    """Handling unit from appeal text: a linear model over past units, pooled by kinds of unit.

    Example:
        >>> router = HistoryRouter(min_count=1, min_df=1).fit(
        ...     ["学校乱收费", "小区噪音扰民", "学校补课"], ["市教育局", "A3区洋湖街道办事处", "市教育局"])
        >>> router.predict(["学校周末补课收费"])
        ['市教育局']
    """

    def __init__(
        self, *, min_count: int = 3, C: float = 1.0, margin_scale: float = 4.0,
        pool_categories: bool = True, mention_weight: float = 1.0, topic_weight: float = 0.3,
        k_vote: int = 10, vote_weight: float = 0.5, min_df: int = 2, co_ratio: float = 0.5,
        max_co: int = 2,
    ) -> None:
        self.min_count = min_count
        self.C = C
        self.margin_scale = margin_scale
        self.pool_categories = pool_categories
        self.mention_weight = mention_weight
        self.topic_weight = topic_weight
        self.k_vote = k_vote
        self.vote_weight = vote_weight
        self.min_df = min_df
        self.co_ratio = co_ratio
        self.max_co = max_co

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle; a router saved before it learnt kinds from replies keeps routing as it did
        (no duty words, no vote of similar tickets: its weights know only the named units)."""
        # a router saved before it kept the history's spellings answers in standard names
        state = {"spellings_": {}, "cities_": frozenset(), **state}
        if "classes_" in state and "n_units_" not in state:
            state = {"topic_weight": 0.0, "k_vote": 0, "vote_weight": 0.0, **state,
                     "n_units_": len(state["classes_"]),
                     "row_kinds_": [""] * len(state["units_"]),
                     "history_kind_": np.full(len(state["units_"]), -1)}
        self.__dict__.update(state)

    # -- fitting ---------------------------------------------------------------------------
    def fit(
        self, texts: Sequence[str], units: Sequence[str | None], *,
        kinds: Sequence[str | None] | None = None,
    ) -> HistoryRouter:
        """Learn from past appeals (title + detail) and the name of their handling unit.

        Names may be in any spelling (市城市管理局, 市城管局): the router learns units by their
        standard names and answers in the spelling the history used most for each.

        ``kinds``, when given, is the kind of unit each ticket's reply names first
        (``triage.unit_kinds.reply_kind``; ``""`` or None where it names none): the kind model
        learns from it instead of the unit's name. A ticket with a kind may have no unit (None).
        """
        self._check_lengths(texts, units, kinds)
        self.featurizer_ = TextFeaturizer(min_df=self.min_df)
        try:
            X = self.featurizer_.fit_transform(list(texts))
        except ValueError as exc:  # no term in min_df tickets: an empty vocabulary
            raise LabelError(
                f"the {len(texts)} past tickets share no word or character (each term must be "
                f"in at least {self.min_df} tickets): routing cannot be learnt from them; give "
                "more past tickets") from exc
        return self.fit_features(X, units, texts=texts, kinds=kinds)

    def fit_features(
        self, X: Any, units: Sequence[str | None], *, texts: Sequence[str] | None = None,
        kinds: Sequence[str | None] | None = None,
    ) -> HistoryRouter:
        """Learn from precomputed, L2-normalised features (e.g. the classifier's TF-IDF).

        ``texts``, when given, feed the units-named-in-the-appeal and duty-word features and the
        explanation. ``kinds`` as in ``fit``.
        """
        self._check_lengths(range(X.shape[0]), units, kinds)
        units = [str(u).strip() if u is not None and str(u).strip() else None for u in units]
        given = [str(k) if k else "" for k in kinds] if kinds is not None else [""] * len(units)
        routed = [i for i, u in enumerate(units) if u]
        keys = {i: unit_key(str(units[i])) for i in routed}
        self._learn_spellings(units, keys)
        counts = Counter(keys.values())
        labels = {i: (keys[i] if counts[keys[i]] >= self.min_count else local_body(keys[i]))
                  for i in routed}
        # a unit of no known kind is its own kind: only units of a kind pool their evidence
        kind_of = {c: unit_category(c) or c for c in set(labels.values())}
        row_kinds = [given[i] or (kind_of[labels[i]] if i in labels else "")
                     for i in range(len(units))]
        unit_classes = sorted(set(labels.values()))
        # a kind that replies name but no past unit has: its standard body, placed by the appeal
        missing = sorted(set(row_kinds) - set(kind_of.values()) - {""}) if self.pool_categories \
            else []
        self.classes_ = unit_classes + [KIND_BODY.get(k, k) for k in missing]
        self.n_units_ = len(unit_classes)
        self.categories_ = [kind_of[c] for c in unit_classes] + missing
        self.placed_ = np.array([local_body(c) != c for c in unit_classes] + [False] * len(missing))
        self.kinds_ = sorted(set(self.categories_))
        self.class_kind_ = np.array([self.kinds_.index(k) for k in self.categories_])
        X = sp.csr_matrix(X)
        # the history kept feature-major: a ticket's few features pick their rows (fast nearest)
        self.history_T_ = X.T.tocsr()
        self.history_kind_ = np.array([self.kinds_.index(k) if k in self.kinds_ else -1
                                       for k in row_kinds])
        self.units_ = units
        self.row_kinds_ = row_kinds
        self.snippets_ = [clean(str(t))[:80] for t in texts] if texts is not None else []
        Xm = sp.hstack([X, self._extra(texts, X.shape[0])], format="csr")
        y = np.array([unit_classes.index(labels[i]) for i in routed], dtype=int)
        self.unit_weights_ = self._fit_linear(Xm[routed], y, self.n_units_) if routed else None
        self.kind_weights_ = None
        if self.pool_categories:
            known = [i for i, k in enumerate(row_kinds) if k]
            self.kind_weights_ = self._fit_linear(
                Xm[known], np.array([self.kinds_.index(row_kinds[i]) for i in known], dtype=int),
                len(self.kinds_))
        self.n_train_ = len(units)
        return self

    def _learn_spellings(self, units: Sequence[str | None], keys: dict[int, str]) -> None:
        """The spelling the history used most for each unit (the first of a tie), and the cities
        it names by their letter."""
        used = Counter((key, str(units[i])) for i, key in keys.items())
        self.spellings_: dict[str, str] = {}
        for (key, spelling), _ in used.most_common():
            self.spellings_.setdefault(key, spelling)
        self.cities_ = frozenset(m.group(0) for key in self.spellings_
                                 for m in _CITY.finditer(key))

    def _fit_linear(self, X: sp.csr_matrix, y: np.ndarray, n: int,
                    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Weights (features x n classes, float32) and biases of a one-vs-rest linear SVM.

        Only the weights are kept: prediction is one sparse-dense product, without the
        estimator's per-call input checks (a ticket at a time must stay well under 5 ms). A
        class with no example (possible only for kinds) gets no weight and a low bias.
        """
        present = np.unique(y)
        if len(present) < 2:
            return None
        svm = LinearSVC(C=self.C, random_state=0).fit(X, y)
        W, b = svm.coef_, svm.intercept_
        if len(present) == 2:  # one margin, that of the second class
            W, b = np.vstack([-W, W]), np.concatenate([-b, b])
        full_W = np.zeros((n, X.shape[1]), dtype=np.float32)
        full_b = np.full(n, -1.0, dtype=np.float32)
        full_W[present], full_b[present] = W, b
        return np.ascontiguousarray(full_W.T), full_b

    @staticmethod
    def _check_lengths(texts: Sequence[Any], units: Sequence[str | None],
                       kinds: Sequence[str | None] | None = None) -> None:
        if len(texts) != len(units):
            raise LabelError(f"{len(texts)} tickets but {len(units)} units: give one unit a ticket")
        if kinds is not None and len(kinds) != len(units):
            raise LabelError(f"{len(units)} tickets but {len(kinds)} kinds: give one kind a ticket "
                             "(empty where the reply names none)")
        if not len(units):
            raise LabelError("no past tickets to learn routing from: give at least one")
        has_kind = [bool(k) for k in kinds] if kinds is not None else [False] * len(units)
        blank = [i + 1 for i, u in enumerate(units)
                 if (u is None or not str(u).strip()) and not has_kind[i]]
        if blank:
            raise LabelError(f"tickets {blank[:5]} have no unit: drop them or name their unit")

    def _extra(self, texts: Sequence[str] | None, n: int) -> np.ndarray:
        """Features beside the TF-IDF: the kinds of unit each appeal names (学校, 某某派出所 ...,
        by rank) and the kinds whose duties it speaks of (宅基地, 低保 ...)."""
        block = np.zeros((n, 2 * len(KINDS)), dtype=np.float32)
        if texts is None:
            return block
        for i, text in enumerate(texts):
            text = str(text)[:2000]
            if self.mention_weight:
                named = [unit_category(u.name) for u in find_units(text) if u.kind != "self"]
                for rank, kind in enumerate(k for k in dict.fromkeys(named) if k):
                    block[i, KINDS.index(kind)] = self.mention_weight / (1 + rank)
            if self.topic_weight:
                for kind, count in topic_kinds(text).items():
                    block[i, len(KINDS) + KINDS.index(kind)] = self.topic_weight * np.log1p(count)
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
        k = self.k_vote if self.vote_weight and self.kind_weights_ is not None else 0
        return self._proba(X, texts, self._neighbours(X, k))

    def _proba(self, X: sp.csr_matrix, texts: Sequence[str] | None,
               near: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        extra = self._extra(texts, X.shape[0])
        p = np.zeros((X.shape[0], len(self.classes_)))
        if self.n_units_:
            p[:, : self.n_units_] = self._softmax(self._margins(self.unit_weights_, X, extra,
                                                                self.n_units_))
        if self.kind_weights_ is None:
            return p
        p[:, self.n_units_ :] = 1.0  # a kind's standard body is the whole of its kind
        # p(unit) = p(kind) x p(unit | kind): the kind model pools the evidence of its units
        kinds = self._softmax(self._margins(self.kind_weights_, X, extra, len(self.kinds_))
                              + self.vote_weight * self._vote(*near))
        within = np.zeros_like(kinds)
        np.add.at(within.T, self.class_kind_, p.T)
        return kinds[:, self.class_kind_] * p / np.maximum(within[:, self.class_kind_], 1e-12)

    @staticmethod
    def _margins(weights: tuple[np.ndarray, np.ndarray] | None, X: sp.csr_matrix,
                 extra: np.ndarray, n: int) -> np.ndarray:
        if weights is None:
            return np.zeros((X.shape[0], n))
        W, b = weights
        # the extra block as wide as the weights know (a router saved earlier knew fewer)
        return np.asarray(X @ W[: X.shape[1]]) + extra[:, : W.shape[0] - X.shape[1]] \
            @ W[X.shape[1] :] + b

    def _softmax(self, z: np.ndarray) -> np.ndarray:
        """Margins to probabilities by a fixed softmax scale (cheap, monotone)."""
        z = z * self.margin_scale
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def _vote(self, index: np.ndarray, similarity: np.ndarray) -> np.ndarray:
        """The kinds of the most similar past tickets, weighted by similarity, summing to 1."""
        votes = np.zeros((index.shape[0], len(self.kinds_)))
        if index.shape[1] == 0:
            return votes
        kinds = self.history_kind_[index]
        weight = np.where(kinds >= 0, np.maximum(similarity, 0.0), 0.0)
        rows = np.repeat(np.arange(index.shape[0]), index.shape[1])
        np.add.at(votes, (rows, np.maximum(kinds, 0).ravel()), weight.ravel())
        return votes / np.maximum(votes.sum(axis=1, keepdims=True), 1e-12)

    def _neighbours(self, X: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices and cosines of each ticket's ``k`` most similar past tickets, likeliest first
        (rows L2-normalised, as ``TextFeaturizer`` gives)."""
        k = min(k, self.history_T_.shape[1])
        index = np.zeros((X.shape[0], k), dtype=int)
        similarity = np.zeros((X.shape[0], k))
        if not k:
            return index, similarity
        for start in range(0, X.shape[0], _CHUNK):
            S = (X[start : start + _CHUNK] @ self.history_T_).toarray()
            top = np.argpartition(-S, k - 1, axis=1)[:, :k]
            values = np.take_along_axis(S, top, axis=1)
            order = np.argsort(-values, axis=1, kind="stable")
            index[start : start + len(S)] = np.take_along_axis(top, order, axis=1)
            similarity[start : start + len(S)] = np.take_along_axis(values, order, axis=1)
        return index, similarity

    def _order(self, p: np.ndarray) -> tuple[list[int], str, float]:
        """Class indices, lead first; the lead's kind of unit and that kind's pooled probability."""
        order = [int(j) for j in np.argsort(-p, kind="stable")]
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
        """Class ``j`` as a unit name for this appeal: back-off classes take the appeal's place;
        a unit the history names comes out in the history's spelling."""
        label, kind = self.classes_[j], self.categories_[j]
        if j >= self.n_units_:
            return self._spell(kind_unit(kind, text))
        if self.placed_[j]:
            return self._spell(relocate(label, text))
        return self._spell(keep_kind(place_unit(label, text), label, unit_category(label), text))

    def _spell(self, name: str) -> str:
        """``name`` as the history spelled that unit most; as it is when the history never named
        it. A city the history never names by its letter (A市) is the centre's own (市)."""
        spelled = self.spellings_.get(name) or self.spellings_.get(unit_key(name))
        if spelled:
            return spelled
        city = _CITY.match(name)
        if city and city.group(0) not in self.cities_:
            return self.spellings_.get(unit_key(name[1:]), name)
        return name

    def predict_top(self, texts: Sequence[str], k: int = 3) -> list[list[tuple[str, float]]]:
        """The ``k`` likeliest units of each appeal, lead first, with their probabilities."""
        return [ranked.units for ranked in self.rank(texts, k)]

    def rank(self, texts: Sequence[str], k: int = 3) -> list[RankedUnits]:
        """``predict_top`` with the lead's kind of unit and the router's confidence in it."""
        texts = list(texts)
        return self._top(self.predict_proba(texts), texts, k)

    def _top(self, P: np.ndarray, texts: Sequence[str], k: int) -> list[RankedUnits]:
        out = []
        for p, text in zip(P, texts, strict=True):
            order, kind, mass = self._order(p)
            named: dict[str, float] = {}
            for j in order:
                name = self._name(j, text)
                named[name] = named.get(name, 0.0) + float(p[j])
                if len(named) > k:
                    break
            out.append(RankedUnits([(u, round(q, 4)) for u, q in list(named.items())[:k]], kind,
                                   round(mass, 4)))
        return out

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The lead unit of each appeal (the history's spelling; a standard name with its place
        for a unit the history never named)."""
        return [top[0][0] for top in self.predict_top(texts, k=1)]

    def predict_features(self, X: Any, texts: Sequence[str]) -> list[str]:
        """``predict`` on precomputed features; ``texts`` give the place of back-off answers."""
        return [ranked.units[0][0] for ranked in self.rank_features(X, texts, k=1)]

    def rank_features(self, X: Any, texts: Sequence[str], k: int = 3) -> list[RankedUnits]:
        """``rank`` on precomputed features."""
        texts = list(texts)
        return self._top(self.predict_proba_features(X, texts=texts), texts, k)

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
        self._check_fitted()
        texts = list(texts)
        X = sp.csr_matrix(X)
        index, similarity = self._neighbours(X, max(k_similar, self.k_vote))
        P = self._proba(X, texts, (index[:, : self.k_vote], similarity[:, : self.k_vote]))
        return [self._route(p, text, list(zip(i[:k_similar].tolist(), s[:k_similar].tolist(),
                                              strict=True)))
                for p, text, i, s in zip(P, texts, index, similarity, strict=True)]

    def _route(self, p: np.ndarray, text: str, near: list[tuple[int, float]]) -> RoutePrediction:
        order, kind, mass = self._order(p)
        lead = self._name(order[0], text)
        co = [n for n in dict.fromkeys(self._name(j, text) for j in order[1:]
                                       if p[j] >= self.co_ratio * p[order[0]]) if n != lead]
        basis = ("past tickets of this unit" if self.placed_[order[0]]
                 else "past tickets of this kind of unit, placed by the appeal's address")
        return RoutePrediction(
            lead=lead, co_handlers=co[: self.max_co], confidence=round(float(p[order[0]]), 4),
            explanation={
                "unit_kind": kind, "unit_kind_confidence": round(mass, 4), "basis": basis,
                "similar_tickets": [self._describe(i, s) for i, s in near],
            },
        )

    def _describe(self, i: int, similarity: float) -> dict[str, Any]:
        item: dict[str, Any] = {"index": i, "unit": self.units_[i], "similarity": round(similarity, 4)}
        if self.row_kinds_[i]:
            item["unit_kind"] = self.row_kinds_[i]
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
        index, similarity = self._neighbours(sp.csr_matrix(X), k)
        return [[(int(i), round(float(s), 4)) for i, s in zip(row_i, row_s, strict=True)]
                for row_i, row_s in zip(index, similarity, strict=True)]


__all__ = ["HistoryRouter", "RankedUnits", "RoutePrediction"]
