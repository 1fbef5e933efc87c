"""Benchmark on the shared Teddy data: level-1 macro-F1 and accuracy (5 folds, twins kept together),
leaf accuracy on the hand-labelled set, training time and throughput.

Run: ``.venv/bin/python -m training.benchmark`` (``--folds``, ``--shared-dir``; prints the figures).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedGroupKFold

from models.artifacts import save_model
from models.classifier import HierarchicalClassifier
from training.teddy import TEDDY, load_leaf_gold, load_teddy
from triage.settings import get_settings
from triage.tables import write_csv
from triage.taxonomy import Taxonomy

LEAF_GOLD = Path(__file__).with_name("leaf_labels.csv")


def cross_validate(data, taxonomy: Taxonomy, folds: int, **params) -> dict[str, float]:
    """Level-1 macro-F1 and accuracy over grouped, stratified folds."""
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=0)
    texts, labels = np.array(data.texts, dtype=object), np.array(data.labels)
    f1s, accs, raw_f1s, fit_times = [], [], [], []
    for train, test in splitter.split(texts, labels, data.groups):
        start = time.perf_counter()
        model = HierarchicalClassifier(taxonomy=taxonomy, **params).fit(texts[train], labels[train])
        fit_times.append(time.perf_counter() - start)
        predicted = [p.level1 for p in model.predict_paths(list(texts[test]), explain=False)]
        f1s.append(f1_score(labels[test], predicted, average="macro"))
        accs.append(accuracy_score(labels[test], predicted))
        raw = [k for k, i in enumerate(test) if data.sources[i] == "raw"]
        raw_f1s.append(f1_score(labels[test][raw], np.array(predicted)[raw], average="macro"))
    return {"macro_f1": float(np.mean(f1s)), "macro_f1_std": float(np.std(f1s)),
            "accuracy": float(np.mean(accs)), "macro_f1_raw_appeals": float(np.mean(raw_f1s)),
            "fold_fit_s": float(np.mean(fit_times))}


def leaf_accuracy(data, taxonomy: Taxonomy, **params) -> dict[str, float]:
    """Train on every appeal except the hand-labelled ones (and their twins); score their leaves."""
    texts, gold = load_leaf_gold(LEAF_GOLD, data)
    held = set(texts)
    held_groups = {g for t, g in zip(data.texts, data.groups, strict=True) if t in held}
    keep = [i for i, g in enumerate(data.groups) if g not in held_groups]
    model = HierarchicalClassifier(taxonomy=taxonomy, **params).fit(
        [data.texts[i] for i in keep], [data.labels[i] for i in keep])
    predicted = model.predict_paths(texts, explain=False)
    right = [p.subitem == g for p, g in zip(predicted, gold, strict=True)]
    right_l1 = [p.level1 == g.split("/")[0] for p, g in zip(predicted, gold, strict=True)]
    given_l1 = [r for r, ok in zip(right, right_l1, strict=True) if ok]
    return {"leaf_accuracy": float(np.mean(right)), "leaf_n": len(gold),
            "leaf_accuracy_when_level1_right": float(np.mean(given_l1)),
            "leaf_consistent": float(np.mean([p.subitem.startswith(p.level1 + "/") for p in predicted]))}


def speed(data, taxonomy: Taxonomy, **params) -> dict[str, float]:
    """Training time on all appeals; throughput of the model and of ``triage predict`` end to end."""
    start = time.perf_counter()
    model = HierarchicalClassifier(taxonomy=taxonomy, **params).fit(data.texts, data.labels)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    model.predict_paths(data.texts, explain=False)
    predict_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        version = save_model(model, Path(tmp) / "v", manifest={"version": "benchmark"})
        source = Path(tmp) / "appeals.csv"
        write_csv(source, ["text"], ({"text": t} for t in data.texts))
        triage = Path(sys.executable).with_name("triage")
        start = time.perf_counter()
        subprocess.run([str(triage), "predict", "--model", str(version), "--input", str(source),
                        "--text-column", "text", "--output", str(Path(tmp) / "out.csv")],
                       check=True, capture_output=True)
        cli_s = time.perf_counter() - start
    return {"train_s": fit_s, "predict_tickets_per_s": len(data.texts) / predict_s,
            "cli_predict_tickets_per_s": len(data.texts) / cli_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared-dir", type=Path, default=get_settings().shared_dir)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--skip", nargs="*", default=[], choices=["cv", "leaf", "speed"])
    args = parser.parse_args()
    taxonomy = Taxonomy.from_file(args.shared_dir / TEDDY / "taxonomy_3level.csv")
    data = load_teddy(args.shared_dir)
    print(f"appeals: {len(data.texts)} ({len(set(data.groups))} twin-aware groups)")
    results: dict[str, float] = {}
    if "cv" not in args.skip:
        results.update(cross_validate(data, taxonomy, args.folds))
    if "leaf" not in args.skip:
        results.update(leaf_accuracy(data, taxonomy))
    if "speed" not in args.skip:
        results.update(speed(data, taxonomy))
    for key, value in results.items():
        print(f"{key:32s} {value:.4f}" if isinstance(value, float) else f"{key:32s} {value}")


if __name__ == "__main__":
    main()
