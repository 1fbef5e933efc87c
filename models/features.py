"""Sparse text features: TF-IDF over characters (numpy n-gram keys) and jieba words (1–2 grams).

The two vocabularies are learnt together in ``fit``; ``transform`` tokenises each text once. Rows
come out L2-normalised, so a dot product is a cosine similarity.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import os
import signal
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize as l2_normalize

from models.charngrams import CharNgramTfidf
from triage.text import _get_tokenizer, clean, tokenize


def _word_ngrams(tokens: list[str]) -> list[str]:
    """Word unigrams and bigrams of an already tokenised text."""
    return tokens + [a + " " + b for a, b in zip(tokens, tokens[1:], strict=False)]


_PARALLEL_MIN = 2_000  # below this a process pool costs more than it saves
_worker_featurizer: TextFeaturizer | None = None


def _tokenize_chunk(texts: list[str]) -> list[list[str]]:
    return [tokenize(t) for t in texts]


def _transform_chunk(texts: list[str]) -> sp.csr_matrix:
    assert _worker_featurizer is not None
    return _worker_featurizer._transform_serial(texts)


def _quiet_worker() -> None:
    """A worker forked from a command inherits its signal handlers (the CLI turns SIGTERM into
    Ctrl-C): the pool ends its workers with SIGTERM, and Ctrl-C is the parent's to handle, so a
    worker dies at SIGTERM and ignores SIGINT, without a traceback on the user's terminal."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _pool(jobs: int) -> multiprocessing.pool.Pool:
    return multiprocessing.get_context("fork").Pool(jobs, initializer=_quiet_worker)


def _chunks(items: list[str], n: int) -> list[list[str]]:
    size = -(-len(items) // n)
    return [items[i : i + size] for i in range(0, len(items), size)]


def _n_jobs(n_items: int) -> int:
    """Worker processes for a batch: all cores for big batches, where fork is available."""
    if n_items < _PARALLEL_MIN or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    jobs = max(1, min(len(os.sched_getaffinity(0)), 8))
    if jobs > 1:
        _get_tokenizer()  # load jieba's dictionary once here, so forked workers inherit it
    return jobs


def prepare(text: str) -> str:
    """What the features see: normalised, PII-masked text without spaces (segmented training text joins up)."""
    return clean(text).replace(" ", "").lower()


class TextFeaturizer:
    """Character and word TF-IDF, stacked and L2-normalised.

    Example:
        >>> f = TextFeaturizer(min_df=1).fit(["小区噪音扰民", "学校招生入学"])
        >>> f.transform(["噪音"]).shape[0]
        1
    """

    def __init__(
        self, *, char_ngrams: tuple[int, int] = (1, 2), min_df: int = 2,
        max_features: int | None = 400_000, word_weight: float = 1.0,
    ) -> None:
        self.char_ngrams = char_ngrams
        self.min_df = min_df
        self.max_features = max_features
        self.word_weight = word_weight

    def fit(self, texts: Sequence[str]) -> TextFeaturizer:
        self.fit_transform(texts)
        return self

    def fit_transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Learn both vocabularies and return the features of ``texts`` (tokenising once)."""
        prepared = [prepare(t) for t in texts]
        self.char_ = CharNgramTfidf(
            ngrams=self.char_ngrams, min_df=self.min_df, max_features=self.max_features)
        self.word_ = TfidfVectorizer(
            analyzer=_word_ngrams, min_df=self.min_df, sublinear_tf=True,
            max_features=self.max_features, dtype=np.float32,
        )
        chars = self.char_.fit(prepared).transform(prepared)
        words = self.word_.fit_transform(self._tokenize_all(prepared))
        return self._stack(chars, words)

    def _stack(self, chars: sp.csr_matrix, words: sp.csr_matrix) -> sp.csr_matrix:
        return l2_normalize(sp.hstack([chars, words * self.word_weight], format="csr"))

    def _tokenize_all(self, prepared: list[str]) -> list[list[str]]:
        jobs = _n_jobs(len(prepared))
        if jobs == 1:
            return _tokenize_chunk(prepared)
        with _pool(jobs) as pool:
            parts = pool.map(_tokenize_chunk, _chunks(prepared, jobs))
        return [tokens for part in parts for tokens in part]

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Features of ``texts``; big batches are split over worker processes."""
        texts = list(texts)
        jobs = _n_jobs(len(texts))
        if jobs == 1:
            return self._transform_serial(texts)
        global _worker_featurizer
        _worker_featurizer = self
        try:
            with _pool(jobs) as pool:
                return sp.vstack(pool.map(_transform_chunk, _chunks(texts, jobs)), format="csr")
        finally:
            _worker_featurizer = None

    def _transform_serial(self, texts: Sequence[str]) -> sp.csr_matrix:
        prepared = [prepare(t) for t in texts]
        chars = self.char_.transform(prepared)
        return self._stack(chars, self.word_.transform([tokenize(t) for t in prepared]))

    @property
    def n_features(self) -> int:
        return self.char_.vocabulary_size + len(self.word_.vocabulary_)
