"""Routing benchmark on the shared replies: is the predicted lead unit of the right kind?

Each reply in ``replies_train.csv`` names the unit that handled the appeal. The gold is the type of
that unit as the shared tool reads it (``unit_type(答复意见)``, ../shared/docs/unit-types.md). The
router is trained as ``triage train --history FILE --reply-column COL`` trains it, on the replies of
the training folds only: the units ``handling_unit`` reads and the kinds ``reply_kind`` reads (the
project's copy of the official reading; it agrees with the shared tool on every reply). It is
scored on held-out appeals (5 folds, identical texts kept in one fold) by
``unit_type(predicted lead) == gold``, on the held-out replies that name a typed unit.

Run: ``.venv/bin/python -m training.routing_benchmark`` (``--shared-dir``, ``--tools-dir``,
``--folds``; router parameters as ``--min-count``, ``--C``, ``--mention-weight``,
``--topic-weight``, ``--k-vote``, ``--vote-weight``, ``--no-pool``; ``--no-reply-kinds`` learns
kinds from ``handling_unit`` only). Prints the figures. About 40 s on 2 cores.

Measured (1,942 replies, 1,016 naming a typed unit): type accuracy 0.626 with the defaults
(0.624 before a lead named after a street, 裕南街街道派出所, fell back to its kind's body: the
name reads as the street when typed); 0.597 with ``--no-reply-kinds --topic-weight 0
--vote-weight 0 --mention-weight 0.5`` (the router before kinds were learnt from replies: 0.596
then); always 街道乡镇 0.325; TF-IDF + LinearSVC on the gold types 0.579.

What did not help (kind model alone, same folds, 0.616 for the defaults; 24 configurations, none
kept): class weights (freq^-0.25 0.614, freq^-0.5 0.609, balanced 0.592); logistic regression
instead of the SVM (0.604, 0.602); an inner-CV logistic stacker over the SVM margins, the vote and
the mention features, i.e. calibrated probabilities with the prior learnt (0.616; 0.616 on typed
kinds only); title TF-IDF beside the text (0.617 at weight 0.5, 0.609 at 1); kinds of the training
replies that name none in 300 characters read from the whole reply (0.614) or those replies left
out (0.608); the official reading of the appeal's own title and text as features (0.610); other
character features (sublinear 1-3-grams 0.624, alone or stacked 0.620; 1-3-grams 0.612); sentence
embeddings of the appeals (2026-12-06, logistic regression on the kinds, blended log-linearly
with the router's pooled kind probabilities): the packaged e5 alone 0.549, blended at most 0.626;
the e5 ``accurate`` fine-tunes on the 10,738 labelled appeals alone 0.590, blended 0.629 at best
(+0.003, not worth embedding every ticket); the level-1 classifier's probabilities or its
second-level node (``fast`` trained on the 10,738 labelled appeals) as router features (0.611 to
0.615); a bias against 街道乡镇 in the kind margins (-0.1 to 0.3: 0.614 to 0.628). Appeals
whose reply names a bureau but that are routed to the street or town they name stay the main error.
Also tried on 2026-12-07 (the whole router, 0.626 with the defaults): a non-linear stacker
(gradient boosting over inner-CV kind margins, the vote, the mention and duty-word features and
the districts the appeal names: 0.586; logistic regression over the same: 0.600); the training
replies' own texts as more training tickets with their kinds (the whole reply, or its first 300
characters: 0.612 both); features crossing "names a street or community" with each kind's duty
words, so that a 宅基地 appeal naming its street may still go to 国土 (0.619 at weights 0.3 and 1).
Also tried late on 2026-12-07, same folds, against 0.626: naive Bayes on the kinds (multinomial or
complement, jieba words, word bigrams or character bigrams, alpha 0.1 to 1: 0.55 at best alone;
log-linear blends with the router's pooled kind probabilities at weights 0.1 to 0.5: 0.602 at
best); self-training, i.e. the 2,624 raw labelled appeals of ``--data`` (none is among the replies),
with the router's own kind where its kind confidence is at least 0.6 / 0.8 / 0.9, as more
training tickets (0.604 / 0.610 / 0.623); a penalty on 街道乡镇 only for appeals that name no
unit at all, where the router answers 街道乡镇 on 269 of 577 and is right on 139 (x0.8 to x0.3 on
its probability: 0.626 to 0.615); the other kinds a training reply names in its first 300
characters (228 replies name a second) as more kind examples of the same appeal (the second
only 0.624, all 0.625). The router's kind probabilities look calibrated there: what it
lacks is evidence, not a better decision rule. Neither did a fixed (not learnt) bonus of beta x
log(1 + duty words) on each kind's margin (beta 0.05 to 0.4: 0.624 to 0.609) nor shrinking the
kinds' intercepts towards their mean (0.627 at 0.1, 0.620 at 0.5). A reader given 60 solved
examples called 100 other appeals at 0.63 where the router gets 0.57 on them (README).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import precision_recall_fscore_support
from sklearn.model_selection import GroupKFold
from sklearn.svm import LinearSVC

from models.features import TextFeaturizer
from models.router import HistoryRouter
from training.teddy import teddy_dir
from triage.dispatch import HISTORY_CONFIDENT, KIND_CONFIDENT
from triage.reply_units import handling_unit
from triage.settings import PROJECT_ROOT, get_settings
from triage.tables import read_table
from triage.unit_kinds import reply_kind

ALWAYS = "街道乡镇"


@dataclass
class Replies:
    """Appeal texts (title + detail), the gold unit type, the unit and the kind of unit the
    project reads from the reply (``handling_unit``, ``reply_kind``: training labels), groups."""

    texts: list[str]
    gold: list[str | None]
    units: list[str | None]
    groups: list[int]
    kinds: list[str]


def load_unit_type(tools_dir: Path) -> Callable[[str], str | None]:
    """The shared tool's ``unit_type`` (the official reading), imported from ``tools_dir``."""
    if not (tools_dir / "unit_types.py").is_file():
        raise SystemExit(f"{tools_dir}/unit_types.py not found: pass --tools-dir")
    sys.path.insert(0, str(tools_dir))
    from unit_types import unit_type  # type: ignore[import-not-found]

    return unit_type


def load_replies(shared_dir: Path, unit_type: Callable[[str], str | None]) -> Replies:
    table = read_table(teddy_dir(shared_dir) / "replies_train.csv")
    texts = [a + b for a, b in zip(table.column("留言主题"), table.column("留言详情"), strict=True)]
    replies = table.column("答复意见")
    seen: dict[str, int] = {}
    return Replies(texts=texts, gold=[unit_type(r) for r in replies],
                   units=[handling_unit(r) for r in replies],
                   groups=[seen.setdefault(t, len(seen)) for t in texts],
                   kinds=[reply_kind(r) for r in replies])


def fit_router(data: Replies, rows: Sequence[int], *, reply_kinds: bool = True,
               **params) -> HistoryRouter:
    """The router as ``triage train --history FILE --reply-column COL`` builds it, from ``rows``:
    the units ``handling_unit`` reads and (``reply_kinds``) the kinds ``reply_kind`` reads."""
    if reply_kinds:
        rows = [i for i in rows if data.units[i] or data.kinds[i]]
        return HistoryRouter(**params).fit([data.texts[i] for i in rows],
                                           [data.units[i] for i in rows],
                                           kinds=[data.kinds[i] for i in rows])
    rows = [i for i in rows if data.units[i]]
    return HistoryRouter(**params).fit([data.texts[i] for i in rows],
                                       [str(data.units[i]) for i in rows])


def cross_validate(data: Replies, unit_type: Callable[[str], str | None], folds: int, *,
                   reply_kinds: bool = True, **params) -> dict:
    """Held-out predicted types (router and baseline), fit times and routing time per ticket."""
    n = len(data.texts)
    routed: list[str | None] = [None] * n
    lead_p, kind_p = np.zeros(n), np.zeros(n)
    baseline: list[str | None] = [None] * n
    fit_s, route_ms, features_ms = [], [], []
    for train, test in GroupKFold(n_splits=folds).split(np.zeros(n), groups=data.groups):
        start = time.perf_counter()
        router = fit_router(data, train, reply_kinds=reply_kinds, **params)
        fit_s.append(time.perf_counter() - start)
        held = [data.texts[i] for i in test]
        start = time.perf_counter()
        X = router.featurizer_.transform(held)
        features_ms.append((time.perf_counter() - start) * 1000 / len(test))
        start = time.perf_counter()
        ranked = router.rank_features(X, held, k=1)
        route_ms.append((time.perf_counter() - start) * 1000 / len(test))
        for i, answer in zip(test, ranked, strict=True):
            routed[i] = unit_type(answer.units[0][0])
            lead_p[i], kind_p[i] = answer.units[0][1], answer.kind_confidence
        for i, kind in zip(test, _baseline(data, train, test), strict=True):
            baseline[i] = kind
    return {"routed": routed, "lead_p": lead_p, "kind_p": kind_p, "baseline": baseline, "fit_s": float(np.mean(fit_s)),
            "route_ms": float(np.mean(route_ms)), "features_ms": float(np.mean(features_ms))}


def _baseline(data: Replies, train: np.ndarray, test: np.ndarray) -> list[str]:
    """TF-IDF (the project's features) + LinearSVC trained on the gold types themselves."""
    typed = [i for i in train if data.gold[i]]
    featurizer = TextFeaturizer()
    X = featurizer.fit_transform([data.texts[i] for i in typed])
    model = LinearSVC(random_state=0).fit(X, [data.gold[i] for i in typed])
    return list(model.predict(featurizer.transform([data.texts[i] for i in test])))


def single_ticket_ms(data: Replies, n: int = 200, *, reply_kinds: bool = True,
                     **params) -> tuple[float, float]:
    """Wall time of routing one ticket at a time: on features the service already has (the
    router's part), and end to end with the router's own featurising."""
    router = fit_router(data, range(len(data.texts)), reply_kinds=reply_kinds, **params)
    sample = data.texts[:n]
    features = [router.featurizer_.transform([text]) for text in sample]
    router.route(sample[:5])  # warm-up: jieba's dictionary
    start = time.perf_counter()
    for X, text in zip(features, sample, strict=True):
        router.route_features(X, [text])
    added = (time.perf_counter() - start) * 1000 / len(sample)
    start = time.perf_counter()
    for text in sample:
        router.route([text])
    return added, (time.perf_counter() - start) * 1000 / len(sample)


def report(data: Replies, unit_type: Callable[[str], str | None], result: dict) -> None:
    typed = [i for i, g in enumerate(data.gold) if g]
    gold = [data.gold[i] for i in typed]
    accuracy = np.mean([result["routed"][i] == data.gold[i] for i in typed])
    agree = np.mean([bool(data.units[i]) and unit_type(str(data.units[i])) == data.gold[i]
                     for i in typed])
    print(f"replies: {len(data.texts)}, with a unit read by handling_unit: "
          f"{sum(1 for u in data.units if u)} (training labels)")
    print(f"coverage (held-out replies naming a typed unit): {len(typed) / len(data.texts):.3f} "
          f"({len(typed)})")
    kinds = np.mean([data.kinds[i] == data.gold[i] for i in typed])
    print(f"label quality: unit_type(handling_unit(reply)) == gold on {agree:.3f} of those; "
          f"reply_kind(reply) == gold on {kinds:.3f}")
    print(f"TYPE ACCURACY of the predicted lead unit: {accuracy:.3f}")
    print(f"baseline always {ALWAYS}: {np.mean([g == ALWAYS for g in gold]):.3f}")
    print(f"baseline TF-IDF + LinearSVC on gold types: "
          f"{np.mean([result['baseline'][i] == data.gold[i] for i in typed]):.3f}")
    print(f"fit: {result['fit_s']:.2f} s a fold; routing {result['route_ms']:.2f} ms a ticket on "
          f"precomputed features (+ {result['features_ms']:.2f} ms featurising), batched")
    routed = [result["routed"][i] or "(none)" for i in typed]
    errors = Counter((g, r) for g, r in zip(gold, routed, strict=True) if g != r)
    to_local = sum(n for (g, r), n in errors.items() if r == ALWAYS)
    print(f"errors: {sum(errors.values())}, of which routed to {ALWAYS} though the reply names "
          f"another kind: {to_local}; commonest (gold -> routed): "
          + ", ".join(f"{g}->{r} {n}" for (g, r), n in errors.most_common(4)))
    _per_type(gold, routed)
    _without_review(data, result)


def _without_review(data: Replies, result: dict) -> None:
    """Which tickets the dispatcher sends without review, and how often their kind is right: by
    the router's confidence in the lead's kind (the rule, ``triage.dispatch.KIND_CONFIDENT``) and
    by the lead's own probability (``HISTORY_CONFIDENT``, the rule before)."""
    typed = np.array([bool(g) for g in data.gold])
    right = np.array([bool(g) and r == g for g, r in zip(data.gold, result["routed"], strict=True)])
    print("dispatched without review (share of all held-out tickets; type accuracy of those "
          "naming a typed unit):")
    rules = [("kind", KIND_CONFIDENT, result["kind_p"]), ("lead", HISTORY_CONFIDENT, result["lead_p"])]
    for name, rule, p in rules:
        for threshold in sorted({0.5, 0.7, 0.8, rule}):
            sent = p >= threshold
            accuracy = right[sent & typed].mean() if (sent & typed).any() else float("nan")
            mark = "  <- the dispatcher's rule" if name == "kind" and threshold == rule else ""
            print(f"  {name} confidence >= {threshold:.2f}: {sent.mean():.3f} of tickets, "
                  f"type accuracy {accuracy:.3f}{mark}")


def _per_type(gold: list, predicted: list) -> None:
    labels = sorted(set(gold), key=lambda t: -gold.count(t))
    p, r, _, s = precision_recall_fscore_support(gold, predicted, labels=labels, zero_division=0)
    print(f"{'type':<8}{'precision':>10}{'recall':>8}{'support':>9}")
    for row in zip(labels, p, r, s, strict=True):
        print(f"{row[0]:<8}{row[1]:>10.3f}{row[2]:>8.3f}{row[3]:>9d}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared-dir", type=Path, default=get_settings().shared_dir)
    parser.add_argument("--tools-dir", type=Path, default=PROJECT_ROOT.parent / "shared" / "tools")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--min-count", type=int, default=3)
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--mention-weight", type=float, default=1.0)
    parser.add_argument("--topic-weight", type=float, default=0.3)
    parser.add_argument("--k-vote", type=int, default=10)
    parser.add_argument("--vote-weight", type=float, default=0.5)
    parser.add_argument("--no-pool", action="store_true", help="lead = likeliest unit, not kind")
    parser.add_argument("--no-reply-kinds", action="store_true",
                        help="learn kinds from the units handling_unit reads only (as before)")
    args = parser.parse_args(argv)
    unit_type = load_unit_type(args.tools_dir)
    data = load_replies(args.shared_dir, unit_type)
    params = {"min_count": args.min_count, "C": args.C, "mention_weight": args.mention_weight,
              "topic_weight": args.topic_weight, "k_vote": args.k_vote,
              "vote_weight": args.vote_weight, "pool_categories": not args.no_pool}
    reply_kinds = not args.no_reply_kinds
    print(f"router: HistoryRouter({', '.join(f'{k}={v}' for k, v in params.items())}), "
          f"{args.folds} folds grouped by identical text, kinds learnt from "
          f"{'reply_kind(reply)' if reply_kinds else 'handling_unit(reply) only'}")
    report(data, unit_type, cross_validate(data, unit_type, args.folds, reply_kinds=reply_kinds,
                                           **params))
    added, total = single_ticket_ms(data, reply_kinds=reply_kinds, **params)
    print(f"one ticket at a time: routing adds {added:.2f} ms on features already computed "
          f"(lead, co-handlers, similar tickets); {total:.2f} ms with its own featurising")


if __name__ == "__main__":
    main()
