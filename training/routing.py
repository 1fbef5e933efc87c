"""Assembling a version's routing: responsibility list, gazetteer and a router learnt from history."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from triage.address import Gazetteer
from triage.dispatch import Dispatcher
from triage.errors import InputFileError
from triage.routing import ResponsibilityList
from triage.tables import read_table
from triage.taxonomy import Taxonomy
from triage.units import handling_unit, standard_unit

Progress = Callable[[str], None]


def read_history(
    files: Sequence[Path], *, text_column: str, department_column: str | None = None,
    reply_column: str | None = None,
) -> tuple[list[str], list[str]]:
    """Past tickets and the unit that handled each: from a department column, or read from the
    government's reply. Rows whose unit cannot be read are skipped (not errors: many replies
    name no unit)."""
    if (department_column is None) == (reply_column is None):
        raise InputFileError("give exactly one of --department-column and --reply-column "
                             "with --history")
    texts: list[str] = []
    units: list[str] = []
    for path in files:
        table = read_table(path)
        column_texts = table.column(text_column)
        sources = table.column(department_column or reply_column or "")
        for text, source in zip(column_texts, sources, strict=True):
            unit = standard_unit(source) if department_column else handling_unit(source)
            if text.strip() and unit:
                texts.append(text)
                units.append(unit)
    if not texts:
        raise InputFileError("the history files name no handling unit in any row")
    return texts, units


def build_dispatcher(
    *, taxonomy: Taxonomy, gazetteer: Path | None = None, responsibility: Path | None = None,
    history: tuple[list[str], list[str]] | None = None, progress: Progress = lambda _: None,
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

        progress(f"learning routing from {len(history[0])} past tickets")
        router = HistoryRouter().fit(*history)
    return Dispatcher(taxonomy=taxonomy, gazetteer=places, responsibility=rules, router=router)
