"""Benchmark on the shared Teddy data: level-1 macro-F1 and accuracy (5 folds, twins kept together),
leaf accuracy on the hand-labelled sets, training time, throughput, latency and memory.

Leaf gold: ``training/leaf_labels.csv`` (174 appeals, the test set: figures only, never used to
choose anything since 2026-11-30), ``training/leaf_dev.csv`` (150 other appeals, labelled in
the same way: the set choices are made on) and ``training/leaf_fresh.csv`` (200 further appeals
drawn at random on 2026-12-07 and labelled by people who saw no model output: the test set no
choice has ever seen, ``leaf_fresh_*``). Models scoring them are trained without the three sets
and their twins.

Run: ``.venv/bin/python -m training.benchmark [--preset fast|accurate]`` (``--folds``,
``--shared-dir``, ``--skip``; prints the figures). ``accurate`` uses the encoder of the settings
(``TRIAGE_ENCODER``, the packaged e5-small by default, rebuilt under ``TRIAGE_HOME``).

Throughput and single-ticket latency are measured with a cold encoder cache: ``triage predict``
runs in a new process over every appeal; latency classifies each appeal alone, in order, after the
cache is cleared, through the whole classification pipeline (TF-IDF, cascade, encoder, fusion).
The model trained on all appeals is timed on those appeals (where it is sure of itself and the
cascade seldom asks the encoder) and on the 4,326 appeals of ``hot_issues.csv`` (``unseen_*``),
which no model here was trained on: the figure to expect in service.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedGroupKFold

from models.artifacts import encoder_manifest, save_model
from models.classifier import HierarchicalClassifier
from models.encoder_files import locate_encoder
from training.jobs import ACCURATE_LEAF_CASCADE, guide_encoder, load_glossary, open_with_settings
from training.teddy import TEDDY, load_leaf_gold, load_teddy, teddy_dir
from triage.settings import get_settings
from triage.tables import read_table, write_csv
from triage.taxonomy import Taxonomy

LEAF_GOLD = Path(__file__).with_name("leaf_labels.csv")  # test set: never tuned on
LEAF_DEV = Path(__file__).with_name("leaf_dev.csv")  # development set: for choices
LEAF_FRESH = Path(__file__).with_name("leaf_fresh.csv")  # second test set, drawn 2026-12-07
LEAF_SETS = {"leaf_": LEAF_GOLD, "leaf_dev_": LEAF_DEV, "leaf_fresh_": LEAF_FRESH}


def fit_model(taxonomy: Taxonomy, texts, labels, encoder=None, **params) -> HierarchicalClassifier:
    """The classifier of a preset: TF-IDF alone, or fused with ``encoder`` (accurate), with the
    glossary of the settings (``TRIAGE_GLOSSARY``) as ``triage train`` uses it."""
    params.setdefault("glossary", load_glossary(get_settings()))
    guide = params.pop("guide_encoder", None)  # an encoder as it comes, beside a fine-tuned one
    model = HierarchicalClassifier(taxonomy=taxonomy, **params).fit(
        list(texts), list(labels), embed=encoder.encode if encoder is not None else None,
        guide_embed=guide.encode if guide is not None else None)
    if encoder is not None:
        model.attach_encoder(encoder)
    return model


def cross_validate(data, taxonomy: Taxonomy, folds: int, encoder=None, **params) -> dict[str, float]:
    """Level-1 macro-F1 and accuracy over grouped, stratified folds."""
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=0)
    texts, labels = np.array(data.texts, dtype=object), np.array(data.labels)
    f1s, accs, raw_f1s, fit_times = [], [], [], []
    for fold, (train, test) in enumerate(splitter.split(texts, labels, data.groups)):
        start = time.perf_counter()
        model = fit_model(taxonomy, texts[train], labels[train], encoder, **params)
        fit_times.append(time.perf_counter() - start)
        predicted = [p.level1 for p in model.predict_paths(list(texts[test]), explain=False)]
        f1s.append(f1_score(labels[test], predicted, average="macro"))
        accs.append(accuracy_score(labels[test], predicted))
        raw = [k for k, i in enumerate(test) if data.sources[i] == "raw"]
        raw_f1s.append(f1_score(labels[test][raw], np.array(predicted)[raw], average="macro"))
        print(f"fold {fold + 1}: macro-F1 {f1s[-1]:.4f} (fit {fit_times[-1]:.0f} s)"
              + (f", fusion {model.fusion_}" if model.fusion_ else ""), flush=True)
    return {"macro_f1": float(np.mean(f1s)), "macro_f1_std": float(np.std(f1s)),
            "accuracy": float(np.mean(accs)), "macro_f1_raw_appeals": float(np.mean(raw_f1s)),
            "fold_fit_s": float(np.mean(fit_times))}


def leaf_accuracy(data, taxonomy: Taxonomy, encoder=None, **params) -> dict[str, float]:
    """Train on every appeal except the hand-labelled ones of the three sets (and their twins);
    score the leaves of each set: ``leaf_*`` (test), ``leaf_dev_*`` and ``leaf_fresh_*``."""
    sets = {prefix: load_leaf_gold(path, data) for prefix, path in LEAF_SETS.items()}
    held = _rows_with_twins(data, {t for texts, _ in sets.values() for t in texts})
    keep = [i for i in range(len(data.texts)) if i not in held]
    model = fit_model(taxonomy, [data.texts[i] for i in keep], [data.labels[i] for i in keep],
                      encoder, **params)
    results: dict[str, float] = {}
    for prefix, (texts, gold) in sets.items():
        predicted = model.predict_paths(texts, explain=False)
        right = [p.subitem == g for p, g in zip(predicted, gold, strict=True)]
        given_l1 = [r for r, p, g in zip(right, predicted, gold, strict=True)
                    if p.level1 == g.split("/")[0]]
        results.update({
            f"{prefix}accuracy": float(np.mean(right)), f"{prefix}n": len(gold),
            f"{prefix}accuracy_when_level1_right": float(np.mean(given_l1)),
            # the README's "predicted leaf under predicted top level": a path, never a mix
            f"{prefix}consistent": float(np.mean([p.subitem.startswith(p.level1 + "/")
                                                  for p in predicted])),
            # calibration: the review queue trusts a confidence to mean what it says
            f"{prefix}confidence_mean": float(np.mean([p.confidence for p in predicted]))})
    return results


def leaf_rows(data) -> set[int]:
    """Rows of the hand-labelled appeals of every set and of their twins."""
    return _rows_with_twins(data, {t for path in LEAF_SETS.values()
                                   for t in load_leaf_gold(path, data)[0]})


def _rows_with_twins(data, texts: set[str]) -> set[int]:
    """Rows of ``texts`` and of their twins."""
    groups = {g for t, g in zip(data.texts, data.groups, strict=True) if t in texts}
    return {i for i, g in enumerate(data.groups) if g in groups}


def load_unseen(shared_dir: Path) -> list[str]:
    """The appeals of hot_issues.csv (title + detail): real appeals no model here was trained on."""
    path = teddy_dir(shared_dir) / "hot_issues.csv"
    if not path.is_file():
        return []
    table = read_table(path)
    return [f"{a}{b}".strip() for a, b in zip(table.column("留言主题"), table.column("留言详情"),
                                              strict=True)]


def speed(data, taxonomy: Taxonomy, encoder=None, latency_n: int = 0, unseen=(),
          **params) -> dict[str, float]:
    """Training time on all appeals (cold encoder cache), then, for all appeals and for
    ``unseen`` appeals (never labelled, e.g. hot_issues.csv): throughput of the model and of
    ``triage predict`` end to end (a new process: cold cache), peak RSS of that process, and
    single-ticket latency (cold cache)."""
    if encoder is not None:
        encoder.clear_cache()
    start = time.perf_counter()
    model = fit_model(taxonomy, data.texts, data.labels, encoder, **params)
    results = {"train_s": time.perf_counter() - start}
    with tempfile.TemporaryDirectory() as tmp:
        manifest = {"version": "benchmark"}
        if encoder is not None:
            manifest["encoder"] = encoder_manifest(encoder, str(encoder.path))
        version = save_model(model, Path(tmp) / "v", manifest=manifest)
        for name, texts in (("", list(data.texts)), ("unseen_", list(unseen))):
            if texts:
                results.update({name + k: v for k, v in _serving(
                    model, encoder, texts, version, Path(tmp), latency_n).items()})
    return results


def _serving(model, encoder, texts: list[str], version: Path, tmp: Path,
             latency_n: int) -> dict[str, float]:
    results: dict[str, float] = {"n": len(texts)}
    if encoder is not None:
        encoder.clear_cache()
    start = time.perf_counter()
    predicted = model.predict_paths(texts, explain=False)
    results["predict_tickets_per_s"] = len(texts) / (time.perf_counter() - start)
    if encoder is not None:
        results["encoder_share"] = float(np.mean([p.explanation["encoder"] for p in predicted]))
    source = tmp / "appeals.csv"
    write_csv(source, ["text"], ({"text": t} for t in texts))
    triage = Path(sys.executable).with_name("triage")
    start = time.perf_counter()
    command = [str(triage), "predict", "--model", str(version), "--input", str(source),
               "--text-column", "text", "--output", str(tmp / "out.csv")]
    gnu_time = Path("/usr/bin/time").is_file() and sys.platform.startswith("linux")
    done = subprocess.run((["/usr/bin/time", "-f", "%M"] if gnu_time else []) + command,
                          check=True, capture_output=True, text=True)
    results["cli_predict_tickets_per_s"] = len(texts) / (time.perf_counter() - start)
    # GNU time: this process's peak; otherwise the largest of the children so far
    results["cli_predict_peak_rss_mb"] = (
        int(done.stderr.strip().splitlines()[-1]) if gnu_time
        else resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    if latency_n:
        if encoder is not None:
            encoder.clear_cache()
        times = []
        for text in texts[:latency_n]:
            start = time.perf_counter()
            model.predict_paths([text])
            times.append(time.perf_counter() - start)
        results["single_ticket_n"] = len(times)
        results["single_ticket_p50_ms"] = float(np.percentile(times, 50) * 1000)
        results["single_ticket_p99_ms"] = float(np.percentile(times, 99) * 1000)
        results["single_ticket_max_ms"] = float(np.max(times) * 1000)
    return results


def finetuned_holdout(data, taxonomy: Taxonomy, minutes: float, settings) -> tuple[object, dict]:
    """Fine-tune the encoder on fold 1's training part (hand-labelled appeals and their twins left
    out), then score a fused model on fold 1's held-out part. Returns the fine-tuned encoder
    (for the leaf and speed figures, which it has not seen) and the figures."""
    from training.finetune import finetune_encoder

    splitter = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=0)
    train, test = next(splitter.split(data.texts, data.labels, data.groups))
    held = leaf_rows(data)
    tune = [i for i in train if i not in held]
    base = locate_encoder(settings.encoder, settings.home)
    out = settings.home / "benchmark" / "finetuned-fold1"
    start = time.perf_counter()
    report = finetune_encoder(
        base, [data.texts[i] for i in tune], [data.labels[i] for i in tune], out,
        max_length=settings.encoder_max_length, max_chars=settings.encoder_max_chars,
        time_budget_min=minutes, checkpoint_dir=settings.home / "benchmark" / "checkpoints",
        progress=lambda m, f: print(f"  {m} {f:.0%}", flush=True) if int(f * 1000) % 50 == 0 else None)
    tune_s = time.perf_counter() - start
    print(f"fine-tuned {report['steps']} steps in {tune_s:.0f} s "
          f"(budget stop: {report['stopped_by_budget']})", flush=True)
    encoder = open_with_settings(out, settings)
    start = time.perf_counter()
    texts, labels = np.array(data.texts, dtype=object), np.array(data.labels)
    model = fit_model(taxonomy, texts[train], labels[train], encoder)
    fit_s = time.perf_counter() - start
    predicted = [p.level1 for p in model.predict_paths(list(texts[test]), explain=False)]
    fast = fit_model(taxonomy, texts[train], labels[train])
    fast_predicted = [p.level1 for p in fast.predict_paths(list(texts[test]), explain=False)]
    return encoder, {
        "holdout_fold": 1, "holdout_n": len(test), "finetune_n": len(tune),
        "finetune_steps": report["steps"], "finetune_s": tune_s,
        "holdout_macro_f1": f1_score(labels[test], predicted, average="macro"),
        "holdout_accuracy": accuracy_score(labels[test], predicted),
        "holdout_macro_f1_fast_same_fold": f1_score(labels[test], fast_predicted, average="macro"),
        "holdout_fit_after_finetune_s": fit_s,
        **{f"fusion_{k}": v for k, v in vars(model.fusion_).items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared-dir", type=Path, default=get_settings().shared_dir)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--skip", nargs="*", default=[], choices=["cv", "leaf", "speed"])
    parser.add_argument("--preset", default="fast", choices=["fast", "accurate"])
    parser.add_argument("--time-budget", type=float, default=None, metavar="MIN",
                        help="accurate: fine-tune the encoder for at most MIN minutes and score "
                        "a fixed held-out fold instead of 5 folds")
    parser.add_argument("--leaf-cascade", type=float, default=None, metavar="P",
                        help="accurate: also send appeals whose best leaf is below P to the "
                        "encoder (as triage train --leaf-cascade; default 0.7, 0: off)")
    parser.add_argument("--latency-n", type=int, default=None,
                        help="appeals classified one at a time for latency (default: all)")
    args = parser.parse_args()
    taxonomy = Taxonomy.from_file(args.shared_dir / TEDDY / "taxonomy_3level.csv")
    data = load_teddy(args.shared_dir)
    print(f"appeals: {len(data.texts)} ({len(set(data.groups))} twin-aware groups)")
    encoder = None
    if args.preset == "accurate":
        settings = get_settings()
        encoder = open_with_settings(settings.encoder, settings)
        print(f"encoder: {encoder.describe()}")
    results: dict[str, float] = {}
    # as triage train does: with TRIAGE_LEAF_GUIDE_WEIGHT above 0, an encoder as it comes guides
    # the leaves (the configured one, when the encoder is fine-tuned: training.jobs.guide_encoder)
    weight = get_settings().leaf_guide_weight
    params: dict = {"leaf_guide_weight": weight} if encoder and weight > 0 else {}
    if encoder is not None:  # as triage train: the accurate default unless told
        params["leaf_cascade"] = ACCURATE_LEAF_CASCADE if args.leaf_cascade is None \
            else args.leaf_cascade
    if encoder is not None and args.time_budget is not None:
        encoder, figures = finetuned_holdout(data, taxonomy, args.time_budget, get_settings())
        guide = guide_encoder(get_settings(), None, tuned=True) if weight > 0 else None
        if guide is not None:
            params["guide_encoder"] = guide
        results.update(figures)
        print(f"fine-tuned encoder: {encoder.describe()}", flush=True)
    elif "cv" not in args.skip:
        results.update(cross_validate(data, taxonomy, args.folds, encoder, **params))
    if "leaf" not in args.skip:
        results.update(leaf_accuracy(data, taxonomy, encoder, **params))
    if "speed" not in args.skip:
        latency_n = len(data.texts) if args.latency_n is None else args.latency_n
        results.update(speed(data, taxonomy, encoder, latency_n=latency_n,
                             unseen=load_unseen(args.shared_dir), **params))
    for key, value in results.items():
        print(f"{key:32s} {value:.4f}" if isinstance(value, float) else f"{key:32s} {value}")


if __name__ == "__main__":
    main()
