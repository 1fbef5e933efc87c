"""Retraining from staff corrections, gated on a frozen evaluation set.

Base data (kept in the active version) + every ticket's latest correction (later corrections
win; a text corrected to different sub-items is flagged) → a candidate version. The candidate and
the active model are scored on the frozen evaluation set (level-1 macro-F1 and leaf accuracy
where the set has leaves) and on the recent corrections. The candidate is promoted (activated)
unless it is worse than the active model by more than the tolerance; otherwise it stays a
registered candidate, with its report.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sklearn.metrics import f1_score
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.artifacts import ENCODER_DIR, LoadedModel, Registry
from training.jobs import read_base_data, read_labelled, train_version
from triage import store
from triage.errors import ModelNotReadyError
from triage.intake import classify_text
from triage.settings import Settings

Progress = Callable[[str], None]


@dataclass
class RetrainReport:
    """What a retraining run did and why."""

    candidate: str
    previous: str
    promoted: bool
    reason: str
    n_base: int
    n_corrections: int
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    frozen: dict[str, dict[str, float]] = field(default_factory=dict)
    recent: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def corrections_data(session: Session) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """Latest sub-item correction per ticket; texts corrected to different sub-items are flagged
    (the later correction is used)."""
    rows = session.scalars(select(store.Correction).where(store.Correction.subitem.is_not(None))
                           .order_by(store.Correction.id)).all()
    by_ticket: dict[int, store.Correction] = {}
    for row in rows:
        by_ticket[row.ticket_id] = row  # later corrections win
    by_text: dict[str, tuple[str, str, int]] = {}
    conflicts = []
    for row in by_ticket.values():
        text = classify_text(row.ticket.title, row.ticket.text)
        if text in by_text and by_text[text][0] != row.subitem:
            conflicts.append({"text": text[:60], "tickets": [by_text[text][2], row.ticket_id],
                              "subitems": [by_text[text][0], row.subitem]})
        by_text[text] = (row.subitem or "", row.reviewer, row.ticket_id)
    return list(by_text), [v[0] for v in by_text.values()], conflicts


def _bundled_encoder(current: LoadedModel) -> Path | None:
    """The fine-tuned encoder stored in the active version, which its retrained successor keeps."""
    encoder = current.manifest.get("encoder") or {}
    return current.path / ENCODER_DIR if encoder.get("source") == "bundled" else None


def evaluation_set(settings: Settings, loaded: LoadedModel,
                   base: tuple[list[str], list[str]]) -> tuple[list[str], list[str], set[str]]:
    """The frozen evaluation set: ``TRIAGE_EVALUATION_SET``, the demo test set for a model built
    from the demo appeals, else a fixed tenth of the base data (by text hash), never trained on."""
    path = settings.evaluation_set
    if path is None and settings.demo_appeals.name in loaded.manifest.get("training_sources", []):
        path = settings.demo_test
    if path is not None:
        texts, labels = read_labelled([path], text_column="text", label_column="label")
        return texts, labels, set()
    held = [i for i, t in enumerate(base[0]) if _bucket(t) == 0]
    return ([base[0][i] for i in held], [base[1][i] for i in held], {base[0][i] for i in held})


def _bucket(text: str) -> int:
    import hashlib

    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) % 10


def score(loaded: LoadedModel, texts: list[str], labels: list[str]) -> dict[str, float]:
    """Level-1 macro-F1 and accuracy; leaf accuracy over the labels that are leaves."""
    if not texts:
        return {}
    nodes = loaded.taxonomy.resolve_labels(labels)
    predicted = loaded.model.predict_paths(texts, explain=False)
    gold1 = [n.path[0] for n in nodes]
    got1 = [p.level1 for p in predicted]
    leaves = [(p.subitem, n.key) for p, n in zip(predicted, nodes, strict=True) if n.is_leaf]
    out = {"level1_macro_f1": round(float(f1_score(gold1, got1, average="macro")), 4),
           "level1_accuracy": round(sum(a == b for a, b in zip(gold1, got1, strict=True))
                                    / len(gold1), 4), "n": len(texts)}
    if leaves:
        out["leaf_accuracy"] = round(sum(a == b for a, b in leaves) / len(leaves), 4)
    return out


def retrain(*, session: Session, settings: Settings, progress: Progress = lambda _: None,
            tolerance: float | None = None) -> RetrainReport:
    """Train a candidate from base data and corrections; promote it if it passes the gate."""
    start = time.perf_counter()
    registry = Registry(settings.models_dir)
    current = registry.load_active()
    if current is None:
        raise ModelNotReadyError("no active model to retrain from: train and activate one first")
    base = read_base_data(current.path)
    eval_texts, eval_labels, held = evaluation_set(settings, current, base)
    fixed_texts, fixed_labels, conflicts = corrections_data(session)
    fixed_texts, fixed_labels = _valid_corrections(current, fixed_texts, fixed_labels)
    corrected = set(fixed_texts)
    keep = [i for i, t in enumerate(base[0]) if t not in held and t not in corrected]
    texts = [base[0][i] for i in keep] + fixed_texts
    labels = [base[1][i] for i in keep] + fixed_labels
    progress(f"training a candidate on {len(keep)} base appeals and {len(fixed_texts)} corrections")
    candidate = train_version(
        texts=texts, labels=labels, taxonomy=current.taxonomy, output=None, registry=registry,
        holdout=0.0, progress=progress, sources=current.manifest.get("training_sources", []),
        preset=str(current.manifest.get("preset", "fast")), settings=settings,
        bundled_encoder=_bundled_encoder(current),
        glossary=getattr(current.model, "glossary", None),
        dispatcher=current.dispatcher, base_data=base,
        extra_manifest={"parent": current.version, "n_corrections": len(fixed_texts)})
    progress("evaluating the candidate against the active model")
    frozen = {"candidate": score(candidate, eval_texts, eval_labels),
              "active": score(current, eval_texts, eval_labels)}
    recent = _recent(current, candidate, fixed_texts[-200:], fixed_labels[-200:])
    promoted, reason = _gate(frozen, settings.retrain_tolerance if tolerance is None else tolerance)
    if promoted:
        registry.activate(candidate.version)
    report = RetrainReport(candidate=candidate.version, previous=current.version,
                           promoted=promoted, reason=reason, n_base=len(keep),
                           n_corrections=len(fixed_texts), conflicts=conflicts, frozen=frozen,
                           recent=recent, seconds=round(time.perf_counter() - start, 2))
    (candidate.path / "retrain_report.json").write_text(
        json.dumps(report.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
    return report


def _valid_corrections(loaded: LoadedModel, texts: list[str], labels: list[str]
                       ) -> tuple[list[str], list[str]]:
    """Corrections whose node the model's taxonomy still has under a supported top level."""
    keep = [(t, lab) for t, lab in zip(texts, labels, strict=True)
            if lab in loaded.taxonomy and lab.split("/")[0] in loaded.model.classes_]
    return [k[0] for k in keep], [k[1] for k in keep]


def _recent(current: LoadedModel, candidate: LoadedModel, texts: list[str],
            labels: list[str]) -> dict[str, float]:
    if not texts:
        return {}
    return {"active_level1_accuracy": score(current, texts, labels)["level1_accuracy"],
            "candidate_level1_accuracy": score(candidate, texts, labels)["level1_accuracy"],
            "n": len(texts)}


def _gate(frozen: dict[str, dict[str, float]], tolerance: float) -> tuple[bool, str]:
    new, old = frozen["candidate"], frozen["active"]
    if not new:
        return True, "no frozen evaluation set: promoted on the corrections alone"
    for key in ("level1_macro_f1", "leaf_accuracy"):
        if key in new and key in old and new[key] < old[key] - tolerance:
            return False, (f"{key} fell from {old[key]:.4f} to {new[key]:.4f} "
                           f"(tolerance {tolerance:.4f}): kept as a candidate")
    return True, "not worse than the active model on the frozen evaluation set"


def report_path(directory: Path) -> Path:
    return Path(directory) / "retrain_report.json"
