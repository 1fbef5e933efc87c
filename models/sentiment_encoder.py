"""Encoder learners of the sentiment model: logistic regression on sentence-encoder embeddings.

``encoder.v1`` reads the same masked text as ``tfidf.v1`` (delivery words replaced by ``□``, so a
model trained on waimai keeps to words that carry elsewhere) through the sentence encoder
(``TRIAGE_ENCODER``; feedback is short, so 64 tokens and 80 characters by default) and fits a
logistic regression on the unit-length embeddings. ``both.v1`` averages the class probabilities
of ``tfidf.v1`` and ``encoder.v1``.

The encoder is never pickled: a saved version records it in its manifest
(``models.sentiment_artifacts``) and gets it back on load through ``attach_encoder``.

Measured with the packaged e5-small (ONNX int8, 2 cores; ``training.sentiment_benchmark``):
``C`` = 10 was chosen by waimai 5-fold CV alone (0.3: 0.860, 1: 0.865, 3: 0.870, 10: 0.871,
30: 0.871, 100: 0.868), so the hand-written sets stay blind. Against ``tfidf.v1``: waimai CV
0.871 / 0.884 (``both.v1``) / 0.885; feedback_gold sign 0.958 / 0.974 / 0.958; feedback_domains
0.953 / 0.973 / 0.947; about 65 texts/s against about 4,000 (the encoder dominates).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from models.sentiment_lexicon import mask_domain_nouns
from triage.errors import ModelNotReadyError

MAX_LENGTH = 64
MAX_CHARS = 80


def packaged_or_path(encoder: Any) -> str:
    """How a version names its encoder: ``"e5-small"`` for the packaged weights, else the path."""
    from models.e5_rebuild import EXPECTED_DIGEST
    from models.encoder_files import PACKAGED

    return PACKAGED if encoder.fingerprint == EXPECTED_DIGEST else str(Path(encoder.path))


def configured_encoder(*, max_length: int, max_chars: int) -> tuple[Any, str]:
    """The encoder the settings name (``TRIAGE_ENCODER``, ``TRIAGE_ENCODER_BACKEND``) and its
    source as a manifest records it."""
    from models.encoder import open_encoder
    from models.encoder_files import PACKAGED
    from triage.settings import get_settings

    settings = get_settings()
    encoder = open_encoder(settings.encoder, settings.home, backend=settings.encoder_backend,
                           max_length=max_length, max_chars=max_chars)
    source = settings.encoder if settings.encoder == PACKAGED else str(encoder.path.absolute())
    return encoder, source


class EncoderLearner:
    """Logistic regression on the sentence encoder's embeddings of masked text (``encoder.v1``).

    Without an attached encoder, ``fit`` opens the configured one (``TRIAGE_ENCODER``) with
    ``max_length`` and ``max_chars``.

    Example:
        >>> learner = EncoderLearner().attach_encoder(encoder)  # doctest: +SKIP
        >>> learner.fit(["很满意", "太慢了"], np.array([1, 0])).proba(["非常好"]).shape  # doctest: +SKIP
        (1, 2)
    """

    name = "encoder.v1"
    needs_encoder = True

    def __init__(self, *, C: float = 10.0, max_length: int = MAX_LENGTH,
                 max_chars: int = MAX_CHARS, mask: bool = True) -> None:
        self.C = C
        self.max_length = max_length
        self.max_chars = max_chars
        self.mask = mask

    def attach_encoder(self, encoder: Any, source: str | None = None) -> EncoderLearner:
        """Give this learner its encoder (before ``fit``, or after loading a saved version)."""
        self.encoder_ = encoder
        self.encoder_source_ = source or packaged_or_path(encoder)
        return self

    @property
    def encoder(self) -> Any:
        """The attached encoder, or ``None``."""
        return getattr(self, "encoder_", None)

    def attached_encoder(self) -> tuple[Any, str]:
        """The encoder in use and its source (what a saved version records)."""
        return self._require_encoder(), self.encoder_source_

    def _require_encoder(self) -> Any:
        if self.encoder is None:
            raise ModelNotReadyError(
                f"the sentiment learner {self.name} has no encoder: load the version with "
                "load_sentiment (it attaches the encoder the version was trained with)")
        return self.encoder

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings of (masked) ``texts``."""
        prepared = [mask_domain_nouns(t) if self.mask else str(t) for t in texts]
        return self._require_encoder().encode(prepared)

    def fit(self, texts: Sequence[str], y: np.ndarray) -> EncoderLearner:
        if self.encoder is None:
            self.attach_encoder(*configured_encoder(max_length=self.max_length,
                                                    max_chars=self.max_chars))
        self.model_ = LogisticRegression(C=self.C, class_weight="balanced", max_iter=2000)
        self.model_.fit(self.embed(texts), y)
        return self

    def proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities; columns follow the sorted class codes it was fitted on."""
        return self.model_.predict_proba(self.embed(texts))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("encoder_", None)  # recorded in the manifest and attached on load, never pickled
        return state


class BothLearner:
    """The mean of ``tfidf.v1`` and ``encoder.v1`` class probabilities (``both.v1``)."""

    name = "both.v1"
    needs_encoder = True

    def __init__(self, *, tfidf_params: dict[str, Any] | None = None,
                 encoder_params: dict[str, Any] | None = None, encoder_share: float = 0.5) -> None:
        self.tfidf_params = tfidf_params
        self.encoder_params = encoder_params
        self.encoder_share = encoder_share

    def _parts(self) -> tuple[Any, EncoderLearner]:
        from models.sentiment import TfidfLearner

        if not hasattr(self, "encoder_part_"):
            self.tfidf_part_ = TfidfLearner(**(self.tfidf_params or {}))
            self.encoder_part_ = EncoderLearner(**(self.encoder_params or {}))
        return self.tfidf_part_, self.encoder_part_

    def attach_encoder(self, encoder: Any, source: str | None = None) -> BothLearner:
        self._parts()[1].attach_encoder(encoder, source)
        return self

    def attached_encoder(self) -> tuple[Any, str]:
        """The encoder in use and its source (what a saved version records)."""
        return self._parts()[1].attached_encoder()

    def fit(self, texts: Sequence[str], y: np.ndarray) -> BothLearner:
        tfidf, encoder = self._parts()
        tfidf.fit(texts, y)
        encoder.fit(texts, y)
        return self

    def proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities; columns follow the sorted class codes it was fitted on."""
        k = self.encoder_share
        return (1 - k) * self.tfidf_part_.proba(texts) + k * self.encoder_part_.proba(texts)
