"""The unit that handled an appeal, read from the government's reply.

A government reply usually names the unit that handled the appeal (``A3区住建局``, ``市教育局``,
``洋湖街道``) or speaks as it (``我局 ... A3区住房和城乡建设局 2019年5月``). ``handling_unit``
finds the unit names in a reply (``triage.unit_mentions.find_units``), picks the one a dispatcher
would have routed the appeal to and returns its standard short name with its place
(``A3区住建局``, ``洋湖街道办事处``).

Which unit is the handler (read off about 60 replies of the shared Teddy data):

1. The unit the hotline forwarded the appeal to (``已转交县住建局核实、办复``): that *is* the
   dispatch.
2. The unit that says it handled it: the subject of 高度重视 / 核实 / 调查 / 回复 (``A3区洋湖街道
   高度重视``, ``经区住建局调查核实``), or the unit that signs the reply at its end.
3. ``我局`` / ``我街道`` / ``我镇``: the unit named elsewhere in the reply with the same kind of
   suffix (often the signature).
4. Otherwise the first unit named.

``我镇`` in a reply that never names its town gives a town government of no name
(``L6县镇人民政府``): the kind of unit is still known, and routing is measured by kind.

When the handler hands the case on to a body of its own (``市住建局及时将您反映的问题交由市房屋
交易管理中心办理``), the dispatcher routed it to the handler that speaks (``市住建局``), so a
hand-over inside a sentence whose subject is a unit keeps the subject.
"""

from __future__ import annotations

import re

from triage.unit_mentions import (
    LOCAL_BODY,
    UnitMention,
    bare_local,
    clean_reply,
    county_of,
    find_units,
)

__all__ = ["handling_unit"]

# What follows a unit that says it handled the case (A3区洋湖街道高度重视, 经区住建局核实 ...).
_ACTS = re.compile(r"^(?:[、和及与][^，。！？；]{2,14}?)?(?:党委政府|党委|、?政府|领导|主要负责人|相关负责人|"
                   r"工作人员)?(?:知悉|收悉|获悉|高度重视|非常重视|十分重视|收到|接到|已|立即|及时|迅速|"
                   r"第一时间|对此|经调查|经查|经核实|调查|核实|核查|回复|答复|进行|派|组织|会同|联合|责成|"
                   r"督促|牵头|于\d)")
_FORWARD = re.compile(r"(?:转交|转至|转到|已转|已交|交由|交办|转办|转送|移交|交给|责成)\s*$")
_SIGN_TAIL = re.compile(r"^[\s。！!]*(?:\d{4}\s*[年\-/.]\s*\d{1,2}.{0,8})?[\s。]*$")


def _fill_place(unit: UnitMention, text: str) -> str:
    """``区住建局`` -> ``A5区住建局`` when the reply names exactly one district (likewise 县)."""
    if unit.place not in {"区", "县"}:
        return unit.name
    codes = set(re.findall(rf"[A-Z]\d{{1,2}}{unit.place}", text))
    return (codes.pop() + unit.name[1:]) if len(codes) == 1 else unit.name


def _is_signature(unit: UnitMention, text: str) -> bool:
    return unit.start >= len(text) - 60 and bool(_SIGN_TAIL.match(text[unit.end :]))


def _forwarded(unit: UnitMention, text: str, units: list[UnitMention]) -> bool:
    """The hotline, not a unit speaking in the same clause, handed the case to ``unit``."""
    if unit.kind == "self" or not _FORWARD.search(text[max(0, unit.start - 6) : unit.start]):
        return False
    clause = max(text.rfind(c, 0, unit.start) for c in "。！？；") + 1
    return not any(clause <= u.start < unit.start for u in units)


def _acts(unit: UnitMention, text: str) -> bool:
    return text[max(0, unit.start - 1) : unit.start] == "经" or bool(_ACTS.match(text[unit.end :]))


def _resolve_self(me: UnitMention, text: str, units: list[UnitMention]) -> str | None:
    """The unit ``我局`` / ``我镇`` stands for: a signature, else a unit named with that suffix."""
    same = [u for u in units if u.kind == me.name]
    signed = [u for u in same if _is_signature(u, text)]
    if signed or same:
        return _fill_place((signed or same)[0], text)
    if me.name in {"town", "township"}:  # 我镇 of a reply that never names its town
        return bare_local(text, me.name) or county_of(text) + LOCAL_BODY[me.name]
    return bare_local(text, me.name) or None


def _choose(text: str, units: list[UnitMention]) -> str | None:
    pool = [u for u in units if not u.generic] or units
    named = [u for u in pool if u.kind != "self"]
    for unit in [u for u in named if _forwarded(u, text, units)][:1]:
        return _fill_place(unit, text)
    for unit in (u for u in pool if _acts(u, text)):
        name = _resolve_self(unit, text, units) if unit.kind == "self" else _fill_place(unit, text)
        if name:
            return name
    signed = [u for u in named if _is_signature(u, text)]
    if signed:
        return _fill_place(signed[-1], text)
    for unit in (u for u in pool if u.kind == "self"):
        name = _resolve_self(unit, text, units)
        if name:
            return name
    return _fill_place(named[0], text) if named else None


def handling_unit(reply: str) -> str | None:
    """The standard name of the unit that handled an appeal, read from the government's reply.

    Args:
        reply: the reply text (答复意见).

    Returns:
        A standard unit name with its place when the reply gives one (``A3区住建局``,
        ``洋湖街道办事处``), or ``None`` when the reply names no unit.

    Example:
        >>> handling_unit("A3区洋湖街道高度重视，现回复如下：……")
        'A3区洋湖街道办事处'
    """
    text = clean_reply(reply)
    return _choose(text, find_units(text))
