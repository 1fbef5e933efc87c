"""Choosing the leaf (考核细目) under a top-level category by reading the appeal.

Each leaf gets a prototype vector in the appeal feature space, built from what is known of it:
its name, description, keywords and the names of its intermediate ancestors; the centroid of its
labelled examples when it has any; and, for leaves with no examples, the centroid of appeals of the
same top level that resemble it most (one round of self-training). An appeal's leaf scores are
cosine similarities to those prototypes; a softmax within the top level turns them into
probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize as l2_normalize

from models.features import TextFeaturizer
from triage.glossary import Glossary
from triage.taxonomy import Node, Taxonomy

OTHER = "其他"


def describe_leaf(leaf: Node, glossary: Glossary | None = None) -> str:
    """The text that stands for a leaf: its name twice, the middle levels, description, keywords,
    and the glossary's words for the leaf and for its middle levels."""
    middle = " ".join(n for n in leaf.path[1:-1] if n != OTHER)
    name = "" if leaf.name == OTHER else f"{leaf.name} {leaf.name}"
    words = list(leaf.keywords)
    if glossary is not None:
        for depth in range(len(leaf.path), 1, -1):
            words.extend(glossary.keywords_for(leaf.path[:depth]))
    words = list(dict.fromkeys(words))
    return " ".join(p for p in (name, middle, leaf.description, " ".join(words)) if p)


class LeafScorer:
    """Prototype scorer over the leaves of the supported top-level categories.

    Example:
        >>> scorer = LeafScorer().fit(X, constraints, taxonomy=tax, roots=["教育"], featurizer=f)
        >>> scorer.proba(X_new, root_index=0)  # doctest: +SKIP
    """

    def __init__(
        self, *, temperature: float = 0.02, meta_weight: float = 1.0,
        example_weight: float = 1.0, pseudo_weight: float = 1.5, pseudo_share: float = 1.0,
        max_terms: int | None = 3000, rounds: int = 2, other_penalty: float = 0.04,
    ) -> None:
        self.temperature = temperature
        self.meta_weight = meta_weight
        self.example_weight = example_weight
        self.pseudo_weight = pseudo_weight
        self.pseudo_share = pseudo_share
        self.max_terms = max_terms
        self.rounds = rounds
        self.other_penalty = other_penalty

    def fit(
        self, X: sp.csr_matrix, constraints: Sequence[str], *, taxonomy: Taxonomy,
        roots: Sequence[str], featurizer: TextFeaturizer, glossary: Glossary | None = None,
        guide: tuple[np.ndarray, np.ndarray] | None = None, guide_weight: float = 3.0,
    ) -> LeafScorer:
        """Build prototypes; ``constraints[i]`` is the deepest labelled node of appeal ``i``.

        ``guide``: a sentence encoder's embeddings of the appeals and of the leaves' descriptions
        (unit rows), at training time only: each appeal's pseudo leaf is then chosen by its TF-IDF
        similarity plus ``guide_weight`` × its embedding's similarity to the leaf (to the leaf's
        description in the first round; to the description plus the mean embedding of the
        appeals assigned to it in the next). The prototypes stay TF-IDF vectors: serving never
        needs the encoder for them. Measured with the packaged e5 untuned (2026-12-07, leaf
        accuracy test / development): 0.569 / 0.527 without, 0.592 / 0.580 at weight 3 (20
        hand-labelled appeals gained, 8 lost, of 324); weights 2 to 8 all 0.56-0.59 on
        development. Within an appeal's top level the spread of e5 cosines is about half that
        of TF-IDF ones, so at 3 the encoder pulls a little more than the words.
        """
        leaves = [leaf for root in roots for leaf in taxonomy.leaves(root)]
        self.leaf_keys_ = [leaf.key for leaf in leaves]
        self.leaf_root_ = np.array([list(roots).index(leaf.path[0]) for leaf in leaves])
        self.is_other_ = np.array([leaf.name == OTHER for leaf in leaves])
        self.n_examples_ = np.zeros(len(leaves), dtype=np.int64)
        meta = featurizer.transform([describe_leaf(leaf, glossary) for leaf in leaves])
        allowed = _allowed(constraints, self.leaf_keys_)
        protos = meta
        guide_protos = guide[1] if guide is not None else None
        rounds = max(1, self.rounds)
        for round_ in range(rounds):
            gold, pseudo = self._assign(X, protos, allowed, guide, guide_protos, guide_weight)
            if guide is not None and round_ + 1 < rounds:  # the next round's guide
                guide_protos = _guide_prototypes(guide[0], guide[1], np.where(gold >= 0, gold, pseudo))
            protos = self.meta_weight * meta
            protos = protos + self.example_weight * _centroids(X, gold, len(leaves))
            protos = protos + self.pseudo_weight * _centroids(X, pseudo, len(leaves))
            protos = l2_normalize(_top_terms(sp.csr_matrix(protos, dtype=np.float32), self.max_terms))
        self.n_examples_ = np.bincount(gold[gold >= 0], minlength=len(leaves))
        self.prototypes_ = protos
        # Each training appeal's leaf (labelled, else the confident pseudo leaf, else -1): the
        # encoder's leaf prototypes are built from it (``models.fusion``). Not kept in the model.
        self.assignment_ = np.where(gold >= 0, gold, pseudo)
        return self

    def _assign(
        self, X: sp.csr_matrix, meta: sp.csr_matrix, allowed: sp.csr_matrix,
        guide: tuple[np.ndarray, np.ndarray] | None = None,
        guide_protos: np.ndarray | None = None, guide_weight: float = 0.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Gold leaf per appeal (-1 if none) and a pseudo leaf for the confident rest (the
        appeals that share a word with some allowed leaf; the guide, if any, helps choose it)."""
        n = X.shape[0]
        gold = np.full(n, -1)
        exact = np.asarray(allowed.sum(axis=1)).ravel() == 1
        gold[exact] = allowed[exact].indices if exact.any() else gold[exact]
        outside = allowed.toarray() == 0
        scores = (X @ meta.T).toarray()
        scores[outside] = -1.0
        best = scores.argmax(axis=1)
        top = scores[np.arange(n), best]
        if guide is not None and guide_protos is not None:
            combined = scores + guide_weight * (guide[0] @ guide_protos.T)
            combined[outside] = -np.inf
            best = combined.argmax(axis=1)
        pseudo = np.where(~exact & (top > 0), best, -1)
        for leaf in np.unique(pseudo[pseudo >= 0]):
            rows = np.flatnonzero(pseudo == leaf)
            keep = max(1, int(round(len(rows) * self.pseudo_share)))
            pseudo[rows[np.argsort(-top[rows])[keep:]]] = -1
        return gold, pseudo

    def scores(self, X: sp.csr_matrix) -> np.ndarray:
        """Cosine similarity of each appeal to each leaf prototype (n × leaves), less
        ``other_penalty`` for leaves named 其他: a dispatcher picks 其他 only when no named
        sibling fits (on the development leaf set, 0.03–0.05 took leaf accuracy from 0.500 to
        0.527–0.533; 0.08 lost again)."""
        scores = (X @ self.prototypes_.T).toarray()
        penalty = getattr(self, "other_penalty", 0.0)  # versions saved before it had none
        if penalty and hasattr(self, "is_other_"):
            scores[:, self.is_other_] -= penalty
        return scores

    def proba_within(self, scores: np.ndarray, root_index: int) -> tuple[np.ndarray, np.ndarray]:
        """Leaf indices under one top level and their softmax probabilities per appeal."""
        columns = np.flatnonzero(self.leaf_root_ == root_index)
        z = scores[:, columns] / self.temperature
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return columns, p / p.sum(axis=1, keepdims=True)


def _allowed(constraints: Sequence[str], leaf_keys: list[str]) -> sp.csr_matrix:
    """A sparse 0/1 matrix: which leaves lie under each appeal's labelled node."""
    by_prefix: dict[str, list[int]] = {}
    for j, key in enumerate(leaf_keys):
        parts = key.split("/")
        for depth in range(1, len(parts) + 1):
            by_prefix.setdefault("/".join(parts[:depth]), []).append(j)
    rows, cols = [], []
    for i, key in enumerate(constraints):
        for j in by_prefix.get(key, []):
            rows.append(i)
            cols.append(j)
    data = np.ones(len(rows), dtype=np.int8)
    return sp.csr_matrix((data, (rows, cols)), shape=(len(constraints), len(leaf_keys)))


def _guide_prototypes(E: np.ndarray, E_leaves: np.ndarray, assignment: np.ndarray) -> np.ndarray:
    """Each leaf's description embedding plus 1.5 × the unit mean of its appeals' embeddings."""
    sums = np.zeros_like(E_leaves)
    rows = np.flatnonzero(assignment >= 0)
    np.add.at(sums, assignment[rows], E[rows])
    return l2_normalize(E_leaves + 1.5 * l2_normalize(sums))


def _centroids(X: sp.csr_matrix, assignment: np.ndarray, n_leaves: int) -> sp.csr_matrix:
    """Unit-length mean of the appeals assigned to each leaf (zero rows where none)."""
    rows = np.flatnonzero(assignment >= 0)
    onehot = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (assignment[rows], rows)), shape=(n_leaves, X.shape[0])
    )
    return l2_normalize(onehot @ X)


def _top_terms(matrix: sp.csr_matrix, k: int | None) -> sp.csr_matrix:
    """Keep the ``k`` largest weights of each row (a prototype is its strongest terms)."""
    if k is None:
        return matrix
    matrix = matrix.tocsr()
    for i in range(matrix.shape[0]):
        lo, hi = matrix.indptr[i], matrix.indptr[i + 1]
        if hi - lo > k:
            row = matrix.data[lo:hi]
            row[row < np.partition(row, hi - lo - k)[hi - lo - k]] = 0
    matrix.eliminate_zeros()
    return matrix
