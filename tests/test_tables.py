"""Reading and writing the tables users hand us: CSV (BOM allowed), XLSX, JSONL; errors name rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from triage.errors import InputFileError, TriageError
from triage.tables import read_table, write_csv


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_csv_columns_rows_and_row_numbers(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", "text, label \n路灯不亮,城乡建设\n\n噪音扰民,环境保护\n")
    table = read_table(path)
    assert table.columns == ["text", "label"]  # header names are stripped
    assert table.column("text") == ["路灯不亮", "噪音扰民"]
    assert table.row_numbers == [2, 4]  # the blank line is skipped but still counted


def test_missing_column_lists_the_columns(tmp_path: Path) -> None:
    table = read_table(_write(tmp_path / "t.csv", "text,label\n路灯不亮,城乡建设\n"))
    with pytest.raises(InputFileError, match=r"no column named 'content'.*text, label"):
        table.column("content")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no such file"):
        read_table(tmp_path / "nope.csv")


def test_read_table_accepts_a_bom(tmp_path: Path) -> None:
    path = _write(tmp_path / "bom.csv", "text,label\n路灯不亮,城乡建设\n", encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    table = read_table(path)
    assert table.columns == ["text", "label"]  # not '\ufefftext'
    assert table.rows == [{"text": "路灯不亮", "label": "城乡建设"}]


def test_write_csv_is_utf8_without_bom_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "out" / "result.csv"
    rows = [
        {"id": 1, "text": '他说"路灯, 不亮"\n第二行', "extra": "ignored"},
        {"id": 2, "text": "噪音扰民"},
    ]
    write_csv(path, ["id", "text"], rows)
    data = path.read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf")
    assert data.decode("utf-8").splitlines()[0] == "id,text"
    table = read_table(path)
    assert table.columns == ["id", "text"]
    assert table.rows == [
        {"id": "1", "text": '他说"路灯, 不亮"\n第二行'},
        {"id": "2", "text": "噪音扰民"},
    ]


def test_gbk_file_names_the_row_and_utf8(tmp_path: Path) -> None:
    path = _write(tmp_path / "gbk.csv", "text,label\n路灯不亮,城乡建设\n", encoding="gbk")
    with pytest.raises(InputFileError, match=r"row 2 .*UTF-8") as info:
        read_table(path)
    assert "GBK" in str(info.value)


def test_gbk_header_is_row_1(tmp_path: Path) -> None:
    path = _write(tmp_path / "gbk.csv", "内容,标签\n路灯不亮,城乡建设\n", encoding="gbk")
    with pytest.raises(InputFileError, match=r"row 1 .*UTF-8"):
        read_table(path)


def test_unterminated_quote_names_the_row_where_it_opens(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.csv", 'text,label\n好的,城乡建设\n"没有结束,环境保护\n其他,交通运输\n')
    with pytest.raises(InputFileError, match=r"row 3 is malformed CSV"):
        read_table(path)


def test_empty_file_and_blank_header(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="empty; expected a header"):
        read_table(_write(tmp_path / "empty.csv", ""))
    with pytest.raises(InputFileError, match="empty; expected a header"):
        read_table(_write(tmp_path / "blank.csv", ",,\n路灯,城乡建设,x\n"))


def test_header_only_csv_has_no_rows(tmp_path: Path) -> None:
    table = read_table(_write(tmp_path / "h.csv", "text,label\n"))
    assert table.columns == ["text", "label"]
    assert table.rows == [] and table.row_numbers == []


def test_row_with_more_cells_than_header(tmp_path: Path) -> None:
    path = _write(tmp_path / "wide.csv", "text,label\n路灯不亮,城乡建设\n噪音,环境保护,多余\n")
    with pytest.raises(InputFileError, match=r"row 3 has 3 cells but the header has 2"):
        read_table(path)


def test_trailing_empty_cells_and_short_rows_are_fine(tmp_path: Path) -> None:
    table = read_table(_write(tmp_path / "t.csv", "a,b,c\n1,2,3,,\n4\n"))
    assert table.rows == [{"a": "1", "b": "2", "c": "3"}, {"a": "4", "b": "", "c": ""}]


def test_jsonl(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "t.jsonl",
        '{"text": "路灯不亮", "label": "城乡建设"}\n'
        "\n"
        '{"text": "噪音扰民", "label": null, "id": 7}\n',
    )
    table = read_table(path)
    assert table.columns == ["text", "label", "id"]
    assert table.row_numbers == [1, 3]  # JSONL has no header: line numbers
    assert table.rows[1] == {"text": "噪音扰民", "label": "", "id": "7"}
    assert table.column("id") == ["", "7"]


def test_jsonl_bad_line_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.jsonl", '{"text": "ok"}\n{"text": \n')
    with pytest.raises(InputFileError, match=r"line 2 is not valid JSON"):
        read_table(path)
    path = _write(tmp_path / "u.jsonl", '{"text": "ok"}\n["not", "an", "object"]\n')
    with pytest.raises(InputFileError, match=r"line 2 is not a JSON object"):
        read_table(path)


def test_xlsx(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["text", "label", "id"])
    sheet.append(['他说"路灯, 不亮"\n第二行', "城乡建设", 1])
    sheet.append([None, None, None])
    sheet.append(["噪音扰民", None, 2])
    path = tmp_path / "t.xlsx"
    book.save(path)
    table = read_table(path)
    assert table.columns == ["text", "label", "id"]
    assert table.rows == [
        {"text": '他说"路灯, 不亮"\n第二行', "label": "城乡建设", "id": "1"},
        {"text": "噪音扰民", "label": "", "id": "2"},
    ]
    assert table.row_numbers == [2, 4]  # the sheet's own row numbers


def test_broken_xlsx(tmp_path: Path) -> None:
    path = _write(tmp_path / "broken.xlsx", "this is not a workbook")
    with pytest.raises(InputFileError, match="not a readable XLSX"):
        read_table(path)


def test_a_quoted_empty_cell_is_a_row_for_files_scored_row_by_row(tmp_path: Path) -> None:
    one = read_table(_write(tmp_path / "one.csv", 'text\n问题没解决\n""\n\n很好\n'),
                     keep_empty_rows=True)
    assert one.column("text") == ["问题没解决", "", "很好"]  # the blank line is not a row
    assert one.row_numbers == [2, 3, 5]
    two = read_table(_write(tmp_path / "two.csv", "id,text\n1,问题没解决\n,\n\n3,很好\n"),
                     keep_empty_rows=True)
    assert two.column("id") == ["1", "", "3"] and two.row_numbers == [2, 3, 5]


def test_rows_of_empty_cells_are_padding_by_default(tmp_path: Path) -> None:
    assert read_table(_write(tmp_path / "one.csv", 'text\n问题没解决\n""\n很好\n')).column(
        "text") == ["问题没解决", "很好"]
    assert read_table(_write(tmp_path / "two.csv", "a,b\n1,2\n,\n")).row_numbers == [2]


def test_xlsx_row_without_values_is_blank_even_when_keeping_empty_rows(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    for values in (["text"], ["路灯不亮"], [None], ["噪音扰民"]):
        book.active.append(values)
    book.save(tmp_path / "t.xlsx")
    table = read_table(tmp_path / "t.xlsx", keep_empty_rows=True)
    assert table.column("text") == ["路灯不亮", "噪音扰民"] and table.row_numbers == [2, 4]


def test_write_csv_into_a_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TriageError, match=r"is a directory: give a file name"):
        write_csv(tmp_path, ["text"], [{"text": "路灯不亮"}])
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(TriageError, match=r"o\.csv: .*file is a file, not a folder"):
        write_csv(tmp_path / "file" / "o.csv", ["text"], [{"text": "路灯不亮"}])


def test_xlsx_with_an_empty_first_sheet_says_only_the_first_sheet_is_read(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    book.active.title = "说明"
    data = book.create_sheet("数据")
    data.append(["text", "label"])
    data.append(["噪音扰民", "环境保护"])
    path = tmp_path / "t.xlsx"
    book.save(path)
    with pytest.raises(InputFileError) as info:
        read_table(path)
    message = info.value.message
    assert "only the first sheet" in message and "'说明'" in message and "'数据'" in message
    assert "the file is empty" not in message
