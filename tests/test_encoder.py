"""The sentence encoder on a tiny BERT built from a config: shapes, cache, long texts, ONNX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.encoder import ONNX_FILE, Encoder, head_tail, locate_encoder
from triage.errors import ArtifactError

APPEALS = [
    "小区楼下的餐馆油烟太大，熏得住户没法开窗",
    "孩子的学籍转不过来，学校让我们自己去教育局问",
    "公交站台的顶棚坏了一个多月，下雨天乘客只能淋雨等车",
    "路灯不亮了",
]


@pytest.fixture(scope="module")
def torch_encoder(tiny_encoder: Path) -> Encoder:
    return Encoder(tiny_encoder, backend="torch", threads=1)


def test_embeddings_have_one_unit_row_per_text(torch_encoder: Encoder) -> None:
    vectors = torch_encoder.encode(APPEALS)
    assert vectors.shape == (len(APPEALS), torch_encoder.dim)
    assert torch_encoder.dim == 32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert torch_encoder.encode([]).shape == (0, 32)


def test_cached_texts_come_back_identical_without_recomputing(
    tiny_encoder: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    encoder = Encoder(tiny_encoder, backend="torch", threads=1, batch_size=2)
    batches: list[int] = []
    embed = encoder._embed_batch
    monkeypatch.setattr(encoder, "_embed_batch", lambda texts: batches.append(len(texts)) or embed(texts))
    first = encoder.encode(APPEALS)
    assert sum(batches) == len(APPEALS)
    again = encoder.encode([APPEALS[2], " 路灯不亮了\n", APPEALS[0]])  # outer spaces do not count
    assert sum(batches) == len(APPEALS)
    assert np.array_equal(again, first[[2, 3, 0]])
    encoder.encode(["井盖丢了"])
    assert sum(batches) == len(APPEALS) + 1


def test_a_long_appeal_keeps_its_complaint_and_its_request() -> None:
    text = "投诉：" + "情况说明" * 100 + "请尽快处理"
    kept = head_tail(text, 60)
    assert len(kept) == 60
    assert kept.startswith("投诉：") and kept.endswith("请尽快处理")
    assert head_tail("路灯不亮了", 60) == "路灯不亮了"


def test_a_directory_without_config_json_is_refused_saying_why(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    with pytest.raises(ArtifactError, match="config.json"):
        locate_encoder(tmp_path / "model", tmp_path)


def test_a_model_directory_without_a_tokenizer_is_refused(tmp_path: Path, tiny_encoder: Path) -> None:
    (tmp_path / "config.json").write_text((tiny_encoder / "config.json").read_text())
    with pytest.raises(ArtifactError, match="no tokenizer"):
        locate_encoder(tmp_path, tmp_path)
    assert locate_encoder(tiny_encoder, tmp_path) == tiny_encoder


@pytest.mark.slow
def test_int8_onnx_embeddings_agree_with_torch(tiny_encoder: Path, torch_encoder: Encoder) -> None:
    onnx = Encoder(tiny_encoder, threads=1)  # exports onnx/model_int8.onnx on first load
    assert (tiny_encoder / ONNX_FILE).is_file()
    assert onnx.fingerprint == torch_encoder.fingerprint
    cosines = (onnx.encode(APPEALS) * torch_encoder.encode(APPEALS)).sum(axis=1)
    assert cosines.min() >= 0.99


@pytest.mark.slow
def test_check_against_torch_passes_the_exported_model(tiny_encoder: Path) -> None:
    from models.onnx_export import check_against_torch

    if not (tiny_encoder / ONNX_FILE).is_file():
        Encoder(tiny_encoder, threads=1)
    assert check_against_torch(tiny_encoder, tiny_encoder / ONNX_FILE) >= 0.99


@pytest.mark.slow
def test_an_encoder_int8_cannot_serve_faithfully_is_served_in_fp32(
    tiny_encoder: Path, torch_encoder: Encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json
    import shutil

    from models import onnx_export

    copy = tmp_path / "enc"
    shutil.copytree(tiny_encoder, copy, ignore=shutil.ignore_patterns("onnx"))
    monkeypatch.setattr(onnx_export, "MIN_COSINE", 1.01)  # no int8 variant can pass
    served = Encoder(copy, threads=1)
    report = json.loads((copy / ONNX_FILE).with_suffix(".json").read_text())
    assert [t["quantisation"] for t in report["tried"]][-1] == "none (fp32)"
    assert sorted(p.name for p in (copy / "onnx").iterdir()) == ["model_int8.json",
                                                                 "model_int8.onnx"]
    cosines = (served.encode(APPEALS) * torch_encoder.encode(APPEALS)).sum(axis=1)
    assert cosines.min() >= 0.9999
