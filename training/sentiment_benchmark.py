"""Benchmark of the feedback sentiment model.

* 5-fold cross-validated accuracy and macro-F1 on the shared waimai set (binary, in-domain);
* on ``datasets/feedback_gold.csv`` (hand-written return-visit feedback, never trained on): the sign
  of the score against the gold polarity on non-neutral rows, 3-class accuracy, and precision and
  recall of each dissatisfaction reason;
* accuracy per domain on ``datasets/feedback_domains.csv`` (hotel, shopping, telecom, bank,
  hospital, restaurant feedback, hand-written, never trained on);
* fit time and throughput (texts/s of ``score`` and of ``predict`` with reasons, on waimai texts
  the encoder has not embedded yet).

``--learner`` (repeatable: ``tfidf.v1``, ``encoder.v1``, ``both.v1``) prints the figures of each
learner side by side; encoder learners read the configured encoder (``TRIAGE_ENCODER``,
``TRIAGE_ENCODER_BACKEND``), which embeds the waimai texts once per run (its cache serves the
folds). ``--sweep`` also prints every figure for several blend weights, to show which data would
choose which weight (see ``SentimentModel``).

Run: ``.venv/bin/python -m training.sentiment_benchmark --learner tfidf.v1 --learner encoder.v1``
(``--folds``, ``--shared-dir``, ``--sweep``, ``--speed-n``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold

from models.sentiment import _LEARNERS, REASONS, SentimentModel, normalise_labels
from models.sentiment_lexicon import mask_domain_nouns
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
    """Fit on everything (the fit time); throughput is measured later by ``throughput``."""
    start = time.perf_counter()
    model = SentimentModel(**params).fit(texts, labels)
    return model, {"fit_s": time.perf_counter() - start, "n_train": len(texts)}


def throughput(model: SentimentModel, texts: Sequence[str]) -> dict[str, float]:
    """Texts/s of ``score`` and of ``predict`` (with reasons) on texts the encoder has not seen
    (its cache is emptied first, so an encoder learner pays for every embedding)."""
    model.predict(["预热分词和词典"])  # warm the lexicon and the segmenter
    rates = {}
    for name, method in (("score_texts_per_s", model.score), ("predict_texts_per_s", model.predict)):
        _clear_encoder_cache(model)
        start = time.perf_counter()
        method(texts)
        rates[name] = len(texts) / (time.perf_counter() - start)
    return rates


def _clear_encoder_cache(model: SentimentModel) -> None:
    attached = model.attached_encoder()
    if attached is not None:
        attached[0].clear_cache()


def embed_once(texts: Sequence[str]) -> dict[str, float]:
    """Embed every text once (timed) so cross-validation folds reuse the encoder's cache (the
    encoder learners of one run share the encoder and its cache)."""
    from models.sentiment_encoder import MAX_CHARS, MAX_LENGTH, configured_encoder

    encoder, source = configured_encoder(max_length=MAX_LENGTH, max_chars=MAX_CHARS)
    start = time.perf_counter()
    encoder.encode([mask_domain_nouns(t) for t in texts])
    seconds = time.perf_counter() - start
    print(f"encoder {source} ({encoder.backend}, {MAX_LENGTH} tokens, {MAX_CHARS} chars)"
          f" embedded {len(texts)} waimai texts in {seconds:.0f} s", flush=True)
    return {"embed_texts_per_s": len(texts) / seconds}


def _cell(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _table(title: str, columns: dict[str, dict[str, object]]) -> str:
    """Rows are metrics, columns are learners (side by side)."""
    names = list(dict.fromkeys(k for figures in columns.values() for k in figures))
    width = max(len(n) for n in names) + 2
    lines = [f"\n== {title}", f"{'':<{width}}" + "".join(f"{c:>14}" for c in columns)]
    lines += [f"{n:<{width}}" + "".join(f"{_cell(columns[c].get(n, '-')):>14}" for c in columns)
              for n in names]
    return "\n".join(lines)


def figures(model: SentimentModel, cv: dict[str, float], reasons: bool) -> dict[str, object]:
    """Every figure of one learner at its current blend weight, as table rows."""
    gold, dom = gold_metrics(model), domain_metrics(model)
    rows: dict[str, object] = {"waimai CV accuracy": cv["accuracy"],
                               "waimai CV macro-F1": cv["macro_f1"],
                               "gold sign accuracy": gold["sign_accuracy"],
                               "gold 3-class accuracy": gold["accuracy_3class"]}
    rows.update({f"domains {k}": v for k, v in dom.items()})
    if reasons:
        rows.update({f"reason {r} P/R": f"{gold[f'{r}.precision']:.2f}/{gold[f'{r}.recall']:.2f}"
                     for r in REASONS})
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--shared-dir", type=Path, default=get_settings().shared_dir)
    parser.add_argument("--sweep", action="store_true", help="print figures for several blend weights")
    parser.add_argument("--learner", action="append", choices=list(_LEARNERS),
                        help="learner to measure; repeat to compare side by side (default tfidf.v1)")
    parser.add_argument("--speed-n", type=int, default=2000,
                        help="waimai texts whose scoring is timed (encoder cache emptied first)")
    args = parser.parse_args(argv)
    learners = args.learner or ["tfidf.v1"]
    texts, labels = load_waimai(args.shared_dir)
    default = SentimentModel().learnt_weight
    weights = WEIGHTS if args.sweep else (default,)
    print(f"waimai: {len(texts)} texts, {args.folds}-fold CV (binary, sign of the score)", flush=True)
    models, cvs, timing = {}, {}, {}
    embedding: dict[str, float] | None = None
    for learner in learners:
        timing[learner] = {}
        if getattr(_LEARNERS[learner], "needs_encoder", False):
            embedding = embedding or embed_once(texts)
            timing[learner].update(embedding)
        cvs[learner] = cross_validate(texts, labels, args.folds, weights, learner=learner)
        models[learner], fit = speed(texts, labels, learner=learner)
        timing[learner].update(fit, fold_fit_s=cvs[learner][default]["fold_fit_s"])
    for w in weights:
        columns = {}
        for learner, model in models.items():
            model.learnt_weight = w
            columns[learner] = figures(model, cvs[learner][w], reasons=w == default)
            model.learnt_weight = default
        print(_table(f"learnt_weight={w}{' (default)' if w == default else ''}", columns))
    sample = list(np.random.default_rng(0).choice(np.array(texts, dtype=object),
                                                  min(args.speed_n, len(texts)), replace=False))
    for learner, model in models.items():
        timing[learner].update(throughput(model, sample))
    print(_table(f"time (fit on all {len(texts)}; rates on {len(sample)} unseen texts)", timing))


if __name__ == "__main__":
    main()
