"""Negated phrases in models trained with ``triage train-sentiment`` on small labelled files, and
feedback texts with no sentiment evidence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import DATASETS

from models.sentiment import SentimentModel
from training.sentiment import train_sentiment_version

FEEDBACK = [("非常满意，问题当天就解决了", 1), ("态度很好，办得也快", 1), ("谢谢你们，路灯修好了", 1),
            ("挺好的，很及时", 1), ("工作人员很耐心，满意", 1), ("一点都不满意，根本没解决", 0),
            ("推来推去，没人管", 0), ("等了一个月还没人来", 0), ("态度太差了", 0), ("敷衍了事，走过场", 0)]


def _binary_file(tmp_path: Path) -> Path:
    data = tmp_path / "feedback.csv"
    data.write_text("review,label\n" + "".join(f"{t},{y}\n" for t, y in FEEDBACK * 3),
                    encoding="utf-8")
    return data


@pytest.fixture(params=["three labels (the return-visit gold file)", "1/0 labels"])
def trained(request: pytest.FixtureRequest, tmp_path: Path) -> SentimentModel:
    """A version trained the way ``triage train-sentiment`` trains one, loaded back."""
    if request.param.startswith("three"):
        data, text, label = DATASETS / "feedback_gold.csv", "text", "polarity"
    else:
        data, text, label = _binary_file(tmp_path), "review", "label"
    return train_sentiment_version(data=data, text_column=text, label_column=label,
                                   output=tmp_path / "s").model


@pytest.mark.parametrize(("text", "sign"), [
    ("不是很满意", -1), ("没有不满意", 1), ("不太满意", -1), ("很满意", 1), ("一点都不满意", -1),
])
def test_negated_phrases_get_the_right_sign(trained: SentimentModel, text: str, sign: int) -> None:
    assert np.sign(trained.score([text])[0]) == sign


def test_a_three_label_model_reads_the_lexicon_as_a_two_label_one_does(tmp_path: Path) -> None:
    """P(positive) − P(negative) of the lexicon part is its score whatever the classes."""
    texts = [t for t, _ in FEEDBACK]
    binary = SentimentModel().fit(texts, [y for _, y in FEEDBACK])
    three = SentimentModel().fit(texts, ["positive"] * 4 + ["neutral"] + ["negative"] * 5)
    lex = np.array([-0.46, 0.0, 0.54, 1.0])
    for model in (binary, three):
        proba = model._lexicon_proba(lex)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        np.testing.assert_allclose(model._score_from_proba(proba), lex)


@pytest.mark.parametrize("text", ["👍👍", "ok thanks", "x", "嗯", "。。。"])
def test_a_text_with_no_evidence_is_not_informative(trained: SentimentModel, text: str) -> None:
    result = trained.predict([text])[0]
    assert result.label == "neutral" and not result.informative


@pytest.mark.parametrize("text", ["还行吧", "一般", "谢谢", "推来推去", "不是很满意"])
def test_a_text_with_evidence_is_informative(trained: SentimentModel, text: str) -> None:
    assert trained.predict([text])[0].informative
