"""Leaf prototypes: what a sentence encoder teaches at training time stays in the TF-IDF
prototypes, so serving without the encoder still chooses the leaf it pointed to."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.features import TextFeaturizer
from models.leaves import LeafScorer, describe_leaf
from triage.taxonomy import Taxonomy

# What the stand-in encoder knows and TF-IDF cannot: 大巴 and 接送 are about the school bus.
CONCEPTS = {"bus": ("校车", "大巴", "接送", "超载", "挤满"), "food": ("伙食", "食堂", "饭菜", "餐费")}
# Appeals about an overloaded bus that happens to stop by the canteen: their only word in common
# with any leaf description is 食堂, the canteen leaf's.
BUS_BY_THE_CANTEEN = [f"食堂门口停的大巴{i}天天挤满孩子" for i in "一二三四五六"]
FOOD = [f"食堂饭菜{i}太差，餐费还涨" for i in "一二三四"]


def embed(texts: list[str]) -> np.ndarray:
    rows = np.array([[sum(t.count(w) for w in words) for words in CONCEPTS.values()] + [0.1]
                     for t in texts], dtype=float)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture()
def taxonomy(tmp_path: Path) -> Taxonomy:
    path = tmp_path / "tax.csv"
    path.write_text("一级,二级,keywords\n教育,校车安全,校车|超载\n教育,学生伙食,伙食|食堂|饭菜\n",
                    encoding="utf-8")
    return Taxonomy.from_file(path)


def _fit(taxonomy: Taxonomy, guided: bool) -> tuple[LeafScorer, TextFeaturizer]:
    texts = BUS_BY_THE_CANTEEN + FOOD
    leaves = taxonomy.leaves("教育")
    described = [describe_leaf(leaf) for leaf in leaves]
    featurizer = TextFeaturizer(min_df=1)
    X = featurizer.fit_transform(texts + described)[: len(texts)]
    guide = (embed(texts), embed(described)) if guided else None
    scorer = LeafScorer().fit(X, ["教育"] * len(texts), taxonomy=taxonomy, roots=["教育"],
                              featurizer=featurizer, guide=guide)
    return scorer, featurizer


def _leaf(scorer: LeafScorer, featurizer: TextFeaturizer, text: str) -> str:
    scores = scorer.scores(featurizer.transform([text]))
    return scorer.leaf_keys_[int(scores[0].argmax())]


@pytest.mark.parametrize("guided, expected", [(False, "教育/学生伙食"), (True, "教育/校车安全")])
def test_an_encoder_at_training_time_teaches_the_prototypes(
        taxonomy: Taxonomy, guided: bool, expected: str) -> None:
    scorer, featurizer = _fit(taxonomy, guided)
    # served without any encoder: the word 大巴 now belongs to the bus leaf's prototype
    assert _leaf(scorer, featurizer, "放学的大巴挤满孩子") == expected
    assert _leaf(scorer, featurizer, "食堂饭菜太差") == "教育/学生伙食"
