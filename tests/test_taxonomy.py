"""The taxonomy: files in every accepted format, structure errors naming rows, label resolution,
and the content-hash version."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import SHARED, needs_shared

from triage.errors import InputFileError, LabelError, TaxonomyError
from triage.taxonomy import Taxonomy


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def _keys(tax: Taxonomy) -> list[str]:
    return [n.key for n in tax.leaves()]


# A small three-level taxonomy with Chinese metadata headers, a shallow leaf, an ancestor row that
# carries the department, a repeated leaf name (其他) and a name repeated down a path (交通运输).
CN_CSV = """一级分类,二级分类,三级分类,编码,描述,关键词,部门
教育,,,JY,教育类诉求,,市教育局
教育,招生,小学入学,JY-01-01,小学划片与学位,划片|学位、入学,
教育,招生,其他,JY-01-99,招生其他问题,招生,区教育局
教育,校外培训,,JY-02,培训机构退费,退费 | 跑路,市场监管局
交通运输,交通运输,出租车管理,JT-01-01,出租车拒载绕路,拒载|绕路,市交通运输局
交通运输,交通运输,其他,JT-01-99,交通其他问题,交通,市交通运输局
交通运输,公交,,JT-02,公交线路与站点,公交、站点,公交集团
"""


@pytest.fixture
def cn_tax(tmp_path: Path) -> Taxonomy:
    return Taxonomy.from_file(_write(tmp_path / "tax.csv", CN_CSV))


# -- the shared and demo taxonomies ----------------------------------------------------------
@needs_shared()
def test_shared_taxonomy_loads() -> None:
    tax = Taxonomy.from_file(SHARED / "teddy2020c" / "taxonomy_3level.csv")
    leaves = tax.leaves()
    assert len(leaves) == 517
    assert len(tax.roots) == 15
    assert sum(1 for n in leaves if n.name == "其他") == 116
    assert all(n.depth == 3 for n in leaves)
    under = [n.key for n in tax.leaves("交通运输/交通运输")]
    assert under and all(k.startswith("交通运输/交通运输/") for k in under)
    assert tax.resolve("交通运输").key == "交通运输"  # the shallowest of that name
    with pytest.raises(LabelError, match="ambiguous"):
        tax.resolve("其他")


def test_demo_taxonomy_is_complete(demo_taxonomy: Taxonomy) -> None:
    leaves = demo_taxonomy.leaves()
    assert len(leaves) >= 60
    assert len(demo_taxonomy.roots) >= 8
    for leaf in leaves:
        assert leaf.description.strip(), leaf.key
        assert leaf.keywords and all(k.strip() for k in leaf.keywords), leaf.key
        assert demo_taxonomy.department_for(leaf.key).strip(), leaf.key


# -- CSV -----------------------------------------------------------------------------------
def test_chinese_metadata_headers(cn_tax: Taxonomy) -> None:
    leaf = cn_tax.node("教育/招生/小学入学")
    assert (leaf.code, leaf.description) == ("JY-01-01", "小学划片与学位")
    assert leaf.keywords == ("划片", "学位", "入学")  # split on | and 、
    assert cn_tax.node("教育/校外培训").keywords == ("退费", "跑路")  # spaces trimmed
    assert cn_tax.node("交通运输/公交").keywords == ("公交", "站点")


def test_leaves_of_different_depth(cn_tax: Taxonomy) -> None:
    assert _keys(cn_tax) == [
        "教育/招生/小学入学",
        "教育/招生/其他",
        "教育/校外培训",
        "交通运输/交通运输/出租车管理",
        "交通运输/交通运输/其他",
        "交通运输/公交",
    ]
    assert cn_tax.node("教育/校外培训").depth == 2
    assert not cn_tax.node("教育/招生").is_leaf
    assert [r.name for r in cn_tax.roots] == ["教育", "交通运输"]
    assert _keys_under(cn_tax, "交通运输/交通运输") == [
        "交通运输/交通运输/出租车管理", "交通运输/交通运输/其他"]
    assert "教育/招生" in cn_tax and "教育/招生/初中" not in cn_tax
    assert len(cn_tax) == 10  # every node, inner ones included


def _keys_under(tax: Taxonomy, under: str) -> list[str]:
    return [n.key for n in tax.leaves(under)]


def test_department_inherited_from_ancestor_row(cn_tax: Taxonomy) -> None:
    assert cn_tax.node("教育/招生/小学入学").department == ""
    assert cn_tax.department_for("教育/招生/小学入学") == "市教育局"  # from the row 教育,,,
    assert cn_tax.department_for("教育/招生/其他") == "区教育局"  # its own wins
    assert cn_tax.department_for("教育/校外培训") == "市场监管局"


def test_english_metadata_headers_any_case(tmp_path: Path) -> None:
    path = _write(tmp_path / "tax.csv", (
        "L1,L2,Code,Description,Keywords,Department,notes\n"
        "环境保护,噪音污染,HB-01,施工噪音,噪音|扰民,市生态环境局,ignored\n"
        "环境保护,大气污染,HB-02,油烟,油烟、异味,,\n"
        "环境保护,,HB,,,生态环境局,\n"
    ))
    tax = Taxonomy.from_file(path)
    leaf = tax.node("环境保护/噪音污染")
    assert (leaf.code, leaf.description, leaf.keywords, leaf.department) == (
        "HB-01", "施工噪音", ("噪音", "扰民"), "市生态环境局")
    assert tax.node("环境保护/大气污染").keywords == ("油烟", "异味")
    assert tax.department_for("环境保护/大气污染") == "生态环境局"  # ancestor row comes last
    assert tax.node("环境保护").code == "HB"


def test_levels_only_csv_with_bom(tmp_path: Path) -> None:
    path = _write(tmp_path / "tax.csv", "一级,二级\n教育,招生\n教育,收费\n", encoding="utf-8-sig")
    tax = Taxonomy.from_file(path)
    assert _keys(tax) == ["教育/招生", "教育/收费"]
    assert tax.department_for("教育/招生") == ""


def test_metadata_first_column_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path / "tax.csv", "code,一级\nA,教育\n")
    with pytest.raises(TaxonomyError, match="first column must be the top taxonomy level"):
        Taxonomy.from_file(path)


def test_xlsx_taxonomy(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["一级", "二级", "三级", "编码", "关键词", "部门"])
    sheet.append(["教育", None, None, None, None, "市教育局"])
    sheet.append(["教育", "招生", "小学", 101, "划片|学位", None])
    sheet.append(["教育", "收费", None, "E2", "补课、乱收费", None])
    path = tmp_path / "tax.xlsx"
    book.save(path)
    tax = Taxonomy.from_file(path)
    assert _keys(tax) == ["教育/招生/小学", "教育/收费"]
    assert tax.node("教育/招生/小学").code == "101"
    assert tax.node("教育/收费").keywords == ("补课", "乱收费")
    assert tax.department_for("教育/收费") == "市教育局"


def test_jsonl_taxonomy(tmp_path: Path) -> None:
    path = _write(tmp_path / "tax.jsonl", (
        '{"l1": "教育", "l2": "招生", "keywords": "划片|学位", "department": "市教育局"}\n'
        '{"l1": "教育", "l2": "", "department": "教育局"}\n'
        '{"l1": "卫生", "l2": "医保", "keywords": "报销"}\n'
    ))
    tax = Taxonomy.from_file(path)
    assert _keys(tax) == ["教育/招生", "卫生/医保"]
    assert tax.node("教育/招生").keywords == ("划片", "学位")
    assert tax.department_for("卫生/医保") == ""


# -- YAML ----------------------------------------------------------------------------------
YAML = """\
- name: 教育
  department: 市教育局
  children:
    - name: 招生
      code: JY-01
      description: 入学与招生
      keywords: [划片, 学位]
    - name: 收费
      keywords: 补课|乱收费
      department: 市场监管局
- name: 交通运输
  children:
    - name: 交通运输
      children:
        - name: 其他
          description: 交通其他问题
"""


def test_yaml_nested(tmp_path: Path) -> None:
    tax = Taxonomy.from_file(_write(tmp_path / "tax.yaml", YAML))
    assert _keys(tax) == ["教育/招生", "教育/收费", "交通运输/交通运输/其他"]
    leaf = tax.node("教育/招生")
    assert (leaf.code, leaf.description, leaf.keywords) == ("JY-01", "入学与招生", ("划片", "学位"))
    assert tax.node("教育/收费").keywords == ("补课", "乱收费")
    assert tax.department_for("教育/招生") == "市教育局"
    assert tax.department_for("教育/收费") == "市场监管局"


def test_yaml_under_data_key_and_yml_suffix(tmp_path: Path) -> None:
    text = "data:\n" + "".join("  " + line + "\n" for line in YAML.splitlines())
    tax = Taxonomy.from_file(_write(tmp_path / "tax.yml", text))
    assert _keys(tax) == ["教育/招生", "教育/收费", "交通运输/交通运输/其他"]


def test_yaml_and_csv_of_the_same_tree_have_the_same_version(tmp_path: Path) -> None:
    csv_tax = Taxonomy.from_file(_write(tmp_path / "t.csv", (
        "l1,l2,description,keywords,department\n"
        "教育,,,,市教育局\n"
        "教育,招生,入学与招生,划片|学位,\n"
    )))
    yaml_tax = Taxonomy.from_file(_write(tmp_path / "t.yaml", (
        "- name: 教育\n  department: 市教育局\n  children:\n"
        "    - name: 招生\n      description: 入学与招生\n      keywords: [划片, 学位]\n"
    )))
    assert csv_tax.version == yaml_tax.version


def test_yaml_node_without_name(tmp_path: Path) -> None:
    path = _write(tmp_path / "tax.yaml", (
        "- name: 教育\n  children:\n    - name: 招生\n    - description: 没有名字\n"
    ))
    with pytest.raises(TaxonomyError, match=r"node 2 under 教育 has no name"):
        Taxonomy.from_file(path)


def test_yaml_errors(tmp_path: Path) -> None:
    with pytest.raises(TaxonomyError, match="expected a list of nodes"):
        Taxonomy.from_file(_write(tmp_path / "a.yaml", "name: 教育\n"))
    with pytest.raises(TaxonomyError, match="not valid YAML"):
        Taxonomy.from_file(_write(tmp_path / "b.yaml", "- name: [教育\n"))
    with pytest.raises(TaxonomyError, match=r"repeats the path '教育/招生'"):
        Taxonomy.from_file(_write(tmp_path / "c.yaml", (
            "- name: 教育\n  children:\n    - name: 招生\n    - name: 招生\n"
        )))
    with pytest.raises(TaxonomyError, match="containing '/'"):
        Taxonomy.from_file(_write(tmp_path / "d.yaml", "- name: 教育/招生\n"))
    with pytest.raises(TaxonomyError, match="no nodes"):
        Taxonomy.from_file(_write(tmp_path / "e.yaml", "[]\n"))


# -- structure errors name the row -------------------------------------------------------------
def test_empty_name_in_the_middle_of_a_path(tmp_path: Path) -> None:
    path = _write(tmp_path / "tax.csv", "l1,l2,l3\n教育,招生,小学\n教育,,初中\n")
    with pytest.raises(TaxonomyError, match=r"row 3 has an empty level name before '初中'"):
        Taxonomy.from_file(path)


def test_duplicate_path_names_both_rows(tmp_path: Path) -> None:
    path = _write(tmp_path / "tax.csv", (
        "l1,l2,l3\n教育,招生,小学\n教育,收费,\n教育,招生,初中\n 教育 ,收费 ,\n"
    ))
    with pytest.raises(TaxonomyError, match=r"row 5 repeats the path '教育/收费' of row 3"):
        Taxonomy.from_file(path)


def test_row_without_level_names(tmp_path: Path) -> None:
    path = _write(tmp_path / "tax.csv", "l1,l2,department\n教育,招生,\n,,市教育局\n")
    with pytest.raises(TaxonomyError, match=r"row 3 has no level names"):
        Taxonomy.from_file(path)


def test_name_with_slash(tmp_path: Path) -> None:
    path = _write(tmp_path / "tax.csv", "l1,l2\n教育,招生/入学\n")
    with pytest.raises(TaxonomyError, match=r"row 2 has a name containing '/'"):
        Taxonomy.from_file(path)


def test_gbk_taxonomy(tmp_path: Path) -> None:
    path = _write(tmp_path / "tax.csv", "l1,l2\n教育,招生\n", encoding="gbk")
    with pytest.raises(InputFileError, match=r"row 2 .*UTF-8"):
        Taxonomy.from_file(path)
    yaml_path = _write(tmp_path / "tax.yaml", "- name: 教育\n", encoding="gbk")
    with pytest.raises(InputFileError, match=r"row 1 .*UTF-8"):
        Taxonomy.from_file(yaml_path)


def test_malformed_csv(tmp_path: Path) -> None:
    path = _write(tmp_path / "tax.csv", 'l1,l2\n教育,招生\n教育,"收费\n卫生,医保\n')
    with pytest.raises(InputFileError, match=r"row 3 is malformed CSV"):
        Taxonomy.from_file(path)


def test_header_only(tmp_path: Path) -> None:
    path = _write(tmp_path / "tax.csv", "一级分类,二级分类,部门\n")
    with pytest.raises(TaxonomyError, match="header but no rows"):
        Taxonomy.from_file(path)


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="empty"):
        Taxonomy.from_file(_write(tmp_path / "tax.csv", ""))


def test_row_with_more_cells_than_header(tmp_path: Path) -> None:
    path = _write(tmp_path / "tax.csv", "l1,l2\n教育,招生\n教育,收费,多余\n")
    with pytest.raises(InputFileError, match=r"row 3 has 3 cells but the header has 2"):
        Taxonomy.from_file(path)


def test_structure_errors_are_input_file_errors() -> None:
    assert issubclass(TaxonomyError, InputFileError)
    assert issubclass(LabelError, InputFileError)


# -- label resolution -------------------------------------------------------------------------
def test_resolve_full_path(cn_tax: Taxonomy) -> None:
    assert cn_tax.resolve("教育/招生/其他").key == "教育/招生/其他"
    assert cn_tax.resolve(" /交通运输/交通运输/其他/ ").key == "交通运输/交通运输/其他"
    assert cn_tax.resolve("教育/招生").key == "教育/招生"  # inner nodes are nodes too


def test_resolve_bare_name_to_the_shallowest(cn_tax: Taxonomy) -> None:
    assert cn_tax.resolve("小学入学").key == "教育/招生/小学入学"
    assert cn_tax.resolve("交通运输").key == "交通运输"  # not 交通运输/交通运输
    assert cn_tax.resolve("公交").key == "交通运输/公交"


def test_ambiguous_bare_name_names_candidates_and_rows(cn_tax: Taxonomy) -> None:
    labels = ["小学入学", "其他", "公交", "其他"]
    with pytest.raises(LabelError) as info:
        cn_tax.resolve_labels(labels, rows=[2, 3, 4, 5])
    message = str(info.value)
    assert "'其他' is ambiguous" in message
    assert "教育/招生/其他" in message and "交通运输/交通运输/其他" in message
    assert "rows 3, 5" in message
    assert "full path" in message


def test_unknown_labels_name_their_rows(cn_tax: Taxonomy) -> None:
    labels = ["医保", "教育/招生/初中", "公交", "医保", ""]
    with pytest.raises(LabelError) as info:
        cn_tax.resolve_labels(labels, rows=[10, 11, 12, 13, 14])
    message = str(info.value)
    assert re.search(r"'医保' names no node.*rows 10, 13", message)
    assert re.search(r"'教育/招生/初中' is not a path.*rows 11\)", message)
    assert re.search(r"empty label \(rows 14\)", message)
    assert "12" not in message


def test_resolve_labels_default_rows_and_order(cn_tax: Taxonomy) -> None:
    nodes = cn_tax.resolve_labels(["公交", "教育/招生/其他", "小学入学"])
    assert [n.key for n in nodes] == ["交通运输/公交", "教育/招生/其他", "教育/招生/小学入学"]
    with pytest.raises(LabelError, match=r"rows 2\)"):
        cn_tax.resolve_labels(["公交", "不存在"])


def test_many_bad_rows_are_summarised(cn_tax: Taxonomy) -> None:
    with pytest.raises(LabelError, match=r"rows 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 2 more"):
        cn_tax.resolve_labels(["不存在"] * 12)


def test_node_lookup_of_unknown_path(cn_tax: Taxonomy) -> None:
    with pytest.raises(LabelError, match="not a path"):
        cn_tax.node("教育/不存在")
    with pytest.raises(LabelError):
        cn_tax.department_for("不存在")


# -- version ---------------------------------------------------------------------------------
def test_version_is_stable_across_loads(tmp_path: Path, cn_tax: Taxonomy) -> None:
    again = Taxonomy.from_file(_write(tmp_path / "copy.csv", CN_CSV))
    assert again.version == cn_tax.version
    assert re.fullmatch(r"[0-9a-f]{16}", cn_tax.version)


def test_version_changes_when_a_description_changes(tmp_path: Path, cn_tax: Taxonomy) -> None:
    edited = CN_CSV.replace("小学划片与学位", "小学划片、学位与转学")
    assert edited != CN_CSV
    other = Taxonomy.from_file(_write(tmp_path / "edited.csv", edited))
    assert other.version != cn_tax.version


def test_version_changes_when_a_department_or_keyword_changes(
        tmp_path: Path, cn_tax: Taxonomy) -> None:
    versions = {cn_tax.version}
    for old, new in [("区教育局", "县教育局"), ("拒载|绕路", "拒载")]:
        changed = Taxonomy.from_file(_write(tmp_path / "x.csv", CN_CSV.replace(old, new)))
        versions.add(changed.version)
    assert len(versions) == 3


def test_to_dict_round_trip(cn_tax: Taxonomy) -> None:
    data = cn_tax.to_dict()
    assert [d["name"] for d in data] == ["教育", "交通运输"]
    back = Taxonomy.from_dict(data)
    assert back.version == cn_tax.version
    assert back.to_dict() == data
    assert _keys(back) == _keys(cn_tax)
    assert back.department_for("教育/招生/小学入学") == "市教育局"


def test_demo_round_trip(demo_taxonomy: Taxonomy) -> None:
    assert Taxonomy.from_dict(demo_taxonomy.to_dict()).version == demo_taxonomy.version


def test_from_records_docstring_example() -> None:
    tax = Taxonomy.from_records([{"path": ("教育", "招生"), "department": "市教育局"}])
    assert tax.resolve("招生").key == "教育/招生"
    assert tax.department_for("教育/招生") == "市教育局"
    with pytest.raises(TaxonomyError, match="no nodes"):
        Taxonomy.from_records([])
