"""The hand-labelled leaf sets the benchmark scores: well formed, and never overlapping.

A leaf figure is only worth what its gold is: every labelled appeal must be found in the shared
data, carry a leaf of the contest taxonomy under the appeal's own top-level label, and belong to
one set only (twins included), or a model trained without one set would still have read it."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.conftest import SHARED, needs_shared
from training.benchmark import LEAF_SETS, _rows_with_twins
from training.teddy import TEDDY, load_leaf_gold, load_teddy
from triage.tables import read_table
from triage.taxonomy import Taxonomy

pytestmark = needs_shared()


@pytest.fixture(scope="module")
def data():
    return load_teddy(SHARED)


def test_every_labelled_appeal_is_a_shared_appeal_with_a_leaf_under_its_own_top_level(data) -> None:
    taxonomy = Taxonomy.from_file(SHARED / TEDDY / "taxonomy_3level.csv")
    leaves = {leaf.key for leaf in taxonomy.leaves()}
    level1 = {i: label for i, label, source in zip(data.ids, data.labels, data.sources, strict=True)
              if source == "raw" and i}
    for prefix, path in LEAF_SETS.items():
        rows = read_table(path).rows
        texts, gold = load_leaf_gold(path, data)
        assert len(texts) == len(rows), f"{path.name}: appeals not found in the shared data"
        assert not [i for i, n in Counter(r["留言编号"] for r in rows).items() if n > 1], path.name
        assert set(gold) <= leaves, (path.name, sorted(set(gold) - leaves))
        wrong_top = [r["留言编号"] for r in rows
                     if r["leaf_path"].split("/")[0] != level1[r["留言编号"]]]
        assert not wrong_top, (prefix, wrong_top)


def test_the_sets_share_no_appeal_and_no_twin(data) -> None:
    held = {prefix: _rows_with_twins(data, set(load_leaf_gold(path, data)[0]))
            for prefix, path in LEAF_SETS.items()}
    names = list(held)
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            assert not held[names[a]] & held[names[b]], (names[a], names[b])
    assert {len(load_leaf_gold(p, data)[1]) for p in LEAF_SETS.values()} == {174, 150, 200}
