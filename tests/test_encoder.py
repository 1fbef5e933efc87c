"""The sentence encoder on a tiny BERT built from a config: shapes, cache, long texts, ONNX."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.encoder import ONNX_FILE, Encoder, head_tail
from models.encoder_files import locate_encoder
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


@pytest.fixture
def unexported(tiny_encoder: Path, tmp_path: Path) -> Path:
    """A copy of the tiny encoder with no ONNX export yet (the next load exports it)."""
    import shutil

    copy = tmp_path / "enc"
    shutil.copytree(tiny_encoder, copy, ignore=shutil.ignore_patterns("onnx"))
    return copy


@pytest.mark.slow
def test_an_encoder_int8_cannot_serve_faithfully_is_served_in_fp32(
    unexported: Path, torch_encoder: Encoder, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from models import onnx_export

    monkeypatch.setattr(onnx_export, "MIN_COSINE", 1.01)  # no int8 variant can pass
    served = Encoder(unexported, threads=1)
    report = json.loads((unexported / ONNX_FILE).with_suffix(".json").read_text())
    assert [t["quantisation"] for t in report["tried"]][-1] == "none (fp32)"
    assert sorted(p.name for p in (unexported / "onnx").iterdir()) == [
        "model_int8.json", "model_int8.onnx"]
    cosines = (served.encode(APPEALS) * torch_encoder.encode(APPEALS)).sum(axis=1)
    assert cosines.min() >= 0.9999


@pytest.mark.slow
def test_when_full_int8_drifts_the_most_disturbed_matmuls_stay_fp32(
    unexported: Path, torch_encoder: Encoder, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import onnx

    from models import onnx_export

    real_check = onnx_export.check_against_torch

    def full_int8_fails(model_dir, onnx_file, model=None):  # as a fine-tuned e5 does (0.986)
        cosine = real_check(model_dir, onnx_file, model)
        return 0.98 if onnx_file.name == "model_int8_per_channel.onnx" else cosine

    rankings = []

    def ranking(fp32, model_dir):
        rankings.append(real_rank(fp32, model_dir))
        return rankings[-1]

    real_rank = onnx_export.sensitive_matmuls
    monkeypatch.setattr(onnx_export, "check_against_torch", full_int8_fails)
    monkeypatch.setattr(onnx_export, "sensitive_matmuls", ranking)
    served = Encoder(unexported, threads=1)
    tried = json.loads((unexported / ONNX_FILE).with_suffix(".json").read_text())["tried"]
    assert [t["quantisation"] for t in tried] == ["int8_per_channel", "int8_mixed_33pct_fp32"]
    kept = set(tried[-1]["fp32_matmuls"])
    scores = [score for _, score in rankings[0]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 12  # 6 a layer, 2 layers
    assert kept == {name for name, _ in rankings[0][:4]}  # the third most disturbed stay fp32
    graph = onnx.load(str(unexported / ONNX_FILE)).graph
    assert {n.name for n in graph.node if n.op_type == "MatMul"} >= kept
    assert any(n.op_type == "MatMulInteger" for n in graph.node)  # the rest is int8
    cosines = (served.encode(APPEALS) * torch_encoder.encode(APPEALS)).sum(axis=1)
    assert cosines.min() >= 0.99


# -- the vocabulary cut to Chinese appeals (models.encoder_vocab) ---------------------------------
MIXED = [
    *APPEALS,
    "湘A12345的车主占用消防通道，KTV噪音≥70分贝【紧急】",
    "孕期做β链球菌筛查",  # a stray Greek letter: a single-character piece, kept
]


def build_tiny_unigram_encoder(path: Path, texts: list[str]) -> Path:
    """A tiny XLM-R-like encoder: a sentencepiece (unigram, ▁) tokenizer over the characters and
    some words of ``texts``, foreign words and letters, and a seeded random BERT."""
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel

    from models.e5_rebuild import STAMP, tensor_digest, write_sentence_transformers_config

    chars = sorted({c for t in texts for c in t if not c.isspace()} | set("abcdefghijklmnopqrstuvwxyz"))
    words = ["小区", "油烟", "学校", "路灯", "不亮", "消防通道", "▁KTV", "▁湘A", "123", "45", "▁query",
             ":", "▁"]
    foreign = ["▁Привет", "при", "вет", "ит", "▁σας", "ας", "п", "р", "и", "в", "е", "т", "σ", "α", "ς"]
    pieces = ["<s>", "<pad>", "</s>", "<unk>"] + list(dict.fromkeys(words + chars + foreign))
    # words score above their characters; the lowest score (a single letter) stays in any cut
    vocab = [(p, 0.0) if p.startswith("<") else (p, -1.0 - 0.1 * i if len(p) > 1 else -30.0 - 0.1 * i)
             for i, p in enumerate(pieces)] + [("<mask>", 0.0)]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    tokenizer.add_special_tokens(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    path.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path / "tokenizer.json"))
    (path / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "XLMRobertaTokenizerFast", "model_max_length": 128, "bos_token": "<s>",
        "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>", "pad_token": "<pad>",
        "cls_token": "<s>", "mask_token": "<mask>"}))
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
                        pad_token_id=1)
    torch.manual_seed(0)
    model = BertModel(config).eval()
    model.save_pretrained(path)
    write_sentence_transformers_config(path, max_seq_length=128)
    state = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    (path / STAMP).write_text(json.dumps({"tensor_sha256": tensor_digest(state),
                                          "query_prefix": "query: "}))
    return path


@pytest.fixture(scope="module")
def unigram_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_unigram_encoder(tmp_path_factory.mktemp("unigram"), MIXED)


@pytest.mark.slow
def test_a_unigram_encoder_serves_its_vocabulary_cut_to_chinese_with_the_same_embeddings(
    unigram_encoder: Path,
) -> None:
    from tokenizers import Tokenizer

    from models import encoder_vocab

    whole = Encoder(unigram_encoder, threads=1, cut_vocabulary=False)
    cut = Encoder(unigram_encoder, threads=1)
    assert (whole.vocabulary, cut.vocabulary) == ("full", "cut")
    assert cut.fingerprint == whole.fingerprint  # the same weights: versions still load
    full_tok = Tokenizer.from_file(str(unigram_encoder / "tokenizer.json"))
    cut_tok = Tokenizer.from_file(str(unigram_encoder / "onnx" / encoder_vocab.PRUNED_TOKENIZER))
    kept = set(cut_tok.get_vocab())
    assert {"▁Привет", "при", "вет", "▁σας"}.isdisjoint(kept)  # foreign words are gone
    assert {"β", "п", "σ", "消防通道", "▁KTV", "<mask>"} <= kept  # single letters stay
    assert cut_tok.get_vocab_size() < full_tok.get_vocab_size()
    # the same segmentation, id for id, and the same numbers out of the model
    keep = encoder_vocab.kept_ids(json.loads((unigram_encoder / "tokenizer.json").read_text()))
    for text in MIXED:
        assert [int(keep[i]) for i in cut_tok.encode("query: " + text).ids] == \
            full_tok.encode("query: " + text).ids
    assert np.array_equal(cut.encode(MIXED), whole.encode(MIXED))
    # foreign words still get an embedding, close to the whole vocabulary's
    foreign = ["Привет σας"]
    assert (cut.encode(foreign) * whole.encode(foreign)).sum() > 0.5


@pytest.mark.slow
def test_a_cut_vocabulary_built_from_other_files_is_rebuilt_not_served(
    unigram_encoder: Path, tmp_path: Path,
) -> None:
    import shutil

    from models import encoder_vocab

    copy = tmp_path / "enc"
    shutil.copytree(unigram_encoder, copy)
    Encoder(copy, threads=1)
    assert encoder_vocab.pruned_files(copy) is not None
    stale = (copy / "onnx" / encoder_vocab.PRUNED_TOKENIZER).read_bytes()
    # the model's tokenizer changes (say a fine-tuned copy was put in place): the cut is stale
    spec = json.loads((copy / "tokenizer.json").read_text())
    spec["model"]["vocab"][10][1] -= 5.0
    (copy / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False))
    assert encoder_vocab.pruned_files(copy) is None
    served = Encoder(copy, threads=1)
    assert served.vocabulary == "cut"
    assert (copy / "onnx" / encoder_vocab.PRUNED_TOKENIZER).read_bytes() != stale


@pytest.mark.slow
def test_serving_on_onnx_never_imports_torch_or_transformers(unigram_encoder: Path) -> None:
    import subprocess
    import sys

    Encoder(unigram_encoder, threads=1)  # export and cut first (these need torch)
    code = ("import sys; from models.encoder import Encoder; "
            f"e = Encoder({str(unigram_encoder)!r}, threads=1); e.encode(['路灯不亮了']); "
            "print(e.vocabulary, 'torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.split() == ["cut", "False", "False"]


def test_a_wordpiece_encoder_is_served_with_its_whole_vocabulary(tiny_encoder: Path) -> None:
    from models import encoder_vocab

    assert not encoder_vocab.can_prune(tiny_encoder)


def test_only_pieces_spelt_in_chinese_ascii_and_punctuation_are_kept() -> None:
    from models.encoder_vocab import keep_piece

    for piece in ("▁小区", "消防通道", "▁KTV", "2019", "》", "℃", "㎡", "…", "▁", "β", "▁и"):
        assert keep_piece(piece), piece
    for piece in ("▁Привет", "σας", "▁สวัสดี", "é中"):
        assert not keep_piece(piece), piece


@pytest.mark.slow
def test_an_encoder_whose_cut_cannot_be_built_is_served_whole_with_a_warning(
    unigram_encoder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import shutil

    from models import encoder_vocab

    copy = tmp_path / "enc"
    shutil.copytree(unigram_encoder, copy, ignore=shutil.ignore_patterns("*_zh*"))
    monkeypatch.setattr(encoder_vocab, "build_in_child", lambda *_: "read-only file system")
    served = Encoder(copy, threads=1)
    assert served.vocabulary == "full"
    assert "read-only file system" in caplog.text
    assert np.array_equal(served.encode(MIXED), Encoder(unigram_encoder, threads=1).encode(MIXED))


# -- what the encoder reads, and where a version finds it -----------------------------------------
def _train(*extra: str) -> list[str]:
    from triage.settings import PROJECT_ROOT

    data = PROJECT_ROOT / "datasets"
    return ["train", "--data", str(data / "demo_appeals.csv"), "--text-column", "text",
            "--label-column", "label", "--taxonomy", str(data / "demo_taxonomy.csv"),
            "--preset", "accurate", "--time-budget", "0", "--holdout", "0", *extra]


def test_a_max_length_beyond_what_the_encoder_reads_is_refused_at_training(
    tiny_encoder_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    import training.jobs
    from api.cli import app
    from triage.settings import get_settings

    def never(*_: object, **__: object) -> None:
        raise AssertionError("fine-tuned before refusing the max length")

    monkeypatch.setattr(training.jobs, "_finetune", never)
    monkeypatch.setenv("TRIAGE_ENCODER_MAX_LENGTH", "1000")
    get_settings.cache_clear()
    for budget in ("0", "5"):  # refused before any fine-tuning, which could take minutes
        args = _train("--output", str(tmp_path / "v"))
        args[args.index("--time-budget") + 1] = budget
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert result.output.strip().splitlines()[-1] == (
            f"error: TRIAGE_ENCODER_MAX_LENGTH is 1000 but this encoder ({tiny_encoder_env}) "
            f"reads at most 256 tokens: set it to 256 or less")
        assert not (tmp_path / "v").exists()


@pytest.mark.parametrize("backend", ["torch", pytest.param("onnx", marks=pytest.mark.slow)])
def test_a_version_recorded_with_too_long_a_max_length_still_reads_a_long_appeal(
    tiny_encoder_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str,
) -> None:
    """A version trained before the limit was checked (max_length 1000 for 256 positions) is
    served at the limit instead of crashing on a 12,000-character appeal."""
    from models.encoder import reopen_encoder
    from models.encoder_files import fingerprint
    from triage.settings import get_settings

    monkeypatch.setenv("TRIAGE_ENCODER_BACKEND", backend)
    get_settings.cache_clear()
    info = {"source": str(tiny_encoder_env), "fingerprint": fingerprint(tiny_encoder_env),
            "max_length": 1000, "max_chars": 20_000}
    encoder = reopen_encoder(info, tmp_path / "v", needs="the model", retrain="triage train")
    long_appeal = ("小区楼下的餐馆油烟太大，熏得住户没法开窗。" * 600)[:12_000]
    vectors = encoder.encode([long_appeal, APPEALS[0]])
    assert vectors.shape == (2, 32) and np.isfinite(vectors).all()
    assert encoder.max_length == 256


def test_a_relative_encoder_path_is_opened_as_an_absolute_one(
    tiny_encoder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import shutil

    from models.encoder import open_encoder

    shutil.copytree(tiny_encoder, tmp_path / "localenc" / "copy",
                    ignore=shutil.ignore_patterns("onnx"))
    monkeypatch.chdir(tmp_path)
    encoder = open_encoder("localenc/copy", tmp_path / "home", backend="torch")
    assert encoder.path == tmp_path / "localenc" / "copy"
    assert encoder.describe()["path"] == str(tmp_path / "localenc" / "copy")


def test_a_version_trained_with_a_relative_encoder_path_predicts_from_elsewhere(
    tiny_encoder: Path, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import shutil

    from typer.testing import CliRunner

    from api.cli import app
    from triage.settings import PROJECT_ROOT, get_settings

    shutil.copytree(tiny_encoder, tmp_path / "x" / "localenc" / "e5copy",
                    ignore=shutil.ignore_patterns("onnx"))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.setenv("TRIAGE_ENCODER", "localenc/e5copy")
    monkeypatch.setenv("TRIAGE_ENCODER_BACKEND", "torch")
    get_settings.cache_clear()
    monkeypatch.chdir(tmp_path / "x")
    runner = CliRunner()
    result = runner.invoke(app, _train("--output", str(tmp_path / "v")))
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "v" / "manifest.json").read_text())
    assert manifest["encoder"]["source"] == str(tmp_path / "x" / "localenc" / "e5copy")
    monkeypatch.chdir(tmp_path / "elsewhere")
    result = runner.invoke(app, [
        "predict", "--model", str(tmp_path / "v"), "--input",
        str(PROJECT_ROOT / "datasets" / "demo_test.csv"), "--text-column", "text",
        "--output", str(tmp_path / "out.csv")])
    assert result.exit_code == 0, result.output
