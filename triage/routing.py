"""The responsibility list (权责清单): which unit leads and which units co-handle each sub-item.

An entry names a taxonomy node at any level, optionally for one district; a leaf inherits the entry
of its nearest listed ancestor, and a district's own entry beats the general one at the same node.
Unit names may hold the placeholders ``{district}`` and ``{street}``, filled from the appeal's
address; an unknown value gives the generic 属地 form (``{street}办事处`` → 属地街道办事处,
``{district}城管局`` → 属地区城管局). When a list is given, it wins over the taxonomy's
``department`` column.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from triage.address import Gazetteer
from triage.errors import LabelError, RoutingError
from triage.tables import Table, read_table, read_yaml_list
from triage.taxonomy import SEP, Taxonomy
from triage.units import unit_key, unit_place

COLUMNS = {
    "node": "node", "节点": "node",
    "lead": "lead", "主办": "lead",
    "co": "co", "协办": "co",
    "district": "district", "区": "district",
}
GENERIC = {"district": "属地区", "street": "属地街道"}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_TOWNSHIP = ("镇", "乡")
_DISTRICT_SUFFIXES = ("区", "县", "市", "旗")


@dataclass(frozen=True)
class Entry:
    """One line of the list: ``node`` is a full taxonomy path, ``district`` empty for everywhere,
    ``row`` the file row (or YAML entry) it came from."""

    node: str
    lead: str
    co: tuple[str, ...] = ()
    district: str = ""
    row: int = 0

    def resolve(self, district: str = "", street: str = "") -> tuple[str, tuple[str, ...]]:
        """The lead and co-handlers with the address filled in.

        Example:
            >>> Entry("城市管理/占道经营", "{district}城市管理和综合执法局",
            ...       ("{district}{street}办事处",)).resolve("东城区", "和平街道")
            ('东城区城市管理和综合执法局', ('东城区和平街道办事处',))
        """
        lead = fill_unit(self.lead, district, street)
        return lead, distinct_co(lead, (fill_unit(unit, district, street) for unit in self.co))

    @property
    def units(self) -> tuple[str, ...]:
        return (self.lead, *self.co)


def distinct_co(lead: str, co: Iterable[str]) -> tuple[str, ...]:
    """The co-handlers without the lead and without repeats, compared by standard name
    (``unit_key``: 市住房和城乡建设局 is 市住建局), each in its first spelling."""
    seen = {unit_key(lead)}
    kept = []
    for unit in co:
        if unit and unit_key(unit) not in seen:
            seen.add(unit_key(unit))
            kept.append(unit)
    return tuple(kept)


def fill_unit(template: str, district: str = "", street: str = "") -> str:
    """A unit name with ``{district}`` and ``{street}`` replaced by the address.

    An unknown value gives the generic form (属地区, 属地街道). ``{district}{street}`` together is a
    street's full name: without a street it is just 属地街道, without a district just the street.
    A township has a people's government where a street has an office, so ``{street}办事处`` for
    青山镇 gives 青山镇人民政府.
    """
    if "{" not in template:
        return template
    if not (street and district):
        template = template.replace("{district}{street}", "{street}")
    unit = template.replace("{street}", street or GENERIC["street"])
    unit = unit.replace("{district}", district or GENERIC["district"])
    if street.endswith(_TOWNSHIP):
        unit = unit.replace(f"{street}办事处", f"{street}人民政府")
    return unit


class ResponsibilityList:
    """Entries by node and district, validated against a taxonomy (and a gazetteer if given).

    Example:
        >>> tax = Taxonomy.from_records([{"path": ("城市管理", "占道经营")}])
        >>> rl = ResponsibilityList.from_records(
        ...     [{"node": "城市管理", "lead": "市城市管理局"},
        ...      {"node": "占道经营", "lead": "{district}城市管理和综合执法局"}], tax)
        >>> rl.lookup("城市管理/占道经营").resolve("东城区")[0]
        '东城区城市管理和综合执法局'
    """

    def __init__(self, entries: Iterable[Entry], taxonomy: Taxonomy,
                 gazetteer: Gazetteer | None = None) -> None:
        self.taxonomy = taxonomy
        self.gazetteer = gazetteer
        self.entries = tuple(entries)
        self._by_node: dict[str, dict[str, Entry]] = {}
        for entry in self.entries:
            self._by_node.setdefault(entry.node, {})[entry.district] = entry
        self._patterns: dict[tuple[str, str, str], re.Pattern[str]] = {}

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: Path | str, taxonomy: Taxonomy,
                  gazetteer: Gazetteer | None = None) -> ResponsibilityList:
        """Load CSV/XLSX/JSONL (``node, lead, co, district`` or 节点, 主办, 协办, 区; ``co``
        ``|``-separated, an empty district means everywhere) or YAML (a list of
        ``{node, lead, co?: [..], district?}``)."""
        path = Path(path)
        if path.suffix.lower() in {".yaml", ".yml"}:
            records, noun = _yaml_records(path), "entry"
        else:
            records, noun = _table_records(read_table(path)), "row"
        return cls._build(records, taxonomy, gazetteer, where=str(path), noun=noun)

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]], taxonomy: Taxonomy,
                     gazetteer: Gazetteer | None = None) -> ResponsibilityList:
        """Build from ``{node, lead, co?, district?}`` mappings; errors count entries from 1."""
        numbered = [(i, dict(r)) for i, r in enumerate(records, start=1)]
        return cls._build(numbered, taxonomy, gazetteer, where="the responsibility list",
                          noun="entry")

    @classmethod
    def _build(cls, records: list[tuple[int, dict[str, Any]]], taxonomy: Taxonomy,
               gazetteer: Gazetteer | None, *, where: str, noun: str) -> ResponsibilityList:
        if not records:
            raise RoutingError(f"{where}: the responsibility list has no entries")
        nodes = _resolve_nodes(records, taxonomy, where, noun)
        problems: list[str] = []
        seen: dict[tuple[str, str], int] = {}
        entries = []
        for (number, record), node in zip(records, nodes, strict=True):
            entry = _entry(node, number, record)
            problems.extend(f"{noun} {number} {p}" for p in _check(entry, gazetteer))
            first = seen.setdefault((entry.node, entry.district), number)
            if first != number:
                problems.append(
                    f"{noun}s {first} and {number} both give {entry.node!r} "
                    f"{'for ' + entry.district if entry.district else 'everywhere'}")
            entries.append(entry)
        if problems:
            shown = "; ".join(problems[:10])
            more = f"; and {len(problems) - 10} more problems" if len(problems) > 10 else ""
            raise RoutingError(f"{where}: {shown}{more}")
        return cls(entries, taxonomy, gazetteer)

    # -- queries ------------------------------------------------------------------------
    def lookup(self, subitem_path: str, district: str = "", street: str = "") -> Entry | None:
        """The entry of the deepest listed node from the leaf up, a district's own first.

        A known street gives its district through the gazetteer when ``district`` is empty.
        """
        key = subitem_path.strip().strip(SEP)
        if key not in self.taxonomy:
            raise RoutingError(f"{subitem_path!r} is not a path in the taxonomy")
        district = district or self._district_of(street)
        parts = key.split(SEP)
        for depth in range(len(parts), 0, -1):
            found = self._by_node.get(SEP.join(parts[:depth]))
            if found and district in found:
                return found[district]
            if found and "" in found:
                return found[""]
        return None

    def units(self, subitem_path: str, district: str = "", street: str = "",
              ) -> tuple[str, tuple[str, ...]] | None:
        """The resolved (lead, co-handlers) for a sub-item and address, or ``None`` if unlisted."""
        entry = self.lookup(subitem_path, district, street)
        if entry is None:
            return None
        return entry.resolve(district or self._district_of(street), street)

    def allows(self, subitem_path: str, unit: str, district: str = "", street: str = "") -> bool:
        """Whether ``unit`` is the lead or a co-handler the list gives for this sub-item.

        Units are compared by their standard names: 市城管局 is the list's 市城市管理局, and a
        generic unit (属地街道办事处) is the list's unit of the appeal's own place. Where the
        address leaves a placeholder unknown, both the generic form (属地区...) and any concrete
        unit of that shape (东城区..., 东城区住建局 for ``{district}住房和城乡建设局``) are allowed.
        """
        entry = self.lookup(subitem_path, district, street)
        if entry is None:
            return False
        district = district or self._district_of(street)
        lead, co = entry.resolve(district, street)
        key = unit_key(unit)
        if key in {unit_key(u) for u in (lead, *co)}:
            return True
        if unit.startswith("属地"):  # the generic unit (属地街道办事处) is that of the appeal's place
            return key in {unit_key(fill_unit(t)) for t in entry.units if "{" in t}
        if district and street:
            return False
        return any(self._fits(t, unit, district, street) for t in entry.units if "{" in t)

    def _fits(self, template: str, unit: str, district: str, street: str) -> bool:
        """Whether ``unit``, in any spelling, is one the template gives for some value of the
        placeholders the address leaves unknown (the values the unit's own name holds)."""
        pattern = self._pattern(template, district, street)
        if pattern.fullmatch(unit):
            return True
        key = unit_key(unit)
        own_district, own_street = unit_place(key)
        districts = [district] if district else self._named_in(key, "district", own_district)
        streets = [street] if street else self._named_in(key, "street", own_street)
        for d in districts:
            for s in streets:
                filled = fill_unit(template, d, s)
                if unit_key(filled) == key and pattern.fullmatch(filled):
                    return True
        return False

    def _named_in(self, unit: str, level: str, own: str) -> list[str]:
        """The districts (or streets) of the gazetteer a unit name holds, else the one read from
        it, and ``""`` (the generic 属地 form)."""
        return list(dict.fromkeys([*(n for n in self._names(level) if n in unit), own, ""]))

    def _names(self, level: str) -> tuple[str, ...]:
        """The gazetteer's districts or streets (none without a gazetteer)."""
        if self.gazetteer is None:
            return ()
        return tuple(self.gazetteer.districts if level == "district" else self.gazetteer.streets())

    def missing_leaves(self) -> list[str]:
        """Leaves of the taxonomy no entry covers, not even through an ancestor."""
        return [leaf.key for leaf in self.taxonomy.leaves() if not self._covered(leaf.path)]

    def _covered(self, path: tuple[str, ...]) -> bool:
        return any("" in self._by_node.get(SEP.join(path[:d]), {}) for d in range(len(path), 0, -1))

    def _pattern(self, template: str, district: str, street: str) -> re.Pattern[str]:
        """Every unit the template can give when part of the address is unknown: a district or
        street of the gazetteer (any name without one) or the generic 属地 form."""
        key = (template, district, street)
        if key not in self._patterns:
            self._patterns[key] = re.compile(_template_regex(template, {
                "district": re.escape(district) if district else self._any("district"),
                "street": re.escape(street) if street else self._any("street")}))
        return self._patterns[key]

    def _any(self, level: str) -> str:
        names = self._names(level)
        if not names:
            return ".+"
        return "(?:" + "|".join(map(re.escape, (*names, GENERIC[level]))) + ")"

    def _district_of(self, street: str) -> str:
        return self.gazetteer.district_of(street) if self.gazetteer and street else ""

    def __len__(self) -> int:
        return len(self.entries)


def _template_regex(template: str, fragments: dict[str, str]) -> str:
    """The template as a regex, each placeholder replaced by its regex fragment."""
    parts: list[str] = []
    pieces = re.split(r"\{(district|street)\}", template)  # odd items are placeholder names
    for i, piece in enumerate(pieces):
        if i % 2:
            # {district}{street} may stand for the street alone (see fill_unit)
            optional = piece == "district" and pieces[i + 1:i + 3] == ["", "street"]
            parts.append(f"(?:{fragments[piece]})?" if optional else fragments[piece])
        elif i and pieces[i - 1] == "street" and piece.startswith("办事处"):
            parts.append("(?:办事处|人民政府)" + re.escape(piece[len("办事处"):]))
        else:
            parts.append(re.escape(piece))
    return "".join(parts)


def _resolve_nodes(records: list[tuple[int, dict[str, Any]]], taxonomy: Taxonomy,
                   where: str, noun: str) -> list[str]:
    labels = [str(record.get("node") or "").strip() for _, record in records]
    try:
        nodes = taxonomy.resolve_labels(labels, rows=[number for number, _ in records])
    except LabelError as exc:
        raise RoutingError(f"{where}: {_as_nodes(exc.message, noun)}") from None
    return [node.key for node in nodes]


def _as_nodes(message: str, noun: str) -> str:
    """The taxonomy's label errors said of a list's nodes, on its rows (or entries): ``node
    '城市管理/无' is not a path in the taxonomy (row 4)``, not ``label ... (rows 4)``."""
    message = re.sub(r"\blabel '", "node '", message).replace("an empty label", "an empty node")

    def numbered(match: re.Match[str]) -> str:
        several = "," in match.group(1) or " more" in match.group(1)
        return f"({noun}s {match.group(1)})" if several else f"({noun} {match.group(1)})"

    return re.sub(r"\(rows ([^()]*)\)", numbered, message).replace("(entrys ", "(entries ")


def _entry(node: str, number: int, record: Mapping[str, Any]) -> Entry:
    lead = str(record.get("lead") or "").strip()
    co = record.get("co")
    items = co if isinstance(co, (list, tuple)) else str(co or "").split("|")
    units = (str(u).strip() for u in items)
    return Entry(node, lead, distinct_co(lead, units), str(record.get("district") or "").strip(),
                 number)


def _check(entry: Entry, gazetteer: Gazetteer | None) -> list[str]:
    problems = []
    if not entry.lead:
        problems.append(f"({entry.node}) has no lead unit")
    for unit in entry.units:
        unknown = [p for p in _PLACEHOLDER.findall(unit) if p not in GENERIC]
        if unknown or unit.count("{") != unit.count("}"):
            problems.append(f"has the unit {unit!r}: the only placeholders are {{district}} and "
                            "{street}")
    if entry.district and gazetteer is None and not _looks_like_district(entry.district):
        problems.append(f"names the district {entry.district!r}, which is no district name (a "
                        "district name ends in 区, 县, 市 or 旗, as the appeals write it); give "
                        "--gazetteer to check the names themselves")
    if entry.district and gazetteer is not None and entry.district not in gazetteer.districts:
        problems.append(f"names the district {entry.district!r}, which the gazetteer does not "
                        f"list (it lists {', '.join(gazetteer.districts)})")
    return problems


def _looks_like_district(name: str) -> bool:
    """Without a gazetteer a typo (西成区) cannot be told from a district; a value that is no
    district name at all (西城, 城市管理) can: no appeal's district would ever equal it."""
    return len(name) >= 2 and name.endswith(_DISTRICT_SUFFIXES)


def _table_records(table: Table) -> list[tuple[int, dict[str, Any]]]:
    columns = _columns(table)
    if "node" not in columns or "lead" not in columns:
        raise RoutingError(
            f"{table.path}: a responsibility list needs the columns node, lead (co and district "
            f"are optional; 节点, 主办, 协办, 区 also work); the columns are "
            f"{', '.join(table.columns)}")
    return [(number, {field: row.get(column, "") for field, column in columns.items()})
            for row, number in zip(table.rows, table.row_numbers, strict=True)]


def _columns(table: Table) -> dict[str, str]:
    """Field -> header name; a field two columns give (node and 节点, node twice) is an error:
    one of them would be dropped without a word."""
    given: dict[str, list[str]] = {}
    for column in table.columns:
        field = COLUMNS.get(column.strip().lower())
        if field:
            given.setdefault(field, []).append(column)
    twice = {field: names for field, names in given.items() if len(names) > 1}
    if twice:
        raise RoutingError(f"{table.path}: " + "; ".join(
            f"two columns give {field} ({' and '.join(names)}): keep one"
            for field, names in twice.items()))
    return {field: names[0] for field, names in given.items()}


def _yaml_records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    data = read_yaml_list(path, shape="{node, lead, co?, district?}", error=RoutingError)
    return list(enumerate(data, start=1))
