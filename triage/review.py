"""Staff corrections: stored beside the prediction they correct (never over it), and remembered
so that the same complaint reworded gets the corrected answer at once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.artifacts import LoadedModel
from models.memory import CorrectionMemory
from triage import store
from triage.errors import InvalidTicketError, LabelError
from triage.feedback import said_when
from triage.intake import get_ticket
from triage.predicting import classify_text

SENTIMENTS = ("positive", "neutral", "negative")


def new_memory(loaded: LoadedModel, *, threshold: float,
               encoder_threshold: float | None = None) -> CorrectionMemory:
    """An empty memory in the feature space of ``loaded``.

    With an encoder, rewordings also match by embedding cosine, at ``encoder_threshold`` or else
    at the threshold calibrated on the version's training appeals (none: characters only).
    """
    model = loaded.model
    encoder_threshold = encoder_threshold or getattr(model, "memory_threshold_", None)
    embed = (model.encoder_.encode if model.needs_encoder and hasattr(model, "encoder_")
             and encoder_threshold else None)
    return CorrectionMemory(featurize=model.featurizer_.transform, threshold=threshold,
                            embed=embed, encoder_threshold=encoder_threshold or 1.0)


def load_memory(*, session: Session, loaded: LoadedModel, threshold: float,
                encoder_threshold: float | None = None) -> CorrectionMemory:
    """Each ticket's latest sub-item and latest department correction, in the active model's
    feature space. A sub-item the active taxonomy no longer has is dropped, not replaced by an
    older one it superseded; a ticket left with nothing to apply is not remembered."""
    memory = new_memory(loaded, threshold=threshold, encoder_threshold=encoder_threshold)
    rows = session.scalars(select(store.Correction).order_by(store.Correction.id)).all()
    latest: dict[int, dict[str, Any]] = {}
    for row in rows:
        fields = latest.setdefault(row.ticket_id, {"ticket": row.ticket})
        if row.subitem:
            fields["subitem"] = row.subitem
        if row.department:
            fields["department"] = row.department
    for ticket_id, fields in latest.items():
        ticket = fields["ticket"]
        memory.add(ticket_id, classify_text(ticket.title, ticket.text),
                   subitem=_valid(loaded, fields.get("subitem")),
                   department=fields.get("department"))
    return memory


def _valid(loaded: LoadedModel, subitem: str | None) -> str | None:
    """A corrected node the active taxonomy still has (taxonomies change), else None."""
    return subitem if subitem and subitem in loaded.taxonomy else None


def record_correction(
    *, session: Session, loaded: LoadedModel, memory: CorrectionMemory | None, ticket_id: int,
    subitem: str | None, department: str | None, sentiment: str | None, reviewer: str,
    note: str | None,
) -> store.Correction:
    """Store a correction with what it corrects; the original prediction stays as it was."""
    ticket = get_ticket(session=session, ticket_id=ticket_id)
    if not (subitem or department or sentiment):
        raise InvalidTicketError("a correction needs a subitem, a department or a sentiment")
    if not reviewer.strip():
        raise InvalidTicketError("reviewer is empty: say who made the correction")
    node = _resolve(loaded, subitem) if subitem else None
    if sentiment is not None and sentiment not in SENTIMENTS:
        raise InvalidTicketError(f"sentiment {sentiment!r} is not one of {', '.join(SENTIMENTS)}")
    latest = store.latest_prediction(session, ticket)
    before: dict[str, Any] = {} if latest is None else {
        "level1": latest.level1, "subitem": latest.subitem, "department": latest.department,
        "co_departments": latest.co_departments}
    if ticket.feedback:
        before["sentiment"] = max(ticket.feedback, key=said_when).sentiment_label
    row = store.add_correction(session, ticket=ticket, values={
        "prediction_id": latest.id if latest else None,
        "model_version": latest.model_version if latest else loaded.version,
        "subitem": node, "department": (department or "").strip() or None,
        "sentiment": sentiment, "before": before, "reviewer": reviewer.strip(), "note": note})
    if memory is not None and (node or row.department):
        memory.add(ticket.id, classify_text(ticket.title, ticket.text), subitem=node,
                   department=row.department)
    return row


def _resolve(loaded: LoadedModel, label: str) -> str:
    try:
        node = loaded.taxonomy.resolve(label)
    except LabelError as exc:
        raise InvalidTicketError(f"subitem: {exc.message}") from None
    if node.path[0] not in loaded.model.classes_:
        raise InvalidTicketError(
            f"subitem {node.key!r} lies under {node.path[0]!r}, a top-level category the active "
            "model has no labelled appeals for yet")
    return node.key


class MemoryCache:
    """The correction memory of the active model version, rebuilt when the version changes."""

    def __init__(self, *, threshold: float, encoder_threshold: float | None = None) -> None:
        self.threshold = threshold
        self.encoder_threshold = encoder_threshold
        self._memory: CorrectionMemory | None = None
        self._version: str | None = None

    def get(self, *, session: Session, loaded: LoadedModel) -> CorrectionMemory:
        if self._memory is None or self._version != loaded.version:
            self._memory = load_memory(session=session, loaded=loaded, threshold=self.threshold,
                                       encoder_threshold=self.encoder_threshold)
            self._version = loaded.version
        return self._memory
