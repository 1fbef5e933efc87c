"""Tests for the hierarchical appeal classifier (models.classifier): what a user would notice."""

from __future__ import annotations

import inspect
import pickle

import numpy as np
import pytest

from models.classifier import HierarchicalClassifier
from triage.errors import LabelError, ModelNotReadyError
from triage.settings import PROJECT_ROOT
from triage.tables import read_table
from triage.taxonomy import Taxonomy

# A tiny taxonomy: two leaves under each supported top level, so that a leaf picked without reading
# the appeal gets at least one of them wrong; 医疗卫生 has no labelled appeal at all.
TAX = Taxonomy.from_records([
    {"path": ("教育", "学校管理", "校园周边环境"),
     "description": "学校周边小摊贩售卖三无食品、校门口交通拥堵",
     "keywords": ["校门口", "小摊", "三无食品"]},
    {"path": ("教育", "招生入学", "入学报名"),
     "description": "学区划分、入学报名、积分入学和学位分配问题",
     "keywords": ["学区", "报名", "学位"]},
    {"path": ("环境保护", "噪声污染", "施工噪音"),
     "description": "工地夜间施工噪音扰民",
     "keywords": ["工地", "夜间施工", "噪音"]},
    {"path": ("环境保护", "大气污染", "餐饮油烟"),
     "description": "饭店烧烤油烟直排，熏到居民楼",
     "keywords": ["油烟", "烧烤", "排烟"]},
    {"path": ("交通出行", "公共交通", "公交线路"),
     "description": "公交线路调整、班次太少",
     "keywords": ["公交", "班次"]},
    {"path": ("医疗卫生", "医院管理", "医疗服务"),
     "description": "医院看病排队久、挂号难、医生态度差",
     "keywords": ["医院", "挂号"]},
])

# Labelled only at the top level (bare top-level names): no leaf has a labelled example.
TRAIN = [
    ("学校门口每天放学都有小摊卖三无食品，孩子吃了拉肚子", "教育"),
    ("校门口小摊太多，卖的辣条都是三无食品，希望管一管", "教育"),
    ("孩子今年上小学，学区划分后报名系统一直进不去", "教育"),
    ("积分入学报名材料交了，学位分配结果迟迟不公布", "教育"),
    ("旁边工地夜间施工，噪音吵得整晚睡不着", "环境保护"),
    ("工地凌晨还在打桩，夜间施工噪音扰民严重", "环境保护"),
    ("楼下烧烤店油烟直排，家里窗户都不敢开", "环境保护"),
    ("饭店排烟管道对着居民楼，油烟熏得受不了", "环境保护"),
    ("12路公交班次太少，早高峰等车要四十分钟", "交通出行"),
    ("公交线路调整后我们小区门口没有站了", "交通出行"),
]
TEXTS = [t for t, _ in TRAIN]
LABELS = [label for _, label in TRAIN]

# New appeals, worded about one leaf each (none of them is a training text).
LEAF_APPEALS = [
    ("学校门口的小摊在卖三无食品", "教育/学校管理/校园周边环境"),
    ("学区报名以后学位不够，孩子没学上", "教育/招生入学/入学报名"),
    ("工地夜间施工的噪音太大了", "环境保护/噪声污染/施工噪音"),
    ("小区楼下烧烤店油烟太呛", "环境保护/大气污染/餐饮油烟"),
]
APPEALS = [t for t, _ in LEAF_APPEALS] + [
    "公交班次能不能多一点", "你好，我想反映个问题", "医院挂号太难了"]


def fit(**params: object) -> HierarchicalClassifier:
    clf = HierarchicalClassifier(taxonomy=TAX, **params)  # type: ignore[arg-type]
    return clf.fit(TEXTS, LABELS)


@pytest.fixture(scope="module")
def tiny() -> HierarchicalClassifier:
    return fit()


# --------------------------------------------------------------------------- #
# estimator conformance
# --------------------------------------------------------------------------- #


def test_init_only_stores_its_keyword_only_parameters() -> None:
    params = {"taxonomy": TAX, "C": 0.5, "model": "logreg", "temperature": 0.1,
              "review_threshold": 0.2, "review_threshold_level1": 0.3, "top_k": 2, "leaf_evidence": 5.0,
              "encoder_weight": 0.5, "cascade": 0.9, "leaf_encoder_weight": 2.0, "fusion_folds": 2,
              "glossary": None, "leaf_cascade": 0.7, "leaf_guide_weight": 1.5}
    signature = inspect.signature(HierarchicalClassifier.__init__).parameters
    assert set(signature) - {"self"} == set(params)
    assert all(p.kind is p.KEYWORD_ONLY for name, p in signature.items() if name != "self")
    clf = HierarchicalClassifier(**params)  # type: ignore[arg-type]
    assert vars(clf) == params


@pytest.mark.parametrize("model", ["svm", "logreg"])
def test_fit_returns_self_and_learned_state_ends_in_underscore(model: str) -> None:
    clf = HierarchicalClassifier(taxonomy=TAX, model=model)
    before = set(vars(clf))
    assert clf.fit(TEXTS, LABELS) is clf
    learned = set(vars(clf)) - before
    assert learned and all(name.endswith("_") for name in learned)


@pytest.mark.parametrize("model", ["svm", "logreg"])
def test_predict_proba_rows_sum_to_one_and_columns_follow_classes(model: str) -> None:
    clf = fit(model=model)
    assert clf.classes_ == ["教育", "环境保护", "交通出行"]  # taxonomy order, supported only
    proba = clf.predict_proba(APPEALS)
    assert proba.shape == (len(APPEALS), len(clf.classes_))
    assert np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    expected = ["教育", "教育", "环境保护", "环境保护", "交通出行"]
    assert [clf.classes_[i] for i in proba.argmax(axis=1)[:5]] == expected
    paths = clf.predict_paths(APPEALS)
    assert [p.level1 for p in paths] == [clf.classes_[i] for i in proba.argmax(axis=1)]
    assert [p.confidence_level1 for p in paths] == pytest.approx(proba.max(axis=1), abs=1e-4)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "predict_paths"])
def test_predicting_before_fit_raises_model_not_ready(method: str) -> None:
    clf = HierarchicalClassifier(taxonomy=TAX)
    with pytest.raises(ModelNotReadyError, match="fit"):
        getattr(clf, method)(["工地夜间施工噪音扰民"])


# --------------------------------------------------------------------------- #
# choosing the leaf
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(("text", "leaf"), LEAF_APPEALS)
def test_a_leaf_without_labelled_examples_is_chosen_by_reading_the_appeal(
    tiny: HierarchicalClassifier, text: str, leaf: str
) -> None:
    (prediction,) = tiny.predict_paths([text])
    assert prediction.subitem == leaf
    assert prediction.level1 == leaf.split("/")[0]
    assert prediction.explanation["leaf_examples"] == 0
    assert prediction.explanation["matched_terms"]
    assert tiny.predict([text]) == [leaf]


def test_every_prediction_is_a_consistent_path_with_three_ranked_alternatives(
    tiny: HierarchicalClassifier,
) -> None:
    leaves = {leaf.key for leaf in TAX.leaves()}
    for p in tiny.predict_paths(APPEALS):
        assert p.subitem in leaves
        assert p.subitem.startswith(p.level1 + "/")
        assert len(p.top) == 3
        assert len({t["subitem"] for t in p.top}) == 3
        assert p.top[0] == {"subitem": p.subitem, "confidence": p.confidence}
        assert all(t["subitem"] in leaves for t in p.top)
        for value in [p.confidence, p.confidence_level1, *(t["confidence"] for t in p.top)]:
            assert 0.0 <= value <= 1.0
        assert p.confidence <= p.confidence_level1  # the leaf cannot be surer than its top level


def test_low_confidence_is_sent_to_review_with_a_reason() -> None:
    predictions = fit(review_threshold=0.99, review_threshold_level1=0.99).predict_paths(APPEALS)
    unsure = [p for p in predictions if p.confidence < 0.99 or p.confidence_level1 < 0.99]
    assert unsure  # the vague appeals at least
    for p in unsure:
        assert p.needs_review is True
        assert "0.99" in p.review_reason
    level1_unsure = [p for p in predictions if p.confidence_level1 < 0.99]
    assert all("一级分类" in p.review_reason for p in level1_unsure)


def test_leaf_threshold_alone_sends_unsure_leaves_to_review() -> None:
    predictions = fit(review_threshold=0.99, review_threshold_level1=0.0).predict_paths(APPEALS)
    assert any(p.confidence < 0.99 for p in predictions)
    for p in predictions:
        assert p.needs_review is (p.confidence < 0.99)
        assert bool(p.review_reason) is p.needs_review


def test_zero_thresholds_send_nothing_to_review() -> None:
    predictions = fit(review_threshold=0.0, review_threshold_level1=0.0).predict_paths(APPEALS)
    assert [(p.needs_review, p.review_reason) for p in predictions] == [(False, "")] * len(APPEALS)


def test_top_levels_without_labelled_appeals_are_unsupported_and_never_predicted(
    tiny: HierarchicalClassifier,
) -> None:
    assert tiny.unsupported_ == ["医疗卫生"]
    assert "医疗卫生" not in tiny.classes_
    # Worded with 医疗卫生's own keywords, yet it must land in a supported top level.
    for p in tiny.predict_paths(["医院挂号太难了，看病排队一上午", "医院医生态度差"]):
        assert p.level1 in tiny.classes_
        assert not any(t["subitem"].startswith("医疗卫生/") for t in p.top)


def test_a_single_supported_top_level_is_always_predicted_with_full_confidence() -> None:
    texts, labels = TEXTS[:4], LABELS[:4]  # 教育 only
    clf = HierarchicalClassifier(taxonomy=TAX).fit(texts, labels)
    assert clf.classes_ == ["教育"]
    assert clf.unsupported_ == ["环境保护", "交通出行", "医疗卫生"]
    np.testing.assert_allclose(clf.predict_proba(["工地夜间施工噪音"]), [[1.0]])
    assert [p.subitem for p in clf.predict_paths(["学区报名学位不够", "校门口小摊卖三无食品"])] == [
        "教育/招生入学/入学报名", "教育/学校管理/校园周边环境"]


def test_two_supported_top_levels_can_be_predicted() -> None:
    clf = HierarchicalClassifier(taxonomy=TAX).fit(TEXTS[:8], LABELS[:8])  # 教育 and 环境保护
    assert clf.classes_ == ["教育", "环境保护"]
    proba = clf.predict_proba(["工地夜间施工噪音太大", "学区报名学位不够"])
    assert proba.shape == (2, 2)
    assert [clf.classes_[i] for i in proba.argmax(axis=1)] == ["环境保护", "教育"]


def test_empty_batch_gives_empty_answers() -> None:
    clf = HierarchicalClassifier(taxonomy=TAX).fit(TEXTS, LABELS)
    assert clf.predict_proba([]).shape == (0, len(clf.classes_))
    assert clf.predict_paths([]) == []


def test_labelled_leaf_examples_are_reported_in_the_explanation() -> None:
    labels = list(LABELS)
    labels[0] = labels[1] = "教育/学校管理/校园周边环境"
    clf = HierarchicalClassifier(taxonomy=TAX).fit(TEXTS, labels)
    (p,) = clf.predict_paths(["校门口小摊卖三无食品"])
    assert p.subitem == "教育/学校管理/校园周边环境"
    assert p.explanation["leaf_examples"] == 2
    assert p.explanation["leaf_basis"] == "labelled examples"


# --------------------------------------------------------------------------- #
# bad training input
# --------------------------------------------------------------------------- #


def test_unknown_labels_raise_a_label_error_naming_the_rows() -> None:
    labels = ["教育", "不存在的分类", "环境保护", "不存在的分类", "教育/不存在/路径"]
    with pytest.raises(LabelError) as info:
        HierarchicalClassifier(taxonomy=TAX).fit(TEXTS[:5], labels)
    message = str(info.value)
    assert "不存在的分类" in message and "rows 2, 4" in message
    assert "教育/不存在/路径" in message and "rows 5" in message


def test_an_ambiguous_bare_label_raises_a_label_error_asking_for_the_full_path() -> None:
    tax = Taxonomy.from_records([
        {"path": ("教育", "其他")}, {"path": ("环境保护", "其他")}, {"path": ("教育", "招生")},
    ])
    with pytest.raises(LabelError, match=r"其他.*full path.*rows 2"):
        HierarchicalClassifier(taxonomy=tax).fit(["招生报名的问题", "其他的问题"], ["招生", "其他"])


def test_texts_and_labels_of_different_lengths_raise() -> None:
    with pytest.raises(LabelError, match="3 texts but 2 labels"):
        HierarchicalClassifier(taxonomy=TAX).fit(TEXTS[:3], LABELS[:2])


# --------------------------------------------------------------------------- #
# quality on the demo data
# --------------------------------------------------------------------------- #


def test_demo_model_is_accurate_on_the_held_out_demo_appeals(
    demo_model: HierarchicalClassifier, demo_taxonomy: Taxonomy
) -> None:
    table = read_table(PROJECT_ROOT / "datasets" / "demo_test.csv")
    gold = demo_taxonomy.resolve_labels(table.column("label"))
    assert len(gold) >= 50 and all(node.is_leaf for node in gold)
    predictions = demo_model.predict_paths(table.column("text"), explain=False)
    level1 = np.mean([p.level1 == g.path[0] for p, g in zip(predictions, gold, strict=True)])
    leaf = np.mean([p.subitem == g.key for p, g in zip(predictions, gold, strict=True)])
    assert level1 >= 0.75, f"level-1 accuracy {level1:.2f}"
    assert leaf >= 0.65, f"leaf accuracy {leaf:.2f}"


# --------------------------------------------------------------------------- #
# personal data
# --------------------------------------------------------------------------- #


def test_phone_numbers_never_reach_the_model() -> None:
    with_pii = [
        "我电话13812345678，工地夜间施工噪音吵得睡不着",
        "联系电话 13812345678 校门口小摊卖三无食品",
        "请回电138-1234-5678，烧烤店油烟直排",
        "手机：１３８１２３４５６７８，学区报名进不去",
        "+86 138 1234 5678 公交班次太少",
    ]
    clf = HierarchicalClassifier(taxonomy=TAX).fit(TEXTS + with_pii, LABELS + [
        "环境保护", "教育", "环境保护", "教育", "交通出行"])
    names = [*clf.featurizer_.char_.get_feature_names_out(),
             *clf.featurizer_.word_.get_feature_names_out()]
    assert not [n for n in names if "13812345678" in n.replace(" ", "") or "1381234" in n]
    saved = pickle.dumps(clf)
    assert b"13812345678" not in saved and b"1381234" not in saved
    (p,) = clf.predict_paths(["我的电话是13812345678，工地夜间施工太吵"])
    assert not [t for t in p.explanation["matched_terms"] if "1381234" in t]
