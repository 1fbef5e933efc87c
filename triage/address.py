"""Where an appeal is about: its district, street or township, and community.

Known names come first: one regex pass over the text finds the gazetteer's names and aliases
(longest match), and a street or community implies the levels above it. Patterns then fill the
levels still missing with places the gazetteer does not list, including the anonymised forms of the
shared data (A3区, K11县, 某某街道, 某某镇, 某某社区, 某某村). The city itself (A市) is not a district,
and a residential compound (XX小区) is not a community.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from triage.errors import RoutingError
from triage.tables import Table, read_table, read_yaml_list

COLUMNS = {
    "district": "district", "区": "district",
    "street": "street", "街道": "street",
    "community": "community", "社区": "community",
    "aliases": "aliases", "别名": "aliases",
}


@dataclass(frozen=True)
class Address:
    """Where an appeal is about; ``evidence`` holds the words of the text that said so."""

    district: str = ""
    street: str = ""
    community: str = ""
    evidence: tuple[str, ...] = ()
    conflict: str = ""  # why the text's places do not fit together (a person decides then)

    def to_dict(self) -> dict[str, Any]:
        return {"district": self.district, "street": self.street, "community": self.community,
                "evidence": list(self.evidence), "conflict": self.conflict}


@dataclass(frozen=True)
class _Place:
    """One known place: a district, a street in it, or a community under that street."""

    district: str
    street: str = ""
    community: str = ""

    def levels(self) -> tuple[tuple[str, str], ...]:
        levels = (("district", self.district), ("street", self.street),
                  ("community", self.community))
        return tuple(level for level in levels if level[1])


@dataclass(frozen=True)
class _Row:
    where: str
    district: str
    street: str = ""
    community: str = ""
    aliases: tuple[str, ...] = ()


class Gazetteer:
    """The known districts, streets/townships and communities of one city, with aliases.

    A street belongs to exactly one district; a community name may recur under several streets
    (it then implies a street only when the text narrows it down).

    Example:
        >>> gaz = Gazetteer.from_rows([{"district": "东城区", "street": "和平街道",
        ...                             "community": "幸福里社区", "aliases": "和平街"}])
        >>> extract_address("和平街幸福里社区楼道堆满杂物", gaz).district
        '东城区'
    """

    def __init__(self, tree: Mapping[str, Mapping[str, Iterable[str]]],
                 aliases: Mapping[str, str] | None = None) -> None:
        self._tree = {d: {s: tuple(c) for s, c in streets.items()} for d, streets in tree.items()}
        self._aliases = dict(aliases or {})
        self._street_district = {s: d for d, streets in self._tree.items() for s in streets}
        self._names = self._index()
        names = sorted(self._names, key=len, reverse=True)  # longest first: longest match wins
        self._pattern = re.compile("|".join(map(re.escape, names))) if names else None

    # -- construction -------------------------------------------------------------------
    @classmethod
    def empty(cls) -> Gazetteer:
        """A gazetteer that knows no place: extraction then relies on patterns alone."""
        return cls({})

    @classmethod
    def from_file(cls, path: Path | str) -> Gazetteer:
        """Load CSV/XLSX/JSONL (``district, street, community?, aliases?``) or YAML.

        YAML is a list of ``{district, aliases?, streets: [{name, aliases?, communities: [..]}]}``.
        """
        path = Path(path)
        if path.suffix.lower() in {".yaml", ".yml"}:
            return cls._build(_yaml_rows(path), str(path))
        return cls._build(_table_rows(read_table(path)), str(path))

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]], where: str = "the gazetteer",
                  ) -> Gazetteer:
        """Build from ``{district, street?, community?, aliases?}`` mappings (aliases ``|``-joined
        or a list); errors count the rows from 1."""
        return cls._build([_row(f"row {i}", r) for i, r in enumerate(rows, start=1)], where)

    @classmethod
    def _build(cls, rows: list[_Row], where: str) -> Gazetteer:
        if not rows:
            raise RoutingError(f"{where}: the gazetteer has no rows")
        builder = _Builder()
        for row in rows:
            builder.add(row)
        builder.check_names()
        if builder.problems:
            raise RoutingError(f"{where}: {_join(builder.problems)}")
        return cls(builder.tree, {a: t for a, (t, _) in builder.aliases.items()})

    def _index(self) -> dict[str, tuple[_Place, ...]]:
        index: dict[str, list[_Place]] = {}
        for district, streets in self._tree.items():
            index.setdefault(district, []).append(_Place(district))
            for street, communities in streets.items():
                index.setdefault(street, []).append(_Place(district, street))
                for community in communities:
                    index.setdefault(community, []).append(_Place(district, street, community))
        for alias, target in self._aliases.items():
            index.setdefault(alias, []).extend(index[target])
        return {name: tuple(places) for name, places in index.items()}

    # -- queries ------------------------------------------------------------------------
    @property
    def districts(self) -> tuple[str, ...]:
        return tuple(self._tree)

    def streets(self, district: str | None = None) -> tuple[str, ...]:
        """The streets of one district, or of the whole city."""
        if district is not None:
            return tuple(self._tree.get(district, {}))
        return tuple(self._street_district)

    def communities(self, street: str) -> tuple[str, ...]:
        return self._tree.get(self.district_of(street), {}).get(street, ())

    def district_of(self, street: str) -> str:
        """The district of a known street (or alias); ``""`` for an unknown street."""
        return self._street_district.get(self._aliases.get(street, street), "")

    @property
    def is_empty(self) -> bool:
        return not self._tree

    def locate(self, text: str) -> Address:
        """The address the known names in ``text`` give (no patterns)."""
        if self._pattern is None:
            return Address()
        first: dict[tuple[str, str], tuple[int, str]] = {}
        candidates: dict[_Place, None] = {}
        for match in self._pattern.finditer(text):
            if _inside_longer_name(text, match):
                continue
            for place in self._names[match.group()]:
                first.setdefault(place.levels()[-1], (match.start(), match.group()))
                candidates[place] = None
        if not candidates:
            return Address()
        return _best_chain(list(candidates), first)

    def named_districts(self, text: str) -> list[tuple[int, str]]:
        """Position and name of each district (or district alias) ``text`` names, in order."""
        matches = self._pattern.finditer(text) if self._pattern else ()
        return [(m.start(), self._names[m.group()][0].district) for m in matches
                if self._names[m.group()][0].levels()[-1][0] == "district"]

    def named_streets(self, text: str) -> list[tuple[int, str, str]]:
        """Position, words and canonical name of each known street (or street alias) ``text``
        names, in order; a name inside a longer unknown one (新和平街道) is not named."""
        return [(m.start(), m.group(), places[0].street)
                for m, places in self._named_local(text, "street")]

    def named_communities(self, text: str) -> list[tuple[int, str, tuple[tuple[str, str], ...]]]:
        """Position, words and the (district, street) pairs each known community ``text`` names
        lies under, in order (a name may recur under several streets); a name inside a longer
        unknown one is not named."""
        return [(m.start(), m.group(), tuple((p.district, p.street) for p in places if p.community))
                for m, places in self._named_local(text, "community")]

    def _named_local(self, text: str, level: str) -> list[tuple[re.Match[str], tuple[_Place, ...]]]:
        """Matches of known names of ``level`` (street or community) and their places, except
        names inside a longer unknown one."""
        matches = self._pattern.finditer(text) if self._pattern else ()
        return [(m, self._names[m.group()]) for m in matches
                if self._names[m.group()][0].levels()[-1][0] == level
                and not _inside_longer_name(text, m)]

def _inside_longer_name(text: str, match: re.Match[str]) -> bool:
    """Whether a known street or community name is the end of a longer one the gazetteer does
    not list (新和平街道 is not 和平街道): one name-making character (新, 东, 大 ...) stands
    right before it, after sentence glue or a place. Only those characters count: a street named
    after any other word (3个月和平街道, 老和平街道: the old name) is read as the known
    street still."""
    if not match.group().endswith(_LOCAL_SUFFIXES) or match.start() == 0:
        return False
    run = _RUN.search(text, max(0, match.start() - _LOOKBACK), match.start())
    extra = _COMMUNITY.cut.split(run.group())[-1] if run else ""
    return len(extra) == 1 and extra in _NAME_PREFIXES


def _best_chain(candidates: list[_Place], first: dict[tuple[str, str], tuple[int, str]],
                ) -> Address:
    """The place the most mentions support, then the one mentioned first; levels on which the
    best candidates disagree (a community under several streets) are left empty."""

    def rank(place: _Place) -> tuple[int, int]:
        support = [first[key][0] for key in place.levels() if key in first]
        return -len(support), min(support)

    ranks = [rank(p) for p in candidates]
    top = min(ranks)
    best = [p for p, r in zip(candidates, ranks, strict=True) if r == top]
    district, street, community = (_common([getattr(p, level) for p in best])
                                   for level in ("district", "street", "community"))
    chosen = [(level, name) for level, name in
              (("district", district), ("street", street), ("community", community)) if name]
    evidence = sorted(first[key] for key in chosen if key in first)
    return Address(district, street, community, tuple(surface for _, surface in evidence))


def _common(values: list[str]) -> str:
    return values[0] if len(set(values)) == 1 else ""


class _Builder:
    """Collects a gazetteer's rows and every problem in them, each naming its row."""

    def __init__(self) -> None:
        self.tree: dict[str, dict[str, list[str]]] = {}
        self.streets: dict[str, tuple[str, str]] = {}  # street -> (district, where)
        self.communities: dict[str, str] = {}  # community -> where first seen
        self.aliases: dict[str, tuple[str, str]] = {}  # alias -> (target, where)
        self.problems: list[str] = []

    def add(self, row: _Row) -> None:
        if not row.district:
            self.problems.append(f"{row.where} has no district")
            return
        if row.community and not row.street:
            self.problems.append(f"{row.where} has a community but no street")
            return
        streets = self.tree.setdefault(row.district, {})
        if row.street:
            district, where = self.streets.setdefault(row.street, (row.district, row.where))
            if district != row.district:
                self.problems.append(
                    f"{row.where} lists the street {row.street!r} under {row.district} but "
                    f"{where} lists it under {district}; a street belongs to one district")
                return
            communities = streets.setdefault(row.street, [])
            if row.community and row.community not in communities:
                communities.append(row.community)
                self.communities.setdefault(row.community, row.where)
        self._add_aliases(row)

    def _add_aliases(self, row: _Row) -> None:
        target = row.street or row.district
        for alias in row.aliases:
            if alias == target:
                continue
            known, where = self.aliases.setdefault(alias, (target, row.where))
            if known != target:
                self.problems.append(
                    f"{row.where} gives the alias {alias!r} to {target} but {where} gives it "
                    f"to {known}")

    def check_names(self) -> None:
        """One name must mean one kind of place: a street named like a district is an error."""
        kinds = {d: ("district", "") for d in self.tree}
        for street, (_, where) in self.streets.items():
            if street in kinds:
                self.problems.append(f"{where}: {street!r} is both a district and a street")
            kinds.setdefault(street, ("street", where))
        for community, where in self.communities.items():
            if community in kinds:
                self.problems.append(f"{where}: the community {community!r} has the name of a "
                                     f"{kinds[community][0]}")
        for alias, (target, where) in self.aliases.items():
            if alias in kinds or alias in self.communities:
                self.problems.append(f"{where}: the alias {alias!r} of {target} is already the "
                                     "name of another place")


def _join(problems: list[str]) -> str:
    shown = "; ".join(problems[:10])
    return shown + (f"; and {len(problems) - 10} more problems" if len(problems) > 10 else "")


def _split(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, (list, tuple)) else str(value or "").split("|")
    return tuple(dict.fromkeys(s for s in (str(i).strip() for i in items) if s))


def _row(where: str, record: Mapping[str, Any]) -> _Row:
    def cell(name: str) -> str:
        return str(record.get(name) or "").strip()

    return _Row(where, cell("district"), cell("street"), cell("community"),
                _split(record.get("aliases")))


def _table_rows(table: Table) -> list[_Row]:
    columns = {COLUMNS[c.strip().lower()]: c for c in table.columns
               if c.strip().lower() in COLUMNS}
    if "district" not in columns or "street" not in columns:
        raise RoutingError(
            f"{table.path}: a gazetteer needs the columns district, street (community and aliases "
            f"are optional; 区, 街道, 社区, 别名 also work); the columns are "
            f"{', '.join(table.columns)}")
    return [_row(f"row {number}", {field: row.get(column, "") for field, column in columns.items()})
            for row, number in zip(table.rows, table.row_numbers, strict=True)]


def _yaml_rows(path: Path) -> list[_Row]:
    data = read_yaml_list(path, shape="{district, streets: [...]}", error=RoutingError)
    rows: list[_Row] = []
    for i, item in enumerate(data, start=1):
        district = str(item.get("district") or "").strip()
        rows.append(_Row(f"entry {i}", district, aliases=_split(item.get("aliases"))))
        for j, street in enumerate(_items(item.get("streets")), start=1):
            rows.extend(_yaml_street(path, f"entry {i}, street {j}", district, street))
    return rows


def _items(value: Any) -> list[Any]:
    """The items of a YAML list; a bare string is one name (``streets: 和平街道`` is one street,
    as ``- 和平街道`` is), never a list of its characters."""
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _yaml_street(path: Path, where: str, district: str, street: Any) -> list[_Row]:
    if isinstance(street, str):
        street = {"name": street}
    if not isinstance(street, dict) or not str(street.get("name") or "").strip():
        raise RoutingError(f"{path}: {where} has no name")
    name, aliases = str(street["name"]).strip(), _split(street.get("aliases"))
    communities = [str(c).strip() for c in _items(street.get("communities")) if str(c).strip()]
    return [_Row(where, district, name, c, aliases) for c in communities or [""]]


# -- patterns for places the gazetteer does not list ------------------------------------------
_CJK = "\u4e00-\u9fff"
_LOOKBACK = 12
_RUN = re.compile(f"[{_CJK}]+$")
_ANON = re.compile("某+")
# Words and characters that end a name when read backwards from its suffix: sentence glue
# (我在/的/和/是/到/从/对 ...), lead-ins (反映, 关于, 希望 ...) and the names of offices.
_LEAD_INS = (
    "反映", "投诉", "举报", "关于", "来电人", "来电", "位于", "地址", "希望", "要求", "建议",
    "恳请", "请求", "督促", "联系", "通知", "协调", "附近", "周边", "旁边", "隔壁", "所在", "当地",
    "本地", "原来", "老家", "以前", "现在", "当年", "当时", "整个", "另外", "其他", "居民", "市民",
    "辖区", "近日", "最近", "目前", "前往", "办事处", "居委会", "村委会", "管委会", "咨询", "询问",
    "户籍", "户口", "一家", "全体", "一个", "几个", "多个", "政府", "督办", "部分", "下属",
    "附上", "以后", "之前", "之后", "前年", "去年", "今年", "明年", "年底", "年初", "月底",
    "月初", "上报",
)
_BREAK_CHARS = (
    "的在了是到从对向往给把被让说问找去住我你他她们这那个条座所些处每和与跟及或也都又还就着过要想请称"
    "于为将由经省因并各有整能"
)
_GLUE = "|".join(_LEAD_INS) + f"|[{_BREAK_CHARS}]"
_STOP_NAMES = frozenset({
    "城市", "农村", "城乡", "基层", "新型", "老旧", "智慧", "文明", "示范", "美丽", "网格", "周围",
    "偏远", "贫困", "老城", "主城", "全市", "全区", "全县",
})


@dataclass(frozen=True)
class _Spec:
    """How to read one kind of unknown place: its suffixes, where a name stops, and what it is not."""

    suffix: re.Pattern[str]
    cut: re.Pattern[str]
    max_len: int
    stop_last: str  # a name ending in one of these is a common noun (小区, 景区, 古镇, 新农村)


_DISTRICT = _Spec(
    re.compile(f"[区县]|市(?=[{_CJK}]{{1,6}}?(?:街道|镇|乡))"),
    re.compile(f"{_GLUE}|[区县市]"), 3,
    "小景社片校辖园民发诊观习摊务活宅护范心中走街营厂院矿灾牧盲禁病展赛库警选分专红郊业车共户治",
)
_STREET = _Spec(
    re.compile("街道|镇|乡(?![镇村])"),
    re.compile(f"{_GLUE}|[区县]|市(?=[{_CJK}]{{2}})"), 6,
    "古名重小城集村乡全本该老外他异故同回返下水",
)
_COMMUNITY = _Spec(
    re.compile("社区|村(?!民)"),
    re.compile(f"{_GLUE}|[区县]|市(?=[{_CJK}]{{2}})|街道|镇|乡|社区"), 6,
    "农新中然名假老慧市城",
)
_LOCAL_SUFFIXES = ("街道", "镇", "乡", "社区", "村")
_NAME_PREFIXES = "新东西南北中大小"
_LETTER_DISTRICT = re.compile(r"(?<![A-Za-z0-9])[A-Z]\d{1,3}[区县市]")


def _first_unknown(text: str, spec: _Spec) -> tuple[int, str]:
    """Position and words of the first place of this kind that the patterns accept."""
    for match in spec.suffix.finditer(text):
        run = _RUN.search(text, max(0, match.start() - _LOOKBACK), match.start())
        if run is None:
            continue
        name = spec.cut.split(run.group())[-1]
        if _ANON.fullmatch(name) or (2 <= len(name) <= spec.max_len
                                     and name not in _STOP_NAMES
                                     and name[-1] not in spec.stop_last):
            return match.start() - len(name), name + match.group()
    return -1, ""


def _unknown_district(text: str) -> tuple[int, str]:
    letter = _LETTER_DISTRICT.search(text)
    position, name = _first_unknown(text, _DISTRICT)
    if letter and (not name or letter.start() < position):
        return letter.start(), letter.group()
    return position, name


def _named_districts(text: str, gazetteer: Gazetteer) -> list[tuple[int, str]]:
    """Position and name of the districts ``text`` names, known or by pattern, in order."""
    return sorted(found for found in (*gazetteer.named_districts(text), _unknown_district(text))
                  if found[1])


def _checked(address: Address, text: str, gazetteer: Gazetteer | None) -> Address:
    """The address, or, when the text's places contradict each other, fewer levels with the
    conflict: the known street's (``_street_checked``), then the named community's."""
    checked = _street_checked(address, text, gazetteer)
    if checked.conflict or gazetteer is None:
        return checked
    return _community_checked(checked, text, gazetteer)


def _community_checked(address: Address, text: str, gazetteer: Gazetteer) -> Address:
    """The text names known streets and known communities and no community lies under any of
    the streets (东城区东华街道幸福里社区: 幸福里社区 is 和平街道's in 东城区): street and community
    are dropped; the first district the text names is kept, or, when it names none, the one
    district of the street and the community if they share one."""
    communities, streets = gazetteer.named_communities(text), gazetteer.named_streets(text)
    named_streets = {street for _, _, street in streets}
    if not communities or not streets or any(
            street in named_streets for _, _, parents in communities for _, street in parents):
        return address
    _, street_words, street = streets[0]
    _, words, parents = communities[0]
    own = gazetteer.district_of(street)
    named = _named_districts(text, gazetteer)
    local = [(d, s) for d, s in parents if d == (named[0][1] if named else own)] or list(parents)
    districts = {own} | {d for d, _ in parents}
    district = named[0][1] if named else (own if len(districts) == 1 else "")
    evidence = address.evidence + tuple(w for w in dict.fromkeys((street_words, words))
                                        if w not in address.evidence)
    place = "、".join(f"{d}{s}" for d, s in local)
    return Address(district, "", "", evidence, conflict=(
        f"诉求写的{street}（属{own}）与{words}（属{place}）不符，需人工确定属地"))


def _street_checked(address: Address, text: str, gazetteer: Gazetteer | None) -> Address:
    """The address, or, when the text contradicts the known street, fewer levels with the conflict.

    Two contradictions are caught; in both a unit is never built of a street and a district it is
    not in, and the district the citizen wrote is not replaced by the street's:

    * the text names districts and none is the known street's own: the first of them is kept
      alone (东城区西关街道 is 东城区 with the conflict);
    * the text names known streets (or their aliases) and none is the address's street, which a
      community implied (东城区西关街道幸福里社区: 幸福里社区 is a community of 和平街道 only in
      东城区): street and community are dropped, the first district the text names is kept, or,
      when it names none, the address's district if every street named lies in it.

    Naming several places is no conflict as long as one of them is the address's own (我从北山区
    搬到西城区文昌街道 is 西城区文昌街道), and a street alias names its street.
    """
    own = gazetteer.district_of(address.street) if gazetteer and address.street else ""
    if gazetteer is None or not own:
        return address
    named = _named_districts(text, gazetteer)
    if named and own not in {name for _, name in named}:
        written = named[0][1]
        return Address(written, "", "", address.evidence, conflict=(
            f"诉求写的{written}与{address.street}（属{own}）不符，需人工确定属地"))
    streets = gazetteer.named_streets(text)
    if not streets or address.street in {street for _, _, street in streets}:
        return address
    _, words, street = streets[0]
    districts = {gazetteer.district_of(s) for _, _, s in streets}
    district = named[0][1] if named else (address.district if districts == {own} else "")
    place = (f"{address.community}（属{own}{address.street}）" if address.community
             else f"{address.street}（属{own}）")
    evidence = address.evidence + ((words,) if words not in address.evidence else ())
    return Address(district, "", "", evidence, conflict=(
        f"诉求写的{street}（属{gazetteer.district_of(street)}）与{place}不符，需人工确定属地"))


def extract_address(text: str, gazetteer: Gazetteer | None = None) -> Address:
    """District, street/township and community of an appeal: known names, then patterns.

    Example:
        >>> extract_address("A3区某某街道某某社区的居民反映楼道堆物").to_dict()["street"]
        '某某街道'
    """
    known = gazetteer.locate(text) if gazetteer is not None else Address()
    district = known.district or _unknown_district(text)[1]
    street = known.street or _first_unknown(text, _STREET)[1]
    community = known.community or _first_unknown(text, _COMMUNITY)[1]
    found = [name for name, was in ((district, known.district), (street, known.street),
                                    (community, known.community)) if name and not was]
    address = Address(district, street, community, known.evidence + tuple(found))
    return _checked(address, text, gazetteer)
