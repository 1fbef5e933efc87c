"""Reading and writing the tabular files users hand us: CSV (UTF-8, BOM allowed), XLSX, JSONL.

Rows come back as ``Table`` with 1-based file row numbers (the header is row 1), so every error can
name the row a person should open.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from triage.errors import InputFileError
from triage.outputs import writing

csv.field_size_limit(10_000_000)


@dataclass
class Table:
    """Header names and rows (``dict`` of column → cell text); ``row_numbers`` follow the file."""

    path: Path
    columns: list[str]
    rows: list[dict[str, str]]
    row_numbers: list[int]

    def column(self, name: str) -> list[str]:
        """Cells of one column; a clear error if the file has no such column."""
        if name not in self.columns:
            raise InputFileError(
                f"{self.path}: no column named {name!r}; the columns are {', '.join(self.columns)}"
            )
        return [row.get(name, "") for row in self.rows]


def read_table(path: Path | str, *, keep_empty_rows: bool = False) -> Table:
    """Read a CSV, XLSX or JSONL file into a ``Table``.

    Blank lines are never rows. A row whose cells are all empty (``""`` in a one-column CSV,
    ``,,`` in a wider one) is skipped unless ``keep_empty_rows``: files scored row by row
    (``triage predict``, ``triage sentiment``) keep it, so that every input row gets its output
    row; taxonomies and training files skip it as padding. A sheet row with no value at all is
    a blank line of the sheet, skipped either way.

    Example:
        >>> read_table("datasets/demo_test.csv").columns
        ['text', 'label']
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in {".xlsx", ".xlsm"}:
        return _read_xlsx(path, keep_empty_rows=keep_empty_rows)
    text = _decode(path)
    if suffix in {".jsonl", ".ndjson"}:
        return _read_jsonl(path, text)
    return _read_csv(path, text, keep_empty_rows=keep_empty_rows)


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        row = data[: exc.start].count(b"\n") + 1
        hint = " (it looks like GBK/GB18030: save it as UTF-8)" if _is_gb(data) else ""
        raise InputFileError(f"{path}: row {row} is not valid UTF-8{hint}") from None


def _is_gb(data: bytes) -> bool:
    try:
        data.decode("gb18030")
    except UnicodeDecodeError:
        return False
    return True


def _read_csv(path: Path, text: str, *, keep_empty_rows: bool = False) -> Table:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[list[str]] = []
    try:
        records.extend(reader)
    except csv.Error as exc:
        # Name the row that starts the broken record (an unterminated quote runs to the end).
        raise InputFileError(
            f"{path}: row {len(records) + 1} is malformed CSV: {exc} (check its quotes)"
        ) from None
    if not records or not any(cell.strip() for cell in records[0]):
        raise InputFileError(f"{path}: the file is empty; expected a header row")
    columns = [c.strip() for c in records[0]]
    rows, numbers = [], []
    for number, record in enumerate(records[1:], start=2):
        if not record or not (keep_empty_rows or any(cell.strip() for cell in record)):
            continue  # a blank line yields no cells at all
        if len(record) > len(columns) and any(c.strip() for c in record[len(columns):]):
            raise InputFileError(
                f"{path}: row {number} has {len(record)} cells but the header has {len(columns)}"
            )
        rows.append({c: (record[i] if i < len(record) else "") for i, c in enumerate(columns)})
        numbers.append(number)
    return Table(path, columns, rows, numbers)


def _read_jsonl(path: Path, text: str) -> Table:
    rows, numbers, columns = [], [], {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputFileError(f"{path}: line {number} is not valid JSON: {exc.msg}") from None
        if not isinstance(obj, dict):
            raise InputFileError(f"{path}: line {number} is not a JSON object")
        row = {str(k): "" if v is None else str(v) for k, v in obj.items()}
        columns.update(dict.fromkeys(row))
        rows.append(row)
        numbers.append(number)
    return Table(path, list(columns), rows, numbers)


def _read_xlsx(path: Path, *, keep_empty_rows: bool = False) -> Table:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a broken file
        raise InputFileError(f"{path}: not a readable XLSX workbook ({exc})") from None
    sheet = book.worksheets[0]
    values = [["" if v is None else str(v) for v in r] for r in sheet.iter_rows(values_only=True)]
    empty = not any(v.strip() for r in values for v in r)
    others = [s.title for s in book.worksheets[1:] if _has_values(s)] if empty else []
    book.close()
    if others:
        raise InputFileError(
            f"{path}: only the first sheet of a workbook is read, and the first sheet "
            f"({sheet.title!r}) is empty; the data seems to be on {', '.join(map(repr, others))}: "
            "move it to the first sheet")
    # A row with no value is written as an empty line: blank, like a blank CSV line.
    lines = "\n".join(",".join(_quote(v) for v in r) if any(r) else "" for r in values)
    return _read_csv(path, lines, keep_empty_rows=keep_empty_rows)


def _has_values(sheet: Any) -> bool:
    return any(v is not None and str(v).strip()
               for row in sheet.iter_rows(values_only=True) for v in row)


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def write_csv(path: Path | str, columns: Sequence[str], rows: Iterable[dict[str, object]]) -> None:
    """Write UTF-8 CSV without BOM, comma-separated, with a header (the contract's format).

    A path that cannot be written (a directory, a read-only place) is a ``TriageError`` naming it.
    """
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)


def read_yaml_list(path: Path | str, *, shape: str,
                   error: type[InputFileError] = InputFileError) -> list[Any]:
    """The top-level list of a YAML file (or of its ``data:`` key), whose items are mappings.

    ``shape`` describes an item for the error messages, e.g. ``{node, lead, co?, district?}``.
    """
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(_decode(path))
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from None
    if isinstance(data, dict) and "data" in data:
        data = data["data"]
    if not isinstance(data, list):
        raise error(f"{path}: expected a list of {shape} at the top")
    for i, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            raise error(f"{path}: entry {i} is not a mapping {shape}")
    return data
