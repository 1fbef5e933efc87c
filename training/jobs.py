"""Training jobs: read labelled files, fit, evaluate on a held-out split, write a new version."""

from __future__ import annotations

import gzip
import json
import math
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

from models.artifacts import (
    LoadedModel,
    Registry,
    data_hash,
    encoder_manifest,
    load_model,
    new_version_id,
    save_model,
)
from models.classifier import HierarchicalClassifier
from training.routing import build_dispatcher
from triage.errors import InputFileError, InterruptedByUser, TriageError
from triage.glossary import Glossary
from triage.settings import Settings, get_settings
from triage.tables import read_table
from triage.taxonomy import Taxonomy

# accurate: the encoder also reads appeals whose best leaf is below this (held-out fold 1, e5
# fine-tuned 251 steps, 2026-12-07: leaf accuracy test / development 0.575 / 0.667 off, 0.603 /
# 0.673 at 0.7; the encoder then reads 22% of all 10,738 appeals and 76% of 4,326 unseen ones:
# 230 and 69 tickets/s through `triage predict`, against 1,803 and 157 off)
ACCURATE_LEAF_CASCADE = 0.7
PRESETS = ("fast", "accurate")
GLOSSARY_FILE = "glossary.csv"
FROM_SETTINGS = "settings"  # train_version(glossary=...): read the one settings.glossary names
Progress = Callable[[str], None]


def read_labelled(
    files: Sequence[Path], *, text_column: str, label_column: str, taxonomy: Taxonomy | None = None,
) -> tuple[list[str], list[str]]:
    """Texts and labels from CSV/XLSX/JSONL files; rows with an empty text or label are errors.

    With a ``taxonomy``, labels that name no node (or several) are reported with their file rows.
    """
    texts: list[str] = []
    labels: list[str] = []
    rows: list[str] = []
    for path in files:
        table = read_table(path)
        column_texts = table.column(text_column)
        column_labels = table.column(label_column)
        empty = [n for n, t, lab in zip(table.row_numbers, column_texts, column_labels, strict=True)
                 if not t.strip() or not lab.strip()]
        if empty:
            shown = ", ".join(map(str, empty[:10]))
            raise InputFileError(f"{path}: rows {shown} have an empty {text_column} or {label_column}")
        texts.extend(column_texts)
        labels.extend(lab.strip() for lab in column_labels)
        prefix = f"{Path(path).name}:" if len(files) > 1 else ""
        rows.extend(f"{prefix}{n}" for n in table.row_numbers)
    if taxonomy is not None:
        taxonomy.resolve_labels(labels, rows=rows)
    if len(set(labels)) < 1 or not texts:
        raise InputFileError("the training files hold no labelled rows")
    return texts, labels


def holdout_metrics(
    texts: list[str], labels: list[str], taxonomy: Taxonomy, *, fraction: float = 0.1,
    embed: Callable[[Sequence[str]], Any] | None = None, glossary: Glossary | None = None,
    leaf_guide_weight: float = 0.0, guide_embed: Callable[[Sequence[str]], Any] | None = None,
) -> dict[str, Any]:
    """Level-1 macro-F1 and accuracy of a model fitted on the rest of a stratified random split."""
    level1 = [n.path[0] for n in taxonomy.resolve_labels(labels)]
    counts = Counter(level1)
    if len(counts) < 2 or min(counts.values()) < 2 or len(texts) * fraction < len(counts):
        return {}
    train, test = train_test_split(
        list(range(len(texts))), test_size=fraction, stratify=level1, random_state=0)
    model = fit_classifier([texts[i] for i in train], [labels[i] for i in train],
                           taxonomy=taxonomy, glossary=glossary, embed=embed,
                           leaf_guide_weight=leaf_guide_weight, guide_embed=guide_embed)
    if embed is not None:
        model.attach_encoder(_Embedder(embed))
    predicted = [p.level1 for p in model.predict_paths([texts[i] for i in test], explain=False)]
    gold = [level1[i] for i in test]
    return {
        "holdout_fraction": fraction,
        "holdout_n": len(test),
        "holdout_level1_macro_f1": round(float(f1_score(gold, predicted, average="macro")), 4),
        "holdout_level1_accuracy": round(float(accuracy_score(gold, predicted)), 4),
    }


class _Embedder:
    """Adapts a plain ``embed`` function to the ``encode`` method a classifier calls."""

    def __init__(self, embed: Callable[[Sequence[str]], Any]) -> None:
        self.encode = embed


def train_version(
    *, texts: list[str], labels: list[str], taxonomy: Taxonomy, output: Path | None,
    registry: Registry, preset: str = "fast", holdout: float = 0.1,
    progress: Progress = lambda _: None, sources: Sequence[str] = (), dispatcher: Any = None,
    base_data: tuple[list[str], list[str]] | None = None, extra_manifest: dict | None = None,
    settings: Settings | None = None, finetune_minutes: float | None = None,
    bundled_encoder: Path | None = None, glossary: Glossary | None | str = FROM_SETTINGS,
    leaf_cascade: float | None = None,
) -> LoadedModel:
    """Fit a model, measure it, write it as a new version (into ``output`` or the registry).

    ``preset="accurate"`` adds the sentence encoder (``settings.encoder``); with
    ``finetune_minutes`` the encoder is first fine-tuned on these appeals for at most that long
    and stored inside the version (unless no step fitted in that time: then it is used as it
    is). The fine-tuning checkpoint is removed once the fine-tuning has finished and the version
    is written; a fine-tuning the budget stopped keeps it, to continue on the next run. A Ctrl-C
    during fine-tuning saves the checkpoint and ends in a ``TriageError`` saying how to resume.
    ``bundled_encoder``: a fine-tuned encoder directory to train
    with and store (a retrained version keeps its parent's). ``glossary``: the node keywords to
    describe leaves with (default: ``settings.glossary``; a retrained version keeps its parent's).
    ``leaf_cascade`` (accurate): the encoder also reads appeals whose best leaf is below it
    (default ``ACCURATE_LEAF_CASCADE``; 0: only those unsure of their top level).
    """
    if preset not in PRESETS:
        raise TriageError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if finetune_minutes is not None and preset != "accurate":
        raise TriageError("fine-tuning trains the encoder of the accurate preset: add "
                          "--preset accurate")
    if leaf_cascade is not None and preset != "accurate":
        raise TriageError("--leaf-cascade sends unsure leaves to the encoder of the accurate "
                          "preset: add --preset accurate")
    if leaf_cascade is not None and not 0.0 <= leaf_cascade <= 1.0:
        raise TriageError(f"--leaf-cascade is a leaf probability from 0 to 1; got {leaf_cascade}")
    if leaf_cascade is None and preset == "accurate":
        leaf_cascade = ACCURATE_LEAF_CASCADE
    if finetune_minutes is not None:
        _check_minutes(finetune_minutes, "finetune_minutes")
    taxonomy.resolve_labels(labels)  # fail on bad labels before any long work
    settings = settings or get_settings()
    if glossary == FROM_SETTINGS:
        glossary = load_glossary(settings)
    metrics: dict[str, Any] = {}
    start = time.perf_counter()
    encoder, source, bundled, tuned = None, None, None, {}
    with tempfile.TemporaryDirectory(dir=_scratch(settings)) as scratch:
        if preset == "accurate":
            encoder, source, bundled, tuned = _prepare_encoder(
                settings, texts, labels, taxonomy, finetune_minutes, Path(scratch), progress,
                bundled_encoder)
            if tuned:
                metrics["finetune"] = {k: tuned[k] for k in (
                    "steps", "total_steps", "epochs_done", "seconds", "train_loss",
                    "stopped_by_budget") if k in tuned}
        embed = None if encoder is None else (
            lambda batch: encoder.encode(batch, progress=_fraction(progress)))
        guide, guide_embed = 0.0, None
        if encoder is not None and settings.leaf_guide_weight > 0:
            guide_with = guide_encoder(settings, encoder, tuned=bundled is not None,
                                       progress=progress)
            if guide_with is not None:
                guide = settings.leaf_guide_weight
                guide_embed = None if guide_with is encoder else (
                    lambda batch: guide_with.encode(batch, progress=_fraction(progress)))
        if holdout > 0:
            progress("evaluating on a held-out split")
            metrics.update(holdout_metrics(texts, labels, taxonomy, fraction=holdout, embed=embed,
                                           glossary=glossary, leaf_guide_weight=guide,
                                           guide_embed=guide_embed))
            if "finetune" in metrics and "holdout_n" in metrics:
                # the fine-tuned encoder has read the held-out appeals: an optimistic figure
                metrics["holdout_seen_by_encoder"] = True
        progress(f"training on {len(texts)} appeals")
        model = fit_classifier(texts, labels, taxonomy=taxonomy, glossary=glossary, embed=embed,
                               leaf_cascade=leaf_cascade, leaf_guide_weight=guide,
                               guide_embed=guide_embed)
        metrics["train_seconds"] = round(time.perf_counter() - start, 2)
        if model.fusion_ is not None:
            metrics["fusion"] = {k: round(v, 4) for k, v in asdict(model.fusion_).items()}
        manifest = _manifest(model, texts, labels, preset=preset, sources=sources,
                             metrics=metrics, extra=extra_manifest,
                             encoder=None if encoder is None or source is None
                             else encoder_manifest(encoder, source))
        if guide_embed is not None:  # a fine-tuned encoder, guided by one as it comes
            manifest["leaf_guide_encoder"] = guide_with.fingerprint
        target = Path(output) if output else registry.new_directory(manifest["version"])
        progress(f"writing version {manifest['version']} to {target}")
        save_model(model, target, manifest=manifest, dispatcher=dispatcher, encoder_dir=bundled)
        write_base_data(target, base_data if base_data is not None else (texts, labels))
    if tuned and not tuned["stopped_by_budget"]:
        _remove_checkpoint(settings, texts, labels)  # only an unfinished fine-tuning resumes
    return load_model(target)


def guide_encoder(settings: Settings, encoder: Any, *, tuned: bool,
                  progress: Progress = lambda _: None) -> Any:
    """The encoder that helps choose the training appeals' leaves (``LeafScorer.fit``): always
    one as it comes. With an encoder fine-tuned on the top levels, the configured encoder
    (``TRIAGE_ENCODER``) is opened for it, at training time only: the fine-tuned one has learnt to
    tell top levels apart rather than leaves. ``None`` (no guide) when it cannot be opened.
    Used when ``TRIAGE_LEAF_GUIDE_WEIGHT`` is above 0 (off by default since the glossary of
    2026-12-07: with it, e5 fine-tuned 251 steps on fold 1, leaf accuracy test / development was
    0.575 / 0.667 unguided and 0.557 / 0.660 guided at 3; with ``--leaf-cascade 0.7`` 0.603 /
    0.673 and 0.580 / 0.660).

    Measured 2026-12-07 (leaf accuracy test / development, ``training.benchmark.leaf_accuracy``):
    packaged e5 as it is, 0.563 / 0.527 without the guide, 0.586 / 0.573 with it; e5 fine-tuned
    119 steps on fold 1, 0.563 / 0.527 unguided, 0.557 / 0.507 guided by itself, 0.586 / 0.587
    guided by the e5 as it comes, and 0.603 / 0.600 with ``--leaf-cascade 0.7`` as well
    (level-1 macro-F1 on fold 1: 0.9308 unguided, 0.9311 guided by itself; not measured guided
    by the e5 as it comes)."""
    if not tuned:
        return encoder
    try:
        return open_with_settings(settings.encoder, settings, progress)
    except TriageError as error:
        progress(f"no encoder as it comes to guide the leaves ({error.message}): trained without")
        return None


def fit_classifier(
    texts: list[str], labels: list[str], *, taxonomy: Taxonomy, glossary: Glossary | None,
    embed: Callable[[Sequence[str]], Any] | None = None, leaf_cascade: float | None = None,
    leaf_guide_weight: float = 0.0, guide_embed: Callable[[Sequence[str]], Any] | None = None,
) -> HierarchicalClassifier:
    """The estimator of a version, fitted as every version is (retraining fits its control the
    same way, so that the gate compares like with like)."""
    return HierarchicalClassifier(
        taxonomy=taxonomy, glossary=glossary, leaf_cascade=leaf_cascade,
        leaf_guide_weight=leaf_guide_weight).fit(texts, labels, embed=embed,
                                                 guide_embed=guide_embed)


def load_glossary(settings: Settings) -> Glossary | None:
    """The glossary of ``settings.glossary`` (``builtin``: datasets/glossary.csv; ``none``)."""
    return Glossary.from_setting(settings.glossary, settings.datasets_dir / GLOSSARY_FILE)


def finetune_budget(preset: str, minutes: float | None, settings: Settings) -> float | None:
    """Minutes of encoder fine-tuning for a training run: ``accurate`` fine-tunes for
    ``settings.finetune_minutes`` unless told otherwise (``--time-budget``); 0 (or ``fast``)
    means none. Anything but a finite number of minutes ≥ 0 is refused."""
    if minutes is not None:
        _check_minutes(minutes, "--time-budget")
    elif preset == "accurate":
        minutes = _check_minutes(settings.finetune_minutes, "TRIAGE_FINETUNE_MINUTES")
    if minutes is not None and minutes <= 0:
        return None
    return minutes


def _check_minutes(minutes: float, name: str) -> float:
    if not (math.isfinite(minutes) and minutes >= 0):
        raise TriageError(f"{name} is minutes, 0 or more; got {minutes:g}")
    return minutes


def _checkpoint_dir(settings: Settings, texts: list[str], labels: list[str]) -> Path:
    """Where fine-tuning on these appeals keeps its checkpoint (to resume an unfinished run)."""
    return settings.home / "checkpoints" / data_hash(texts, labels)[:16]


def _remove_checkpoint(settings: Settings, texts: list[str], labels: list[str]) -> None:
    from training.finetune_checkpoint import remove_checkpoint

    remove_checkpoint(_checkpoint_dir(settings, texts, labels))


def _scratch(settings: Settings) -> Path:
    path = settings.home / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _fraction(progress: Progress) -> Callable[[str, float], None]:
    return lambda message, done: progress(f"{message} ({done:.0%})")


def _prepare_encoder(
    settings: Settings, texts: list[str], labels: list[str], taxonomy: Taxonomy,
    finetune_minutes: float | None, scratch: Path, progress: Progress,
    bundled: Path | None = None,
) -> tuple[Any, str, Path | None, dict[str, Any]]:
    """The encoder to train with (the configured one, or a copy fine-tuned on these appeals),
    its source, the fine-tuned directory if any and the fine-tuning report (empty if none)."""
    from models.encoder_files import check_max_length, locate_encoder

    source = "bundled" if bundled is not None else settings.encoder
    progress(f"preparing the encoder {source}")
    base = locate_encoder(bundled or source, settings.home, _fraction(progress))
    check_max_length(base, settings.encoder_max_length)  # before fine-tuning, not after it
    tuned: dict[str, Any] = {}
    if finetune_minutes is not None:
        tuned = _finetune(settings, base, texts, labels, taxonomy, finetune_minutes,
                          scratch / "encoder", progress)
        if tuned["steps"] > 0:
            base, source, bundled = scratch / "encoder", "bundled", scratch / "encoder"
        else:
            progress(f"no fine-tuning step fitted in the time budget ({finetune_minutes:g} min): "
                     f"using the encoder as it is")
            tuned = {}  # as --time-budget 0: the version records and bundles no fine-tuning
    return open_with_settings(base, settings, progress), source, bundled, tuned


def open_with_settings(source: str | Path, settings: Settings,
                       progress: Progress = lambda _: None) -> Any:
    """An encoder (``TRIAGE_ENCODER``'s value or a directory) opened with the settings' backend,
    max length and max characters."""
    from models.encoder import open_encoder

    return open_encoder(source, settings.home, backend=settings.encoder_backend,
                        max_length=settings.encoder_max_length,
                        max_chars=settings.encoder_max_chars, progress=_fraction(progress))


def _finetune(
    settings: Settings, base: Path, texts: list[str], labels: list[str], taxonomy: Taxonomy,
    minutes: float, out: Path, progress: Progress,
) -> dict[str, Any]:
    """Fine-tune ``base`` on the appeals' top-level labels into ``out``; its report. Ctrl-C
    ends in a ``TriageError`` once the checkpoint is saved."""
    from training.finetune import FinetuneInterrupted, finetune_encoder

    level1 = [n.path[0] for n in taxonomy.resolve_labels(labels)]
    try:
        return finetune_encoder(
            base, texts, level1, out, time_budget_min=minutes,
            max_length=settings.encoder_max_length, max_chars=settings.encoder_max_chars,
            checkpoint_dir=_checkpoint_dir(settings, texts, labels), progress=_fraction(progress))
    except FinetuneInterrupted as exc:
        raise InterruptedByUser(str(exc)) from exc


def _manifest(
    model: HierarchicalClassifier, texts: list[str], labels: list[str], *, preset: str,
    sources: Sequence[str], metrics: dict[str, Any], extra: dict | None, encoder: dict | None,
) -> dict[str, Any]:
    """The manifest of a new version: its id, data, figures, encoder and glossary."""
    training_hash = data_hash(texts, labels)
    manifest = {
        "version": new_version_id(training_hash), "preset": preset,
        "training_data_sha256": training_hash,
        "training_sources": [str(s) for s in sources], "n_train": len(texts),
        "label_counts": dict(Counter(model.classes_[i] for i in _level1_index(model, labels))),
        "leaves_with_examples": int((model.leaves_.n_examples_ > 0).sum()),
        "metrics": metrics,
        **(extra or {}),
    }
    if encoder is not None:
        manifest["encoder"] = encoder
    glossary = getattr(model, "glossary", None)
    manifest["glossary"] = None if glossary is None else {
        "entries": len(glossary), "sha256": glossary.digest}
    if getattr(model, "leaf_cascade", None) is not None:
        manifest["leaf_cascade"] = model.leaf_cascade
    if model.needs_encoder:
        manifest["leaf_guide_weight"] = model.leaf_guide_weight
    return manifest


def _level1_index(model: HierarchicalClassifier, labels: list[str]) -> list[int]:
    nodes = model.taxonomy.resolve_labels(labels)
    return [model.classes_.index(n.path[0]) for n in nodes]


def ensure_default_model(settings: Settings, progress: Progress = lambda _: None) -> LoadedModel:
    """The active model; on an empty registry, train one from the demo data and activate it."""
    registry = Registry(settings.models_dir)
    loaded = registry.load_active()
    if loaded is not None:
        return loaded
    taxonomy = Taxonomy.from_file(settings.taxonomy_file or settings.demo_taxonomy)
    texts, labels = read_labelled(
        [settings.demo_appeals], text_column="text", label_column="label")
    progress("no active model: training the default model from the demo data")
    demo = settings.taxonomy_file is None
    dispatcher = build_dispatcher(
        taxonomy=taxonomy, gazetteer=settings.demo_gazetteer if demo else None,
        responsibility=settings.demo_responsibility if demo else None)
    loaded = train_version(texts=texts, labels=labels, taxonomy=taxonomy, output=None,
                           registry=registry, holdout=0.0, progress=progress,
                           sources=[settings.demo_appeals.name], dispatcher=dispatcher,
                           preset=settings.preset, settings=settings,
                           finetune_minutes=finetune_budget(settings.preset, None, settings))
    registry.activate(loaded.version)
    return loaded


BASE_DATA = "base_training.jsonl.gz"


def write_base_data(directory: Path, data: tuple[list[str], list[str]]) -> None:
    """The labelled appeals a version was built from (before staff corrections), kept beside it
    so that retraining can start from them."""
    with gzip.open(Path(directory) / BASE_DATA, "wt", encoding="utf-8") as handle:
        for text, label in zip(*data, strict=True):
            handle.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")


def read_base_data(directory: Path) -> tuple[list[str], list[str]]:
    path = Path(directory) / BASE_DATA
    if not path.is_file():
        raise InputFileError(f"{directory} keeps no base training data ({BASE_DATA}): "
                             "retrain from files with `triage train` instead")
    texts, labels = [], []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            texts.append(row["text"])
            labels.append(row["label"])
    return texts, labels
