"""The assessment taxonomy: a tree of any depth, loaded from CSV, XLSX, JSONL or YAML.

Nodes are identified by their path (names from the top level down, joined with ``/``): the same
name may recur in different paths (the shared taxonomy has 116 leaves called 其他). A taxonomy's
content hash is its version.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from triage.errors import LabelError, TaxonomyError
from triage.tables import Table, read_table, read_yaml_list

SEP = "/"
META_COLUMNS = {
    "code": "code", "编码": "code",
    "description": "description", "描述": "description",
    "keywords": "keywords", "关键词": "keywords",
    "department": "department", "部门": "department",
}
_KEYWORD_SPLIT = re.compile(r"[|、]")


@dataclass
class Node:
    """One taxonomy node; ``path`` is the tuple of names from the top level to this node."""

    path: tuple[str, ...]
    code: str = ""
    description: str = ""
    keywords: tuple[str, ...] = ()
    department: str = ""
    children: list[Node] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path[-1]

    @property
    def key(self) -> str:
        """The full path joined with ``/``, as in files, CLI output and the API."""
        return SEP.join(self.path)

    @property
    def depth(self) -> int:
        return len(self.path)

    @property
    def is_leaf(self) -> bool:
        return not self.children

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "code": self.code,
            "description": self.description,
            "keywords": list(self.keywords),
            "department": self.department,
            "children": [c.to_dict() for c in self.children],
        }


class Taxonomy:
    """A validated tree of nodes.

    Example:
        >>> tax = Taxonomy.from_records([{"path": ("教育", "招生"), "department": "市教育局"}])
        >>> tax.resolve("招生").key, tax.department_for("教育/招生")
        ('教育/招生', '市教育局')
    """

    def __init__(self, roots: list[Node]) -> None:
        self.roots = roots
        self._nodes: dict[str, Node] = {}
        for node in self.walk():
            self._nodes[node.key] = node
        self.version = self._content_hash()

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]]) -> Taxonomy:
        """Build from ``{"path": tuple, "code"?, "description"?, "keywords"?, "department"?}``."""
        nodes: dict[tuple[str, ...], Node] = {}
        roots: list[Node] = []
        for record in records:
            path = tuple(record["path"])
            for depth in range(1, len(path) + 1):
                prefix = path[:depth]
                if prefix not in nodes:
                    nodes[prefix] = Node(prefix)
                    (nodes[prefix[:-1]].children if depth > 1 else roots).append(nodes[prefix])
            node = nodes[path]
            node.code = record.get("code") or node.code
            node.description = record.get("description") or node.description
            node.keywords = tuple(record.get("keywords") or node.keywords)
            node.department = record.get("department") or node.department
        if not roots:
            raise TaxonomyError("the taxonomy has no nodes")
        return cls(roots)

    @classmethod
    def from_file(cls, path: Path | str) -> Taxonomy:
        """Load CSV/XLSX/JSONL (level columns first) or YAML (nested nodes)."""
        path = Path(path)
        if path.suffix.lower() in {".yaml", ".yml"}:
            return cls.from_records(_yaml_records(path))
        return cls.from_records(_table_records(read_table(path)))

    @classmethod
    def from_dict(cls, data: list[dict[str, Any]]) -> Taxonomy:
        """Inverse of ``to_dict`` (also the YAML shape)."""
        return cls.from_records(_nested_records(data, (), "the taxonomy"))

    # -- queries ------------------------------------------------------------------------
    def walk(self) -> Iterable[Node]:
        stack = list(reversed(self.roots))
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def leaves(self, under: str | None = None) -> list[Node]:
        """Leaves of the whole tree, or of the subtree at path ``under``."""
        start = [self.node(under)] if under else self.roots
        found: list[Node] = []
        for root in start:
            stack = [root]
            while stack:
                node = stack.pop()
                if node.is_leaf:
                    found.append(node)
                stack.extend(reversed(node.children))
        return sorted(found, key=lambda n: self._order[n.key])

    def node(self, key: str) -> Node:
        try:
            return self._nodes[key]
        except KeyError:
            raise LabelError(f"{key!r} is not a path in the taxonomy") from None

    def __contains__(self, key: object) -> bool:
        return key in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    @property
    def _order(self) -> dict[str, int]:
        if not hasattr(self, "_order_cache"):
            self._order_cache = {key: i for i, key in enumerate(self._nodes)}
        return self._order_cache

    def department_for(self, key: str) -> str:
        """The department of a node, inherited from the nearest ancestor that names one."""
        path = self.node(key).path
        for depth in range(len(path), 0, -1):
            department = self._nodes[SEP.join(path[:depth])].department
            if department:
                return department
        return ""

    def resolve(self, label: str) -> Node:
        """A node from a full path, or from a bare name (the shallowest node of that name);
        ``LabelError`` with a sentence (no row numbers: one label is no file) otherwise."""
        found = self._resolve_one(label.strip().strip(SEP), self._by_name())
        if isinstance(found, str):
            raise LabelError(found)
        return found

    def resolve_labels(
        self, labels: Sequence[str], rows: Sequence[int | str] | None = None
    ) -> list[Node]:
        """Resolve many labels; one error lists every unknown or ambiguous label with its rows."""
        rows = list(rows) if rows is not None else list(range(1, len(labels) + 1))
        by_name = self._by_name()
        cache: dict[str, Node | str] = {}
        problems: dict[str, list[int | str]] = {}
        out: list[Node] = []
        for label, row in zip(labels, rows, strict=True):
            key = label.strip().strip(SEP)
            if key not in cache:
                cache[key] = self._resolve_one(key, by_name)
            found = cache[key]
            if isinstance(found, str):
                problems.setdefault(found, []).append(row)
            else:
                out.append(found)
        if problems:
            raise LabelError("; ".join(f"{p} (rows {_rows(r)})" for p, r in problems.items()))
        return out

    def _by_name(self) -> dict[str, list[Node]]:
        index: dict[str, list[Node]] = {}
        for node in self.walk():
            index.setdefault(node.name, []).append(node)
        return index

    def _resolve_one(self, key: str, by_name: dict[str, list[Node]]) -> Node | str:
        if not key:
            return "an empty label"
        if key in self._nodes:
            return self._nodes[key]
        if SEP in key:
            return f"label {key!r} is not a path in the taxonomy"
        matches = by_name.get(key, [])
        if not matches:
            return f"label {key!r} names no node of the taxonomy"
        shallowest = min(n.depth for n in matches)
        top = [n for n in matches if n.depth == shallowest]
        if len(top) > 1:
            paths = ", ".join(n.key for n in top[:4])
            return f"label {key!r} is ambiguous (it could be {paths}): write the full path"
        return top[0]

    # -- serialisation -------------------------------------------------------------------
    def to_dict(self) -> list[dict[str, Any]]:
        return [root.to_dict() for root in self.roots]

    def _content_hash(self) -> str:
        blob = json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def _rows(rows: list[int | str]) -> str:
    shown = ", ".join(map(str, rows[:10]))
    return shown + (f" and {len(rows) - 10} more" if len(rows) > 10 else "")


def _table_records(table: Table) -> list[dict[str, Any]]:
    level_count = next(
        (i for i, c in enumerate(table.columns) if c.strip().lower() in META_COLUMNS),
        len(table.columns),
    )
    if level_count == 0:
        raise TaxonomyError(f"{table.path}: the first column must be the top taxonomy level")
    levels = table.columns[:level_count]
    meta = {c: META_COLUMNS[c.strip().lower()] for c in table.columns[level_count:]
            if c.strip().lower() in META_COLUMNS}
    seen: dict[tuple[str, ...], int] = {}
    records = []
    for row, number in zip(table.rows, table.row_numbers, strict=True):
        path = _row_path([row[c] for c in levels], table.path, number)
        if path in seen:
            raise TaxonomyError(
                f"{table.path}: row {number} repeats the path {SEP.join(path)!r} of row {seen[path]}"
            )
        seen[path] = number
        record: dict[str, Any] = {"path": path}
        for column, field_name in meta.items():
            record[field_name] = row.get(column, "").strip()
        record["keywords"] = split_keywords(record.get("keywords", ""))
        records.append(record)
    if not records:
        raise TaxonomyError(f"{table.path}: the file has a header but no rows")
    return records


def _row_path(cells: list[str], path: Path, number: int) -> tuple[str, ...]:
    names = [c.strip() for c in cells]
    while names and not names[-1]:
        names.pop()
    if not names:
        raise TaxonomyError(f"{path}: row {number} has no level names")
    if any(not n for n in names):
        raise TaxonomyError(
            f"{path}: row {number} has an empty level name before {names[-1]!r}; "
            "only trailing levels may be empty"
        )
    if any(SEP in n for n in names):
        raise TaxonomyError(f"{path}: row {number} has a name containing '{SEP}'")
    return tuple(names)


def split_keywords(value: Any) -> list[str]:
    """Keywords from a list or a string separated by | or 、 (blanks dropped)."""
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [k.strip() for k in _KEYWORD_SPLIT.split(str(value or "")) if k.strip()]


def _yaml_records(path: Path) -> list[dict[str, Any]]:
    data = read_yaml_list(path, shape="nodes {name, children: [...]}", error=TaxonomyError)
    return _nested_records(data, (), str(path))


def _nested_records(nodes: list[Any], parent: tuple[str, ...], where: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, item in enumerate(nodes, start=1):
        place = f"{where}: node {i} under {SEP.join(parent) or 'the top level'}"
        if not isinstance(item, dict) or not str(item.get("name") or "").strip():
            raise TaxonomyError(f"{place} has no name")
        name = str(item["name"]).strip()
        if SEP in name:
            raise TaxonomyError(f"{place} has a name containing '{SEP}'")
        if name in seen:
            raise TaxonomyError(f"{place} repeats the path {SEP.join(parent + (name,))!r}")
        seen.add(name)
        path = parent + (name,)
        records.append({
            "path": path,
            "code": str(item.get("code") or ""),
            "description": str(item.get("description") or ""),
            "keywords": split_keywords(item.get("keywords")),
            "department": str(item.get("department") or ""),
        })
        records.extend(_nested_records(item.get("children") or [], path, where))
    return records
