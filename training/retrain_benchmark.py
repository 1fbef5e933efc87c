"""Simulated learning loop on the shared Teddy data.

A model is trained on a small part; staff corrections (level-1, the gold the data has) arrive
from the rest in rounds of 200; after each round the model is retrained through the real gate.
Printed per round: held-out macro-F1 of the active model, whether the candidate was promoted,
retraining time; and the share of reworded near-duplicates (the segmented twin of a corrected
raw appeal) that the correction memory fixed at once.

Run: ``.venv/bin/python -m training.retrain_benchmark [--rounds 8] [--start 1000]``
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from models.artifacts import Registry
from training.jobs import train_version
from training.retrain import retrain, score
from training.teddy import TEDDY, load_teddy
from triage import intake, review
from triage.settings import Settings, get_settings
from triage.store import make_engine, make_session_factory, migrate
from triage.tables import write_csv
from triage.taxonomy import Taxonomy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared-dir", type=Path, default=get_settings().shared_dir)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--round-size", type=int, default=200)
    parser.add_argument("--start", type=int, default=1000, help="appeals the first model sees")
    args = parser.parse_args()
    data = load_teddy(args.shared_dir)
    taxonomy = Taxonomy.from_file(args.shared_dir / TEDDY / "taxonomy_3level.csv")
    groups: dict[int, list[int]] = defaultdict(list)
    for i, g in enumerate(data.groups):
        groups[g].append(i)
    order = sorted(groups)
    random.Random(0).shuffle(order)
    held = [i for g in order[: len(order) // 5] for i in groups[g]]
    rest = [g for g in order[len(order) // 5:]]
    start = [i for g in rest for i in groups[g]][: args.start]
    used = set(start)
    pool = [g for g in rest if not set(groups[g]) & used]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        eval_file = home / "frozen.csv"
        write_csv(eval_file, ["text", "label"],
                  ({"text": data.texts[i], "label": data.labels[i]} for i in held))
        settings = Settings(home=home, evaluation_set=eval_file, _env_file=None)
        registry = Registry(settings.models_dir)
        first = train_version(texts=[data.texts[i] for i in start],
                              labels=[data.labels[i] for i in start], taxonomy=taxonomy,
                              output=None, registry=registry, holdout=0.0)
        registry.activate(first.version)
        engine = make_engine(settings.database_url)
        migrate(engine)
        factory = make_session_factory(engine)
        eval_texts = [data.texts[i] for i in held]
        eval_labels = [data.labels[i] for i in held]
        f1 = score(first, eval_texts, eval_labels)["level1_macro_f1"]
        print(f"start: {len(start)} appeals, held-out {len(held)}; macro-F1 {f1:.4f}")
        fixed = seen = promoted = 0
        for round_no in range(1, args.rounds + 1):
            batch, pool = pool[: args.round_size], pool[args.round_size:]
            f, s = _round(factory, settings, registry, data, groups, batch)
            fixed, seen = fixed + f, seen + s
            with factory() as session:
                report = retrain(session=session, settings=settings)
            promoted += report.promoted
            active = registry.load_active()
            assert active is not None
            f1 = score(active, eval_texts, eval_labels)["level1_macro_f1"]
            print(f"round {round_no}: corrections {report.n_corrections:5d}  "
                  f"candidate F1 {report.frozen['candidate']['level1_macro_f1']:.4f}  "
                  f"promoted {str(report.promoted):5s}  active F1 {f1:.4f}  "
                  f"retrain {report.seconds:.1f} s")
        print(f"promoted {promoted} of {args.rounds} rounds")
        print(f"reworded near-duplicates fixed at once: {fixed}/{seen}"
              f" = {fixed / max(seen, 1):.3f}")
        engine.dispose()


def _round(factory, settings, registry, data, groups, batch) -> tuple[int, int]:
    """Post one appeal of each group, correct it to its gold top level; then post its twin (the
    same appeal reworded) and count whether the correction memory fixed it at once."""
    loaded = registry.load_active()
    fixed = seen = 0
    with factory() as session:
        memory = review.load_memory(session=session, loaded=loaded,
                                    threshold=settings.memory_threshold)
        for g in batch:
            first, *twins = groups[g]
            gold = data.labels[first]
            [ticket] = intake.create_tickets(session=session, loaded=loaded, settings=settings,
                                             items=[intake.TicketIn(text=data.texts[first])],
                                             memory=memory)
            wrong = ticket.predictions[-1].level1 != gold
            review.record_correction(session=session, loaded=loaded, memory=memory,
                                     ticket_id=ticket.id, subitem=gold, department=None,
                                     sentiment=None, reviewer="simulation", note=None)
            if wrong and twins:
                start = time.perf_counter()
                [twin] = intake.create_tickets(
                    session=session, loaded=loaded, settings=settings,
                    items=[intake.TicketIn(text=data.texts[twins[0]])], memory=memory)
                assert time.perf_counter() - start < 5
                seen += 1
                fixed += twin.predictions[-1].level1 == gold
        session.commit()
    return fixed, seen


if __name__ == "__main__":
    main()
