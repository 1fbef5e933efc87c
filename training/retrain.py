"""Retraining from staff corrections, gated on a frozen evaluation set.

Base data (kept in the active version) + every ticket's latest correction (later corrections
win; a text corrected to different sub-items is flagged) → a candidate version. The candidate is
never trained on an appeal of the frozen evaluation set: base rows with its texts are left out,
and so are corrections of its texts (they stay stored and the correction memory still uses them;
the report counts them and how many disagree with the set's label).

The gate compares like with like on the frozen set (level-1 macro-F1, and leaf accuracy where
the set has leaves):

- with the **active model** when it provably never saw the set: it is a gated retrain that
  recorded this very set (``frozen_evaluation`` in its manifest), or it was trained on its base
  data alone (its manifest's data hash says so) and that holds none of the set's appeals;
- else with a **control**: a model fitted the same way on the same base data without the
  evaluation appeals, but without the corrections (in memory, never registered). A model trained
  with ``triage train`` on all of a centre's file is scored on a tenth of that file, which it
  has learnt (1.0): the control makes the gate measure what the corrections change. With no
  corrections to train on, the candidate is its own control.

The candidate is promoted unless worse than that baseline by more than the tolerance; otherwise
it stays a registered candidate. ``retrain_report.json`` (and the report returned) says what was
compared with what. The control is one more fit of the classifier: under a second on the demo
data with ``fast``; with ``accurate`` the encoder's cache serves the embeddings, so it costs the
classifier part (TF-IDF, heads, fusion folds) again, not the encoding.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from sklearn.metrics import f1_score
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.artifacts import ENCODER_DIR, RETRAIN_REPORT, LoadedModel, Registry, data_hash
from training.jobs import (
    fit_classifier,
    guide_encoder,
    read_base_data,
    read_labelled,
    train_version,
)
from triage import store
from triage.errors import ModelNotReadyError
from triage.predicting import classify_text
from triage.settings import Settings
from triage.text import clean

Progress = Callable[[str], None]
Pairs = tuple[list[str], list[str]]
TENTH = "a tenth of the base data, by text hash"


@dataclass
class RetrainReport:
    """What a retraining run did and why: ``frozen`` holds the figures of the candidate and of
    the active model, plus the control's when the gate compared with a control
    (``compared_with``; ``comparison`` says why and on what data)."""

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
    compared_with: str = "active"
    comparison: str = ""
    evaluation: dict[str, Any] = field(default_factory=dict)
    set_aside: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FrozenSet:
    """The frozen evaluation set: its appeals, their labels and where they come from."""

    texts: list[str]
    labels: list[str]
    source: str

    @cached_property
    def keys(self) -> set[str]:
        """The appeals as a stored ticket reads them (masked, normalised)."""
        return {_key(t) for t in self.texts}

    def record(self) -> dict[str, Any]:
        """What a version trained without this set records of it."""
        digest = hashlib.sha256("\x1e".join(sorted(self.keys)).encode("utf-8")).hexdigest()
        return {"source": self.source, "n": len(self.texts), "sha256": digest}


def _key(text: str) -> str:
    return clean(text)


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


def evaluation_set(settings: Settings, loaded: LoadedModel, base: Pairs) -> FrozenSet:
    """The frozen evaluation set: ``TRIAGE_EVALUATION_SET``, the demo test set for a model built
    from the demo appeals, else a fixed tenth of the base data (by text hash)."""
    path = settings.evaluation_set
    if path is None and settings.demo_appeals.name in loaded.manifest.get("training_sources", []):
        path = settings.demo_test
    if path is not None:
        texts, labels = read_labelled([path], text_column="text", label_column="label")
        return FrozenSet(texts, labels, Path(path).name)
    held = [i for i, t in enumerate(base[0]) if _bucket(t) == 0]
    return FrozenSet([base[0][i] for i in held], [base[1][i] for i in held], TENTH)


def _bucket(text: str) -> int:
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
    # the parent's files are read to the end (its fine-tuned encoder is copied into the
    # candidate): a rollback meanwhile must not make it deletable
    with registry.in_use(current.version):
        return _retrain(registry, current, session=session, settings=settings,
                        progress=progress, tolerance=tolerance, start=start)


def _retrain(registry: Registry, current: LoadedModel, *, session: Session, settings: Settings,
             progress: Progress, tolerance: float | None, start: float) -> RetrainReport:
    base = read_base_data(current.path)
    frozen = evaluation_set(settings, current, base)
    fixed_texts, fixed_labels, conflicts = corrections_data(session)
    fixed = _valid_corrections(current, fixed_texts, fixed_labels)
    fixed, set_aside = _set_aside(current, frozen, fixed)
    kept = _without(base, frozen.keys | {_key(t) for t in fixed[0]})
    candidate = _train_candidate(current, registry, settings, kept, fixed, base, frozen, progress)
    progress("evaluating the candidate")
    scores = {"candidate": score(candidate, frozen.texts, frozen.labels),
              "active": score(current, frozen.texts, frozen.labels)}
    fair, why = _active_is_fair(current, base, frozen)
    baseline = "active" if fair else "control"
    if not fair and frozen.texts:
        scores["control"] = _control_scores(current, candidate, base, frozen, fixed, scores,
                                            settings, progress)
    promoted, reason = _gate(scores, baseline, frozen,
                             settings.retrain_tolerance if tolerance is None else tolerance)
    now_active = registry.active_version()
    if promoted and now_active != current.version:
        # a person activated another version (a rollback) while this ran: theirs stands
        promoted, reason = False, (
            f"{reason}; but {now_active} was activated while this retraining ran, so the "
            f"candidate is kept, not activated (activate it by hand to serve it)")
    if promoted:
        registry.activate(candidate.version)
    report = RetrainReport(
        candidate=candidate.version, previous=current.version, promoted=promoted, reason=reason,
        n_base=len(kept[0]), n_corrections=len(fixed[0]), conflicts=conflicts, frozen=scores,
        recent=_recent(current, candidate, fixed[0][-200:], fixed[1][-200:]),
        seconds=round(time.perf_counter() - start, 2), compared_with=baseline,
        comparison=_comparison(baseline, why, current, kept, fixed, base, frozen),
        evaluation=frozen.record(), set_aside=set_aside)
    (candidate.path / RETRAIN_REPORT).write_text(
        json.dumps(report.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
    return report


def _train_candidate(current: LoadedModel, registry: Registry, settings: Settings, kept: Pairs,
                     fixed: Pairs, base: Pairs, frozen: FrozenSet,
                     progress: Progress) -> LoadedModel:
    """Base data without the evaluation appeals + the corrections → a registered version that
    records which evaluation set it was trained without."""
    progress(f"training a candidate on {len(kept[0])} base appeals and {len(fixed[0])} "
             "corrections")
    return train_version(
        texts=kept[0] + fixed[0], labels=kept[1] + fixed[1], taxonomy=current.taxonomy,
        output=None, registry=registry, holdout=0.0, progress=progress,
        sources=current.manifest.get("training_sources", []),
        preset=str(current.manifest.get("preset", "fast")), settings=settings,
        bundled_encoder=_bundled_encoder(current),
        glossary=getattr(current.model, "glossary", None),
        leaf_cascade=_leaf_cascade_of(current),
        dispatcher=current.dispatcher, base_data=base,
        extra_manifest={"parent": current.version, "n_corrections": len(fixed[0]),
                        "frozen_evaluation": frozen.record()})


def _without(data: Pairs, keys: set[str]) -> Pairs:
    """The rows of ``data`` whose text is not one of ``keys``."""
    rows = [(t, lab) for t, lab in zip(*data, strict=True) if _key(t) not in keys]
    return [r[0] for r in rows], [r[1] for r in rows]


def _valid_corrections(loaded: LoadedModel, texts: list[str], labels: list[str]) -> Pairs:
    """Corrections whose node the model's taxonomy still has under a supported top level."""
    keep = [(t, lab) for t, lab in zip(texts, labels, strict=True)
            if lab in loaded.taxonomy and lab.split("/")[0] in loaded.model.classes_]
    return [k[0] for k in keep], [k[1] for k in keep]


def _set_aside(loaded: LoadedModel, frozen: FrozenSet, fixed: Pairs) -> tuple[Pairs, dict]:
    """Corrections to train on, and a summary of those set aside because their appeal is in the
    frozen set (trained on, they would score the candidate on answers it was given)."""
    gold = dict(zip([_key(t) for t in frozen.texts],
                    loaded.taxonomy.resolve_labels(frozen.labels), strict=True))
    aside = [(gold[_key(t)], lab) for t, lab in zip(*fixed, strict=True) if _key(t) in gold]
    differ = sum(not _agree(node.path, tuple(lab.split("/"))) for node, lab in aside)
    summary = {"n": len(aside), "label_differs": differ,
               "why": "their appeals are in the frozen evaluation set: they stay stored (and the "
                      "correction memory uses them) but are not trained on"
                      + (f"; {differ} disagree with the set's label: check the evaluation file"
                         if differ else "")}
    return _without(fixed, set(gold)), summary


def _agree(gold: tuple[str, ...], corrected: tuple[str, ...]) -> bool:
    """Whether two node paths agree as far as both go (one may be less specific)."""
    depth = min(len(gold), len(corrected))
    return gold[:depth] == corrected[:depth]


def _active_is_fair(current: LoadedModel, base: Pairs, frozen: FrozenSet) -> tuple[bool, str]:
    """Whether the active model provably never saw the frozen set, and how that is known."""
    if (current.manifest.get("frozen_evaluation") or {}).get("sha256") == frozen.record()["sha256"]:
        return True, "it was itself trained without these evaluation appeals"
    if current.manifest.get("training_data_sha256") != data_hash(*base):
        return False, "what it was trained on is not on record to check against the set"
    seen = len(frozen.keys & {_key(t) for t in base[0]})
    if not seen:
        return True, "it was trained on its base data alone, which holds none of them"
    return False, f"it was trained on {seen} of the {len(frozen.keys)} evaluation appeals"


def _control_scores(current: LoadedModel, candidate: LoadedModel, base: Pairs, frozen: FrozenSet,
                    fixed: Pairs, scores: dict[str, dict[str, float]], settings: Settings,
                    progress: Progress) -> dict[str, float]:
    """The frozen-set figures of a model fitted like the candidate on the same base data without
    the evaluation appeals, but without the corrections (the candidate itself when none)."""
    if not fixed[0]:
        return dict(scores["candidate"])
    texts, labels = _without(base, frozen.keys)
    progress(f"training the control on the same {len(texts)} base appeals, no corrections")
    encoder = _encoder_of(current, candidate)
    model = fit_classifier(texts, labels, taxonomy=candidate.taxonomy,
                           glossary=getattr(candidate.model, "glossary", None),
                           embed=None if encoder is None else encoder.encode,
                           leaf_cascade=getattr(candidate.model, "leaf_cascade", None),
                           leaf_guide_weight=getattr(candidate.model, "leaf_guide_weight", 0.0),
                           guide_embed=_guide_embed_of(candidate, settings))
    if encoder is not None:
        model.attach_encoder(encoder)
    control = LoadedModel(model=model, manifest={"version": "control"}, path=candidate.path)
    return score(control, frozen.texts, frozen.labels)


def _leaf_cascade_of(current: LoadedModel) -> float | None:
    """The parent's leaf cascade: an accurate version saved without one (before it was the
    default) is retrained without one, so that retraining does not change how fast it serves."""
    value = getattr(current.model, "leaf_cascade", None)
    if value is None and current.manifest.get("preset") == "accurate":
        return 0.0
    return value


def _guide_embed_of(candidate: LoadedModel, settings: Settings) -> Any:
    """The encoder as it comes that guided the candidate's leaves, when it was not its own
    (``training.jobs.guide_encoder``): the control is guided the same way."""
    if "leaf_guide_encoder" not in candidate.manifest:
        return None
    guide = guide_encoder(settings, None, tuned=True)
    return None if guide is None else guide.encode


def _encoder_of(current: LoadedModel, candidate: LoadedModel) -> Any:
    """The candidate's encoder, preferably the very object that embedded its training appeals
    (the active model's, whose cache holds them) when its weights are the same."""
    if not candidate.model.needs_encoder:
        return None
    theirs = candidate.model.encoder_
    mine = getattr(current.model, "encoder_", None)
    same = mine is not None and all(getattr(mine, a, None) == getattr(theirs, a, None)
                                    for a in ("fingerprint", "max_length", "max_chars"))
    return mine if same else theirs


def _comparison(baseline: str, why: str, current: LoadedModel, kept: Pairs, fixed: Pairs,
                base: Pairs, frozen: FrozenSet) -> str:
    """One sentence: what was compared with what, on which set, and why that baseline."""
    where = f"on the frozen evaluation set ({frozen.source}, {len(frozen.texts)} appeals)"
    candidate = f"the candidate ({len(kept[0])} base appeals + {len(fixed[0])} corrections)"
    if baseline == "active":
        return (f"{candidate} vs the active model {current.version} {where}: {why}"
                + _shared_encoder(current, base, frozen))
    n_control = len(_without(base, frozen.keys)[0])
    own = " (the candidate is its own control: no corrections to train on)" if not fixed[0] else ""
    return (f"{candidate} vs a control fitted the same way on the same {n_control} base appeals "
            f"without the corrections{own} {where}; not the active model {current.version}: "
            f"{why}, so its figures are shown but not compared with"
            + _shared_encoder(current, base, frozen))


def _shared_encoder(current: LoadedModel, base: Pairs, frozen: FrozenSet) -> str:
    """A fine-tuned encoder is kept from version to version: where it was fine-tuned on base data
    holding evaluation appeals, both sides of the gate read them through it (said, not hidden)."""
    if _bundled_encoder(current) is None:
        return ""
    seen = len(frozen.keys & {_key(t) for t in base[0]})
    return "" if not seen else (
        f"; both use the fine-tuned encoder kept from the base data, which read {seen} of the "
        "evaluation appeals while fine-tuning: the comparison holds, both figures are optimistic")


def _recent(current: LoadedModel, candidate: LoadedModel, texts: list[str],
            labels: list[str]) -> dict[str, float]:
    if not texts:
        return {}
    return {"active_level1_accuracy": score(current, texts, labels)["level1_accuracy"],
            "candidate_level1_accuracy": score(candidate, texts, labels)["level1_accuracy"],
            "n": len(texts)}


def _gate(scores: dict[str, dict[str, float]], baseline: str, frozen: FrozenSet,
          tolerance: float) -> tuple[bool, str]:
    """Promote unless the candidate is worse than the baseline by more than ``tolerance``."""
    new, old = scores["candidate"], scores[baseline]
    if not new:
        return True, "no frozen evaluation set: promoted on the corrections alone"
    where = f"on the frozen evaluation set ({frozen.source}, {len(frozen.texts)} appeals)"
    keys = [k for k in ("level1_macro_f1", "leaf_accuracy") if k in new and k in old]
    for key in keys:
        if new[key] < old[key] - tolerance:
            return False, (f"{key} fell from {old[key]:.4f} ({baseline}) to {new[key]:.4f} "
                           f"(candidate) {where} (tolerance {tolerance:.4f}): "
                           "kept as a candidate")
    figures = ", ".join(f"{k} {new[k]:.4f} vs {old[k]:.4f}" for k in keys)
    return True, f"not worse than the {baseline} {where}: {figures} (candidate vs {baseline})"


def report_path(directory: Path) -> Path:
    return Path(directory) / RETRAIN_REPORT
