"""Choosing the handling unit: responsibility list, address and history combined.

The list (权责清单) decides when there is one; history (a learned router over past dispatches)
decides where the list is silent, and checks the list; the taxonomy's ``department`` column is the
simple fallback. Disagreements between sub-item, unit and address set ``needs_review`` with the
reason, never a silent pick. Units are compared by their standard names (``triage.units.unit_key``):
市城市管理局 from the history is the list's 市城市管理局 and the 市城管局 that returned a ticket.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Protocol

from triage.address import Address, Gazetteer, extract_address
from triage.routing import ResponsibilityList
from triage.taxonomy import Taxonomy
from triage.text import below
from triage.units import PLACEHOLDER, unit_key

# A unit name that starts with a district or county: 东城区城管局, A3区住建局, K11县教育局.
_UNIT_DISTRICT = re.compile(r"^((?:[A-Z]\d{1,2}|[\u4e00-\u9fff]{1,4}?)(?:区|县))")
# A history unit this likely is confident enough to overrule the responsibility list's check.
HISTORY_CONFIDENT = 0.6
# A history dispatch goes out without review when the router is this sure of the lead's kind of
# unit. Measured on the shared replies (training/routing_benchmark.py, 5 folds): 33% of held-out
# tickets pass, their kind right on 0.80; the lead's own probability >= 0.6, the rule before,
# passed 14% at 0.82.
KIND_CONFIDENT = 0.9


class RankedUnits(Protocol):
    """A router's answer for one ticket (``models.router.RankedUnits``)."""

    units: list[tuple[str, float]]
    kind: str
    kind_confidence: float


class UnitRouter(Protocol):
    """What the dispatcher needs of a learned router (``models.router.HistoryRouter``)."""

    def rank(self, texts: Sequence[str], k: int = 3) -> Sequence[RankedUnits]: ...

    def nearest(self, texts: Sequence[str], k: int = 3) -> list[list[tuple[int, float]]]: ...


@dataclass
class Route:
    """Where one ticket goes, and why."""

    lead: str
    co: list[str]
    confidence: float
    source: str
    address: Address
    _: KW_ONLY  # the optional parts by name only: a positional reason once landed in kind_confidence
    needs_review: bool = False
    kind_confidence: float | None = None  # history: the router's confidence in the lead's kind
    review_reason: str = ""
    explanation: dict[str, Any] = field(default_factory=dict)


@dataclass
class Dispatcher:
    """Routes tickets whose sub-item is known. Picklable: it travels inside a model version."""

    taxonomy: Taxonomy
    gazetteer: Gazetteer | None = None
    responsibility: ResponsibilityList | None = None
    router: UnitRouter | None = None

    def route(
        self, texts: Sequence[str], subitems: Sequence[str], *, default_unit: str,
        exclude: Sequence[Sequence[str]] | None = None,
    ) -> list[Route]:
        """One route per ticket; ``exclude[i]`` lists units that returned ticket ``i``."""
        exclude = exclude or [()] * len(texts)
        ranked = self.router.rank(texts, k=5) if self.router and texts else [None] * len(texts)
        return [self._one(t, s, r, set(x), default_unit)
                for t, s, r, x in zip(texts, subitems, ranked, exclude, strict=True)]

    def _one(self, text: str, subitem: str, ranked: RankedUnits | None,
             excluded: set[str], default_unit: str) -> Route:
        address = extract_address(text, self.gazetteer)
        returned = {unit_key(u) for u in excluded}  # a unit returns a ticket under any spelling
        history = [(u, p) for u, p in ranked.units if unit_key(u) not in returned] if ranked else []
        route = (self._from_list(subitem, address, returned)
                 or self._from_history(history, ranked, address)
                 or self._from_taxonomy(subitem, address, returned)
                 or Route(default_unit, [], 0.0, "default", address, needs_review=True,
                          review_reason="没有可派的责任单位，需人工派单"))
        self._check(route, subitem, history, excluded)
        route.explanation.update({"source": route.source, "address": address.to_dict(),
                                  "history": [{"unit": u, "p": round(p, 4)} for u, p in history[:3]]})
        if excluded:
            route.explanation["returned_by"] = sorted(excluded)
        return route

    def _from_list(self, subitem: str, address: Address, returned: set[str]) -> Route | None:
        if self.responsibility is None:
            return None
        entry = self.responsibility.lookup(subitem, address.district, address.street)
        if entry is None:
            return None
        lead, co = entry.resolve(address.district, address.street)
        units = [u for u in (lead, *co) if unit_key(u) not in returned]
        if not units:
            return None
        route = Route(units[0], units[1:], 0.9, "responsibility list", address)
        route.explanation["list_entry"] = {"node": entry.node, "district": entry.district,
                                           "row": entry.row}
        return route

    def _from_history(self, history: list[tuple[str, float]], ranked: RankedUnits | None,
                      address: Address) -> Route | None:
        if not history or ranked is None:
            return None
        unit, p = history[0]
        route = Route(unit, [], p, "history", address)
        if unit == ranked.units[0][0]:  # the router's own lead (not one left after returns)
            route.kind_confidence = ranked.kind_confidence
            route.explanation.update({"unit_kind": ranked.kind,
                                      "unit_kind_confidence": ranked.kind_confidence})
        return route

    def _from_taxonomy(self, subitem: str, address: Address, returned: set[str]) -> Route | None:
        unit = self.taxonomy.department_for(subitem) if subitem in self.taxonomy else ""
        if not unit or unit_key(unit) in returned:
            return None
        return Route(unit, [], 0.7, "taxonomy", address)

    def _check(self, route: Route, subitem: str, history: list[tuple[str, float]],
               excluded: set[str]) -> None:
        """Flag disagreements between sub-item, unit and address."""
        reasons = []
        if route.source == "history":
            if route.kind_confidence is not None and route.kind_confidence < KIND_CONFIDENT:
                reasons.append(f"派单把握不足（单位类别 {below(route.kind_confidence, KIND_CONFIDENT)}）")
            elif route.kind_confidence is None and route.confidence < HISTORY_CONFIDENT:
                reasons.append(f"派单把握不足（{route.confidence:.2f}）")
        if (route.source == "responsibility list" and history and self.responsibility
                and history[0][1] >= HISTORY_CONFIDENT
                and not self.responsibility.allows(subitem, history[0][0],
                                                   route.address.district, route.address.street)):
            reasons.append(f"历史派单多为{history[0][0]}，权责清单不允许该单位承办此细目")
        unit_district = unit_district_of(route.lead)
        if route.address.district and unit_district and unit_district != route.address.district:
            reasons.append(f"诉求地址在{route.address.district}，承办单位属{unit_district}")
        if route.address.conflict:
            reasons.append(route.address.conflict)
        if any(unit.startswith(PLACEHOLDER) for unit in (route.lead, *route.co)):
            # no real unit is named 属地...: a person names the local unit
            reasons.append("地址不明，需人工确定属地单位")
        if excluded and route.source == "default":
            reasons.append("已被退回的单位之外没有可派单位")
        if reasons:
            route.needs_review = True
            route.review_reason = "；".join(dict.fromkeys(reasons))


def unit_district_of(unit: str) -> str:
    """The district or county a unit name starts with ("" for city-level units)."""
    match = _UNIT_DISTRICT.match(unit)
    if not match or unit.startswith("属地") or match.group(1).endswith(("社区", "小区", "园区")):
        return ""
    return match.group(1)
