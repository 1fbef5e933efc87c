"""A street office, town or township government is placed only by a place the appeal names:
街道 right after a district is the street, the word (A3区街道两旁摆摊), not a street office, and
no office is called A3区街道办事处, 东城区东城区街道办事处 or 某某街道办事处."""

from __future__ import annotations

import pytest

from triage.units import kind_unit, place_unit


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
