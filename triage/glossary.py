"""The glossary: words citizens write about a taxonomy node, for nodes that come with bare names.

A hotline taxonomy often arrives as names only (the shared contest taxonomy has 517 leaves and no
descriptions), and a name such as 经营权转让 or 事故处理 shares few words with the appeals it
stands for. The glossary adds, per node, the words of such appeals (出租车 份子钱 营运证 ...). An
entry's ``path`` is a ``/``-joined node path or its last names (``出租车管理/经营权转让``, or just
``公积金``): it applies to every node whose path ends with it, in any taxonomy, so one glossary
serves the demo taxonomy, the contest taxonomy and a centre's own. Keywords of all matching entries
are merged, the most specific entry first.

The project ships ``datasets/glossary.csv`` (written from knowledge of the services, without
looking at labelled appeals); ``TRIAGE_GLOSSARY`` names another file or ``none``.

Example:
    >>> g = Glossary.from_rows([{"path": "出租车管理/拒载", "keywords": "拒载|不打表|绕路"}])
    >>> g.keywords_for(("交通运输", "出租车管理", "拒载"))
    ('拒载', '不打表', '绕路')
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from triage.errors import InputFileError
from triage.tables import read_table
from triage.taxonomy import SEP, split_keywords

NONE = "none"


class Glossary:
    """Keywords by node-path suffix."""

    def __init__(self, entries: dict[tuple[str, ...], tuple[str, ...]] | None = None) -> None:
        self.entries = dict(entries or {})

    @classmethod
    def from_rows(cls, rows: Iterable[dict[str, str]], *, where: str = "glossary",
                  row_numbers: Sequence[int] | None = None) -> Glossary:
        entries: dict[tuple[str, ...], tuple[str, ...]] = {}
        for n, row in enumerate(rows):
            number = row_numbers[n] if row_numbers is not None else n + 2
            path = tuple(p.strip() for p in str(row.get("path") or "").split(SEP))
            if not all(path):
                raise InputFileError(f"{where}: row {number} has an empty path or an empty "
                                     f"name in it ({row.get('path')!r})")
            words = tuple(split_keywords(row.get("keywords")))
            if not words:
                raise InputFileError(f"{where}: row {number} ({SEP.join(path)}) has no keywords "
                                     "(separate them with | or 、)")
            merged = entries.get(path, ()) + words
            entries[path] = tuple(dict.fromkeys(merged))
        return cls(entries)

    @classmethod
    def from_file(cls, path: Path) -> Glossary:
        """Read a CSV/XLSX/JSONL with columns ``path`` and ``keywords``."""
        table = read_table(path)
        missing = {"path", "keywords"} - set(table.columns)
        if missing:
            raise InputFileError(f"{path}: a glossary needs the columns path and keywords "
                                 f"(missing: {', '.join(sorted(missing))})")
        return cls.from_rows(table.rows, where=str(path), row_numbers=table.row_numbers)

    @classmethod
    def from_setting(cls, value: str, default: Path) -> Glossary | None:
        """``builtin`` (the shipped file), ``none``, or a file path."""
        if value.strip().lower() == NONE:
            return None
        path = default if value.strip().lower() in ("", "builtin") else Path(value)
        if not path.is_file():
            raise InputFileError(f"{path}: glossary file not found (TRIAGE_GLOSSARY: builtin, "
                                 "none or a CSV path)")
        return cls.from_file(path)

    def keywords_for(self, path: Sequence[str]) -> tuple[str, ...]:
        """Keywords of every entry that is a suffix of ``path``, the longest entry first."""
        path = tuple(path)
        found: list[str] = []
        for size in range(len(path), 0, -1):
            found.extend(self.entries.get(path[-size:], ()))
        return tuple(dict.fromkeys(found))

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def digest(self) -> str:
        """A short content hash, recorded in a version's manifest."""
        text = "\n".join(f"{SEP.join(k)}\t{'|'.join(v)}" for k, v in sorted(self.entries.items()))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
