"""Classify and route appeals into the stored form of a prediction: what intake, returns, review
and ``triage predict`` share. No database here, so that the command line pays nothing for it."""

from __future__ import annotations

from typing import Any

from models.artifacts import LoadedModel
from models.classifier import PathPrediction
from models.memory import CorrectionMemory, Recall
from triage.dispatch import Dispatcher, Route
from triage.settings import Settings


def classify_text(title: str | None, text: str) -> str:
    """What the classifier reads: the title, then the appeal (as in the training data)."""
    return f"{title}{text}" if title else text


def dispatcher_of(loaded: LoadedModel) -> Dispatcher:
    """The version's routing, or the simple one (taxonomy departments, address patterns)."""
    return loaded.dispatcher if loaded.dispatcher is not None else Dispatcher(loaded.taxonomy)


def predict_records(
    *, loaded: LoadedModel, settings: Settings, texts: list[str], explain: bool = True,
    exclude: list[list[str]] | None = None, memory: CorrectionMemory | None = None,
) -> list[dict[str, Any]]:
    """Classify and route appeals (cleaned by ``triage.text.clean``, as the API and the CLI
    pass them): the stored form of each prediction.

    Staff corrections come first: an appeal like a corrected one (``memory``) takes the
    corrected sub-item (its leaf chosen under the corrected node) and department.
    """
    features = loaded.model.featurizer_.transform(texts) if texts else None
    recalls = (memory.recall(texts, features=features) if memory is not None and len(memory)
               else [None] * len(texts))
    predictions = loaded.model.predict_paths(
        texts, explain=explain, within=[r.subitem if r else None for r in recalls],
        features=features)
    routes = dispatcher_of(loaded).route(
        texts, [p.subitem for p in predictions], default_unit=settings.default_department,
        exclude=exclude)
    records = [prediction_record(p, r, version=loaded.version)
               for p, r in zip(predictions, routes, strict=True)]
    for record, route, recall in zip(records, routes, recalls, strict=True):
        if recall is not None:
            _apply_recall(record, route, recall)
    return records


def _apply_recall(record: dict[str, Any], route: Route, recall: Recall) -> None:
    """Staff decided this complaint before: their answer replaces the model's doubts."""
    if recall.department:
        record.update(department=recall.department, co_departments=[], needs_review=False,
                      review_reason=None)
    elif recall.subitem:
        record.update(needs_review=route.needs_review, review_reason=route.review_reason or None)
    record["explanation"]["memory"] = {
        "ticket_id": recall.ticket_id, "similarity": recall.similarity,
        "encoder_similarity": recall.encoder_similarity,
        "subitem": recall.subitem, "department": recall.department,
        "note": f"like ticket {recall.ticket_id}, corrected by staff"}


def prediction_record(prediction: PathPrediction, route: Route, *, version: str) -> dict[str, Any]:
    """A classifier output and its route, as stored and served."""
    reasons = [r for r in (prediction.review_reason, route.review_reason) if r]
    return {
        "model_version": version,
        "level1": prediction.level1,
        "subitem": prediction.subitem,
        "confidence": prediction.confidence,
        "confidence_level1": prediction.confidence_level1,
        "department": route.lead,
        "co_departments": route.co,
        "needs_review": prediction.needs_review or route.needs_review,
        "review_reason": "；".join(reasons) or None,
        "district": route.address.district or None,
        "street": route.address.street or None,
        "community": route.address.community or None,
        "top": prediction.top,
        "explanation": {**prediction.explanation, "routing": route.explanation,
                        "department_confidence": round(route.confidence, 4)},
    }
