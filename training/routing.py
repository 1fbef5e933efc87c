"""Assembling a version's routing: responsibility list, gazetteer and a router learnt from history.

History from government replies (``--reply-column``) gives the router two labels per ticket: the
unit ``handling_unit`` reads (the lead it learns to name) and the kind of unit the reply names
first (``reply_kind``, the official reading routing is measured by; the kind it learns to choose).
A reply that names a kind of unit but no unit that can be read still teaches the kind. Measured on
the shared replies (``training/routing_benchmark.py``): the lead's kind is right on 0.626 of
held-out appeals; learning kinds from ``handling_unit`` alone gave 0.608 (against 0.624 before a
lead's name was checked by the official reading, ``triage.units.keep_kind``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from triage.address import Gazetteer
from triage.dispatch import Dispatcher
from triage.errors import HistoryError, InputFileError
from triage.reply_units import handling_unit
from triage.routing import ResponsibilityList
from triage.tables import read_table
from triage.taxonomy import Taxonomy
from triage.unit_kinds import KIND_BODY, reply_kind, unit_category
from triage.unit_mentions import clean_reply
from triage.units import unit_key

Progress = Callable[[str], None]

# The fewest usable past tickets routing is learnt from: two units (a router chooses between at
# least two) with HistoryRouter's min_count (3) tickets each, the fewest for a unit to be learnt
# by its own name rather than only by its kind's body. Fewer also leave the router's TF-IDF
# (terms found in at least two tickets) next to nothing: 2 tickets sharing no character crashed it.
MIN_HISTORY = 6
# A department cell that is a unit name: a name (1 to 28 characters, no sentence punctuation)
# and a unit suffix. Read conservatively both ways: a cell ending in any unit suffix is kept
# (国网供电公司, 跳马镇, 市12345热线办公室 are units the router need not know the kind of), and
# one ending in none is no unit (张三, 12345, 无, N/A, 待定, 西城区, 白沙村).
_UNIT_NAME = re.compile(
    r"[^\s，。！？；：、,.!?;:/]{1,28}(?:局|委|委员会|办|办公室|中心|街道|办事处|镇|乡|政府|所|队|站|"
    r"公司|院|处|厅|社区|居委会|村委会|集团)")


class History(NamedTuple):
    """Past tickets: the appeal, the unit that handled it (the department cell as the centre
    spelled it, or the unit read from the reply; None when a reply names a kind of unit but no
    unit that can be read) and the kind of unit its reply names first (``""`` when there is no
    reply or it names none; the router then takes the unit's own kind). ``read`` counts the rows
    of the files, ``skipped`` the rows left out by reason."""

    texts: list[str]
    units: list[str | None]
    kinds: list[str]
    read: int = 0
    skipped: tuple[tuple[str, int], ...] = ()

    def summary(self) -> str:
        """What was read and what was left out, e.g. ``300 rows read: 97 used; 100 with an empty
        reply, 103 whose reply names no unit skipped``."""
        said = f"{self.read} rows read: {len(self.texts)} used"
        skipped = [f"{count} {reason}" for reason, count in self.skipped if count]
        return said + (f"; {', '.join(skipped)} skipped" if skipped else "")


def read_history(
    files: Sequence[Path], *, text_column: str, department_column: str | None = None,
    reply_column: str | None = None,
) -> History:
    """Past tickets and the unit that handled each: from a department column, or read from the
    government's reply (with the kind of unit the reply names first). Rows with an empty text, an
    empty cell, or neither a unit nor a kind are skipped and counted (not errors: many replies
    name no unit); a history too small to learn from, or naming one unit only, is refused."""
    if (department_column is None) == (reply_column is None):
        raise InputFileError("give exactly one of --department-column and --reply-column "
                             "with --history")
    what = "department" if department_column else "reply"
    reasons = {"text": "with an empty text", "cell": f"with an empty {what}",
               "unit": ("whose department is not a unit name" if department_column
                        else "whose reply names no unit")}
    texts: list[str] = []
    units: list[str | None] = []
    kinds: list[str] = []
    skipped: Counter[str] = Counter()
    read = 0
    for path in files:
        table = read_table(path)
        column_texts = table.column(text_column)
        sources = table.column(department_column or reply_column or "")
        read += len(table.rows)
        for text, source in zip(column_texts, sources, strict=True):
            problem, unit, kind = _read_row(text, source, by_department=bool(department_column))
            if problem:
                skipped[problem] += 1
                continue
            texts.append(text)
            units.append(unit)
            kinds.append(kind)
    history = History(texts, units, kinds, read, tuple((reasons[k], skipped[k]) for k in reasons))
    _check_learnable(history)
    return history


def _read_row(text: str, source: str, *, by_department: bool) -> tuple[str, str | None, str]:
    """Why a row is skipped (``text``, ``cell``, ``unit``; ``""`` when it is used), its unit and
    the kind of unit its reply names."""
    if not text.strip():
        return "text", None, ""
    if not clean_reply(source):
        return "cell", None, ""
    unit, kind = ((department_unit(source), "") if by_department
                  else (handling_unit(source), reply_kind(source)))
    return ("" if unit or kind else "unit"), unit, kind


def department_unit(cell: str) -> str | None:
    """The unit a department cell names, as the centre spelled it; None for a cell that is no
    unit name (张三, 12345, 无, N/A, 待定).

    A unit name is a name and a unit suffix (``_UNIT_NAME``). A longer cell that is a sentence
    naming a unit (a reply pasted into the department column: 经A3区教育局核实...) gives the unit
    read from it as from a reply.

    Example:
        >>> department_unit("市城市管理局"), department_unit("无"), department_unit("张三")
        ('市城市管理局', None, None)
    """
    name = clean_reply(cell)
    if _UNIT_NAME.fullmatch(name):
        return name
    return handling_unit(name)


def _check_learnable(history: History) -> None:
    """Refuse a history a router cannot learn to choose from: too few rows, or one unit."""
    if len(history.texts) < MIN_HISTORY:
        raise HistoryError(f"the history has too few usable rows ({len(history.texts)}) to learn "
                           f"routing: at least {MIN_HISTORY} are needed ({history.summary()})")
    named = _units_named(history)
    if len(named) < 2:
        [only] = named
        spelled = Counter(u for u in history.units if u and unit_key(u) == only)
        name = spelled.most_common(1)[0][0] if spelled else only
        raise HistoryError(f"the history names only one unit ({name}): a router needs at least "
                           "two units to choose between; add past tickets of other units, or "
                           "train without --history")


def _units_named(history: History) -> Counter[str]:
    """The units a router learnt from ``history`` can choose between, by standard name; a kind a
    reply names without a unit stands for its standard body unless a named unit is of that kind."""
    named = Counter(unit_key(u) for u in history.units if u)
    known = {unit_category(u) for u in named}
    named.update(KIND_BODY.get(k, k) for u, k in zip(history.units, history.kinds, strict=True)
                 if not u and k and k not in known)
    return named


def build_dispatcher(
    *, taxonomy: Taxonomy, gazetteer: Path | None = None, responsibility: Path | None = None,
    history: History | tuple[list[str], list[str]] | None = None,
    progress: Progress = lambda _: None,
) -> Dispatcher | None:
    """The routing of a new version, or None when nothing beyond the taxonomy was given."""
    if gazetteer is None and responsibility is None and history is None:
        return None
    places = Gazetteer.from_file(gazetteer) if gazetteer else None
    rules = (ResponsibilityList.from_file(responsibility, taxonomy, gazetteer=places)
             if responsibility else None)
    router = None
    if history is not None:
        from models.router import HistoryRouter

        texts, units = history[0], history[1]
        kinds = history.kinds if isinstance(history, History) else None
        progress(f"learning routing from {len(texts)} past tickets")
        router = HistoryRouter().fit(texts, units, kinds=kinds)
    return Dispatcher(taxonomy=taxonomy, gazetteer=places, responsibility=rules, router=router)
