"""The shared Teddy Cup 2020 (problem C) appeals, with twin-aware groups for cross-validation.

About 2,300 rows of the segmented file are the raw appeals again, jieba-segmented with stopwords
removed. A twin must land in the same fold as its original, or the score leaks; so must exact
repeats. ``load_teddy`` gives every row a group id that joins them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from triage.errors import InputFileError
from triage.tables import read_table

TEDDY = "teddy2020c"


@dataclass
class TeddyData:
    """Appeals with their level-1 label, a source tag, the raw 留言编号 (or ""), and a group id."""

    texts: list[str]
    labels: list[str]
    sources: list[str]
    ids: list[str]
    groups: list[int]


def teddy_dir(shared_dir: Path) -> Path:
    path = Path(shared_dir) / TEDDY
    if not path.is_dir():
        raise InputFileError(f"{path}: the shared Teddy data is not there (set TRIAGE_SHARED_DIR)")
    return path


def load_teddy(shared_dir: Path) -> TeddyData:
    """Both labelled Teddy files; segmented text has its spaces removed (as the check does)."""
    base = teddy_dir(shared_dir)
    raw = read_table(base / "appeals_raw_train.csv")
    seg = read_table(base / "appeals_segmented_train.csv")
    raw_texts = raw.column("text")
    seg_words = [s.split() for s in seg.column("seg_text")]
    texts = raw_texts + ["".join(w) for w in seg_words]
    labels = raw.column("一级标签") + seg.column("一级标签")
    groups = _twin_groups(raw_texts, seg_words)
    return TeddyData(
        texts=texts, labels=labels,
        sources=["raw"] * len(raw_texts) + ["segmented"] * len(seg_words),
        ids=raw.column("留言编号") + [""] * len(seg_words), groups=groups,
    )


def _twin_groups(raw_texts: list[str], seg_words: list[list[str]]) -> list[int]:
    """Group id per row (raw rows first): twins and exact repeats share one."""
    parent = list(range(len(raw_texts) + len(seg_words)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        parent[find(a)] = find(b)

    index: dict[str, list[int]] = {}
    for i, text in enumerate(raw_texts):
        for bigram in {text[k : k + 2] for k in range(len(text) - 1)}:
            index.setdefault(bigram, []).append(i)
    seen: dict[str, int] = {}
    for j, words in enumerate(seg_words):
        row = len(raw_texts) + j
        key = "".join(words)
        if key in seen:
            union(row, seen[key])
        seen[key] = row
        twin = _find_twin(words, raw_texts, index)
        if twin is not None:
            union(row, twin)
    seen_raw: dict[str, int] = {}
    for i, text in enumerate(raw_texts):
        if text in seen_raw:
            union(i, seen_raw[text])
        seen_raw[text] = i
    return [find(i) for i in range(len(parent))]


def _find_twin(words: list[str], raw_texts: list[str], index: dict[str, list[int]]) -> int | None:
    """The raw row that contains (nearly) all of a segmented row's words, if any."""
    long_words = [w for w in words if len(w) >= 2]
    bigrams = {w[k : k + 2] for w in long_words for k in range(len(w) - 1)}
    if len(long_words) < 3 or not bigrams <= index.keys():
        return None
    rare = sorted(bigrams, key=lambda b: (len(index[b]), b))[:3]
    candidates = set(index[rare[0]])
    for bigram in rare[1:]:
        candidates &= set(index[bigram])
    for i in sorted(candidates):
        text = raw_texts[i]
        hits = sum(1 for w in long_words if w in text)
        if hits >= 0.9 * len(long_words):
            return i
    return None


def load_leaf_gold(path: Path, data: TeddyData) -> tuple[list[str], list[str]]:
    """Texts and gold leaf paths for the hand-labelled ``(留言编号, leaf_path)`` pairs."""
    table = read_table(path)
    by_id = {i: t for i, t, s in zip(data.ids, data.texts, data.sources, strict=True)
             if s == "raw" and i}
    pairs = [(by_id[r["留言编号"]], r["leaf_path"]) for r in table.rows if r["留言编号"] in by_id]
    return [p[0] for p in pairs], [p[1] for p in pairs]
