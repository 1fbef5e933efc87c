"""Standard unit names: a department cell or a predicted unit in its standard short form, and a
unit placed by an appeal's address.

``standard_unit`` gives the standard short name with its place (``A3区住房和城乡建设局`` ->
``A3区住建局``) and ``local_body`` the unit without its place (``住建局``). Two names of one unit
have one standard name (``unit_key``, ``same_unit``: 市城市管理局 is 市城管局), and ``unit_place``
reads the district and street a unit name holds. ``place_unit`` puts a place-free unit in the place
an appeal names and ``relocate`` moves a placed one there; ``kind_unit`` names the standard, placed
unit of a kind (民政 for an appeal from A3区 -> ``A3区民政局``), and ``keep_kind`` falls back to the
kind's body when a placed name no longer reads as its kind.
"""

from __future__ import annotations

import re
from functools import lru_cache

from triage.unit_kinds import KIND_BODY, reply_kind
from triage.unit_mentions import (
    LOCAL_BODY,
    PLACE_CODE,
    UnitMention,
    bare_local,
    clean_reply,
    county_of,
    find_units,
    local_units,
)

__all__ = [
    "LOCAL_GOVERNMENTS", "PLACEHOLDER", "keep_kind", "kind_unit", "local_body", "names_local_place",
    "place_of", "place_unit", "relocate", "same_unit",
    "standard_unit", "unit_key", "unit_place",
]

# The kind of local unit each standard local body is (街道办事处 -> street).
_BODY_KIND = {body: kind for kind, body in LOCAL_BODY.items()}
# Place words a name's reading can leave before its unit (北山区: 山区 reads as a word; A7 of A7县).
_PLACE_WORDS = re.compile(r"(?:[A-Z]\d{0,2} ?[省市区县州]|[\u4e00-\u9fff]{2,3}[区县])+")
_STREET_WORD = {"street": "街道", "town": "镇", "township": "乡"}
_LOCAL_KINDS = ("street", "town", "township")
# The local governments (street office, town, township) a 街道乡镇 unit is.
LOCAL_GOVERNMENTS = tuple(LOCAL_BODY[kind] for kind in _LOCAL_KINDS)
# The generic local unit of a place the appeal does not name (属地街道办事处): no unit is named
# so, and the dispatcher sends it to a person (as the responsibility list's placeholders).
PLACEHOLDER = "属地"


def _whole(name: str) -> UnitMention | None:
    """The unit a whole name (a department cell, a predicted unit) reads as, if any."""
    text = clean_reply(name).replace(" ", "")
    whole = [u for u in find_units(text) if u.end == len(text) and u.kind != "self"]
    return whole[-1] if whole else None


def standard_unit(name: str) -> str:
    """The standard short name of a department cell (``A3区住房和城乡建设局`` -> ``A3区住建局``).

    Example:
        >>> standard_unit("洋湖街道")
        '洋湖街道办事处'
    """
    text = clean_reply(name).replace(" ", "")
    unit = _whole(text)
    if unit is None:
        return text
    # the place of a cell stays with it: 北山区民政局 is not 南湖区民政局
    before = text[: unit.start]
    return before + unit.name if before and _PLACE_WORDS.fullmatch(before + unit.place) \
        else unit.name


@lru_cache(maxsize=8192)
def unit_key(name: str) -> str:
    """What two names of the same unit have in common: the standard name (cached; unit names
    repeat, and routing compares them for every ticket)."""
    return standard_unit(name)


def same_unit(a: str, b: str) -> bool:
    """Whether two names stand for the same unit (``市城市管理局`` and ``市城管局`` do)."""
    return a == b or unit_key(a) == unit_key(b)


def unit_place(name: str) -> tuple[str, str]:
    """The district and the street, town or township a unit name holds, ``""`` where it holds
    none (``东城区和平街道办事处`` -> ``("东城区", "和平街道")``)."""
    key = unit_key(name)
    local = [u for u in local_units(key) if u.kind in _STREET_WORD]
    street = ""
    if local:
        core = local[-1].name.removeprefix(local[-1].place).removesuffix(local[-1].body)
        street = core + _STREET_WORD[local[-1].kind]
    return county_of(key), street


def local_body(name: str) -> str:
    """The unit a name stands for anywhere, without its place (``A3区住建局`` -> ``住建局``,
    ``洋湖街道办事处`` -> ``街道办事处``)."""
    name = str(name).removeprefix("属地")  # 属地街道办事处: the street office of the place
    unit = _whole(name)
    return unit.body if unit else re.sub(f"^(?:{PLACE_CODE})+|^[省市区县]", "", standard_unit(name))


def place_of(text: str) -> str:
    """The first district or county a text names (``A3区``, ``K11县``, ``东城区``), else its city
    (``A市``), else ``""``."""
    text = str(text)
    county = county_of(text)
    if county:
        return county
    city = re.search(r"[A-Z] ?市", text)
    return city.group(0).replace(" ", "") if city else ""


def kind_unit(kind: str, text: str) -> str:
    """The standard unit of ``kind`` for an appeal, placed by its address.

    A 街道乡镇 appeal goes to the street, town or township it names (a town's government when it
    names a town but no street), other kinds to their standard body in the appeal's district.

    Example:
        >>> kind_unit("教育", "A3区某小学乱收费")
        'A3区教育局'
        >>> kind_unit("街道乡镇", "A7县黄星镇蓝田新村道路破损")
        'A7县黄星镇人民政府'
    """
    body = KIND_BODY.get(kind)
    if body is None:
        return place_unit(kind, text)
    if kind == "街道乡镇":
        named = [u.kind for u in local_units(str(text)) if u.kind in {"street", "town", "township"}]
        if named:
            body = LOCAL_BODY[named[0]]
        elif re.search("镇(?![村街里亲下])", str(text)) and "街道" not in str(text):
            body = LOCAL_BODY["town"]
    return keep_kind(place_unit(body, text), body, kind, text)


def keep_kind(name: str, body: str, kind: str, text: str) -> str:
    """``name`` (``body`` placed by an appeal) when it still reads as ``kind``; else ``body`` under
    the appeal's place code only (a place read in words can carry a kind: 旅游区民政局 reads as 文旅).

    A name is read as routing is measured (``reply_kind``: the first unit in it that has a kind),
    so a police station named after its street (``裕南街街道派出所``, read as the street) gives
    way to ``A2区派出所``.
    """
    if not kind or reply_kind(name) == kind:
        return name
    code = re.search(r"[A-Z]\d{1,2} ?[区县市]|[A-Z] ?市", str(text))
    return (code.group(0).replace(" ", "") if code else "市") + body


def place_unit(body: str, text: str) -> str:
    """The unit ``body`` (a place-free name) of the place an appeal names.

    A street, town, township, community, village or police station named in the text is used for
    those bodies (a community or village of no name falls back to its street or town, a police
    station to the 公安局); a district or county (else the city's code, else 市) stands before it.

    Example:
        >>> place_unit("住建局", "A3区洋湖街道某小区漏水")
        'A3区住建局'
        >>> place_unit("街道办事处", "A3区洋湖街道某小区漏水")
        'A3区洋湖街道办事处'
    """
    text = str(text)
    kind = _BODY_KIND.get(body)
    if kind is None:
        return (place_of(text) or "市") + body
    county = county_of(text)
    named = [u for u in find_units(text) if u.kind == kind and u.name != u.body]
    if named and kind not in _LOCAL_KINDS:
        return county + named[0].name.removeprefix(named[0].place)
    if kind == "police":
        return (county or place_of(text) or "市") + "公安局"
    if kind not in _LOCAL_KINDS:  # a community or village of no name: its street or town
        kind = "town" if kind == "village" and "镇" in text else "street"
    local = _local_unit(text, kind)
    # no office is called A3区镇人民政府: with no local unit named, a person names it (属地...)
    return county + local if local else PLACEHOLDER + LOCAL_BODY[kind]


def _local_unit(text: str, kind: str) -> str:
    """The street, town or township unit an appeal names, of ``kind`` if it names one, else of
    another of those kinds (a 镇人民政府 of an appeal from 火场乡 is 火场乡人民政府), else ``""``."""
    found = find_units(text)
    for each in (kind, *(k for k in _LOCAL_KINDS if k != kind)):
        named = [u.name.removeprefix(u.place) for u in found if u.kind == each]
        for local in (*named, bare_local(text, each)):
            if local and names_local_place(local):
                return local
    return ""


def names_local_place(unit: str) -> bool:
    """Whether a street office, town or township government's name names its place: 洋湖街道办事处
    and A7县黄星镇人民政府 do; A3区街道办事处 (from A3区街道两旁摆摊: 街道 is the street, the
    word), 东城区街道办事处, 镇人民政府 and 某某街道办事处 name none, and no office is called so."""
    unit = unit_key(unit)  # 黄星镇政府 is 黄星镇人民政府, A3区街道办 A3区街道办事处
    body = next((b for b in LOCAL_GOVERNMENTS if unit.endswith(b)), "")
    core = re.sub(f"^(?:{PLACE_CODE})+", "", unit.removesuffix(body)) if body else ""
    return bool(core.strip("某")) and not _PLACE_WORDS.fullmatch(core)


_NAME_PLACE = re.compile(r"(?:([A-Z])(?:\d{1,2}[区县]|市)|市)(?![\u4e00-\u9fff]{0,3}[区县])")


def relocate(name: str, text: str) -> str:
    """A placed unit name moved to the place an appeal names, when that place differs.

    ``A7县教育局`` for an appeal from ``A5区`` is ``A5区教育局``; for one from ``C市`` it is
    ``C市教育局``; ``市教育局`` for an appeal from ``C市`` is ``C市教育局``. Names of a street,
    town or named district, and appeals that name no place code, are left as they are.
    """
    m = _NAME_PLACE.match(name)
    if not m or _BODY_KIND.get(local_body(name)):
        return name
    district = re.search(r"[A-Z]\d{1,2}[区县]", text)
    letter = re.search(r"([A-Z])\d{0,2} ?[市区县]", text)
    if district and re.match(r"[A-Z]\d", name) and district.group(0) != m.group(0):
        return district.group(0) + name[m.end() :]
    if letter and letter.group(1) != m.group(1):
        return letter.group(1) + "市" + name[m.end() :]
    return name
