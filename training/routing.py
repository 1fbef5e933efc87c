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

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from triage.address import Gazetteer
from triage.dispatch import Dispatcher
from triage.errors import InputFileError
from triage.reply_units import handling_unit
from triage.routing import ResponsibilityList
from triage.tables import read_table
from triage.taxonomy import Taxonomy
from triage.unit_kinds import reply_kind
from triage.unit_mentions import clean_reply

Progress = Callable[[str], None]


class History(NamedTuple):
    """Past tickets: the appeal, the unit that handled it (the department cell as the centre
    spelled it, or the unit read from the reply; None when a reply names a kind of unit but no
    unit that can be read) and the kind of unit its reply names first (``""`` when there is no
    reply or it names none; the router then takes the unit's own kind)."""

    texts: list[str]
    units: list[str | None]
    kinds: list[str]


def read_history(
    files: Sequence[Path], *, text_column: str, department_column: str | None = None,
    reply_column: str | None = None,
) -> History:
    """Past tickets and the unit that handled each: from a department column, or read from the
    government's reply (with the kind of unit the reply names first). Rows with neither a unit
    nor a kind are skipped (not errors: many replies name no unit)."""
    if (department_column is None) == (reply_column is None):
        raise InputFileError("give exactly one of --department-column and --reply-column "
                             "with --history")
    history = History([], [], [])
    for path in files:
        table = read_table(path)
        column_texts = table.column(text_column)
        sources = table.column(department_column or reply_column or "")
        for text, source in zip(column_texts, sources, strict=True):
            if department_column:
                # the centre's own spelling: the router tells units apart by their standard
                # names and answers in the spelling the history used most
                unit, kind = (clean_reply(source) or None), ""
            else:
                unit, kind = handling_unit(source), reply_kind(source)
            if text.strip() and (unit or kind):
                history.texts.append(text)
                history.units.append(unit)
                history.kinds.append(kind)
    if not history.texts:
        raise InputFileError("the history files name no handling unit in any row")
    return history


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
