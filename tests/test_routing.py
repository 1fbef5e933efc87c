"""The responsibility list: inheritance from the parents, leaf overrides, district entries,
placeholders filled from the address, allows(), errors naming rows, and the full demo list."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import DATASETS

from triage.address import Gazetteer, extract_address
from triage.errors import InputFileError, RoutingError
from triage.routing import Entry, ResponsibilityList, fill_unit
from triage.taxonomy import Taxonomy

TAX_CSV = """一级分类,二级分类,三级分类,department
城市管理,占道经营,流动摊贩,市城市管理局
城市管理,占道经营,店外经营,市城市管理局
城市管理,违法建设,小区违建,属地街道办事处
城乡建设,房屋安全,房屋质量,市住房和城乡建设局
城乡建设,房屋安全,其他,市住房和城乡建设局
民政与社区,邻里纠纷,其他,属地街道办事处
"""

LIST_CSV = """node,lead,co,district
城市管理,市城市管理局,,
城市管理/占道经营,{district}城市管理和综合执法局,{street}办事处,
流动摊贩,{district}城市管理和综合执法局,{district}{street}办事处|市市场监督管理局,
城乡建设,市住房和城乡建设局,,
城乡建设/房屋安全/房屋质量,高新区管委会建设局,,高新区
城乡建设/房屋安全,市住房和城乡建设局,{district}住房和城乡建设局,
民政与社区/邻里纠纷,{district}{street}办事处,{district}司法局,
"""

GAZ_CSV = """district,street,community
东城区,和平街道,幸福里社区
高新区,科技城街道,未来社区
北山区,青山镇,河东村
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def tax(tmp_path: Path) -> Taxonomy:
    return Taxonomy.from_file(_write(tmp_path / "tax.csv", TAX_CSV))


@pytest.fixture
def gaz(tmp_path: Path) -> Gazetteer:
    return Gazetteer.from_file(_write(tmp_path / "gaz.csv", GAZ_CSV))


@pytest.fixture
def rl(tmp_path: Path, tax: Taxonomy, gaz: Gazetteer) -> ResponsibilityList:
    return ResponsibilityList.from_file(_write(tmp_path / "list.csv", LIST_CSV), tax, gaz)


def _load(tmp_path: Path, text: str, tax: Taxonomy, gaz: Gazetteer | None = None,
          name: str = "list.csv") -> ResponsibilityList:
    return ResponsibilityList.from_file(_write(tmp_path / name, text), tax, gaz)


# -- lookup ---------------------------------------------------------------------------------
def test_leaf_inherits_from_its_second_level(rl: ResponsibilityList) -> None:
    entry = rl.lookup("城市管理/占道经营/店外经营")
    assert entry is not None
    assert (entry.node, entry.lead, entry.co, entry.district, entry.row) == (
        "城市管理/占道经营", "{district}城市管理和综合执法局", ("{street}办事处",), "", 3)


def test_leaf_inherits_from_the_top_level(rl: ResponsibilityList) -> None:
    entry = rl.lookup("城市管理/违法建设/小区违建")
    assert entry is not None and (entry.node, entry.lead) == ("城市管理", "市城市管理局")


def test_leaf_override_by_bare_name(rl: ResponsibilityList) -> None:
    entry = rl.lookup("城市管理/占道经营/流动摊贩")
    assert entry is not None and entry.node == "城市管理/占道经营/流动摊贩"
    assert entry.co == ("{district}{street}办事处", "市市场监督管理局")


def test_district_entry_wins_only_in_its_district(rl: ResponsibilityList) -> None:
    leaf = "城乡建设/房屋安全/房屋质量"
    assert rl.units(leaf, "高新区", "科技城街道") == ("高新区管委会建设局", ())
    assert rl.units(leaf, "东城区") == ("市住房和城乡建设局", ("东城区住房和城乡建设局",))
    assert rl.units(leaf) == ("市住房和城乡建设局", ("属地区住房和城乡建设局",))
    # the street alone names the district through the gazetteer
    assert rl.units(leaf, street="科技城街道") == ("高新区管委会建设局", ())
    # a sibling leaf has no district entry of its own: the general parent entry applies
    assert rl.units("城乡建设/房屋安全/其他", "高新区")[0] == "市住房和城乡建设局"


def test_unlisted_leaf_and_unknown_path(tmp_path: Path, tax: Taxonomy) -> None:
    partial = _load(tmp_path, "node,lead\n城市管理,市城市管理局\n", tax)
    assert partial.lookup("民政与社区/邻里纠纷/其他") is None
    assert partial.units("民政与社区/邻里纠纷/其他") is None
    assert partial.missing_leaves() == ["城乡建设/房屋安全/房屋质量", "城乡建设/房屋安全/其他",
                                        "民政与社区/邻里纠纷/其他"]
    with pytest.raises(RoutingError, match="not a path in the taxonomy"):
        partial.lookup("城市管理/不存在")


# -- placeholders -----------------------------------------------------------------------------
def test_placeholders_with_a_full_address(rl: ResponsibilityList) -> None:
    assert rl.units("城市管理/占道经营/店外经营", "东城区", "和平街道") == (
        "东城区城市管理和综合执法局", ("和平街道办事处",))
    assert rl.units("城市管理/占道经营/流动摊贩", "东城区", "和平街道") == (
        "东城区城市管理和综合执法局", ("东城区和平街道办事处", "市市场监督管理局"))


def test_placeholders_without_an_address_give_the_generic_form(rl: ResponsibilityList) -> None:
    assert rl.units("城市管理/占道经营/店外经营") == ("属地区城市管理和综合执法局",
                                                      ("属地街道办事处",))
    assert rl.units("民政与社区/邻里纠纷/其他") == ("属地街道办事处", ("属地区司法局",))
    assert rl.units("民政与社区/邻里纠纷/其他", "东城区") == ("属地街道办事处", ("东城区司法局",))


def test_township_has_a_government_not_an_office(rl: ResponsibilityList) -> None:
    assert rl.units("民政与社区/邻里纠纷/其他", street="青山镇") == (
        "北山区青山镇人民政府", ("北山区司法局",))
    assert fill_unit("{street}办事处", "", "某某镇") == "某某镇人民政府"


def test_fill_unit_rules() -> None:
    assert fill_unit("{street}办事处") == "属地街道办事处"
    assert fill_unit("{district}城管局") == "属地区城管局"
    assert fill_unit("{district}{street}办事处", "", "和平街道") == "和平街道办事处"
    assert fill_unit("{district}{street}办事处", "东城区") == "属地街道办事处"
    assert fill_unit("市教育局", "东城区", "和平街道") == "市教育局"
    entry = Entry("a", "{street}办事处", ("{street}办事处", "{district}司法局"))
    assert entry.resolve() == ("属地街道办事处", ("属地区司法局",))  # a co equal to the lead goes


# -- allows -----------------------------------------------------------------------------------
def test_allows(rl: ResponsibilityList) -> None:
    leaf = "城市管理/占道经营/流动摊贩"
    assert rl.allows(leaf, "东城区城市管理和综合执法局", "东城区", "和平街道")
    assert rl.allows(leaf, "市市场监督管理局", "东城区", "和平街道")
    assert not rl.allows(leaf, "高新区城市管理和综合执法局", "东城区", "和平街道")
    assert not rl.allows(leaf, "市城市管理局", "东城区", "和平街道")  # the parent's unit
    # an unknown address allows the generic form and any real unit of that shape
    assert rl.allows(leaf, "属地区城市管理和综合执法局")
    assert rl.allows(leaf, "高新区城市管理和综合执法局")
    assert rl.allows(leaf, "北山区青山镇人民政府")
    assert not rl.allows(leaf, "市城市管理和综合执法局")  # 市 is no district of the gazetteer
    assert rl.allows("城乡建设/房屋安全/房屋质量", "高新区管委会建设局", "高新区")
    assert not rl.allows("城乡建设/房屋安全/房屋质量", "高新区管委会建设局", "东城区")


# -- files and errors -------------------------------------------------------------------------
def test_yaml_list_and_chinese_headers(tmp_path: Path, tax: Taxonomy, gaz: Gazetteer) -> None:
    yaml_text = """
- node: 城市管理
  lead: 市城市管理局
- node: 占道经营
  lead: "{district}城市管理和综合执法局"
  co: ["{street}办事处"]
  district: 东城区
"""
    from_yaml = _load(tmp_path, yaml_text, tax, gaz, name="list.yaml")
    assert from_yaml.units("城市管理/占道经营/流动摊贩", "东城区", "和平街道") == (
        "东城区城市管理和综合执法局", ("和平街道办事处",))
    assert from_yaml.units("城市管理/占道经营/流动摊贩", "北山区")[0] == "市城市管理局"
    cn = _load(tmp_path, "节点,主办,协办,区\n城市管理,市城市管理局,市公安局,\n", tax)
    assert cn.units("城市管理/违法建设/小区违建") == ("市城市管理局", ("市公安局",))


@pytest.mark.parametrize(("text", "message"), [
    ("node,lead\n城市管理,市城市管理局\n城市管理/不存在,市公安局\n",
     r"node '城市管理/不存在' is not a path in the taxonomy \(row 3\)"),
    ("node,lead\n城市管理,市城市管理局\n不存在,市公安局\n", r"node '不存在' names no node .*\(row 3\)"),
    ("node,lead\n其他,市城市管理局\n", r"ambiguous .*\(row 2\)"),
    ("node,lead,co\n城市管理,,市公安局\n", r"row 2 \(城市管理\) has no lead unit"),
    ("node,lead,district\n城市管理,市城市管理局,南山区\n",
     "row 2 names the district '南山区', which the gazetteer does not list"),
    ("node,lead\n城市管理,市城市管理局\n城乡建设,市住房和城乡建设局\n城市管理,市公安局\n",
     "rows 2 and 4 both give '城市管理' everywhere"),
    ("node,lead,district\n占道经营,东城区城管局,东城区\n城市管理/占道经营,东城区城管,东城区\n",
     "rows 2 and 3 both give '城市管理/占道经营' for 东城区"),
    ("node,lead\n城市管理,{city}城市管理局\n", "row 2 has the unit '{city}城市管理局'"),
    ("node,lead\n城市管理,{district城市管理局\n", "row 2 has the unit"),
    ("node,lead\n", "has no entries"),
    ("节点,单位\n城市管理,市城市管理局\n", "needs the columns node, lead"),
])
def test_errors_name_rows(tmp_path: Path, tax: Taxonomy, gaz: Gazetteer, text: str,
                          message: str) -> None:
    with pytest.raises(RoutingError, match=message) as info:
        _load(tmp_path, text, tax, gaz)
    assert isinstance(info.value, InputFileError)
    assert str(tmp_path / "list.csv") in info.value.message


def test_yaml_errors_name_entries(tmp_path: Path, tax: Taxonomy) -> None:
    with pytest.raises(RoutingError, match=r"names no node .*\(entry 2\)"):
        _load(tmp_path, "- {node: 城市管理, lead: 市城市管理局}\n- {node: 无, lead: 市公安局}\n",
              tax, name="l.yaml")
    with pytest.raises(RoutingError, match="entry 1 .* has no lead unit"):
        _load(tmp_path, "- {node: 城市管理}\n", tax, name="l.yaml")


def test_district_is_free_text_without_a_gazetteer(tmp_path: Path, tax: Taxonomy) -> None:
    listed = _load(tmp_path, "node,lead,district\n城市管理,南山区城管局,南山区\n", tax)
    assert listed.units("城市管理/违法建设/小区违建", "南山区") == ("南山区城管局", ())
    assert listed.lookup("城市管理/违法建设/小区违建") is None


# -- the demo list ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo() -> tuple[Taxonomy, Gazetteer, ResponsibilityList]:
    tax = Taxonomy.from_file(DATASETS / "demo_taxonomy.csv")
    gaz = Gazetteer.from_file(DATASETS / "demo_gazetteer.csv")
    return tax, gaz, ResponsibilityList.from_file(DATASETS / "demo_responsibility.csv", tax, gaz)


def test_demo_list_covers_every_node(demo: tuple[Taxonomy, Gazetteer, ResponsibilityList]) -> None:
    tax, _, rl = demo
    assert rl.missing_leaves() == []
    general = {e.node for e in rl.entries if not e.district}
    assert {n.key for n in tax.walk() if n.depth <= 2} <= general
    assert any(e.district for e in rl.entries)
    for leaf in tax.leaves():
        assert rl.lookup(leaf.key) is not None


def test_demo_units_are_real_names(demo: tuple[Taxonomy, Gazetteer, ResponsibilityList]) -> None:
    tax, gaz, rl = demo
    for leaf in tax.leaves():
        for district in gaz.districts:
            for street in gaz.streets(district):
                lead, co = rl.units(leaf.key, district, street) or ("", ())
                for unit in (lead, *co):
                    assert "{" not in unit and "}" not in unit and "属地" not in unit, unit
                    assert len(unit) >= 4 and unit.startswith(("市", district)), unit
        lead, co = rl.units(leaf.key) or ("", ())
        assert "{" not in lead + "".join(co)


def test_demo_brief_examples(demo: tuple[Taxonomy, Gazetteer, ResponsibilityList]) -> None:
    _, _, rl = demo
    assert rl.units("城市管理/占道经营与流动摊贩/流动摊贩占道经营", "东城区", "和平街道") == (
        "东城区城市管理和综合执法局", ("东城区和平街道办事处",))
    assert rl.units("环境保护/噪声污染/社会生活噪声") == ("市公安局", ("市生态环境局",))
    assert rl.units("民政与社区/社区治理与邻里纠纷/邻里矛盾纠纷", "西城区", "文昌街道") == (
        "西城区文昌街道办事处", ("西城区司法局",))
    assert rl.units("城乡建设/房屋安全与建筑施工/房屋质量与安全隐患", "高新区")[0] == (
        "高新区管委会建设局")


def test_routing_a_demo_appeal_is_fast(demo: tuple[Taxonomy, Gazetteer, ResponsibilityList],
                                       ) -> None:
    _, gaz, rl = demo
    text = "占道经营严重西城区文昌街道幸福里社区门口每天早上都有小摊贩把路堵住，希望城管处理。" * 6
    leaf = "城市管理/占道经营与流动摊贩/流动摊贩占道经营"
    rounds = 200
    start = time.perf_counter()
    for _ in range(rounds):
        address = extract_address(text, gaz)
        units = rl.units(leaf, address.district, address.street)
    assert units == ("西城区城市管理和综合执法局", ("西城区文昌街道办事处",))
    assert (time.perf_counter() - start) / rounds < 5e-3


def test_allows_compares_units_by_their_standard_names(rl: ResponsibilityList) -> None:
    leaf = "城市管理/占道经营/流动摊贩"
    assert rl.allows(leaf, "东城区城管局", "东城区", "和平街道")
    assert rl.allows(leaf, "市市场监管局", "东城区", "和平街道")
    assert not rl.allows(leaf, "市城管局", "东城区", "和平街道")  # the parent's unit
    assert not rl.allows(leaf, "高新区城管局", "东城区", "和平街道")
    # an unknown address: any real unit of the template's shape, in any spelling
    assert rl.allows(leaf, "高新区城管局")
    assert rl.allows(leaf, "属地区城管局")
    assert rl.allows(leaf, "北山区城市管理局", "北山区")
    assert not rl.allows(leaf, "市城管局")  # 市 is no district of the gazetteer
    assert rl.allows("城乡建设/房屋安全/其他", "东城区住建局")
    assert rl.allows("城乡建设/房屋安全/其他", "市住建局", "东城区", "和平街道")


def test_a_generic_local_unit_is_the_list_unit_of_the_appeals_place(rl: ResponsibilityList) -> None:
    neighbours = "民政与社区/邻里纠纷/其他"
    assert rl.allows(neighbours, "属地街道办事处", "高新区", "科技城街道")
    assert rl.allows(neighbours, "属地区司法局", "东城区", "和平街道")
    assert not rl.allows("城乡建设/房屋安全/其他", "属地街道办事处", "东城区", "和平街道")
    assert rl.allows("城乡建设/房屋安全/其他", "属地区住建局", "东城区", "和平街道")


def test_co_handlers_are_distinct_from_the_lead_and_each_other_by_standard_name(
        tmp_path: Path, tax: Taxonomy) -> None:
    listed = _load(tmp_path, "node,lead,co,district\n"
                   "城乡建设,市住建局,市住建局|市住房和城乡建设局|市城管局|市城市管理局,\n", tax)
    assert listed.units("城乡建设/房屋安全/房屋质量") == ("市住建局", ("市城管局",))
    entry = Entry("城乡建设", "{district}住房和城乡建设局", ("{district}住建局", "市城管局"))
    assert entry.resolve("东城区") == ("东城区住房和城乡建设局", ("市城管局",))


def test_a_header_with_a_column_twice_is_refused(tmp_path: Path, tax: Taxonomy) -> None:
    for header in ("node,lead,node", "node,lead,节点"):
        with pytest.raises(RoutingError, match="column.*node.*twice|two .*node"):
            _load(tmp_path, f"{header}\n城市管理,市城市管理局,城乡建设\n", tax)


@pytest.mark.parametrize("district", ["西城", "城市管理", "东城区办事处"])
def test_a_district_that_is_no_district_name_is_refused_without_a_gazetteer(
        tmp_path: Path, tax: Taxonomy, district: str) -> None:
    with pytest.raises(RoutingError, match=f"row 2 names the district '{district}'.*区, 县, 市 or 旗"):
        _load(tmp_path, f"node,lead,district\n城市管理,市城市管理局,{district}\n", tax)


def test_an_unknown_node_is_named_as_a_node_on_its_row(tmp_path: Path, tax: Taxonomy) -> None:
    with pytest.raises(RoutingError) as info:
        _load(tmp_path, "node,lead\n城市管理,市城市管理局\n城乡建设,市住建局\n不存在的分类/子类,市公安局\n",
              tax)
    assert "node '不存在的分类/子类' is not a path in the taxonomy (row 4)" in info.value.message
    assert "label" not in info.value.message
    with pytest.raises(RoutingError, match=r"\(entry 2\)"):
        _load(tmp_path, "- {node: 城市管理, lead: 市城市管理局}\n- {node: 无/有, lead: 市公安局}\n",
              tax, name="l.yaml")
