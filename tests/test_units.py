"""Reading the handling unit from a government reply (triage.reply_units), the units a text names
(triage.unit_mentions), kinds of unit (triage.unit_kinds) and standard unit names (triage.units)."""

from __future__ import annotations

import pytest
from conftest import SHARED, needs_shared

from triage.reply_units import handling_unit
from triage.tables import read_table
from triage.unit_kinds import KIND_BODY, KINDS, reply_kind, topic_kinds, unit_category
from triage.unit_mentions import find_units
from triage.units import keep_kind, kind_unit, local_body, place_unit, relocate, standard_unit

# Hand-written reply snippets in the style of the shared replies, with the unit a dispatcher
# would have routed each appeal to.
REPLIES = [
    ("网友您好！A3区洋湖街道高度重视，立即组织人员到现场核实，现回复如下：该处垃圾已清运。",
     "A3区洋湖街道办事处"),
    ("您好！经A5区住房和城乡建设局调查核实，该小区外墙渗水属实，已督促开发商维修。",
     "A5区住建局"),
    ("网友：您好！您的留言我局已收悉，高度重视，现将有关情况回复如下：该工地已停工整改。"
     "感谢您对我们工作的支持！A3区住房和城乡建设局2019年5月8日", "A3区住建局"),
    ("您好，您反映的问题已转交K11县教育局核实、办复。2019年3月2日", "K11县教育局"),
    ("市住建局及时将您反映的问题交由市房屋交易管理中心办理，现回复如下：网签系统已修复。",
     "市住建局"),
    ("您好！您反映的情况我镇已收悉。白马渡镇党委政府高度重视，已安排人员调查。我镇将继续跟进。",
     "白马渡镇人民政府"),
    ("网友您好，经同升街道核实，该快递点收费属实，已责令整改。", "同升街道办事处"),
    ("您好！收到投诉后，市公安局交通警察支队高度重视，已在该路口增设电子警察。", "市交警支队"),
]


@pytest.mark.parametrize(("reply", "unit"), REPLIES)
def test_the_unit_that_handled_the_appeal_is_read_with_its_place(reply: str, unit: str) -> None:
    assert handling_unit(reply) == unit


def test_a_reply_that_names_no_unit_gives_none() -> None:
    assert handling_unit("网友您好，您反映的问题已收悉，相关部门正在处理，感谢您的关心和支持！") is None
    assert handling_unit("") is None


def test_wo_ju_alone_is_resolved_only_by_a_name_elsewhere_in_the_reply() -> None:
    assert handling_unit("您好，我局已收悉，正在研究。") is None
    assert handling_unit("您好，我局已收悉，正在研究。C市教育局") == "C市教育局"


def test_a_bare_district_takes_the_code_the_reply_names() -> None:
    reply = "您好！您反映的A5区黄兴路问题，经区城管局核实，已安排清理。"
    assert handling_unit(reply) == "A5区城管局"


def test_units_are_found_in_reading_order_with_their_places() -> None:
    names = [u.name for u in find_units("经A3区住房和城乡建设局核实，洋湖街道已处理，大桥社区配合。")]
    assert names == ["A3区住建局", "洋湖街道办事处", "大桥社区"]


@pytest.mark.parametrize(("cell", "standard"), [
    ("A3区住房和城乡建设局", "A3区住建局"),
    ("洋湖街道", "洋湖街道办事处"),
    ("东城区城市管理和综合执法局", "东城区城管局"),
    ("东城区和平街道办事处", "东城区和平街道办事处"),
    ("市卫生健康委员会", "市卫健委"),
    ("市公安局交通警察支队", "市交警支队"),
    ("市燃气集团", "市燃气集团"),
])
def test_department_cells_get_standard_short_names(cell: str, standard: str) -> None:
    assert standard_unit(cell) == standard


@pytest.mark.parametrize(("name", "body", "category"), [
    ("A3区住建局", "住建局", "住建"),
    ("洋湖街道办事处", "街道办事处", "街道乡镇"),
    ("跳马镇人民政府", "镇人民政府", "街道乡镇"),
    ("K11县教育局", "教育局", "教育"),
    ("属地街道办事处", "街道办事处", "街道乡镇"),
    ("市财政局", "财政局", ""),
])
def test_a_unit_has_a_place_free_body_and_a_kind(name: str, body: str, category: str) -> None:
    assert local_body(name) == body
    assert unit_category(name) == category


def test_a_body_is_placed_by_the_address_an_appeal_gives() -> None:
    appeal = "A3区洋湖街道某小区门口垃圾成堆，没人清运"
    assert place_unit("城管局", appeal) == "A3区城管局"
    assert place_unit("街道办事处", appeal) == "A3区洋湖街道办事处"
    assert place_unit("镇人民政府", "我是A7县黄星镇蓝田新村村民") == "A7县黄星镇人民政府"
    assert place_unit("教育局", "学校乱收费") == "市教育局"


def test_a_local_body_takes_the_local_unit_the_appeal_names_whatever_its_kind() -> None:
    """A town government for an appeal from a township is that township's government."""
    assert place_unit("镇人民政府", "L3县火场乡低保评选问题咨询") == "L3县火场乡人民政府"
    assert place_unit("街道办事处", "我是A7县黄星镇蓝田新村村民") == "A7县黄星镇人民政府"
    assert place_unit("乡人民政府", "B2区龙泉街道龙泉村鑫盛路请求安装路灯") == "B2区龙泉街道办事处"


@pytest.mark.parametrize("body", ["街道办事处", "镇人民政府", "乡人民政府", "村委会", "社区"])
@pytest.mark.parametrize("appeal", ["A3区潇楚南路洋湖段怎么还没修好", "路灯坏了很久没人修"])
def test_a_local_body_the_appeal_gives_no_place_for_is_a_placeholder_not_a_name(
        body: str, appeal: str) -> None:
    """No office is called A3区镇人民政府 or 街道办事处: with no street, town or township in the
    appeal, the answer is the generic 属地 form, which the dispatcher sends to a person."""
    unit = place_unit(body, appeal)
    assert unit.startswith("属地"), unit
    assert reply_kind(unit) == "街道乡镇"
    assert kind_unit("街道乡镇", appeal).startswith("属地")


def test_a_placed_unit_moves_to_the_place_of_the_appeal() -> None:
    assert relocate("A7县教育局", "A5区某小学乱收费") == "A5区教育局"
    assert relocate("市运管处", "C市35路公交车发车太少") == "C市运管处"
    assert relocate("A市公安局", "A7县星沙派出所") == "A市公安局"
    assert relocate("A7县泉塘街道办事处", "A5区") == "A7县泉塘街道办事处"


@needs_shared()
def test_most_shared_replies_that_name_a_unit_give_one() -> None:
    replies = read_table(SHARED / "teddy2020c" / "replies_train.csv").column("答复意见")[:300]
    units = [handling_unit(r) for r in replies]
    assert sum(u is not None for u in units) >= 0.4 * len(replies)
    assert all(unit_category(u) or u.endswith(("局", "委", "中心", "队", "处")) for u in units if u)


# --------------------------------------------------------------------------- #
# kinds of unit: the official reading (../shared/docs/unit-types.md)
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(("reply", "kind"), [
    ("网友您好！经A3区住房和城乡建设局核实，洋湖街道已处理。", "住建"),
    ("您好，我镇已收悉，正在处理。", "街道乡镇"),
    ("A5区人民政府高度重视，市民政局已核实。", "民政"),  # 人民政府 is not 民政
    ("您好！您反映的问题已收悉，市政府办公厅转市城管局办理。", "城管"),  # 市政府 is no 市政
    ("网友您好，感谢您的关心和支持！", ""),
    ("您好！" + "相关部门正在处理。" * 40 + "市教育局", ""),  # only the first 300 characters
    ("市卫健委", "卫健"),  # a department cell is typed as a whole
])
def test_a_reply_is_typed_by_the_first_unit_it_names_that_has_a_kind(reply: str, kind: str) -> None:
    assert reply_kind(reply) == kind


def test_every_kind_has_a_standard_unit_that_reads_as_that_kind() -> None:
    appeals = ["A3区洋湖街道某小区", "K11县白马渡镇蓝田村", "旅游区的老人", "学校", "A市房产街道"]
    for kind in KINDS:
        assert unit_category(KIND_BODY[kind]) == kind
        for appeal in appeals:
            # as a predicted department is measured: the first unit its name names with a kind
            assert reply_kind(kind_unit(kind, appeal)) == kind, (kind, appeal)


def test_a_placed_name_that_reads_as_another_kind_falls_back_to_the_body_of_the_place() -> None:
    appeal = "今天去A2区裕南街街道派出所办理落户被拒"
    assert keep_kind("A2区裕南街街道派出所", "派出所", "公安", appeal) == "A2区派出所"
    assert keep_kind("A2区东塘派出所", "派出所", "公安", appeal) == "A2区东塘派出所"


def test_a_kind_is_placed_by_the_appeal() -> None:
    assert kind_unit("民政", "A3区老人申请高龄补贴") == "A3区民政局"
    assert kind_unit("街道乡镇", "A3区洋湖街道某小区门口垃圾成堆") == "A3区洋湖街道办事处"
    assert kind_unit("街道乡镇", "A7县黄星镇蓝田新村道路破损") == "A7县黄星镇人民政府"
    assert kind_unit("教育", "学校乱收费") == "市教育局"


def test_an_appeal_speaks_of_the_duties_of_kinds_of_unit() -> None:
    assert topic_kinds("家里困难，申请低保两年了还没批下来") == {"民政": 1}
    assert topic_kinds("宅基地确权一直办不下来")["自然资源规划"] == 2
    assert topic_kinds("今天天气很好") == {}


@needs_shared()
def test_reply_kind_agrees_with_the_shared_reading_on_every_shared_reply() -> None:
    tools = SHARED.parent / "tools"
    if not (tools / "unit_types.py").is_file():
        pytest.skip(f"shared tool not found at {tools}")
    import importlib.util

    spec = importlib.util.spec_from_file_location("unit_types", tools / "unit_types.py")
    assert spec and spec.loader
    shared = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shared)
    replies = read_table(SHARED / "teddy2020c" / "replies_train.csv").column("答复意见")
    assert [reply_kind(r) for r in replies] == [shared.unit_type(r) or "" for r in replies]


# --- A street office, town or township government is placed only by a place the appeal names:
# 街道 right after a district is the street, the word (A3区街道两旁摆摊), not a street office, and
# no office is called A3区街道办事处, 东城区东城区街道办事处 or 某某街道办事处.

@pytest.mark.parametrize("appeal", [
    "A3区街道两旁摆摊占道经营，垃圾遍地，请街道办管一管",
    "A3区街道上到处是垃圾，环卫工人很久没来扫了",
    "K7县街道两边乱停车，行人没法走",
    "东城区街道两边乱停车，行人没法走",
    "A3区街道办不作为，小区违建举报了半年没人管",
    "某某街道办不管小区违建",
])
@pytest.mark.parametrize("body", ["街道办事处", "镇人民政府", "乡人民政府", "社区"])
def test_a_street_word_after_a_district_is_no_street_office(appeal: str, body: str) -> None:
    unit = place_unit(body, appeal)
    assert unit.startswith("属地"), unit
    assert kind_unit("街道乡镇", appeal).startswith("属地")


@pytest.mark.parametrize(("appeal", "unit"), [
    ("A3区洋湖街道某小区漏水", "A3区洋湖街道办事处"),
    ("洋湖街道辖区内违章搭建严重", "洋湖街道办事处"),
    ("东城区和平街道人民路菜市场门口天天有流动摊贩", "东城区和平街道办事处"),
    ("L3县火场乡低保评选问题咨询", "L3县火场乡人民政府"),
    ("我是A7县黄星镇蓝田新村村民", "A7县黄星镇人民政府"),
    ("K7县城关镇的路灯坏了", "K7县城关镇人民政府"),
])
def test_a_named_street_town_or_township_still_places_the_body(appeal: str, unit: str) -> None:
    assert place_unit("街道办事处", appeal) == unit
