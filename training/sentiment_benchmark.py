"""Benchmark of the feedback sentiment model.

* 5-fold cross-validated accuracy and macro-F1 on the shared waimai set (binary, in-domain);
* on ``datasets/feedback_gold.csv`` (hand-written return-visit feedback, never trained on): the sign
  of the score against the gold polarity on non-neutral rows, 3-class accuracy, and precision and
  recall of each dissatisfaction reason;
* accuracy per domain on ``datasets/feedback_domains.csv`` (hotel, shopping, telecom, bank,
  hospital, restaurant feedback, hand-written, never trained on);
* fit time and throughput (texts/s, ``predict`` with reasons).

``--sweep`` also prints every figure for several blend weights, to show which data would choose
which weight (the default weight is the one waimai cross-validation chose, see the module docs).

Run: ``.venv/bin/python -m training.sentiment_benchmark`` (``--folds``, ``--shared-dir``, ``--sweep``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold

from models.sentiment import REASONS, SentimentModel, normalise_labels
from triage.settings import PROJECT_ROOT, get_settings
from triage.tables import read_table

GOLD = PROJECT_ROOT / "datasets" / "feedback_gold.csv"
DOMAINS = PROJECT_ROOT / "datasets" / "feedback_domains.csv"
WEIGHTS = (0.0, 0.2, 0.35, 0.5, 0.65, 0.8, 1.0)


def load_waimai(shared_dir: Path) -> tuple[list[str], list[str]]:
    table = read_table(shared_dir / "sentiment" / "waimai_10k.csv")
    return table.column("review"), normalise_labels(table.column("label"))


def _sign_labels(scores: np.ndarray) -> np.ndarray:
    return np.where(scores > 0, "positive", "negative")  # 0 counts as negative (the contract)


def cross_validate(texts: Sequence[str], labels: Sequence[str], folds: int,
                   weights: Sequence[float], **params) -> dict[float, dict[str, float]]:
    """Binary accuracy and macro-F1 on held-out folds, for each blend weight (one fit per fold)."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    x, y = np.array(texts, dtype=object), np.array(labels)
    per_weight: dict[float, list[tuple[float, float]]] = {w: [] for w in weights}
    fit_times = []
    for train, test in splitter.split(x, y):
        start = time.perf_counter()
        model = SentimentModel(**params).fit(list(x[train]), list(y[train]))
        fit_times.append(time.perf_counter() - start)
        learnt, lex, _, _, hedged = model._parts(list(x[test]))
        for w in weights:
            model.learnt_weight = w
            predicted = _sign_labels(model._score_from_proba(model._blend(learnt, lex, hedged)))
            per_weight[w].append((accuracy_score(y[test], predicted),
                                  f1_score(y[test], predicted, average="macro")))
    return {w: {"accuracy": float(np.mean([a for a, _ in r])),
                "macro_f1": float(np.mean([f for _, f in r])),
                "fold_fit_s": float(np.mean(fit_times))} for w, r in per_weight.items()}


def gold_metrics(model: SentimentModel, path: Path = GOLD) -> dict[str, float]:
    """Sign accuracy (non-neutral rows), 3-class accuracy, reasons precision/recall per reason."""
    table = read_table(path)
    texts, gold = table.column("text"), np.array(table.column("polarity"))
    results = model.predict(texts)
    scores = np.array([r.score for r in results])
    polar = gold != "neutral"
    out = {"sign_accuracy": float(np.mean(_sign_labels(scores[polar]) == gold[polar])),
           "n_polar": int(polar.sum()),
           "accuracy_3class": float(np.mean(np.array([r.label for r in results]) == gold)),
           "n": len(texts)}
    gold_reasons = [set(filter(None, cell.split("|"))) for cell in table.column("reasons")]
    for reason in REASONS:
        predicted = np.array([reason in r.reasons for r in results])
        truth = np.array([reason in g for g in gold_reasons])
        tp = int((predicted & truth).sum())
        out[f"{reason}.precision"] = tp / max(1, int(predicted.sum()))
        out[f"{reason}.recall"] = tp / max(1, int(truth.sum()))
        out[f"{reason}.support"] = int(truth.sum())
    return out


def domain_metrics(model: SentimentModel, path: Path = DOMAINS) -> dict[str, float]:
    """Sign accuracy per domain of the hand-written cross-domain feedback, and over all."""
    table = read_table(path)
    texts, gold = table.column("text"), np.array(table.column("polarity"))
    domains = np.array(table.column("domain"))
    right = _sign_labels(model.score(texts)) == gold
    out = {d: float(np.mean(right[domains == d])) for d in dict.fromkeys(domains)}
    out["all"] = float(np.mean(right))
    out["worst"] = min(v for k, v in out.items() if k != "all")
    return out


def speed(texts: Sequence[str], labels: Sequence[str], **params) -> tuple[SentimentModel, dict]:
    """Fit on everything; throughput of ``score`` and of ``predict`` (with reasons)."""
    start = time.perf_counter()
    model = SentimentModel(**params).fit(texts, labels)
    fit_s = time.perf_counter() - start
    model.predict(texts[:50])  # warm the lexicon and the segmenter
    start = time.perf_counter()
    model.score(texts)
    score_rate = len(texts) / (time.perf_counter() - start)
    start = time.perf_counter()
    model.predict(texts)
    predict_rate = len(texts) / (time.perf_counter() - start)
    return model, {"fit_s": fit_s, "score_texts_per_s": score_rate,
                   "predict_texts_per_s": predict_rate, "n_train": len(texts)}


def _line(name: str, metrics: dict) -> str:
    cells = [f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()]
    return f"{name:<16} " + "  ".join(cells)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--shared-dir", type=Path, default=get_settings().shared_dir)
    parser.add_argument("--sweep", action="store_true", help="print figures for several blend weights")
    args = parser.parse_args(argv)
    texts, labels = load_waimai(args.shared_dir)
    default = SentimentModel().learnt_weight
    weights = WEIGHTS if args.sweep else (default,)
    cv = cross_validate(texts, labels, args.folds, weights)
    model, rates = speed(texts, labels)
    print(f"waimai: {len(texts)} texts, {args.folds}-fold CV (binary, sign of the score)")
    for w in weights:
        model.learnt_weight = w
        gold, dom = gold_metrics(model), domain_metrics(model)
        mark = " (default)" if w == default else ""
        print(f"\n== learnt_weight={w}{mark}")
        print(_line("waimai CV", cv[w]))
        print(_line("feedback_gold", {k: v for k, v in gold.items() if "." not in k}))
        print(_line("domains", dom))
        if w == default:
            for reason in REASONS:
                print(_line(f"  {reason}", {m: gold[f"{reason}.{m}"]
                                            for m in ("precision", "recall", "support")}))
    model.learnt_weight = default
    print("\n" + _line("speed", rates))


if __name__ == "__main__":
    main()
