"""Tests for model artifacts, the version registry and the model holder that serving uses."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from datetime import datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from models.artifacts import (
    FORMAT,
    LoadedModel,
    Registry,
    data_hash,
    load_model,
    read_manifest,
    save_model,
)
from models.classifier import HierarchicalClassifier
from models.encoder_files import fingerprint
from models.serving import ModelHolder
from triage.errors import ArtifactError, ModelNotReadyError, NotFoundError
from triage.settings import PROJECT_ROOT
from triage.tables import read_table
from triage.taxonomy import Taxonomy

TAX = Taxonomy.from_records([
    {"path": ("教育", "招生入学"), "description": "学区划分、入学报名和学位分配",
     "keywords": ["学区", "报名"]},
    {"path": ("环境保护", "施工噪音"), "description": "工地夜间施工噪音扰民",
     "keywords": ["工地", "噪音"]},
    {"path": ("交通出行", "公交线路"), "description": "公交线路调整、班次太少",
     "keywords": ["公交", "班次"]},
])
TRAIN = [
    ("孩子今年上小学，学区划分后报名系统进不去", "教育"),
    ("积分入学报名交了材料，学位结果迟迟不公布", "教育"),
    ("旁边工地夜间施工，噪音吵得整晚睡不着", "环境保护"),
    ("工地凌晨还在打桩，噪音扰民严重", "环境保护"),
    ("12路公交班次太少，早高峰等车四十分钟", "交通出行"),
    ("公交线路调整后小区门口没有站了", "交通出行"),
]
TEXTS = [t for t, _ in TRAIN]
LABELS = [label for _, label in TRAIN]
LABELS_IN_ORDER = ["教育", "环境保护", "交通出行"]  # the classes_ of the tiny model
TINY_VERSION = "tiny-v1"


@pytest.fixture(scope="module")
def tiny_model() -> HierarchicalClassifier:
    return HierarchicalClassifier(taxonomy=TAX).fit(TEXTS, LABELS)


@pytest.fixture(scope="module")
def tiny_saved(
    tiny_model: HierarchicalClassifier, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A version directory of the tiny model, saved once; copy it before changing it."""
    return save_model(tiny_model, tmp_path_factory.mktemp("saved") / TINY_VERSION, manifest={
        "version": TINY_VERSION, "training_data_sha256": data_hash(TEXTS, LABELS), "metrics": {}})


@pytest.fixture
def version_dir(tiny_saved: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_saved, tmp_path / TINY_VERSION))


@pytest.fixture
def registry(trained_home: Path, tmp_path: Path) -> Registry:
    """A private copy of the trained registry (the session one is shared with other tests)."""
    return Registry(Path(shutil.copytree(trained_home / "models", tmp_path / "models")))


def edit_manifest(directory: Path, **changes: object) -> None:
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest.update(changes)
    path.write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")


# --------------------------------------------------------------------------- #
# save / load
# --------------------------------------------------------------------------- #


def test_round_trip_gives_identical_probabilities_and_paths(
    demo_model: HierarchicalClassifier, tmp_path: Path
) -> None:
    texts = read_table(PROJECT_ROOT / "datasets" / "demo_test.csv").column("text")
    save_model(demo_model, tmp_path / "v1", manifest={"version": "v1"})
    loaded = load_model(tmp_path / "v1")
    assert loaded.version == "v1" and loaded.path == tmp_path / "v1"
    assert loaded.model.classes_ == demo_model.classes_
    np.testing.assert_array_equal(
        loaded.model.predict_proba(texts), demo_model.predict_proba(texts))
    assert [asdict(p) for p in loaded.model.predict_paths(texts)] == [
        asdict(p) for p in demo_model.predict_paths(texts)]


def test_manifest_describes_the_trained_version(
    loaded_demo: LoadedModel, demo_data: tuple[list[str], list[str]]
) -> None:
    manifest, model = loaded_demo.manifest, loaded_demo.model
    assert manifest["format"] == FORMAT
    assert manifest["labels"] == model.classes_
    assert manifest["leaves"] == model.leaves_.leaf_keys_
    assert all(leaf.split("/")[0] in manifest["labels"] for leaf in manifest["leaves"])
    assert manifest["unsupported"] == model.unsupported_
    assert manifest["taxonomy_version"] == model.taxonomy.version
    assert manifest["packages"]["scikit-learn"] == metadata.version("scikit-learn")
    assert manifest["training_data_sha256"] == data_hash(*demo_data)
    assert isinstance(manifest["metrics"], dict)
    assert datetime.fromisoformat(manifest["created_at"]).tzinfo is not None
    # The taxonomy the model was trained for travels with it.
    saved = json.loads((loaded_demo.path / "taxonomy.json").read_text(encoding="utf-8"))
    assert Taxonomy.from_dict(saved).version == manifest["taxonomy_version"]


def test_save_model_refuses_a_directory_that_holds_files(
    tiny_model: HierarchicalClassifier, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(ArtifactError, match="not empty"):
        save_model(tiny_model, tmp_path, manifest={"version": "v1"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


# --------------------------------------------------------------------------- #
# load_model refuses what it cannot honour, and says why
# --------------------------------------------------------------------------- #


def _other_sklearn_minor() -> str:
    major, minor = metadata.version("scikit-learn").split(".")[:2]
    return f"{major}.{int(minor) + 1}.0"


def _no_manifest(d: Path) -> None:
    (d / "manifest.json").unlink()


def _unknown_format(d: Path) -> None:
    edit_manifest(d, format="triage.classifier.v0")


def _labels_mismatch(d: Path) -> None:
    edit_manifest(d, labels=list(reversed(LABELS_IN_ORDER)))


def _other_sklearn(d: Path) -> None:
    packages = read_manifest(d)["packages"]
    edit_manifest(d, packages={**packages, "scikit-learn": _other_sklearn_minor()})


def _corrupted(d: Path) -> None:
    data = (d / "model.pkl").read_bytes()
    (d / "model.pkl").write_bytes(data[: len(data) // 2])



@pytest.mark.parametrize(("breakage", "why"), [
    (_no_manifest, "no manifest.json"),
    (_unknown_format, "format 'triage.classifier.v0' is not one this release loads"),
    (_labels_mismatch, "labels do not match"),
    (_other_sklearn, "trained with scikit-learn"),
    (_corrupted, "model.pkl cannot be loaded"),
], ids=["no-manifest", "unknown-format", "labels-mismatch", "other-sklearn-minor", "corrupted"])
def test_load_model_refuses_a_version_it_cannot_honour(
    version_dir: Path, breakage: object, why: str
) -> None:
    assert load_model(version_dir).model.classes_ == LABELS_IN_ORDER  # fine before the damage
    breakage(version_dir)  # type: ignore[operator]
    with pytest.raises(ArtifactError, match=why):
        load_model(version_dir)


def test_the_sklearn_refusal_names_both_versions_and_the_fix(version_dir: Path) -> None:
    _other_sklearn(version_dir)
    with pytest.raises(ArtifactError) as info:
        load_model(version_dir)
    message = str(info.value)
    assert _other_sklearn_minor() in message
    assert metadata.version("scikit-learn") in message
    assert "triage train" in message


# --------------------------------------------------------------------------- #
# the registry
# --------------------------------------------------------------------------- #


def test_registry_add_copies_a_version_and_never_adds_it_twice(
    registry: Registry, version_dir: Path
) -> None:
    active = registry.active_version()
    assert active is not None
    assert registry.add(version_dir) == TINY_VERSION
    assert (registry.root / TINY_VERSION / "model.pkl").is_file()
    assert (version_dir / "model.pkl").is_file()  # copied, not moved
    assert registry.active_version() == active  # adding does not activate
    with pytest.raises(ArtifactError, match="already registered"):
        registry.add(version_dir)
    assert load_model(registry.path(TINY_VERSION)).model.classes_ == LABELS_IN_ORDER


def test_registry_add_refuses_a_version_serving_could_not_load(
    registry: Registry, version_dir: Path
) -> None:
    _corrupted(version_dir)
    with pytest.raises(ArtifactError, match="cannot be loaded"):
        registry.add(version_dir)
    assert not (registry.root / TINY_VERSION).exists()


def test_activate_moves_the_active_pointer_and_versions_lists_both(
    registry: Registry, version_dir: Path
) -> None:
    old = registry.active_version()
    registry.add(version_dir)
    registry.activate(TINY_VERSION)
    assert registry.active_version() == TINY_VERSION
    assert (registry.root / "ACTIVE").read_text(encoding="utf-8").strip() == TINY_VERSION
    loaded = registry.load_active()
    assert loaded is not None and loaded.version == TINY_VERSION
    assert sorted(m["version"] for m in registry.versions()) == sorted([old, TINY_VERSION])
    registry.activate(old)  # rollback: the old version is still there
    assert registry.active_version() == old


def test_activating_an_unknown_version_raises_and_keeps_the_pointer(registry: Registry) -> None:
    old = registry.active_version()
    for bad in ["no-such-version", "../models", ""]:
        with pytest.raises(NotFoundError):
            registry.activate(bad)
    assert registry.active_version() == old


# --------------------------------------------------------------------------- #
# serving
# --------------------------------------------------------------------------- #


def test_model_holder_switches_to_a_newly_activated_version_without_restart(
    registry: Registry, version_dir: Path
) -> None:
    holder = ModelHolder(registry)
    assert not holder.ready
    with pytest.raises(ModelNotReadyError):
        holder.current()
    first = registry.load_active()
    assert first is not None
    holder.set(first)
    assert holder.ready and holder.current().version == first.version

    registry.add(version_dir)
    registry.activate(TINY_VERSION)
    current = holder.current()
    assert current.version == TINY_VERSION
    assert current.model.classes_ == LABELS_IN_ORDER
    assert current.model.predict(["工地噪音太吵"]) == ["环境保护/施工噪音"]

    registry.activate(first.version)
    assert holder.current().version == first.version
    assert holder.current().model.classes_ == first.model.classes_


@pytest.mark.parametrize("version", ["../escaped", "", ".hidden"])
def test_registry_refuses_a_version_name_that_is_a_path(tmp_path: Path, loaded_demo, version: str) -> None:
    source = tmp_path / "v"
    shutil.copytree(loaded_demo.path, source)
    manifest = json.loads((source / "manifest.json").read_text(encoding="utf-8"))
    manifest["version"] = version
    (source / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ArtifactError, match="not a valid version name"):
        Registry(tmp_path / "models").add(source)
    assert not (tmp_path / "escaped").exists()


def test_manifest_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("[]", encoding="utf-8")
    with pytest.raises(ArtifactError, match="JSON object"):
        read_manifest(tmp_path)


# --------------------------------------------------------------------------- #
# an accurate version whose bundled encoder has a unigram (XLM-R-like) vocabulary
# --------------------------------------------------------------------------- #


@pytest.mark.slow
def test_a_version_saved_before_the_vocabulary_cut_loads_cut_and_predicts_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from test_encoder import build_tiny_unigram_encoder

    from models import encoder_vocab
    from models.artifacts import ENCODER_DIR, encoder_manifest
    from models.encoder import Encoder
    from triage.settings import get_settings

    monkeypatch.setenv("TRIAGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRIAGE_ENCODER_BACKEND", "onnx")
    get_settings.cache_clear()
    tuned = build_tiny_unigram_encoder(tmp_path / "tuned", TEXTS)
    whole = Encoder(tuned, threads=1, cut_vocabulary=False, max_length=128, max_chars=160)
    model = HierarchicalClassifier(taxonomy=TAX, encoder_weight=1.0, cascade=1.01).fit(
        TEXTS, LABELS, embed=whole.encode)
    model.attach_encoder(whole)
    whole.clear_cache()  # an appeal's embedding depends on its batch (int8 activations)
    expected = model.predict_proba(TEXTS + ["公交站台太远"])
    # as the release before the cut saved it: the bundled encoder without the cut files
    version = save_model(model, tmp_path / "v-old", encoder_dir=tuned, manifest={
        "version": "v-old", "encoder": encoder_manifest(whole, "bundled")})
    assert encoder_vocab.pruned_files(version / ENCODER_DIR) is None
    try:
        loaded = load_model(version)
        assert loaded.model.encoder_.vocabulary == "cut"
        # the cut lives under TRIAGE_HOME, keyed by the weights; the version is left as written
        export = tmp_path / "home" / "encoders" / "onnx" / fingerprint(version / ENCODER_DIR)
        assert encoder_vocab.pruned_files(version / ENCODER_DIR, export) is not None
        assert encoder_vocab.pruned_files(version / ENCODER_DIR) is None
        np.testing.assert_array_equal(loaded.model.predict_proba(TEXTS + ["公交站台太远"]), expected)
        # other weights in its encoder/ are still refused, saying what to do
        stamp = version / ENCODER_DIR / "triage-encoder.json"
        stamp.write_text(json.dumps({**json.loads(stamp.read_text()), "tensor_sha256": "0" * 64}))
        with pytest.raises(ArtifactError, match="v-old carries its own fine-tuned encoder in "
                           ".*, which now holds other weights"):
            load_model(version)
    finally:
        get_settings.cache_clear()


# --------------------------------------------------------------------------- #
# a version's encoder gone or changed: said in terms of the version, not of TRIAGE_ENCODER
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def encoder_model(tiny_encoder: Path) -> tuple[HierarchicalClassifier, object]:
    from models.encoder import Encoder

    encoder = Encoder(tiny_encoder, backend="torch")
    model = HierarchicalClassifier(taxonomy=TAX, encoder_weight=1.0, cascade=1.01).fit(
        TEXTS, LABELS, embed=encoder.encode)
    return model, encoder


def _encoder_version(encoder_model, directory: Path, *, source: str,
                     bundle: Path | None = None) -> Path:
    from models.artifacts import encoder_manifest

    model, encoder = encoder_model
    return save_model(model, directory, encoder_dir=bundle, manifest={
        "version": directory.name, "encoder": encoder_manifest(encoder, source)})


def test_a_version_whose_bundled_encoder_is_missing_says_so(
    encoder_model, tiny_encoder: Path, tmp_path: Path,
) -> None:
    version = _encoder_version(encoder_model, tmp_path / "v-tuned", source="bundled",
                               bundle=tiny_encoder)
    shutil.rmtree(version / "encoder")
    with pytest.raises(ArtifactError) as info:
        load_model(version)
    assert info.value.message.startswith(
        f"version v-tuned was trained with the encoder at {version / 'encoder'}, which is "
        "missing")
    assert "put it back or retrain" in info.value.message
    assert "neither" not in info.value.message and "TRIAGE_ENCODER" not in info.value.message


def test_a_version_whose_local_encoder_was_moved_says_so(
    encoder_model, tiny_encoder: Path, tmp_path: Path,
) -> None:
    local = Path(shutil.copytree(tiny_encoder, tmp_path / "bge-base-zh"))
    version = _encoder_version(encoder_model, tmp_path / "v-local", source=str(local))
    local.rename(tmp_path / "moved")
    with pytest.raises(ArtifactError) as info:
        load_model(version)
    assert info.value.message.startswith(
        f"version v-local was trained with the encoder at {local}, which is missing")
    assert "put it back or retrain" in info.value.message
    assert "neither" not in info.value.message


def test_a_bundled_encoder_with_other_weights_does_not_blame_the_setting(
    encoder_model, tiny_encoder: Path, tmp_path: Path,
) -> None:
    from tiny_encoder import build_tiny_encoder

    version = _encoder_version(encoder_model, tmp_path / "v-tuned", source="bundled",
                               bundle=tiny_encoder)
    shutil.rmtree(version / "encoder")
    build_tiny_encoder(version / "encoder", TEXTS, seed=1)  # same place, other weights
    with pytest.raises(ArtifactError) as info:
        load_model(version)
    message = info.value.message
    assert "holds other weights" in message and str(version / "encoder") in message
    assert "TRIAGE_ENCODER" not in message
    assert "copy the version again" in message and "triage train" in message


@pytest.mark.slow
def test_deleting_a_fine_tuned_version_frees_its_encoder_export_once_no_version_uses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loaded_demo,
) -> None:
    """An accurate version's fine-tuned encoder is exported to ONNX under TRIAGE_HOME when it is
    loaded; deleting the version frees that export too, unless another version carries the same
    weights (a copy registered twice, say). The active version is never deleted."""
    from test_encoder import build_tiny_unigram_encoder

    from models.artifacts import ENCODER_DIR, encoder_manifest
    from models.encoder import Encoder
    from triage.settings import get_settings

    home = tmp_path / "home"
    monkeypatch.setenv("TRIAGE_HOME", str(home))
    monkeypatch.setenv("TRIAGE_ENCODER_BACKEND", "onnx")
    get_settings.cache_clear()
    try:
        tuned = build_tiny_unigram_encoder(tmp_path / "tuned", TEXTS)
        encoder = Encoder(tuned, threads=1, max_length=128, max_chars=160,
                          exports=home / "encoders" / "onnx")
        model = HierarchicalClassifier(taxonomy=TAX, encoder_weight=1.0, cascade=1.01).fit(
            TEXTS, LABELS, embed=encoder.encode)
        model.attach_encoder(encoder)
        registry = Registry(home / "models")
        registry.activate(registry.add(loaded_demo.path))
        for name in ("v-a", "v-b"):
            save_model(model, tmp_path / name, encoder_dir=tuned, manifest={
                "version": name, "encoder": encoder_manifest(encoder, "bundled")})
            registry.add(tmp_path / name)
        # training exported the encoder under TRIAGE_HOME, keyed by its weights; both use it
        export = home / "encoders" / "onnx" / fingerprint(home / "models" / "v-a" / ENCODER_DIR)
        assert export.is_dir()
        with pytest.raises(ArtifactError, match="is active"):
            registry.delete(loaded_demo.version, home)
        kept = registry.delete("v-a", home)
        assert export.is_dir() and not (home / "models" / "v-a").exists()
        freed = registry.delete("v-b", home)
        assert not export.exists() and freed > kept
        assert [m["version"] for m in registry.versions()] == [loaded_demo.version]
        assert not [p for p in (home / "models").iterdir() if p.name.startswith(".deleting")]
    finally:
        get_settings.cache_clear()


def test_a_version_that_cannot_be_moved_aside_is_kept_and_leaves_nothing_behind(
    registry: Registry, version_dir: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A read-only version directory cannot be renamed: a domain error (one line on the command
    line, 409 over HTTP, not a 500), the version listed as before and no staging directory."""
    import os

    registry.add(version_dir)
    rename = os.replace

    def refused(source, target):
        if Path(source).name == TINY_VERSION:
            raise PermissionError(13, "Permission denied", str(source))
        return rename(source, target)

    monkeypatch.setattr(os, "replace", refused)
    with pytest.raises(ArtifactError, match=r"cannot be deleted \(permission denied\)"):
        registry.delete(TINY_VERSION)
    assert TINY_VERSION in [m["version"] for m in registry.versions()]
    assert not list(registry.root.glob(".deleting-*"))


def test_what_an_interrupted_deletion_set_aside_is_freed_by_the_next_prune(
    registry: Registry, version_dir: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A deletion killed after its rename leaves the version's files set aside (never listed):
    the next prune frees them and says so."""
    import subprocess
    import sys

    from typer.testing import CliRunner

    from api.cli import app
    from triage.settings import get_settings

    registry.add(version_dir)
    killed = ("import os, shutil, sys; from pathlib import Path; "
              "from models.artifacts import Registry; "
              "shutil.rmtree = lambda *a, **k: os._exit(9); "
              "Registry(Path(sys.argv[1])).delete(sys.argv[2])")
    done = subprocess.run([sys.executable, "-c", killed, str(registry.root), TINY_VERSION],
                          cwd=PROJECT_ROOT, check=False)
    assert done.returncode == 9
    left = list(registry.root.glob(".deleting-*"))
    assert len(left) == 1 and (left[0] / "v" / "model.pkl").is_file()
    assert TINY_VERSION not in [m["version"] for m in registry.versions()]
    monkeypatch.setenv("TRIAGE_HOME", str(registry.root.parent))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["models", "prune"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "removed what interrupted deletions left" in result.stdout
    assert not list(registry.root.glob(".deleting-*"))


def test_a_version_whose_encoder_another_version_uses_is_not_deleted(
    registry: Registry, version_dir: Path,
) -> None:
    """A version trained with TRIAGE_ENCODER pointed at another version's fine-tuned encoder
    needs that directory to load: the other version is refused by delete and kept by prune
    while it is there."""
    for name in ("v-a", "v-b"):
        shutil.copytree(version_dir, registry.root / name)
        edit_manifest(registry.root / name, version=name)
    (registry.root / "v-a" / "encoder").mkdir()
    (registry.root / "v-a" / "encoder" / "config.json").write_text("{}", encoding="utf-8")
    edit_manifest(registry.root / "v-b", encoder={
        "source": str(registry.root / "v-a" / "encoder"), "fingerprint": "f" * 64})
    with pytest.raises(ArtifactError, match="holds the encoder of v-b"):
        registry.delete("v-a")
    assert registry.prune(1) == []  # v-b, the newest, is kept: so is v-a
    assert {"v-a", "v-b"} <= {m["version"] for m in registry.versions()}
    assert [v for v, _ in registry.prune(0)] == ["v-a", "v-b"]
    assert [m["version"] for m in registry.versions()] == [registry.active_version()]


def test_prune_keeps_the_version_made_last_even_within_one_second(
    registry: Registry, version_dir: Path,
) -> None:
    """Version ids end in random hex: two made in the same second sort by chance. The newest
    is the one written last (as `triage models add` keeps it), whatever its id."""
    import os

    for name, written in (("v-b", 1_000), ("v-a", 2_000)):  # v-a made after v-b
        shutil.copytree(version_dir, registry.root / name)
        edit_manifest(registry.root / name, version=name, created_at="2026-12-07T01:02:03+00:00")
        os.utime(registry.root / name / "manifest.json", ns=(written, written))
    assert [m["version"] for m in registry.versions() if m["version"].startswith("v-")] == \
        ["v-b", "v-a"]
    assert [v for v, _ in registry.prune(1)] == ["v-b"]
    assert {m["version"] for m in registry.versions()} == {registry.active_version(), "v-a"}
