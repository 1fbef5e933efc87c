"""Feedback sentiment: negation and degree, reasons with evidence, rating checks, the estimator
contract and the artifact round trip, on a tiny inline model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED, needs_shared

from models.sentiment import (
    FORMAT,
    SentimentModel,
    find_reasons,
    load_sentiment,
    save_sentiment,
)
from triage.errors import ArtifactError, LabelError, ModelNotReadyError

TEXTS = [
    "非常满意，第二天就修好了", "很好，工作人员很负责", "问题解决了，谢谢", "处理得很及时，点赞",
    "态度很好，解释得很清楚", "满意，效率很高",
    "太慢了，等了好久", "根本没解决，敷衍", "态度很差，不耐烦", "推来推去没人管",
    "一直没回复", "不满意，还是老样子", "说了等于没说", "又坏了，第三次了",
]
LABELS = [1] * 6 + [0] * 8


@pytest.fixture(scope="module")
def model() -> SentimentModel:
    return SentimentModel().fit(TEXTS, LABELS)


@pytest.mark.parametrize(("text", "sign"), [
    ("不是很满意", -1), ("一点都不满意", -1), ("非常满意", 1), ("很不满意", -1),
    ("没有不满意的，都挺好", 1), ("不是不满意，就是想说声谢谢", 1), ("没什么问题，都解决了", 1),
])
def test_negation_and_degree_give_the_right_sign(model: SentimentModel, text: str, sign: int) -> None:
    assert np.sign(model.score([text])[0]) == sign


def test_degree_words_strengthen(model: SentimentModel) -> None:
    strong, plain, weak = model.score(["非常满意", "满意", "还行吧"])
    assert strong > plain > weak


@pytest.mark.parametrize("text", ["还行吧", "一般般吧", "也就那样"])
def test_hedged_feedback_is_neutral(model: SentimentModel, text: str) -> None:
    result = model.predict([text])[0]
    assert result.label == "neutral"
    assert abs(result.score) < 0.3


def test_passing_the_buck_is_a_reason_with_evidence(model: SentimentModel) -> None:
    result = model.predict(["推来推去的，物业说找社区，社区说找城管"])[0]
    assert result.label == "negative"
    assert "passed_the_buck" in result.reasons
    assert "推来推去" in result.evidence["passed_the_buck"]


def test_waiting_a_month_is_slow_and_not_resolved(model: SentimentModel) -> None:
    result = model.predict(["等了一个月还没人来"])[0]
    assert result.score < 0
    assert {"slow", "not_resolved"} <= set(result.reasons)
    assert result.evidence["not_resolved"] == ["没人来"]


def test_negated_cues_are_not_reasons() -> None:
    assert "passed_the_buck" not in find_reasons("没有推诿，很快就办好了")
    assert "slow" not in find_reasons("一点不慢")


def test_negative_without_a_named_reason_is_other(model: SentimentModel) -> None:
    result = model.predict(["非常差劲，我很生气"])[0]
    assert result.label == "negative"
    assert result.reasons == ["other"]


def test_positive_feedback_has_no_reasons(model: SentimentModel) -> None:
    result = model.predict(["这次处理得很好，比上次快多了"])[0]
    assert result.label == "positive"
    assert result.reasons == [] and result.evidence == {}


@pytest.mark.parametrize(("text", "rating", "flagged"), [
    ("推来推去的，到现在也没人管", "满意", True),
    ("推来推去的，到现在也没人管", 5, True),
    ("非常满意，谢谢你们", "不满意", True),
    ("非常满意，谢谢你们", "1", True),
    ("非常满意，谢谢你们", "满意", False),
    ("一点都不满意，问题根本没解决", 2, False),
    ("还行吧", "基本满意", False),
])
def test_rating_contradictions_are_flagged(model: SentimentModel, text: str, rating, flagged: bool) -> None:
    result = model.check_rating(text, rating)
    assert result.needs_review is flagged
    assert bool(result.review_reason) is flagged


def test_an_unknown_rating_is_refused(model: SentimentModel) -> None:
    with pytest.raises(LabelError, match="满意"):
        model.check_rating("很好", "很好")


# -- the estimator contract --------------------------------------------------------------------
def test_fit_returns_self_and_learns_classes() -> None:
    m = SentimentModel()
    assert m.fit(TEXTS, LABELS) is m
    assert m.classes_ == ["negative", "positive"]


def test_three_named_labels_are_accepted() -> None:
    labels = ["positive"] * 6 + ["negative"] * 6 + ["neutral"] * 2
    m = SentimentModel().fit(TEXTS, labels)
    assert m.classes_ == ["negative", "neutral", "positive"]
    proba = m.predict_proba(["还行吧", "很满意"])
    assert proba.shape == (2, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_proba_rows_sum_to_one_and_scores_stay_in_range(model: SentimentModel) -> None:
    texts = ["非常满意", "一点都不满意", "还行吧", "嗯", ""]
    proba = model.predict_proba(texts)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    scores = model.score(texts)
    assert ((scores >= -1) & (scores <= 1)).all()
    assert [r.score for r in model.predict(texts)] == pytest.approx(list(scores), abs=1e-4)


def test_an_unfitted_model_says_so() -> None:
    with pytest.raises(ModelNotReadyError, match="fit"):
        SentimentModel().predict(["很满意"])


def test_bad_labels_are_named() -> None:
    with pytest.raises(LabelError, match="row 2"):
        SentimentModel().fit(["好", "差"], [1, "maybe"])


def test_empty_input_gives_empty_output(model: SentimentModel) -> None:
    assert model.predict([]) == []
    assert model.predict_proba([]).shape == (0, 2)


# -- artifacts ---------------------------------------------------------------------------------
def test_save_load_round_trip_gives_the_same_scores(model: SentimentModel, tmp_path: Path) -> None:
    directory = save_sentiment(model, tmp_path / "v1", {"metrics": {"accuracy": 0.9}})
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format"] == FORMAT
    assert manifest["labels"] == ["negative", "positive"]
    assert len(manifest["training_data_sha256"]) == 64
    assert {"version", "created_at", "packages", "metrics"} <= set(manifest)
    loaded = load_sentiment(directory)
    assert loaded.version == manifest["version"]
    texts = ["不是很满意", "非常满意", "推来推去"]
    np.testing.assert_allclose(loaded.model.predict_proba(texts), model.predict_proba(texts))


def test_a_version_is_never_overwritten(model: SentimentModel, tmp_path: Path) -> None:
    save_sentiment(model, tmp_path / "v", {})
    with pytest.raises(ArtifactError, match="never overwritten"):
        save_sentiment(model, tmp_path / "v", {})


def test_a_foreign_manifest_is_refused(model: SentimentModel, tmp_path: Path) -> None:
    directory = save_sentiment(model, tmp_path / "v", {})
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    manifest["format"] = "triage.sentiment.v9"
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ArtifactError, match="triage.sentiment.v9"):
        load_sentiment(directory)


def test_a_mismatched_scikit_learn_is_refused(model: SentimentModel, tmp_path: Path) -> None:
    directory = save_sentiment(model, tmp_path / "v", {})
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    manifest["packages"]["scikit-learn"] = "0.1.0"
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ArtifactError, match="scikit-learn 0.1.0"):
        load_sentiment(directory)


# -- the real data -----------------------------------------------------------------------------
@pytest.mark.slow
@needs_shared()
def test_trained_on_waimai_it_reads_hotline_feedback() -> None:
    from training.sentiment_benchmark import domain_metrics, gold_metrics, load_waimai

    texts, labels = load_waimai(SHARED)
    m = SentimentModel().fit(texts, labels)
    assert gold_metrics(m)["sign_accuracy"] >= 0.9
    assert domain_metrics(m)["all"] >= 0.85
