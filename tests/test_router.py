"""The learned router (models.router.HistoryRouter): conformance and what a dispatcher would notice."""

from __future__ import annotations

import inspect
import pickle

import numpy as np
import pytest

from models.features import TextFeaturizer
from models.router import HistoryRouter, RoutePrediction
from triage.errors import LabelError, ModelNotReadyError
from triage.unit_kinds import reply_kind, unit_category

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
              "mention_weight": 0.0, "topic_weight": 0.1, "k_vote": 5, "vote_weight": 0.2,
              "min_df": 1, "co_ratio": 0.3, "max_co": 1}
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


def test_rank_gives_the_lead_with_the_confidence_in_its_kind(router: HistoryRouter) -> None:
    texts = [t for t, _ in NEW]
    for ranked, top, route in zip(router.rank(texts, k=3), router.predict_top(texts, k=3),
                                  router.route(texts), strict=True):
        assert ranked.units == top
        assert ranked.kind == unit_category(top[0][0]) == route.explanation["unit_kind"]
        # the kind pools every unit of that kind: never less sure than the lead alone
        assert top[0][1] <= ranked.kind_confidence <= 1.0


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


# --------------------------------------------------------------------------- #
# kinds of unit read from the replies
# --------------------------------------------------------------------------- #

# Replies name a kind of unit first (reply_kind) that handling_unit could not read as a unit: the
# router still learns the kind, and names the kind's standard unit, placed by the appeal.
WELFARE = [
    ("母亲八十多岁，高龄补贴一直没有发放", None, "民政"),
    ("家里困难，申请低保两年了还没批下来", None, "民政"),
    ("残疾人生活补贴申请材料太复杂", None, "民政"),
]


def fit_with_kinds(**params: object) -> HistoryRouter:
    texts = TEXTS + [t for t, _, _ in WELFARE]
    units: list[str | None] = [*UNITS, *(u for _, u, _ in WELFARE)]
    kinds = [""] * len(TEXTS) + [k for _, _, k in WELFARE]
    base: dict[str, object] = {"min_count": 2, "min_df": 1}
    router = HistoryRouter(**{**base, **params})  # type: ignore[arg-type]
    return router.fit(texts, units, kinds=kinds)


def test_a_kind_only_replies_name_is_learnt_and_routed_to_its_standard_unit() -> None:
    router = fit_with_kinds()
    assert "民政局" in router.classes_ and "民政" in router.kinds_
    (route,) = router.route(["A3区老人申请高龄补贴，社区说材料不全"])
    assert route.lead == "A3区民政局"
    assert route.explanation["unit_kind"] == "民政"
    assert route.explanation["similar_tickets"][0]["unit_kind"] == "民政"
    assert router.predict(["K11县低保申请没人受理"]) == ["K11县民政局"]
    # the units it knew still get their appeals
    assert [router.predict([t])[0] for t, _ in NEW] == [u for _, u in NEW]


def test_the_reply_kind_decides_the_kind_over_the_units_name() -> None:
    # the hotline sent school complaints to the street, but the replies come from the schools'
    # bureau (reply_kind 教育): the lead is a unit of the kind the replies name
    texts = [t for t, u in HISTORY if u == "市教育局"] + TEXTS
    units = ["A3区洋湖街道办事处"] * 4 + UNITS
    kinds = ["教育"] * 4 + [""] * len(TEXTS)
    router = HistoryRouter(min_count=2, min_df=1).fit(texts, units, kinds=kinds)
    (route,) = router.route(["小学周末强制补课收费"])
    assert route.explanation["unit_kind"] == "教育" and unit_category(route.lead) == "教育"
    # learnt from the units alone, the same history sends it to the street
    units_only = HistoryRouter(min_count=2, min_df=1).fit(texts, units)
    assert units_only.predict(["小学周末强制补课收费"]) == ["A3区洋湖街道办事处"]


def test_the_duties_of_a_kind_carry_it_to_appeals_in_other_words() -> None:
    # one past 民政 ticket about 低保; an appeal about 五保 shares no word with it but is a duty
    # of the same kind of unit (triage.unit_kinds.KIND_TOPICS)
    texts = [*TEXTS, "申请低保被拒绝"]
    units = [*UNITS, "市民政局"]
    text = "五保户的补助今年一直没发"
    with_duties = HistoryRouter(min_count=1, min_df=1, topic_weight=1.0).fit(texts, units)
    without = HistoryRouter(min_count=1, min_df=1, topic_weight=0.0).fit(texts, units)
    assert with_duties.predict([text]) == ["市民政局"]
    assert without.predict([text]) != ["市民政局"]


def test_a_lead_always_reads_as_the_kind_it_was_chosen_for() -> None:
    # 旅游区 is a place read in words that carries a kind of its own (文旅)
    router = fit_with_kinds()
    (route,) = router.route(["旅游区的老人申请低保没有回音"])
    assert route.explanation["unit_kind"] == "民政" and unit_category(route.lead) == "民政"


def test_a_police_station_named_after_its_street_is_routed_as_the_police() -> None:
    # every station is rare, so the router learns the body 派出所 and places it by the appeal; a
    # station named after its street (裕南街街道派出所) reads as the street when routing is
    # measured (the first unit a name names that has a kind), so the lead must not carry it
    history = [("户口迁移被派出所拒绝", "A1区东塘派出所"), ("身份证补办派出所推诿", "A4区望城坡派出所"),
               ("落户手续派出所不给办理", "B2区城南派出所"), ("小区垃圾成堆没人清运", "A3区洋湖街道办事处"),
               ("广场舞噪音扰民到深夜", "A3区洋湖街道办事处")]
    router = HistoryRouter(min_count=2, min_df=1).fit([t for t, _ in history],
                                                      [u for _, u in history])
    (route,) = router.route(["今天去A2区裕南街街道派出所办理落户被拒，派出所说户口不能迁"])
    assert route.explanation["unit_kind"] == "公安"
    assert route.lead.startswith("A2区") and reply_kind(route.lead) == "公安", route.lead


def test_kinds_must_match_the_tickets_and_a_ticket_needs_a_unit_or_a_kind() -> None:
    with pytest.raises(LabelError, match="2 tickets but 1 kinds"):
        HistoryRouter().fit(["路灯不亮", "井盖丢失"], ["市城管局", "市城管局"], kinds=["城管"])
    with pytest.raises(LabelError, match="no unit"):
        HistoryRouter().fit(["路灯不亮", "井盖丢失"], ["市城管局", None], kinds=["城管", ""])
    router = HistoryRouter(min_df=1).fit(["路灯不亮", "井盖丢失"], ["市城管局", None],
                                         kinds=["城管", "城管"])
    assert router.classes_ == ["城管局"]


def test_precomputed_features_with_kinds_route_like_the_routers_own() -> None:
    router = fit_with_kinds()
    texts = [t for t, _ in NEW] + ["A3区老人申请高龄补贴"]
    X = router.featurizer_.transform(texts)
    assert router.predict_features(X, texts) == router.predict(texts)
    np.testing.assert_allclose(router.predict_proba_features(X, texts=texts),
                               router.predict_proba(texts))
    assert [r.lead for r in router.route_features(X, texts)] == router.predict(texts)
    assert router.nearest_features(X, k=2) == router.nearest(texts, k=2)


def test_a_router_saved_before_it_learnt_kinds_from_replies_still_routes_the_same() -> None:
    # a version trained earlier keeps its routing.pkl: its state has no kinds from replies, no
    # duty words and weights for the named units only (20 columns after the TF-IDF)
    router = fit(topic_weight=0.0, k_vote=0, vote_weight=0.0, mention_weight=0.5)
    state = dict(vars(router))
    for name in ("topic_weight", "k_vote", "vote_weight", "n_units_", "history_kind_",
                 "row_kinds_"):
        del state[name]
    for name in ("unit_weights_", "kind_weights_"):
        W, b = state[name]
        state[name] = (W[: router.featurizer_.n_features + 20], b)
    saved = HistoryRouter.__new__(HistoryRouter)
    saved.__dict__.update(state)
    loaded = pickle.loads(pickle.dumps(saved))
    texts = [t for t, _ in NEW] + ["K11县某小区商品房漏水，开发商拒不维修"]
    assert loaded.predict_top(texts) == router.predict_top(texts)
    assert [r.lead for r in loaded.route(texts)] == router.predict(texts)


# --------------------------------------------------------------------------- #
# the centre's own unit names
# --------------------------------------------------------------------------- #

CITY_HISTORY = [
    ("夜市烧烤摊占道经营，油烟熏人", "市城市管理局"),
    ("流动摊贩占道卖菜，堵塞人行道", "市城市管理局"),
    ("楼顶违章搭建铁皮房，城管不来拆", "市城市管理局"),
    ("路边垃圾成堆，多日无人清运", "市城市管理局"),
]


@pytest.mark.parametrize("min_count", [2, 9])  # the unit by its own name, or only its body
@pytest.mark.parametrize("text", ["烧烤摊占道经营到半夜", "我在A市工作，楼下流动摊贩占道卖菜"])
def test_a_one_unit_history_keeps_its_own_spelling(min_count: int, text: str) -> None:
    router = HistoryRouter(min_count=min_count, min_df=1).fit(
        [t for t, _ in CITY_HISTORY], [u for _, u in CITY_HISTORY])
    # not the standard 市城管局, nor an A市城管局 the centre never named
    assert router.predict([text]) == ["市城市管理局"]
    assert router.route([text])[0].lead == "市城市管理局"


def test_spellings_of_one_unit_are_one_unit_answered_as_the_history_spells_it_most() -> None:
    units = ["市城市管理局", "市城管局", "市城市管理局", " 市城市管理局", *UNITS]
    router = HistoryRouter(min_count=2, min_df=1).fit([t for t, _ in CITY_HISTORY] + TEXTS, units)
    assert router.classes_.count("市城管局") == 1 and "市城市管理局" not in router.classes_
    assert router.predict(["楼下流动摊贩占道卖菜"]) == ["市城市管理局"]
    # a unit the history never named keeps its standard name, placed by the appeal
    assert router.predict(["K11县某小区商品房漏水，开发商拒不维修"]) == ["K11县住建局"]


def test_a_router_saved_before_it_kept_spellings_answers_in_standard_names() -> None:
    router = HistoryRouter(min_count=2, min_df=1).fit(
        [t for t, _ in CITY_HISTORY], [u for _, u in CITY_HISTORY])
    state = {k: v for k, v in vars(router).items() if k not in {"spellings_", "cities_"}}
    saved = HistoryRouter.__new__(HistoryRouter)
    saved.__dict__.update(state)
    loaded = pickle.loads(pickle.dumps(saved))
    assert loaded.predict(["烧烤摊占道经营到半夜"]) == ["市城管局"]


def test_past_tickets_that_share_no_word_are_refused_in_a_sentence() -> None:
    with pytest.raises(LabelError, match="share no word"):
        HistoryRouter().fit(["小区垃圾没人清理臭气熏天", "学校乱收费补课"], ["市城管局", "市教育局"])
