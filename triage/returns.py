"""Returns (退回): a unit sends a ticket back; the ticket is routed again without that unit.

Every return is kept: it is a routing correction the next retraining learns from, and it counts
against the dispatch in the return rate (退回率) of the units' performance results. So only a
return a hotline centre would accept is stored:

- Only a unit that holds the ticket now may send it back: the lead unit (主办) or a co-handler
  (协办) of the latest dispatch. A reviewer's department correction of that dispatch is a manual
  dispatch, so its unit leads instead. A return from any other unit is a mistake (a wrong ticket
  number, a unit the ticket never reached) and would blame the unit that does hold it.
- A unit returns a ticket once. A second return from the same unit is a resend or a retry and
  would count twice; a unit that disputes a later dispatch takes it up with the hotline office.
- The hotline office (``Settings.default_department``, where a ticket falls back when no unit is
  left) never returns a ticket: a person there dispatches it by hand. Letting it return routed
  the ticket back to the office itself, again and again.

A unit is recognised by its routed name or its standard short name (市城市管理局 = 市城管局), a
street office also without its district (文昌街道办事处 for 西城区文昌街道办事处), and a placeholder
unit the address left unfilled (属地区城管局, 属地街道办事处: no unit is called so) by any concrete
unit of its kind (东城区城管局). The return is stored under the routed name, which is the name
re-routing leaves out.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from models.artifacts import LoadedModel
from triage import store
from triage.dispatch import PLACEHOLDER
from triage.errors import InvalidTicketError, ReturnRefusedError
from triage.intake import get_ticket
from triage.predicting import classify_text, dispatcher_of
from triage.routing import GENERIC
from triage.settings import Settings
from triage.units import LOCAL_GOVERNMENTS, local_body, names_local_place, same_unit, unit_place

# what the classifier says when unsure (models.classifier), and what routing says when no unit
# is left (triage.dispatch)
_CLASSIFIER_DOUBT = ("一级分类把握不足", "考核细目把握不足")
_NO_UNIT_LEFT = ("已被退回的单位之外没有可派单位", "没有可派的责任单位，需人工派单")


def record_return(
    *, session: Session, loaded: LoadedModel, settings: Settings, ticket_id: int, unit: str,
    reason: str | None,
) -> store.Ticket:
    """Store the return and append a prediction routed around every unit that returned it.

    Raises:
        ReturnRefusedError: the unit does not hold the ticket, returned it already, or is the
            hotline office; nothing is stored then.
    """
    # the ticket's row locked until commit: returns of one ticket arriving together are checked
    # one after another (PostgreSQL; SQLite's writing sessions are serial already)
    ticket = get_ticket(session=session, ticket_id=ticket_id, lock=True)
    unit = unit.strip()
    if not unit:
        raise InvalidTicketError("unit is empty: name the unit that sends the ticket back")
    latest = store.latest_prediction(session, ticket)
    if latest is None:
        raise InvalidTicketError(f"ticket {ticket_id} has no prediction to return")
    unit = _returning_unit(ticket=ticket, latest=latest, unit=unit, settings=settings)
    store.add_return(session, ticket=ticket, unit=unit, reason=reason, prediction=latest)
    _reroute(session=session, loaded=loaded, settings=settings, ticket=ticket, latest=latest)
    session.refresh(ticket)
    return ticket


def current_holders(latest: store.Prediction) -> list[str]:
    """The units holding the ticket now, lead first, then the co-handlers."""
    manual = store.latest_correction(latest, "department")
    lead = manual.department if manual else latest.department
    return list(dict.fromkeys([lead, *(latest.co_departments or [])]))


def _returning_unit(
    *, ticket: store.Ticket, latest: store.Prediction, unit: str, settings: Settings,
) -> str:
    """The routed name of ``unit`` if it may return the ticket now, else ReturnRefusedError."""
    # the unit under any name it may return by (文昌街道办事处 for a stored 西城区文昌街道办事处);
    # a return stored under a placeholder (属地街道办事处) does not say which concrete unit sent it
    earlier = next((r for r in ticket.returns if same_unit(r.unit, unit) or (
        not r.unit.startswith(PLACEHOLDER) and names_holder(r.unit, unit))), None)
    if earlier is not None:
        at = earlier.created_at.astimezone(ZoneInfo(settings.timezone))
        raise ReturnRefusedError(
            f"{unit} already returned ticket {ticket.id} on {at:%Y-%m-%d %H:%M}; a unit returns "
            "a ticket once, so this return was not recorded again (a unit that disputes a later "
            "dispatch takes it up with the hotline office)")
    holders = current_holders(latest)
    hotline = settings.default_department
    if same_unit(unit, hotline):
        raise ReturnRefusedError(
            f"{hotline} is the hotline office and does not return tickets: "
            + (f"ticket {ticket.id} stays in the review queue until a person dispatches it to a "
               "responsible unit by correcting its department"
               if any(same_unit(h, hotline) for h in holders)
               else f"ticket {ticket.id} is not with it, {_holding(holders, hotline)}"))
    return holder_named(ticket_id=ticket.id, holders=holders, unit=unit, hotline=hotline)


def holder_named(*, ticket_id: int, holders: list[str], unit: str, hotline: str = "") -> str:
    """The holder ``unit`` names (see ``names_holder``), else ReturnRefusedError."""
    if not holders:
        raise ReturnRefusedError(f"{unit} cannot return ticket {ticket_id}: it has not been "
                                 "dispatched to any unit")
    holder = next((h for h in holders if names_holder(h, unit)), None)
    if holder is None:
        raise ReturnRefusedError(
            f"{unit} cannot return ticket {ticket_id}: only a unit that holds it can, and "
            f"{_holding(holders, hotline)}")
    return holder


def names_holder(holder: str, unit: str) -> bool:
    """Whether ``unit`` is the unit that holds the ticket as ``holder``.

    The same unit in any spelling (市城管局 = 市城市管理局); a street office named without its
    district (文昌街道办事处 = 西城区文昌街道办事处, not 东城区文昌街道办事处); and, for a placeholder
    holder the address left unfilled (属地区城管局, 属地街道办事处), a concrete unit of its kind in
    any district (东城区城管局), or in any street: no unit is called 属地..., the unit the ticket
    reached in fact returns it. A local government placeholder (属地街道办事处, 属地镇人民政府,
    属地乡人民政府) is held by the street, town or township government of any of the three kinds
    that names its place, with or without its district (黄星镇人民政府, 火场乡人民政府), never by
    a name no office has (A3区镇人民政府, A3区街道办事处).
    """
    if same_unit(holder, unit):
        return True
    if unit.startswith(PLACEHOLDER):
        return False
    if holder.startswith(PLACEHOLDER) and local_body(holder) in LOCAL_GOVERNMENTS:
        # 属地镇人民政府: the street, town or township government the ticket reached, by its own
        # name (黄星镇人民政府, A3区洋湖街道办事处, 火场乡人民政府); A3区镇人民政府 names none
        return local_body(unit) in LOCAL_GOVERNMENTS and names_local_place(unit)
    if local_body(holder) != local_body(unit):
        return False
    (district, street), (own_district, own_street) = unit_place(unit), unit_place(holder)
    if holder.startswith(PLACEHOLDER):
        return bool(street if holder.startswith(GENERIC["street"]) else district)
    return bool(street) and street == own_street and not (district and own_district)


def _holding(holders: list[str], hotline: str) -> str:
    """``it is held by A (lead) and B、C (co-handlers)``."""
    lead, *co = holders
    if not co and same_unit(lead, hotline):
        return f"it is waiting at {hotline} for a person to dispatch it"
    text = f"it is held by {lead} (lead)"
    if co:
        text += f" and {'、'.join(co)} (co-handler{'s' if len(co) > 1 else ''})"
    return text


def _reroute(
    *, session: Session, loaded: LoadedModel, settings: Settings, ticket: store.Ticket,
    latest: store.Prediction,
) -> None:
    """Append a prediction with the same sub-item (a staff member's, where one corrected it),
    routed around every unit that returned it."""
    returned = [r.unit for r in ticket.returns]
    corrected = next((c for c in sorted(ticket.corrections, key=lambda c: c.id, reverse=True)
                      if c.subitem), None)
    subitem = corrected.subitem if corrected else latest.subitem
    [route] = dispatcher_of(loaded).route(
        [classify_text(ticket.title, ticket.text)], [subitem],
        default_unit=settings.default_department, exclude=[returned])
    explanation = dict(latest.explanation or {})
    explanation["routing"] = route.explanation
    if corrected is not None:  # a person decided the sub-item: the new dispatch keeps it
        explanation["subitem_from"] = {"correction": corrected.id, "reviewer": corrected.reviewer}
    # the model's doubt about the sub-item stays until a person decides it (a return is about the
    # unit, not the category)
    reasons = [] if corrected else [r for r in (latest.review_reason or "").split("；")
                                    if r.startswith(_CLASSIFIER_DOUBT)]
    lead, co = route.lead, route.co
    route_reasons = [r for r in (route.review_reason or "").split("；") if r]
    manual = store.latest_correction(latest, "department")  # a person's dispatch
    if manual is not None and not any(same_unit(u, manual.department) for u in returned):
        # a person dispatched the ticket to this lead and it has not returned it: it keeps it
        lead = manual.department
        co = [u for u in route.co if not same_unit(u, lead)]
        route_reasons = [r for r in route_reasons if r not in _NO_UNIT_LEFT]
        explanation["department_from"] = {"correction": manual.id, "reviewer": manual.reviewer}
    reasons = list(dict.fromkeys([*reasons, *route_reasons]))
    store.add_prediction(session, ticket=ticket, prediction={
        "model_version": loaded.version, "level1": subitem.split("/")[0], "subitem": subitem,
        "confidence": 1.0 if corrected else latest.confidence,
        "confidence_level1": 1.0 if corrected else latest.confidence_level1,
        "department": lead, "co_departments": co,
        "needs_review": bool(reasons), "review_reason": "；".join(reasons) or None,
        "district": route.address.district or None, "street": route.address.street or None,
        "community": route.address.community or None, "top": latest.top,
        "explanation": explanation,
    })
