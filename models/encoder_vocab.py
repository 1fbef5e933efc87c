"""The encoder's vocabulary cut down to the pieces Chinese appeals can use, exactly.

multilingual-e5's XLM-R tokenizer has 250,002 pieces for 100 languages. Loaded by ``tokenizers``
it took 285 MB of RSS, and its token-embedding matrix is 96 of the model's 118 M weights. An
appeal only ever needs the pieces spelt with Chinese characters, ASCII and the punctuation and
symbols of Chinese text (``kept_char``), plus single characters of any script: 111,030 pieces.
Served cut, the tokenizer takes 94 MB and the int8 ONNX session 88 MB instead of 140 MB (66 MB
on disk instead of 119 MB); ``triage predict`` on the 10,738 Teddy appeals with the accurate
preset peaked at 766 MB instead of 1,013 MB, with the same output byte for byte.

Why the cut is exact: a unigram tokenizer picks the best-scoring segmentation of each word among
the pieces of its vocabulary that spell substrings of that word. Every substring of a text made of
kept characters (after the tokenizer's normalisation) is made of kept characters, so every piece that could ever be used for it is kept,
with its score; the best segmentation is the same one, and with the rows of the embedding matrix
sliced to match (the same int8 values and scale) the model computes the same numbers. The piece
with the lowest score is kept too, because the unknown-piece penalty is counted from it. A text
with characters outside the set (Cyrillic, Greek, Thai...) still gets a segmentation, but its
foreign words may split into other pieces (single characters of every script are kept, so a
stray Greek or Cyrillic letter is still its own piece).

``prune`` writes ``model_int8_zh.onnx`` and ``tokenizer_zh.json`` beside the int8 export (the
export directory under ``TRIAGE_HOME/encoders/onnx/<fingerprint>/``, or ``onnx/`` inside model
directories written before exports moved there) and checks, on fixed sentences, that token ids map
one to one and that hidden states are equal; ``pruned_files`` gives them back if they were built
from the weights, int8 graph and tokenizer there now.
Only unigram (sentencepiece) tokenizers are cut; WordPiece ones (BERT, bge) are served whole.

Run ``python -m models.encoder_vocab MODEL_DIR [ONNX_DIR]`` to build them (``models.encoder`` does
it in a child process, so the full vocabulary never occupies the serving process).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from triage.errors import ArtifactError

# In the export directory (``onnx_dir``): the int8 graph, and the cut files written beside it.
SOURCE_ONNX = "model_int8.onnx"
PRUNED_ONNX = "model_int8_zh.onnx"
PRUNED_TOKENIZER = "tokenizer_zh.json"
REPORT = "vocab_zh.json"
SOURCE_TOKENIZER = "tokenizer.json"  # in the model directory
LEGACY_DIR = "onnx"  # the export directory inside a model directory, before TRIAGE_HOME held them
SCHEME = "cjk-ascii-punct-v1"

# Unicode ranges whose characters Chinese appeals are written in (besides ASCII): CJK ideographs
# and their compatibility forms, CJK punctuation, kana, bopomofo, full-width forms, and the
# punctuation, number, arrow, maths and shape symbols that appear in Chinese text.
KEPT_RANGES: tuple[tuple[int, int], ...] = (
    (0x0000, 0x007F),  # ASCII
    (0x00A0, 0x00BF), (0x00D7, 0x00D7), (0x00F7, 0x00F7),  # Latin-1 symbols: ° · © × ÷
    (0x2000, 0x206F),  # general punctuation: — “ ” ‘ ’ … ‰ ′
    (0x2070, 0x209F),  # super- and subscripts (m²/m³ after normalisation)
    (0x20A0, 0x20CF),  # currency
    (0x2100, 0x218F),  # letterlike symbols, number forms (℃ Ⅲ)
    (0x2190, 0x23FF),  # arrows, mathematical operators (≥ ≤ ∶), technical
    (0x2460, 0x27BF),  # enclosed numbers, box drawing, shapes (○ ●), symbols, dingbats
    (0x2E80, 0x2FDF),  # CJK radicals, Kangxi radicals
    (0x2FF0, 0x303F),  # ideographic description, CJK symbols and punctuation (。、《》【】〇)
    (0x3040, 0x30FF),  # hiragana, katakana
    (0x3100, 0x312F), (0x31A0, 0x31BF),  # bopomofo
    (0x31C0, 0x31EF),  # CJK strokes
    (0x3200, 0x4DBF),  # enclosed CJK, CJK compatibility (㎡), CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFE10, 0xFE1F), (0xFE30, 0xFE6F),  # vertical, compatibility and small forms
    (0xFF00, 0xFFEF),  # half-width and full-width forms
    (0x20000, 0x3134F),  # CJK extensions B–G
)
_STARTS = np.array([lo for lo, _ in KEPT_RANGES])
_ENDS = np.array([hi for _, hi in KEPT_RANGES])
METASPACE = "\u2581"

# Sentences the cut is checked on when it is built: appeals with digits, Latin letters, full-width
# and CJK punctuation, units and a mixed plate number.
CHECK_TEXTS = (
    "query: 小区楼下的餐馆油烟太大，熏得住户没法开窗。",
    "query: 湘A12345的车主长期占用消防通道；要求交警部门处理！",
    "query: 《城市道路管理条例》规定：占道经营须审批——请核查“夜市”摊点。",
    "query: 室内温度达到35℃，噪音≥70分贝，面积120㎡，电话已打了3次…",
    "query: KTV、4S店和WiFi热点的问题【紧急】〔2019〕12号文件",
    "query: 路灯不亮了",
)


def kept_char(char: str) -> bool:
    """Whether ``char`` is one of the characters the cut vocabulary spells exactly."""
    code = ord(char)
    i = int(np.searchsorted(_STARTS, code, side="right")) - 1
    return i >= 0 and code <= int(_ENDS[i])


def keep_piece(piece: str) -> bool:
    """Whether a vocabulary piece is kept: spelt only with kept characters (▁ marks a word
    start), or a single character of any script (a stray β or у in an appeal keeps its own
    embedding instead of becoming the unknown piece; 10k pieces)."""
    return len(piece.strip(METASPACE)) <= 1 or all(c == METASPACE or kept_char(c) for c in piece)


def _digest(path: Path) -> str:
    """Size, head and tail of a file: enough to tell whether the cut was built from it."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    digest.update(str(size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(1 << 20))
        handle.seek(max(0, size - (1 << 20)))
        digest.update(handle.read())
    return digest.hexdigest()


def _onnx_dir(model_dir: Path, onnx_dir: Path | None) -> Path:
    return Path(onnx_dir) if onnx_dir is not None else Path(model_dir) / LEGACY_DIR


def _sources(model_dir: Path, onnx_dir: Path) -> dict[str, str]:
    """What the cut was built from: the weights (the encoder's fingerprint), the int8 graph and
    the tokenizer."""
    from models.encoder_files import fingerprint

    return {"weights": fingerprint(model_dir), "onnx": _digest(onnx_dir / SOURCE_ONNX),
            "tokenizer": _digest(model_dir / SOURCE_TOKENIZER)}


def _report(onnx_dir: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((onnx_dir / REPORT).read_text()))
    except (OSError, ValueError, TypeError):
        return {}


def pruned_files(model_dir: Path, onnx_dir: Path | None = None) -> tuple[Path, Path] | None:
    """The cut ONNX model and tokenizer in ``onnx_dir`` (default: ``onnx/`` in ``model_dir``),
    if built from the weights, int8 graph and tokenizer there now."""
    model_dir, onnx_dir = Path(model_dir), _onnx_dir(model_dir, onnx_dir)
    onnx_file, tokenizer = onnx_dir / PRUNED_ONNX, onnx_dir / PRUNED_TOKENIZER
    if not (onnx_file.is_file() and tokenizer.is_file() and (onnx_dir / SOURCE_ONNX).is_file()):
        return None
    recorded = _report(onnx_dir)
    if (recorded.get("scheme") != SCHEME or not recorded.get("exact")
            or recorded.get("sources") != _sources(model_dir, onnx_dir)):
        return None
    return onnx_file, tokenizer


def recorded_weights(onnx_dir: Path) -> str | None:
    """The fingerprint of the weights the int8 graph in ``onnx_dir`` was cut with, if the graph
    is still the one cut (how exports written before ``model_int8.json`` recorded their weights
    are recognised)."""
    sources = _report(Path(onnx_dir)).get("sources") or {}
    graph = Path(onnx_dir) / SOURCE_ONNX
    if not (isinstance(sources, dict) and sources.get("weights") and graph.is_file()):
        return None
    return str(sources["weights"]) if sources.get("onnx") == _digest(graph) else None


def can_prune(model_dir: Path) -> bool:
    """Whether ``model_dir`` has a unigram tokenizer this module knows how to cut."""
    path = Path(model_dir) / SOURCE_TOKENIZER
    if not path.is_file():
        return False
    wanted = {b'"Unigram"', b'"Metaspace"'}
    tail = b""
    with path.open("rb") as handle:  # in chunks: the file is 17 MB for XLM-R
        while wanted and (chunk := handle.read(1 << 20)):
            window = tail + chunk
            wanted = {w for w in wanted if w not in window}
            tail = chunk[-16:]
    return not wanted


def build_in_child(model_dir: Path, onnx_dir: Path | None = None,
                   timeout: float = 600) -> tuple[Path, Path] | str:
    """Build the cut files in a child process (the full vocabulary never loads here): their
    paths, or why they could not be built (the encoder is then served whole)."""
    onnx_dir = _onnx_dir(model_dir, onnx_dir)
    command = [sys.executable, "-m", "models.encoder_vocab", str(model_dir), str(onnx_dir)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH", "")])}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except (subprocess.SubprocessError, OSError) as exc:
        return str(exc)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return lines[-1] if lines else f"exit status {done.returncode}"
    return pruned_files(model_dir, onnx_dir) or "the files it wrote do not match the model"


# -- building ------------------------------------------------------------------------------------
def prune(model_dir: Path, onnx_dir: Path | None = None) -> tuple[Path, Path]:
    """Write the cut tokenizer and ONNX model of ``model_dir`` into ``onnx_dir`` (default:
    ``onnx/`` in ``model_dir``), where its int8 ONNX must be."""
    import onnx
    from onnx import numpy_helper

    model_dir, onnx_dir = Path(model_dir), _onnx_dir(model_dir, onnx_dir)
    spec = json.loads((model_dir / SOURCE_TOKENIZER).read_text(encoding="utf-8"))
    keep = kept_ids(spec)
    cut = cut_tokenizer(spec, keep)
    del spec

    graph_model = onnx.load(str(onnx_dir / SOURCE_ONNX))
    table = embedding_table(graph_model)
    rows = numpy_helper.to_array(table)
    if rows.shape[0] <= int(keep.max()):
        raise ArtifactError(f"{onnx_dir / SOURCE_ONNX}: its token embeddings have "
                            f"{rows.shape[0]} rows, fewer than the tokenizer's pieces")
    table.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(rows[keep]), table.name))
    del rows

    onnx_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=onnx_dir) as tmp:
        onnx_tmp, tok_tmp = Path(tmp) / "model.onnx", Path(tmp) / "tokenizer.json"
        onnx.save_model(graph_model, str(onnx_tmp))
        del graph_model
        tok_tmp.write_text(json.dumps(cut, ensure_ascii=False), encoding="utf-8")
        check = check_cut(model_dir, tok_tmp, onnx_tmp, keep, onnx_dir / SOURCE_ONNX)
        os.replace(onnx_tmp, onnx_dir / PRUNED_ONNX)
        os.replace(tok_tmp, onnx_dir / PRUNED_TOKENIZER)
    report = onnx_dir / (REPORT + f".{os.getpid()}")
    report.write_text(json.dumps({
        "scheme": SCHEME, "pieces": int(len(keep)), "pieces_before": int(check["pieces_before"]),
        "exact": True, "check": check, "sources": _sources(model_dir, onnx_dir)}, indent=2))
    os.replace(report, onnx_dir / REPORT)
    return onnx_dir / PRUNED_ONNX, onnx_dir / PRUNED_TOKENIZER


def kept_ids(spec: dict[str, Any]) -> np.ndarray:
    """Old ids of the pieces kept, ascending: the special tokens, the pieces spelt with kept
    characters, and the lowest-scoring piece (the unknown piece's score is reckoned from it)."""
    model = spec.get("model", {})
    if model.get("type") != "Unigram" or model.get("byte_fallback"):
        raise ArtifactError("only unigram tokenizers without byte fallback can be cut")
    vocab = model["vocab"]
    special = {int(t["id"]) for t in spec.get("added_tokens", [])}
    special.add(int(model["unk_id"]))
    lowest = min(range(len(vocab)), key=lambda i: vocab[i][1])
    keep = [i for i, (piece, _score) in enumerate(vocab)
            if i in special or i == lowest or keep_piece(piece)]
    # the leading special tokens (<s> <pad> </s> <unk>) keep their ids: a graph may compare
    # input ids with the padding id (XLM-R's position ids do)
    moved = [i for i in sorted(special) if i < len(keep) and keep[i] != i]
    if moved:
        raise ArtifactError(f"special token ids {moved[:3]} would move: not cut")
    return np.array(keep, dtype=np.int64)


def cut_tokenizer(spec: dict[str, Any], keep: np.ndarray) -> dict[str, Any]:
    """``spec`` (a tokenizer.json object) with only the pieces ``keep``, renumbered in order."""
    new_id = {int(old): new for new, old in enumerate(keep)}
    out = json.loads(json.dumps({k: v for k, v in spec.items() if k != "model"}))
    model = {k: v for k, v in spec["model"].items() if k != "vocab"}
    model["vocab"] = [spec["model"]["vocab"][int(i)] for i in keep]
    model["unk_id"] = new_id[int(spec["model"]["unk_id"])]
    out["model"] = model
    for token in out.get("added_tokens", []):
        token["id"] = new_id[int(token["id"])]
    _renumber_specials(out.get("post_processor"), new_id)
    return out


def _renumber_specials(node: Any, new_id: dict[int, int]) -> None:
    """Post-processors name special tokens by id (``special_tokens``, ``sep``/``cls`` pairs)."""
    if isinstance(node, list):
        for item in node:
            _renumber_specials(item, new_id)
        return
    if not isinstance(node, dict):
        return
    for entry in (node.get("special_tokens") or {}).values():
        entry["ids"] = [new_id[int(i)] for i in entry["ids"]]
    for key in ("sep", "cls"):
        if isinstance(node.get(key), list) and len(node[key]) == 2:
            node[key][1] = new_id[int(node[key][1])]
    for value in node.values():
        if isinstance(value, list | dict):
            _renumber_specials(value, new_id)


def embedding_table(model: Any) -> Any:
    """The initializer the token ids index: the data input of the Gather that reads
    ``input_ids`` (directly, or through a DequantizeLinear with a per-tensor scale)."""
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Gather" and len(node.input) == 2 and node.input[1] == "input_ids":
            data = node.input[0]
            if data in inits:
                return inits[data]
            for producer in graph.node:
                if producer.op_type == "DequantizeLinear" and data in producer.output:
                    scale = inits.get(producer.input[1])
                    if producer.input[0] in inits and scale is not None and not scale.dims:
                        return inits[producer.input[0]]
    raise ArtifactError("the ONNX graph has no token-embedding table this module can cut")


def check_cut(model_dir: Path, tokenizer_file: Path, onnx_file: Path, keep: np.ndarray,
              source_onnx: Path) -> dict[str, Any]:
    """Token ids on ``CHECK_TEXTS`` map one to one and the hidden states are identical."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    full = Tokenizer.from_file(str(model_dir / SOURCE_TOKENIZER))
    cut = Tokenizer.from_file(str(tokenizer_file))
    pieces_before = full.get_vocab_size(with_added_tokens=True)
    old = [full.encode(t).ids for t in CHECK_TEXTS]
    new = [cut.encode(t).ids for t in CHECK_TEXTS]
    del full
    mapped = [list(map(int, keep[ids])) for ids in new]
    if mapped != old:
        raise ArtifactError(f"the cut tokenizer of {model_dir} segments the check sentences "
                            "differently: it is not served")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    sessions = [ort.InferenceSession(str(f), options, providers=["CPUExecutionProvider"])
                for f in (source_onnx, onnx_file)]
    # one padded batch, as served: the padding id must mean the same to both graphs
    pad = cut.token_to_id("<pad>")
    pad = 1 if pad is None else pad
    width = max(len(ids) for ids in old)
    mask = np.array([[1] * len(ids) + [0] * (width - len(ids)) for ids in old], np.int64)
    outputs = []
    for session, batch in zip(sessions, (old, new), strict=True):
        feed = {"input_ids": np.array([ids + [pad] * (width - len(ids)) for ids in batch], np.int64),
                "attention_mask": mask}
        if "token_type_ids" in {i.name for i in session.get_inputs()}:
            feed["token_type_ids"] = np.zeros_like(mask)
        outputs.append(session.run(None, feed)[0])
    worst = float(np.abs(outputs[0] - outputs[1]).max())
    if worst > 1e-5:
        raise ArtifactError(f"the cut ONNX model of {model_dir} differs from the full one "
                            f"(max |Δ| {worst:.2e}): it is not served")
    return {"texts": len(CHECK_TEXTS), "max_abs_diff": worst, "pieces_before": pieces_before}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2):
        print("usage: python -m models.encoder_vocab MODEL_DIR [ONNX_DIR]", file=sys.stderr)
        return 2
    onnx_file, tokenizer = prune(Path(args[0]), Path(args[1]) if len(args) == 2 else None)
    print(json.dumps({"onnx": str(onnx_file), "tokenizer": str(tokenizer)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
