"""The sentiment training job: read labelled feedback, fit, measure, write a new version."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

from models.artifacts import Registry, data_hash, new_version_id
from models.sentiment import (
    LoadedSentiment,
    SentimentModel,
    check_learner,
    load_sentiment,
    normalise_labels,
    save_sentiment,
)
from triage.errors import InputFileError
from triage.settings import Settings
from triage.tables import read_table


def read_feedback(path: Path, *, text_column: str, label_column: str) -> tuple[list[str], list[str]]:
    """Texts and labels (positive/neutral/negative); empty texts and bad labels name their rows."""
    table = read_table(path)
    texts, raw = table.column(text_column), table.column(label_column)
    empty = [n for n, t in zip(table.row_numbers, texts, strict=True) if not t.strip()]
    if empty:
        raise InputFileError(f"{path}: rows {', '.join(map(str, empty[:10]))} have an empty "
                             f"{text_column}")
    try:
        labels = normalise_labels(raw)
    except InputFileError as exc:
        raise InputFileError(f"{path}: {exc.message} (rows count from the first data row)") from None
    return texts, labels


def holdout(texts: list[str], labels: list[str], fraction: float = 0.1, *,
            learner: str = "tfidf.v1") -> dict[str, float]:
    """Accuracy and macro-F1 of a model fitted on the rest of a stratified split."""
    if len(texts) < 20 or min(np.unique(labels, return_counts=True)[1]) < 2:
        return {}
    train, test = train_test_split(np.arange(len(texts)), test_size=fraction, stratify=labels,
                                   random_state=0)
    model = SentimentModel(learner=learner).fit([texts[i] for i in train],
                                                [labels[i] for i in train])
    gold = [labels[i] for i in test]
    if "neutral" in labels:
        predicted = [r.label for r in model.predict([texts[i] for i in test])]
    else:  # two-class data: the sign decides (a score of 0 counts as negative, as in the contract)
        scores = model.score([texts[i] for i in test])
        predicted = ["positive" if s > 0 else "negative" for s in scores]
    return {"holdout_n": len(test), "holdout_accuracy": round(accuracy_score(gold, predicted), 4),
            "holdout_macro_f1": round(f1_score(gold, predicted, average="macro"), 4)}


def train_sentiment_version(
    *, data: Path, text_column: str, label_column: str, output: Path, learner: str = "tfidf.v1",
) -> LoadedSentiment:
    """Fit on all rows (after a 10% hold-out measurement) and write the version.

    ``learner``: ``tfidf.v1``, ``encoder.v1`` or ``both.v1`` (those two read the configured
    sentence encoder, ``TRIAGE_ENCODER``, which the version records).
    """
    check_learner(learner)
    texts, labels = read_feedback(data, text_column=text_column, label_column=label_column)
    metrics: dict[str, float] = holdout(texts, labels, learner=learner)
    start = time.perf_counter()
    model = SentimentModel(learner=learner).fit(texts, labels)
    metrics["train_seconds"] = round(time.perf_counter() - start, 2)
    save_sentiment(model, output, {"metrics": metrics, "training_sources": [str(data)]})
    return load_sentiment(output)


def ensure_default_sentiment(settings: Settings) -> LoadedSentiment:
    """The serving sentiment model: ``TRIAGE_SENTIMENT_MODEL`` if set, else the active one under
    ``TRIAGE_HOME/sentiment``, else one trained now from the project's own feedback set."""
    if settings.sentiment_model is not None:
        return load_sentiment(settings.sentiment_model)
    registry = Registry(settings.home / "sentiment")
    active = registry.active_version()
    if active:
        return load_sentiment(registry.path(active))
    texts, labels = read_feedback(settings.demo_feedback, text_column="text",
                                  label_column="polarity")
    model = SentimentModel().fit(texts, labels)
    version = new_version_id(data_hash(texts, labels))
    directory = registry.new_directory(version)
    save_sentiment(model, directory, {"version": version,
                                      "training_sources": [settings.demo_feedback.name]})
    registry.activate(version)
    return load_sentiment(directory)
