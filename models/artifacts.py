"""Model artifacts and the registry of versions.

A version is a directory: ``model.pkl`` (the fitted estimator), ``taxonomy.json`` (the taxonomy
it was trained for) and ``manifest.json`` (labels in index order, unsupported top-level
categories, taxonomy version, package versions, training-data hash, metrics, created_at). The
registry keeps versions side by side and an ``ACTIVE`` pointer that moves atomically; a version is
never overwritten.
Deleting one (``Registry.delete`` / ``prune``) moves it aside first and respects versions a
running retraining reads (``models.version_files``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import platform
import re
import secrets
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from models import version_files
from models.classifier import HierarchicalClassifier
from models.process_memory import return_large_frees
from triage.errors import ArtifactError, NotFoundError
from triage.taxonomy import Taxonomy

FORMAT = "triage.classifier.v1"
MANIFEST = "manifest.json"
MODEL_FILE = "model.pkl"
ROUTING_FILE = "routing.pkl"
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_PACKAGES = ("scikit-learn", "numpy", "scipy", "jieba", "triage")
# Pickled scikit-learn objects are only safe to load under the same minor release.
_STRICT = ("scikit-learn",)


@dataclass
class LoadedModel:
    """A loaded version: the estimator, its manifest and the directory it came from."""

    model: HierarchicalClassifier
    manifest: dict[str, Any]
    path: Path
    dispatcher: Any = None  # the routing part of a version (``triage.dispatch.Dispatcher``), if any

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def taxonomy(self) -> Taxonomy:
        return self.model.taxonomy


def data_hash(texts: Sequence[str], labels: Sequence[str]) -> str:
    """SHA-256 of the training pairs, order included."""
    digest = hashlib.sha256()
    for text, label in zip(texts, labels, strict=True):
        digest.update(text.encode("utf-8") + b"\x1f" + label.encode("utf-8") + b"\x1e")
    return digest.hexdigest()


def new_version_id(training_hash: str) -> str:
    """A sortable, unique-enough id: UTC time plus a short hash."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{training_hash[:6]}{secrets.token_hex(2)}"


def package_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "unknown"
    return found


ENCODER_DIR = "encoder"
RETRAIN_REPORT = "retrain_report.json"  # beside a retrained candidate: what its gate measured


def encoder_manifest(encoder: Any, source: str) -> dict[str, Any]:
    """What a version records of its encoder, so that loading can find and check it.

    ``source``: ``"e5-small"`` (the packaged model), a local model directory, or ``"bundled"``
    (a fine-tuned encoder stored inside the version, in ``encoder/``).
    """
    if source not in ("bundled", "e5-small"):
        source = str(Path(source).expanduser().resolve())  # found from any directory
    return {"source": source, "fingerprint": encoder.fingerprint, "max_length": encoder.max_length,
            "max_chars": encoder.max_chars, "prefix": encoder.prefix, "dim": encoder.dim}


def attach_encoder(model: HierarchicalClassifier, manifest: dict[str, Any], directory: Path) -> None:
    """Open the encoder a version was trained with and check it is the same one."""
    if not model.needs_encoder:
        return
    from models.encoder import reopen_encoder

    bundled = Path(directory) / ENCODER_DIR
    check_encoder_kept(manifest, bundled=bundled, retrain="triage train")
    model.attach_encoder(reopen_encoder(
        manifest.get("encoder"), Path(directory), needs="the model", retrain="triage train",
        bundled=bundled))


def check_encoder_kept(manifest: dict[str, Any], *, bundled: Path | None, retrain: str) -> None:
    """Refuse a version whose encoder (its own ``encoder/``, or the local directory it was trained
    with) is gone or holds other weights, in terms of the version: which encoder it needs and
    where. ``TRIAGE_ENCODER`` plays no part in loading a version, so no message names it.
    The packaged e5 is left to ``reopen_encoder``: it is rebuilt when missing."""
    from models.encoder_files import PACKAGED, fingerprint

    info = manifest.get("encoder")
    if not isinstance(info, dict) or "source" not in info or str(info["source"]) == PACKAGED:
        return
    source = str(info["source"])
    own = source == "bundled" and bundled is not None
    path = bundled if own else Path(source).expanduser()
    if path is None or not (own or path.is_absolute() or path.is_dir()):
        return  # a relative path that is not here: reopen_encoder says where to run from
    version = manifest.get("version", "?")
    if not (path / "config.json").is_file():
        raise ArtifactError(
            f"version {version} was trained with the encoder at {path}, which is missing (no "
            f"config.json there): put it back or retrain it with `{retrain}`")
    expected, found = str(info.get("fingerprint")), fingerprint(path)
    if found == expected:
        return
    if own:
        raise ArtifactError(
            f"version {version} carries its own fine-tuned encoder in {path}, which now "
            f"holds other weights ({found[:12]}, not {expected[:12]}): the version directory was "
            f"changed; copy the version again from where it came from or retrain it with "
            f"`{retrain}`")
    raise ArtifactError(
        f"version {version} was trained with the encoder at {path}, which now holds other weights "
        f"({found[:12]}, not {expected[:12]}): put back the encoder it was trained with there or "
        f"retrain it with `{retrain}`")


def new_version_dir(directory: Path | str) -> Path:
    """An empty directory for a new version; one that already holds files is refused."""
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise ArtifactError(f"{directory} is not empty: a version is never overwritten")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def dump_pickle(obj: Any, path: Path) -> None:
    with path.open("wb") as handle:
        pickle.dump(obj, handle, protocol=5)


def save_model(
    model: HierarchicalClassifier, directory: Path, *, manifest: dict[str, Any],
    dispatcher: Any = None, encoder_dir: Path | None = None,
) -> Path:
    """Write a new version directory; refuses a directory that already holds files.

    ``dispatcher`` (routing: responsibility list, gazetteer, learned router) goes to ``routing.pkl``;
    ``encoder_dir`` (a fine-tuned encoder) is copied into ``encoder/``.
    """
    directory = new_version_dir(directory)
    # Plain pickle: joblib.load took 5.6 s for this model, pickle 0.5 s (a 10.7k-appeal Teddy model).
    dump_pickle(model, directory / MODEL_FILE)
    if dispatcher is not None:
        dump_pickle(dispatcher, directory / ROUTING_FILE)
    if encoder_dir is not None:
        shutil.copytree(encoder_dir, directory / ENCODER_DIR)
    (directory / "taxonomy.json").write_text(
        json.dumps(model.taxonomy.to_dict(), ensure_ascii=False), encoding="utf-8")
    full = {
        "format": FORMAT,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "labels": list(model.classes_),
        "leaves": list(model.leaves_.leaf_keys_),
        "unsupported": list(model.unsupported_),
        "taxonomy_version": model.taxonomy.version,
        "routing": dispatcher is not None,
        "packages": package_versions(),
        **manifest,
    }
    _write_json(directory / MANIFEST, full)
    return directory


def read_manifest_json(directory: Path | str, *, fmt: str, kind: str = "model") -> dict[str, Any]:
    """The manifest object of a version directory, if it is of format ``fmt`` (else why not)."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        if not Path(directory).exists():
            raise ArtifactError(f"{directory} does not exist: give a {kind} version directory "
                                f"(one holding {MANIFEST})")
        raise ArtifactError(f"{directory} is not a {kind} version: it has no {MANIFEST}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{path} must hold a JSON object")
    if manifest.get("format") != fmt:
        raise ArtifactError(_other_kind(directory, str(manifest.get("format")), fmt) or
                            f"{path}: format {manifest.get('format')!r} is not one this release "
                            f"loads ({fmt})")
    return manifest


# what each family of versions is and the command that reads it
_FAMILIES = {"triage.classifier.": ("a classifier", "use `triage predict` (or `triage models add` "
                                                    "to serve it)"),
             "triage.sentiment.": ("a sentiment model", "use `triage sentiment` (or "
                                                        "TRIAGE_SENTIMENT_MODEL to serve it)")}


def _other_kind(directory: Path | str, found: str, wanted: str) -> str | None:
    """A version of the other family (a sentiment model given to ``triage predict``, a classifier
    to ``triage sentiment``), said as such; None for any other format."""
    for prefix, (kind, use) in _FAMILIES.items():
        if found.startswith(prefix) and not wanted.startswith(prefix):
            return f"{directory}: this is {kind}: {use}"
    return None


def check_sklearn(manifest: dict[str, Any], directory: Path | str, *, retrain: str) -> None:
    """Pickled scikit-learn objects load only under the minor release that wrote them."""
    saved = str(manifest.get("packages", {}).get("scikit-learn", ""))
    here = package_versions()["scikit-learn"]
    if saved.split(".")[:2] != here.split(".")[:2]:
        raise ArtifactError(f"{directory} was trained with scikit-learn {saved}, this install has "
                            f"{here}: retrain it with `{retrain}` or install the matching version")


def load_pickle(path: Path) -> Any:
    """A pickle this project wrote; a missing, truncated or foreign one is a clear error."""
    try:
        with path.open("rb") as handle:
            return pickle.load(handle)  # noqa: S301 - only versions this project wrote
    except Exception as exc:  # a missing, truncated or foreign pickle raises many kinds
        raise ArtifactError(f"{path} cannot be loaded ({exc})") from None


def read_manifest(directory: Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    manifest = read_manifest_json(directory, fmt=FORMAT)
    for key in ("version", "labels", "taxonomy_version", "packages"):
        if key not in manifest:
            raise ArtifactError(f"{path}: the manifest has no {key!r}")
    if not _VERSION.fullmatch(str(manifest["version"])):
        raise ArtifactError(f"{path}: version {manifest['version']!r} is not a valid version name "
                            "(letters, digits, '.', '_' and '-')")
    return manifest


def load_model(directory: Path) -> LoadedModel:
    """Load a version, refusing one whose manifest it cannot honour (and saying why).

    The process that loads a version serves it: large freed buffers are given back to the
    operating system from here on (``models.process_memory``)."""
    return_large_frees()
    directory = Path(directory)
    manifest = read_manifest(directory)
    check_sklearn(manifest, directory, retrain="triage train")
    model = load_pickle(directory / MODEL_FILE)
    if not isinstance(model, HierarchicalClassifier):
        raise ArtifactError(f"{directory}/{MODEL_FILE} is not a triage classifier")
    if model.taxonomy.version != manifest["taxonomy_version"]:
        raise ArtifactError(f"{directory}: the model's taxonomy does not match its manifest")
    if list(model.classes_) != list(manifest["labels"]):
        raise ArtifactError(f"{directory}: the model's labels do not match its manifest")
    attach_encoder(model, manifest, directory)
    return LoadedModel(model=model, manifest=manifest, path=directory,
                       dispatcher=load_pickle(directory / ROUTING_FILE) if manifest.get("routing")
                       else None)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")


class Registry:
    """Versions under one directory and the ``ACTIVE`` pointer.

    Example:
        >>> reg = Registry(Path("var/models"))
        >>> reg.activate(reg.add(Path("/tmp/my-version")))  # doctest: +SKIP
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def versions(self) -> list[dict[str, Any]]:
        """Manifests of every stored version, oldest first: by ``created_at`` (whole seconds),
        then by when the manifest was written (kept by ``add``), then by id. An id alone does
        not order versions made within one second: its tail is random."""
        if not self.root.is_dir():
            return []
        found = []
        for child in sorted(self.root.iterdir()):
            if child.is_dir() and (child / MANIFEST).is_file():
                try:
                    manifest = read_manifest(child)
                    written = (child / MANIFEST).stat().st_mtime_ns
                except (ArtifactError, OSError):
                    continue
                found.append(((str(manifest.get("created_at", "")), written, child.name),
                              manifest))
        return [manifest for _, manifest in sorted(found, key=lambda pair: pair[0])]

    def listing(self) -> list[dict[str, Any]]:
        """Every stored version (oldest first) with ``score``: a level-1 macro-F1 and the set it
        was measured on, or None. The frozen evaluation set's figure comes first (versions on
        it compare with each other), else the manifest's held-out split."""
        gates = self.gate_scores()
        return [{**m, "score": gates.get(str(m["version"])) or holdout_score(m)}
                for m in self.versions()]

    def gate_scores(self) -> dict[str, dict[str, Any]]:
        """Frozen-set figures from the retrain reports: a candidate's own, and its predecessor's
        where the gate compared with it (a model that never saw the set); later reports win."""
        found: dict[str, dict[str, Any]] = {}
        children = sorted(self.root.iterdir()) if self.root.is_dir() else []
        for child in children:
            report = _read_report(child / RETRAIN_REPORT)
            frozen = report.get("frozen") or {}
            measured = [("previous", "active")] if report.get("compared_with") == "active" else []
            for who, key in [*measured, ("candidate", "candidate")]:
                figures = frozen.get(key) or {}
                if "level1_macro_f1" in figures and report.get(who):
                    found[str(report[who])] = _frozen_score(report, figures)
        return found

    def path(self, version: str) -> Path:
        # a name no version can have (a path, a dot file, one too long for a file name) is
        # refused before it reaches the file system
        if not _VERSION.fullmatch(version) or not (self.root / version / MANIFEST).is_file():
            raise NotFoundError(f"no model version {version!r} in {self.root}")
        return self.root / version

    def add(self, directory: Path) -> str:
        """Copy a trained version directory in; returns its version id."""
        manifest = read_manifest(directory)
        load_model(directory)  # refuse what serving could not load
        version = str(manifest["version"])
        target = self.root / version
        if target.exists():
            raise ArtifactError(f"version {version} is already registered; versions are never replaced")
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".adding-", dir=self.root))
        shutil.copytree(directory, staging / "v")
        os.replace(staging / "v", target)
        staging.rmdir()
        return version

    def new_directory(self, version: str) -> Path:
        """Where a new version is trained (it must not exist yet)."""
        target = self.root / version
        if target.exists():
            raise ArtifactError(f"version {version} already exists")
        return target

    def activate(self, version: str) -> None:
        """Point ``ACTIVE`` at a version, atomically."""
        self.path(version)
        pointer = self.root / "ACTIVE"
        tmp = self.root / f".ACTIVE.{os.getpid()}"
        tmp.write_text(version + "\n", encoding="utf-8")
        os.replace(tmp, pointer)

    def active_version(self) -> str | None:
        pointer = self.root / "ACTIVE"
        if not pointer.is_file():
            return None
        version = pointer.read_text(encoding="utf-8").strip()
        return version or None

    def load_active(self) -> LoadedModel | None:
        version = self.active_version()
        return load_model(self.path(version)) if version else None

    def delete(self, version: str, home: Path | None = None) -> int:
        """Remove a version that is not active (an ``accurate`` one holds its encoder: about 0.5
        GB); returns the bytes freed. It is first moved aside in one rename, so a listing or a
        service never sees it half removed. With ``home`` (``TRIAGE_HOME``), the ONNX export of
        a fine-tuned encoder the version carried goes too, unless another version carries the
        same weights."""
        path = self.path(version)
        if version == self.active_version():
            raise ArtifactError(f"version {version} is active: activate another version before "
                                "deleting it")
        if self.in_use_by(version):
            raise ArtifactError(f"version {version} is in use: a retraining started from it is "
                                "running (its candidate keeps the version's encoder); delete it "
                                "once the retraining has finished")
        users = self.encoder_users(version)
        if users:
            names = ", ".join(users)
            raise ArtifactError(f"version {version} holds the encoder of {names} (trained with "
                                f"TRIAGE_ENCODER pointed into it), which cannot load without it: "
                                f"delete {names} first")
        encoder = read_manifest(path).get("encoder") or {}
        self.sweep(home)
        freed = version_files.remove_tree(path, self.root, f"version {version}")
        weights = encoder.get("fingerprint")
        if home is not None and encoder.get("source") == "bundled" and weights and not any(
                (m.get("encoder") or {}).get("fingerprint") == weights for m in self.versions()):
            from models.onnx_export import export_dir

            export = export_dir(home, str(weights))
            if export.is_dir():
                freed += version_files.remove_tree(export, export.parent,
                                                   f"the ONNX export of version {version}")
        return freed

    def sweep(self, home: Path | None = None) -> int:
        """Remove what deletions a crash (or a file that could not be removed) left set aside:
        ``.deleting-*`` directories whose process has ended, in the registry and, with ``home``,
        among the encoders' exports; returns the bytes freed. They are never listed, so nothing
        else would ever free them."""
        from models.onnx_export import export_dir

        places = [self.root] + ([export_dir(home, "x").parent] if home is not None else [])
        return sum(version_files.sweep(place) for place in places)

    def encoder_users(self, version: str) -> list[str]:
        """The other versions whose encoder is a directory inside ``version`` (trained with
        ``TRIAGE_ENCODER`` pointed at its fine-tuned ``encoder/``): they need it to load."""
        inside = self.path(version).resolve()
        users = []
        for m in self.versions():
            source = str((m.get("encoder") or {}).get("source") or "")
            if m["version"] == version or source in ("", "bundled", "e5-small"):
                continue
            if Path(source).expanduser().resolve().is_relative_to(inside):
                users.append(str(m["version"]))
        return users

    def in_use(self, version: str) -> contextlib.AbstractContextManager[None]:
        """While the block runs, ``version`` is in use by this process (a retraining reads its
        files to the end): ``delete`` refuses it and ``prune`` keeps it, even once another
        version is active; the mark of a killed process is disregarded."""
        return version_files.in_use(self.root, version)

    def in_use_by(self, version: str) -> list[int]:
        """The running processes that use ``version`` (``in_use``)."""
        return version_files.users(self.root, version)

    def prune(self, keep: int, home: Path | None = None) -> list[tuple[str, int]]:
        """Delete every version but the active one and the ``keep`` newest others (and, with
        ``home``, their encoders' exports, as ``delete``); one a running retraining uses, or
        whose encoder a kept version uses, is kept too. Returns the deleted versions (oldest
        first) and the bytes each freed."""
        if keep < 0:
            raise ArtifactError(f"keep must be 0 or more, not {keep}")
        active = self.active_version()
        others = [str(m["version"]) for m in self.versions() if m["version"] != active]
        doomed = others[: max(0, len(others) - keep)]
        deleted = []
        for version in reversed(doomed):  # newest first: a version's users are newer than it
            if not self.in_use_by(version) and not self.encoder_users(version):
                deleted.append((version, self.delete(version, home)))
        return deleted[::-1]



def holdout_score(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The level-1 macro-F1 a version measured on a held-out split of its training data."""
    metrics = manifest.get("metrics") or {}
    if "holdout_level1_macro_f1" not in metrics:
        return None
    share = float(metrics.get("holdout_fraction", 0.0))
    return {"level1_macro_f1": metrics["holdout_level1_macro_f1"],
            "measured_on": f"held-out {share:.0%} of its training data "
                           f"({metrics.get('holdout_n', '?')} appeals)"}


def _frozen_score(report: dict[str, Any], figures: dict[str, Any]) -> dict[str, Any]:
    source = (report.get("evaluation") or {}).get("source")
    named = f": {source}" if source else ""
    return {"level1_macro_f1": figures["level1_macro_f1"],
            "measured_on": f"frozen evaluation set{named} ({figures.get('n', '?')} appeals)"}


def _read_report(path: Path) -> dict[str, Any]:
    """A retrain report, or an empty one where there is none (or it cannot be read)."""
    if not path.is_file():
        return {}
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return report if isinstance(report, dict) else {}
