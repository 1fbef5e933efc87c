"""A tiny BERT encoder directory built from a config, for tests that must not load real weights.

The vocabulary is the five BERT specials plus every character of the given texts (and its ``##``
continuation, so digits and Latin words split into known pieces): Chinese is tokenised one
character at a time, as bert-base-chinese does. The directory has what ``models.encoder`` expects
of a real encoder: ``config.json`` and weights, a fast tokenizer, the sentence-transformers files
and a ``triage-encoder.json`` stamp with the weights' checksum.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MAX_POSITIONS = 256


def tiny_vocabulary(texts: Sequence[str]) -> dict[str, int]:
    """Specials, then each distinct non-space character of ``texts`` and its ``##`` piece."""
    chars = sorted({c for text in texts for c in text if not c.isspace()})
    tokens = [*SPECIALS, *chars, *(f"##{c}" for c in chars)]
    return {token: i for i, token in enumerate(tokens)}


def build_tiny_encoder(
    path: Path, texts: Sequence[str], *, hidden: int = 32, layers: int = 2, heads: int = 2,
    seed: int = 0,
) -> Path:
    """Write a randomly initialised (seeded) BERT encoder for ``texts`` into ``path``.

    Example:
        >>> build_tiny_encoder(tmp / "tiny", ["路灯不亮了"]).joinpath("config.json").is_file()  # doctest: +SKIP
        True
    """
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from models.e5_rebuild import STAMP, tensor_digest, write_sentence_transformers_config

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab = tiny_vocabulary(texts)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, intermediate_size=64, max_position_embeddings=MAX_POSITIONS,
        pad_token_id=0,
    )
    torch.manual_seed(seed)
    model = BertModel(config).eval()
    model.save_pretrained(path)
    # transformers 5 ignores ``vocab_file=`` here (every token would be [UNK]): pass the mapping.
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=False, tokenize_chinese_chars=True,
                                  model_max_length=MAX_POSITIONS)
    tokenizer.save_pretrained(path)
    write_sentence_transformers_config(path, max_seq_length=MAX_POSITIONS)
    state = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    (path / STAMP).write_text(json.dumps({
        "source": "tests/tiny_encoder.py", "tensor_sha256": tensor_digest(state),
        "query_prefix": "", "seed": seed,
    }, indent=2))
    return path

