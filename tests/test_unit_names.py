"""Two names of one unit: the standard name keeps the place a department cell gives."""

from __future__ import annotations

import pytest

from triage.units import same_unit, standard_unit, unit_place


@pytest.mark.parametrize(("cell", "standard"), [
    ("北山区民政局", "北山区民政局"),  # 山区 reads as a word, but 北山区 is the place
    ("北山区青山镇人民政府", "北山区青山镇人民政府"),
    ("A7县文化体育广播电视局", "A7县文化体育广播电视局"),
    ("市公安局交通警察支队", "市交警支队"),
])
def test_a_standard_name_keeps_the_place_of_the_cell(cell: str, standard: str) -> None:
    assert standard_unit(cell) == standard
    assert standard_unit(standard) == standard


def test_same_unit_under_two_spellings() -> None:
    assert same_unit("市城市管理局", "市城管局")
    assert same_unit("东城区城市管理和综合执法局", "东城区城管局")
    assert same_unit("市住房和城乡建设局", "市住建局")
    assert not same_unit("北山区民政局", "南湖区民政局")
    assert not same_unit("市城市管理局", "东城区城管局")


def test_the_place_a_unit_name_holds() -> None:
    assert unit_place("东城区和平街道办事处") == ("东城区", "和平街道")
    assert unit_place("A3区住房和城乡建设局") == ("A3区", "")
    assert unit_place("青山镇人民政府") == ("", "青山镇")
    assert unit_place("市城市管理局") == ("", "")
