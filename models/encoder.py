"""Sentence encoder: appeal text → L2-normalised embedding, on ONNX Runtime (int8) or torch.

``open_encoder`` opens the model directory ``models.encoder_files.locate_encoder`` finds (a local
directory the user names, or the packaged multilingual-e5-small), one shared ``Encoder`` per
directory and settings; ``reopen_encoder`` opens the one a saved version recorded, after checking
its weights. Nothing is ever fetched from a hub (``models.encoder_files`` sets ``HF_HUB_OFFLINE``).

``Encoder.encode`` batches texts by length, keeps an LRU cache keyed by the text's hash, and mean
pools the last hidden layer (as e5 and most Chinese sentence models are published). Long appeals
keep their head and tail: the complaint is usually stated first and the request last.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.encoder_files import (
    PACKAGED,
    Progress,
    check_max_length,
    fingerprint,
    locate_encoder,
    query_prefix,
    token_limit,
)
from triage.errors import ArtifactError

ONNX_FILE = "onnx/model_int8.onnx"
_log = logging.getLogger(__name__)


def head_tail(text: str, max_chars: int) -> str:
    """The first two thirds and last third of ``max_chars`` characters of a long text."""
    if len(text) <= max_chars:
        return text
    head = (2 * max_chars) // 3
    return text[:head] + "…" + text[-(max_chars - head - 1):]


_OPEN: dict[tuple, Encoder] = {}
_OPEN_LOCK = threading.Lock()


def open_encoder(
    source: str | Path, home: Path, *, backend: str = "onnx", max_length: int | None = None,
    max_chars: int = 320, progress: Progress | None = None,
) -> Encoder:
    """One shared ``Encoder`` per model directory and settings (the classifier, the correction
    memory and a reloaded version use the same session and cache). Its ONNX export lives under
    ``home/encoders/onnx/<fingerprint>/``; ``progress`` hears of the rebuild and the export."""
    path = locate_encoder(source, home, progress)
    # the fingerprint too: weights replaced in place are other weights, never the cached session
    key = (str(path.resolve()), fingerprint(path), backend, max_length, max_chars)
    with _OPEN_LOCK:
        if key not in _OPEN:
            _OPEN[key] = Encoder(path, backend=backend, max_length=max_length, max_chars=max_chars,
                                 exports=Path(home) / "encoders" / "onnx", progress=progress)
        return _OPEN[key]


def reopen_encoder(info: Any, directory: Path, *, needs: str, retrain: str,
                   bundled: Path | None = None, progress: Progress | None = None) -> Encoder:
    """The encoder a saved version recorded (``info``: source, fingerprint, max_length,
    max_chars), opened after checking its weights are the ones the version was trained with.

    ``needs`` names what needs it (for the error), ``retrain`` the command that rebuilds the
    version; ``bundled`` is where a version keeps its own encoder (source ``"bundled"``);
    ``progress`` hears of a rebuild or an export (default: one log line a step). A recorded
    max_length beyond what the encoder reads is served at the encoder's limit.
    """
    from triage.settings import get_settings

    if not isinstance(info, dict) or "source" not in info:
        raise ArtifactError(f"{directory}: {needs} needs an encoder but the manifest names none; "
                            f"retrain it with `{retrain}`")
    settings = get_settings()
    source = str(info["source"])
    where: str | Path = bundled if source == "bundled" and bundled is not None else source
    if where == source and source != PACKAGED and not Path(source).expanduser().is_absolute() \
            and not Path(source).expanduser().is_dir():
        raise ArtifactError(
            f"{directory} names its encoder by the relative path {source!r}, which is not a "
            f"directory from here: run from the directory it was trained in or retrain it with "
            f"`{retrain}`")
    progress = progress or _logged_steps()
    path = locate_encoder(where, settings.home, progress)
    found = fingerprint(path)
    if found != info.get("fingerprint"):
        raise ArtifactError(
            f"{directory} was trained with encoder {source} (weights "
            f"{str(info.get('fingerprint'))[:12]}) but {path} holds other weights ({found[:12]}): "
            f"put back the encoder it was trained with (TRIAGE_ENCODER) or retrain it with "
            f"`{retrain}`")
    max_length, limit = int(info.get("max_length", 128)), token_limit(path)
    if limit is not None and max_length > limit:
        # such a version (trained before the limit was checked) would crash on a long appeal
        _log.warning("%s: serving its encoder with %d tokens, the most it reads (recorded: %d)",
                     directory, limit, max_length)
        max_length = limit
    return open_encoder(path, settings.home, backend=settings.encoder_backend,
                        max_length=max_length, max_chars=int(info.get("max_chars", 160)),
                        progress=progress)


def _logged_steps() -> Progress:
    """A progress callback that logs each step once (rebuilding e5, exporting to ONNX: a minute
    or so on first use, which should not pass in silence)."""
    seen: set[str] = set()

    def report(step: str, _done: float) -> None:
        if step not in seen:
            seen.add(step)
            _log.warning("preparing the encoder: %s", step)

    return report


class _FastTokenizer:
    """``tokenizer.json`` through the ``tokenizers`` library, called like a transformers
    tokenizer for what ``Encoder`` needs (padding, truncation, numpy arrays).

    ``file``: the tokenizer to load (default ``path/tokenizer.json``; the cut vocabulary of
    ``models.encoder_vocab`` is another file beside the model)."""

    def __init__(self, path: Path, max_length: int, file: Path | None = None) -> None:
        from tokenizers import Tokenizer

        file = file or path / "tokenizer.json"
        try:
            self.tokenizer = Tokenizer.from_file(str(file))
        except Exception as exc:  # noqa: BLE001 - a corrupt file is one clear error
            raise ArtifactError(f"cannot load {file}: {exc}") from exc
        config = path / "tokenizer_config.json"
        pad = json.loads(config.read_text()).get("pad_token") if config.is_file() else None
        pad = pad.get("content") if isinstance(pad, dict) else pad
        for name in (pad, "<pad>", "[PAD]"):
            if name and self.tokenizer.token_to_id(name) is not None:
                self.pad_id = int(self.tokenizer.token_to_id(name))
                break
        else:
            self.pad_id = 0
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length)

    def __call__(self, texts: list[str], **_: Any) -> dict[str, np.ndarray]:
        encodings = self.tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(texts), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        return {"input_ids": ids, "attention_mask": mask}


class Encoder:
    """Embeds texts with a transformer; ``backend`` ``"onnx"`` (int8, fast) or ``"torch"`` (fp32).

    ``max_length`` may not exceed what the model reads (``token_limit``; unset: 256 or that).
    The ONNX export and the cut vocabulary go to ``exports/<fingerprint>/`` (``open_encoder``:
    under ``TRIAGE_HOME``; ``None``: ``onnx/`` inside the model directory); an export of other
    weights is never served.

    Example:
        >>> enc = Encoder(locate_encoder("e5-small", Path("var")))  # doctest: +SKIP
        >>> enc.encode(["楼下餐馆油烟扰民"]).shape  # doctest: +SKIP
        (1, 384)
    """

    def __init__(
        self, path: Path, *, backend: str = "onnx", max_length: int | None = None,
        max_chars: int = 320, batch_size: int = 16, cache_size: int = 20_000,
        threads: int | None = None, prefix: str | None = None, cut_vocabulary: bool = True,
        exports: Path | None = None, progress: Progress | None = None,
    ) -> None:
        if backend not in ("onnx", "torch"):
            raise ArtifactError(f"unknown encoder backend {backend!r}: choose onnx or torch")
        if max_length is None:  # unset: 256, or fewer if that is all the encoder reads
            max_length = min(256, token_limit(Path(path)) or 256)
        check_max_length(Path(path), max_length)
        self.path = Path(path)
        self.exports = None if exports is None else Path(exports)
        self._progress = progress
        self.backend = backend
        self.max_length = max_length
        self.max_chars = max_chars
        self.batch_size = batch_size
        self.threads = threads or min(2, os.cpu_count() or 1)
        self.prefix = query_prefix(self.path) if prefix is None else prefix
        self.fingerprint = fingerprint(self.path)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        # ONNX serving reads the vocabulary cut to Chinese appeals where the tokenizer allows it
        # (``models.encoder_vocab``: same token ids, same numbers, 240 MB less RSS with e5).
        self._onnx_file, self._tokenizer_file = (
            self._onnx_files(cut_vocabulary) if backend == "onnx" else (None, None))
        cut = self._tokenizer_file is not None and self._tokenizer_file.parent != self.path
        self.vocabulary = "cut" if cut else "full"
        self._tokenizer = self._load_tokenizer()
        self._run = self._load_onnx() if backend == "onnx" else self._load_torch()
        self.dim = int(self._embed_batch(["维度"]).shape[1])

    # -- loading ---------------------------------------------------------------------------
    def _onnx_files(self, cut_vocabulary: bool) -> tuple[Path, Path | None]:
        """The ONNX model and the tokenizer file to serve (exported to int8 on first use of
        these weights)."""
        from models.onnx_export import INT8, find_or_export

        onnx_dir = find_or_export(self.path, self.fingerprint, self.exports, self._report)
        tokenizer = self.path / "tokenizer.json"
        if cut_vocabulary:
            found = self._cut_files(onnx_dir)
            if isinstance(found, tuple):
                return found
        return onnx_dir / INT8, tokenizer if tokenizer.is_file() else None

    def _cut_files(self, onnx_dir: Path) -> tuple[Path, Path] | str | None:
        """The cut ONNX model and tokenizer (``models.encoder_vocab``), built beside the export
        if missing or stale; why not, or None for a tokenizer that is not cut."""
        from models import encoder_vocab
        from models.onnx_export import copy_export

        found = encoder_vocab.pruned_files(self.path, onnx_dir)
        if found is not None or not encoder_vocab.can_prune(self.path):
            return found
        if self.exports is not None and not onnx_dir.is_relative_to(self.exports):
            # an export inside the model directory (earlier releases): the model's directory
            # stays as it was written, the cut goes beside a copy under exports
            onnx_dir = copy_export(onnx_dir, self.exports / self.fingerprint, self.fingerprint)
            found = encoder_vocab.pruned_files(self.path, onnx_dir)
            if found is not None:
                return found
        step = f"cutting the vocabulary of {self.path} to Chinese (once for these weights)"
        self._report(step, 0.0)
        found = encoder_vocab.build_in_child(self.path, onnx_dir)
        self._report(step, 1.0)
        if isinstance(found, str):
            _log.warning("serving %s with its whole vocabulary (more memory): the cut "
                         "one could not be built: %s", self.path, found)
        return found

    def _report(self, step: str, done: float) -> None:
        if self._progress is not None:
            self._progress(step, done)
        else:
            _log.info("%s (%.0f%%)", step, 100 * done)

    def _load_tokenizer(self) -> Any:
        if self.backend == "onnx" and self._tokenizer_file is not None:
            # The tokenizers library alone: serving then never imports transformers or torch
            # (RSS with the packaged e5: 545 MB instead of about 800 MB).
            return _FastTokenizer(self.path, self.max_length, self._tokenizer_file)
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(str(self.path))
        except Exception as exc:  # noqa: BLE001 - any loader failure is one user-facing error
            raise ArtifactError(f"cannot load the tokenizer in {self.path}: {exc}") from exc

    def _load_torch(self) -> Callable[[dict], np.ndarray]:
        import torch
        from transformers import AutoModel

        torch.set_num_threads(self.threads)
        try:
            model = AutoModel.from_pretrained(str(self.path)).eval()
        except Exception as exc:  # noqa: BLE001
            raise ArtifactError(f"cannot load the encoder in {self.path}: {exc}") from exc

        def run(batch: dict) -> np.ndarray:
            with torch.inference_mode():
                out = model(input_ids=torch.from_numpy(batch["input_ids"]),
                            attention_mask=torch.from_numpy(batch["attention_mask"]))
            return out.last_hidden_state.numpy()

        return run

    def _load_onnx(self) -> Callable[[dict], np.ndarray]:
        import onnxruntime as ort

        file = self._onnx_file
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
        names = {i.name for i in session.get_inputs()}

        def run(batch: dict) -> np.ndarray:
            feed = {k: v for k, v in batch.items() if k in names}
            if "token_type_ids" in names and "token_type_ids" not in feed:
                feed["token_type_ids"] = np.zeros_like(batch["input_ids"])
            return session.run(None, feed)[0]

        return run

    # -- encoding --------------------------------------------------------------------------
    def _prepare(self, text: str) -> str:
        return self.prefix + head_tail(" ".join(str(text).split()), self.max_chars)

    def _embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        batch = self._tokenizer(list(texts), padding=True, truncation=True,
                                max_length=self.max_length, return_tensors="np")
        batch = {k: v.astype(np.int64) for k, v in batch.items()}
        hidden = self._run(batch)
        mask = batch["attention_mask"][:, :, None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()

    def encode(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Embeddings (n × dim, unit length) of ``texts``; cached texts are not recomputed."""
        prepared = [self._prepare(t) for t in texts]
        keys = [self._key(p) for p in prepared]
        found: dict[str, np.ndarray] = {}
        todo: dict[str, str] = {}
        with self._lock:
            for key, text in zip(keys, prepared, strict=True):
                vector = self._cache.get(key)
                if vector is not None:
                    found[key] = vector
                else:
                    todo[key] = text
        # Length-sorted batches pad little: about 1.5x faster on mixed-length appeals.
        order = sorted(todo, key=lambda k: len(todo[k]))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            vectors = self._embed_batch([todo[k] for k in chunk])
            with self._lock:
                for key, vector in zip(chunk, vectors, strict=True):
                    found[key] = vector
                    self._remember(key, vector)
            if progress:
                progress("embedding appeals", min(1.0, (start + len(chunk)) / len(order)))
        if not keys:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([found[k] for k in keys])

    def _remember(self, key: str, vector: np.ndarray) -> None:
        self._cache[key] = vector
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.path), "fingerprint": self.fingerprint, "backend": self.backend,
                "max_length": self.max_length, "max_chars": self.max_chars, "prefix": self.prefix,
                "dim": self.dim, "vocabulary": self.vocabulary}
