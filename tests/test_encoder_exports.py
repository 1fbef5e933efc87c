"""Where an encoder's ONNX export and cut vocabulary live: under TRIAGE_HOME, keyed by the
weights' fingerprint; never inside the user's encoder directory or a saved version."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from models.encoder import Encoder, open_encoder, reopen_encoder
from models.encoder_files import fingerprint
from triage.settings import get_settings

APPEALS = ["小区楼下的餐馆油烟太大，熏得住户没法开窗", "孩子的学籍转不过来，学校让我们自己去教育局问",
           "路灯不亮了"]
pytestmark = pytest.mark.slow  # each exports a tiny model to ONNX (a few seconds)


def _listing(directory: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(directory.rglob("*"))}


def _copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("onnx"))
    return target


def _put_weights(source: Path, target: Path) -> None:
    """Replace the weights (and their stamp) in ``target`` by those of ``source``."""
    for name in ("model.safetensors", "triage-encoder.json"):
        shutil.copy2(source / name, target / name)


@pytest.fixture(scope="module")
def other_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny encoder's vocabulary and shape with other (seeded) weights."""
    from tiny_encoder import build_tiny_encoder

    from triage.settings import PROJECT_ROOT
    from triage.tables import read_table

    texts = read_table(PROJECT_ROOT / "datasets" / "demo_appeals.csv").column("text")
    return build_tiny_encoder(tmp_path_factory.mktemp("other"), texts, seed=1)


def test_replaced_weights_in_an_encoder_directory_are_exported_again_and_served(
    tiny_encoder: Path, other_weights: Path, tmp_path: Path,
) -> None:
    local = _copy(tiny_encoder, tmp_path / "enc")
    home = tmp_path / "home"
    before = open_encoder(local, home).encode(APPEALS)
    _put_weights(other_weights, local)
    after = open_encoder(local, home)
    assert after.fingerprint == fingerprint(other_weights) != fingerprint(tiny_encoder)
    expected = Encoder(other_weights, backend="torch", threads=1).encode(APPEALS)
    assert (after.encode(APPEALS) * expected).sum(axis=1).min() >= 0.99
    assert not np.allclose(after.encode(APPEALS), before, atol=1e-3)
    exports = sorted(p.name for p in (home / "encoders" / "onnx").iterdir())
    assert exports == sorted([fingerprint(tiny_encoder), fingerprint(other_weights)])


def test_an_export_inside_an_encoder_directory_of_other_weights_is_not_served(
    tiny_encoder: Path, other_weights: Path, tmp_path: Path,
) -> None:
    """An encoder directory exported in place by an earlier release (onnx/ inside, the report
    naming no weights), whose weights were then replaced."""
    local = _copy(tiny_encoder, tmp_path / "enc")
    Encoder(local, threads=1)  # the export in place, as earlier releases wrote it
    report = local / "onnx" / "model_int8.json"
    report.write_text(json.dumps({"tried": json.loads(report.read_text())["tried"]}))
    _put_weights(other_weights, local)
    served = open_encoder(local, tmp_path / "home")
    expected = Encoder(other_weights, backend="torch", threads=1).encode(APPEALS)
    assert (served.encode(APPEALS) * expected).sum(axis=1).min() >= 0.99


def test_exports_go_under_triage_home_and_the_encoder_directory_is_left_as_it_was(
    tiny_encoder: Path, tmp_path: Path,
) -> None:
    local = _copy(tiny_encoder, tmp_path / "enc")
    written = _listing(local)
    steps: list[tuple[str, float]] = []
    served = open_encoder(local, tmp_path / "home", progress=lambda s, d: steps.append((s, d)))
    assert served.encode(APPEALS).shape == (3, 32)
    assert _listing(local) == written  # a read-only directory would do
    export = tmp_path / "home" / "encoders" / "onnx" / fingerprint(local)
    assert (export / "model_int8.onnx").is_file()
    assert json.loads((export / "model_int8.json").read_text())["fingerprint"] == fingerprint(local)
    assert [d for s, d in steps if s.startswith("exporting the encoder")] == [0.0, 1.0]


def test_a_unigram_encoder_is_cut_under_triage_home_too(tmp_path: Path) -> None:
    from test_encoder import MIXED, build_tiny_unigram_encoder

    local = build_tiny_unigram_encoder(tmp_path / "enc", MIXED)
    written = _listing(local)
    steps: list[str] = []
    served = open_encoder(local, tmp_path / "home", progress=lambda s, d: steps.append(s))
    assert served.vocabulary == "cut"
    assert _listing(local) == written
    export = tmp_path / "home" / "encoders" / "onnx" / fingerprint(local)
    assert {"model_int8.onnx", "model_int8_zh.onnx", "tokenizer_zh.json"} <= {
        p.name for p in export.iterdir()}
    assert any(s.startswith("cutting the vocabulary") for s in steps)


def _reopen(info: dict, version: Path, **kwargs) -> Encoder:
    return reopen_encoder(info, version, needs="the model", retrain="triage train",
                          bundled=version / "encoder", **kwargs)


@pytest.fixture
def onnx_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TRIAGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRIAGE_ENCODER_BACKEND", "onnx")
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()


def test_predicting_with_a_version_leaves_its_directory_as_it_was_written(
    tiny_encoder: Path, tmp_path: Path, onnx_home: Path,
) -> None:
    version = tmp_path / "v"
    _copy(tiny_encoder, version / "encoder")
    written = _listing(version)
    info = {"source": "bundled", "fingerprint": fingerprint(tiny_encoder), "max_length": 128,
            "max_chars": 160}
    steps: list[str] = []
    encoder = _reopen(info, version, progress=lambda s, d: steps.append(s))
    assert encoder.encode(APPEALS).shape == (3, 32)
    assert _listing(version) == written
    assert any(s.startswith("exporting the encoder") for s in steps)


def test_without_a_progress_callback_the_export_is_still_announced(
    tiny_encoder: Path, tmp_path: Path, onnx_home: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    version = tmp_path / "v"
    _copy(tiny_encoder, version / "encoder")
    info = {"source": "bundled", "fingerprint": fingerprint(tiny_encoder), "max_length": 128,
            "max_chars": 160}
    _reopen(info, version)
    said = [r.getMessage() for r in caplog.records if "exporting the encoder" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("preparing the encoder: exporting")


@pytest.mark.parametrize("kind", ["unigram, cut", "wordpiece, report names its weights"])
def test_a_version_written_with_its_export_inside_still_loads_without_exporting_again(
    tiny_encoder: Path, tmp_path: Path, onnx_home: Path, monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    """Versions written by earlier releases keep ``encoder/onnx/``: used, not exported again,
    when its report names these weights or a cut was made of it with these weights (the
    release before this one recorded the weights only there)."""
    from test_encoder import MIXED, build_tiny_unigram_encoder

    from models import onnx_export

    version = tmp_path / "v"
    if kind.startswith("unigram"):
        bundled = build_tiny_unigram_encoder(version / "encoder", MIXED)
    else:
        bundled = _copy(tiny_encoder, version / "encoder")
    expected = Encoder(bundled, threads=1).encode(APPEALS)  # exports (and cuts) in place
    if kind.startswith("unigram"):  # as the previous release wrote it: no weights in the report
        report = bundled / "onnx" / "model_int8.json"
        report.write_text(json.dumps({"tried": json.loads(report.read_text())["tried"]}))
    written = _listing(version)

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_export, "export_int8", refuse)
    info = {"source": "bundled", "fingerprint": fingerprint(bundled), "max_length": 128,
            "max_chars": 320}
    served = _reopen(info, version)
    assert served.vocabulary == ("cut" if kind.startswith("unigram") else "full")
    np.testing.assert_allclose(served.encode(APPEALS), expected, atol=1e-6)
    assert _listing(version) == written
