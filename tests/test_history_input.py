"""``triage train --history``: what the history teaches routing, said before training, and a history
that cannot teach it refused in one sentence (never a traceback)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from conftest import DATASETS
from typer.testing import CliRunner

from api.cli import app

runner = CliRunner()

# Six past tickets of two units: the least a history may hold (training/routing.py MIN_HISTORY).
USABLE = [("小区门口垃圾成堆，好几天没人清运", "市城市管理局"),
          ("路边垃圾桶满了没人倒，苍蝇乱飞", "市城市管理局"),
          ("背街小巷垃圾乱堆，清运车一个月来一次", "市城管局"),
          ("孩子所在小学周末强制补课，每人收费八百元", "市教育局"),
          ("初中学校乱收资料费，希望教育部门查处", "市教育局"),
          ("学校食堂饭菜质量差，孩子吃了拉肚子", "市教育局")]


def _history(tmp_path: Path, rows: list[tuple[str, str]], column: str = "dept") -> Path:
    path = tmp_path / "history.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", column])
        writer.writerows(rows)
    return path


def _train(tmp_path: Path, *extra: str):
    return runner.invoke(app, [
        "train", "--data", str(DATASETS / "demo_appeals.csv"), "--text-column", "text",
        "--label-column", "label", "--taxonomy", str(DATASETS / "demo_taxonomy.csv"),
        "--output", str(tmp_path / "v"), *extra])


def _said(result) -> str:
    return " ".join(result.output.split())


@pytest.mark.parametrize("rows, usable", [
    ([("小区垃圾没人清理臭气熏天", "市城管局"), ("学校乱收费补课", "市教育局")], 2),
    ([("", "市城管局"), ("", "市教育局"), ("小区垃圾没人清理", "市城管局")], 1),
    ([("小区垃圾没人清理", "张三"), ("学校乱收费", "12345"), ("油烟扰民", "无")], 0),
])
def test_a_history_too_small_to_learn_from_is_one_sentence(
        home: Path, tmp_path: Path, rows: list[tuple[str, str]], usable: int) -> None:
    result = _train(tmp_path, "--history", str(_history(tmp_path, rows)),
                    "--department-column", "dept")
    said = _said(result)
    assert result.exit_code == 2, result.output
    assert f"the history has too few usable rows ({usable}) to learn routing: at least 6 are " \
           "needed" in said
    assert "Traceback" not in result.output and "ValueError" not in result.output
    assert not (tmp_path / "v").exists()


def test_a_history_of_one_unit_is_refused(home: Path, tmp_path: Path) -> None:
    rows = [(text, "市城市管理局") for text, _ in USABLE]
    result = _train(tmp_path, "--history", str(_history(tmp_path, rows)),
                    "--department-column", "dept")
    assert result.exit_code == 2, result.output
    said = _said(result)
    assert "names only one unit (市城市管理局)" in said and "at least two units" in said
    assert not (tmp_path / "v").exists()


def test_two_spellings_of_one_unit_are_still_one_unit(home: Path, tmp_path: Path) -> None:
    rows = [(text, "市城市管理局" if i % 2 else "市城管局") for i, (text, _) in enumerate(USABLE)]
    result = _train(tmp_path, "--history", str(_history(tmp_path, rows)),
                    "--department-column", "dept")
    assert result.exit_code == 2 and "names only one unit" in _said(result), result.output


def test_junk_departments_are_skipped_and_every_skipped_row_is_counted(
        home: Path, tmp_path: Path) -> None:
    junk = [("小区路灯坏了好几天，晚上一片漆黑", cell) for cell in ["张三", "12345", "无", "N/A"] * 3]
    rows = [*USABLE, *junk, ("路灯不亮", ""), ("", "市教育局")]
    result = _train(tmp_path, "--history", str(_history(tmp_path, rows)),
                    "--department-column", "dept")
    assert result.exit_code == 0, result.output
    assert ("20 rows read: 6 used; 1 with an empty text, 1 with an empty department, "
            "12 whose department is not a unit name skipped") in _said(result)
    source, out = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text("text\nK11县某小区路灯坏了好几天，晚上一片漆黑\n", encoding="utf-8")
    predicted = runner.invoke(app, ["predict", "--model", str(tmp_path / "v"), "--input",
                                    str(source), "--text-column", "text", "--output", str(out)])
    assert predicted.exit_code == 0, predicted.output
    [row] = csv.DictReader(out.open(encoding="utf-8"))
    for cell in ["张三", "12345", "无", "N/A"]:
        assert cell not in row["department"] + row["co_departments"]


def test_a_reply_history_counts_empty_replies_and_replies_naming_no_unit(
        home: Path, tmp_path: Path) -> None:
    replies = [(text, f"您好！经{unit}核实，已处理。") for text, unit in USABLE]
    rows = [*replies, ("路灯不亮", ""), ("井盖丢了", " "), ("噪音扰民", "网友您好，感谢您的关心和支持！")]
    result = _train(tmp_path, "--history", str(_history(tmp_path, rows, "reply")),
                    "--reply-column", "reply")
    assert result.exit_code == 0, result.output
    assert ("9 rows read: 6 used; 2 with an empty reply, 1 whose reply names no unit skipped"
            in _said(result))


def test_a_history_with_nothing_to_skip_says_so(home: Path, tmp_path: Path) -> None:
    result = _train(tmp_path, "--history", str(_history(tmp_path, USABLE)),
                    "--department-column", "dept")
    assert result.exit_code == 0, result.output
    assert "6 rows read: 6 used" in _said(result) and "skipped" not in _said(result)


@pytest.mark.parametrize("option", ["--department-column", "--reply-column"])
def test_a_unit_column_without_history_is_an_error(home: Path, tmp_path: Path,
                                                    option: str) -> None:
    result = _train(tmp_path, option, "dept")
    assert result.exit_code == 2, result.output
    assert f"{option} names a column of the --history files" in _said(result)
    assert not (tmp_path / "v").exists()
