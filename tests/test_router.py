"""The learned router (models.router.HistoryRouter): conformance and what a dispatcher would notice."""

from __future__ import annotations

import inspect
import pickle

import numpy as np
import pytest

from models.features import TextFeaturizer
from models.router import HistoryRouter, RoutePrediction
from triage.errors import LabelError, ModelNotReadyError

# Past tickets and the unit that handled each. 住建 units are all rare (one ticket each), so with
# min_count=2 they are learnt only as the body 住建局 and placed by the appeal's address.
HISTORY = [
    ("孩子所在小学周末强制补课，每人收费八百元", "市教育局"),
    ("学校食堂饭菜质量差，孩子吃了拉肚子", "市教育局"),
    ("初中学校乱收资料费，希望教育部门查处", "市教育局"),
    ("小学入学报名材料太多，学区划分不合理", "市教育局"),
    ("洋湖街道某小区门口垃圾成堆，多日无人清运", "A3区洋湖街道办事处"),
    ("洋湖街道辖区内广场舞噪音扰民到深夜", "A3区洋湖街道办事处"),
    ("洋湖街道社区活动中心长期关门不开放", "A3区洋湖街道办事处"),
    ("夜市烧烤摊占道经营，油烟熏人", "A5区城管局"),
    ("流动摊贩占道卖菜，堵塞人行道", "A5区城管局"),
    ("楼顶违章搭建铁皮房，城管不来拆", "A5区城管局"),
    ("电动车在小区楼下被盗，报警后没有下文", "市公安局"),
    ("有人在网吧门口聚众打架，治安很差", "市公安局"),
    ("家里被盗窃，派出所一直不立案", "市公安局"),
    ("新买的商品房墙体开裂漏水，开发商不维修", "A1区住建局"),
    ("小区物业乱收费，电梯坏了半年不修", "K3县住建局"),
    ("商品房延期交房，开发商拒不赔偿", "B2区住建局"),
]
TEXTS = [t for t, _ in HISTORY]
UNITS = [u for _, u in HISTORY]

NEW = [
    ("学校暑假违规补课还要收费", "市教育局"),
    ("洋湖街道某小区门口的垃圾没人清运", "A3区洋湖街道办事处"),
    ("烧烤摊占道经营到半夜", "A5区城管局"),
    ("我的电动车被盗了，派出所不管", "市公安局"),
]


def fit(**params: object) -> HistoryRouter:
    base: dict[str, object] = {"min_count": 2, "min_df": 1}
    return HistoryRouter(**{**base, **params}).fit(TEXTS, UNITS)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def router() -> HistoryRouter:
    return fit()


# --------------------------------------------------------------------------- #
# estimator conformance
# --------------------------------------------------------------------------- #


def test_init_only_stores_its_keyword_only_parameters() -> None:
    params = {"min_count": 5, "C": 0.5, "margin_scale": 2.0, "pool_categories": False,
              "mention_weight": 0.0, "min_df": 1, "co_ratio": 0.3, "max_co": 1}
    signature = inspect.signature(HistoryRouter.__init__).parameters
    assert set(signature) - {"self"} == set(params)
    assert all(p.kind is p.KEYWORD_ONLY for name, p in signature.items() if name != "self")
    assert vars(HistoryRouter(**params)) == params  # type: ignore[arg-type]


def test_fit_returns_self_and_learned_state_ends_in_underscore() -> None:
    router = HistoryRouter(min_df=1)
    before = set(vars(router))
    assert router.fit(TEXTS, UNITS) is router
    learned = set(vars(router)) - before
    assert learned and all(name.endswith("_") for name in learned)


def test_classes_are_frequent_units_and_the_bodies_of_rare_ones(router: HistoryRouter) -> None:
    assert router.classes_ == sorted(["市教育局", "A3区洋湖街道办事处", "A5区城管局", "市公安局",
                                      "住建局"])


@pytest.mark.parametrize("pool", [True, False])
def test_proba_rows_sum_to_one_and_columns_follow_classes(pool: bool) -> None:
    router = fit(pool_categories=pool)
    texts = [t for t, _ in NEW]
    proba = router.predict_proba(texts)
    assert proba.shape == (len(texts), len(router.classes_))
    assert np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert [router.classes_[j] for j in proba.argmax(axis=1)] == [u for _, u in NEW]
    assert router.predict_proba([]).shape == (0, len(router.classes_))


@pytest.mark.parametrize("method", ["predict", "predict_proba", "predict_top", "nearest", "route"])
def test_predicting_before_fit_raises_model_not_ready(method: str) -> None:
    with pytest.raises(ModelNotReadyError, match="fit"):
        getattr(HistoryRouter(), method)(["路灯不亮"])


def test_history_with_mismatched_or_missing_units_is_refused() -> None:
    with pytest.raises(LabelError, match="2 tickets but 1 units"):
        HistoryRouter().fit(["路灯不亮", "井盖丢失"], ["市城管局"])
    with pytest.raises(LabelError, match="no unit"):
        HistoryRouter().fit(["路灯不亮", "井盖丢失"], ["市城管局", " "])


def test_a_pickled_router_predicts_the_same(router: HistoryRouter) -> None:
    texts = [t for t, _ in NEW]
    again = pickle.loads(pickle.dumps(router))
    np.testing.assert_allclose(again.predict_proba(texts), router.predict_proba(texts))


# --------------------------------------------------------------------------- #
# routing
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(("text", "unit"), NEW)
def test_new_appeals_go_to_the_unit_that_handled_their_like(
    router: HistoryRouter, text: str, unit: str
) -> None:
    assert router.predict([text]) == [unit]
    top = router.predict_top([text], k=3)[0]
    assert top[0][0] == unit and len(top) == 3
    assert len({u for u, _ in top}) == 3


def test_a_rare_unit_backs_off_to_its_kind_placed_by_the_appeal(router: HistoryRouter) -> None:
    assert router.predict(["K11县某小区商品房漏水，开发商拒不维修"]) == ["K11县住建局"]
    assert router.predict(["A3区新房墙体开裂，开发商不管"]) == ["A3区住建局"]
    (route,) = router.route(["K11县某小区商品房漏水，开发商拒不维修"])
    assert route.explanation["unit_kind"] == "住建"
    assert "placed by the appeal's address" in route.explanation["basis"]


def test_nearest_returns_the_most_similar_past_ticket_first(router: HistoryRouter) -> None:
    (near,) = router.nearest(["家里被盗窃了，派出所不立案"], k=3)
    assert near[0][0] == TEXTS.index("家里被盗窃，派出所一直不立案")
    similarities = [s for _, s in near]
    assert similarities == sorted(similarities, reverse=True) and 0 < similarities[0] <= 1


def test_a_route_names_lead_co_handlers_confidence_and_similar_tickets(
    router: HistoryRouter,
) -> None:
    (route,) = router.route(["夜市烧烤摊占道经营，油烟很大"])
    assert isinstance(route, RoutePrediction)
    assert route.lead == "A5区城管局" and route.lead not in route.co_handlers
    assert 0 < route.confidence <= 1
    similar = route.explanation["similar_tickets"]
    assert similar[0]["unit"] == "A5区城管局" and "烧烤摊" in similar[0]["text"]


def test_precomputed_features_route_like_the_routers_own() -> None:
    featurizer = TextFeaturizer(min_df=1)
    X = featurizer.fit_transform(TEXTS)
    router = HistoryRouter(min_count=2).fit_features(X, UNITS, texts=TEXTS)
    texts = [t for t, _ in NEW]
    assert router.predict_features(featurizer.transform(texts), texts) == [u for _, u in NEW]
    (route,) = router.route_features(featurizer.transform(texts[:1]), texts[:1])
    assert route.lead == "市教育局"
    with pytest.raises(ModelNotReadyError, match="precomputed features"):
        router.predict(texts)
