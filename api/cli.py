"""The ``triage`` command: train, predict, models, train-sentiment, sentiment, serve."""

from __future__ import annotations

import functools
import gc
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, ParamSpec

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from models.artifacts import Registry, load_model
from models.sentiment import load_sentiment
from training.jobs import finetune_budget, read_labelled, train_version
from training.routing import build_dispatcher, read_history
from training.sentiment import train_sentiment_version
from triage.errors import ArtifactError, InputFileError, TriageError
from triage.interrupts import interrupt
from triage.outputs import check_output_dir, check_output_file, writing
from triage.predicting import predict_records
from triage.settings import Settings, get_settings
from triage.tables import read_table, write_csv
from triage.taxonomy import Taxonomy
from triage.text import clean

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

app = typer.Typer(help="Appeal triage for a 12345 citizen-appeal hotline.", no_args_is_help=True)
models_app = typer.Typer(help="The model registry: list, add, activate, delete, prune.",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")
console = Console(stderr=True)

PREDICT_COLUMNS = ["level1", "subitem", "subitem_alternatives", "confidence", "confidence_level1",
                   "department", "co_departments", "district", "street", "needs_review",
                   "review_reason", "model_version"]
SENTIMENT_COLUMNS = ["sentiment_label", "sentiment_score", "reasons"]
CHUNK = 20_000  # rows per progress step; each step shares one worker pool
EMPTY_TEXT = "诉求内容为空"  # the review reason of a row whose text cell is empty
LISTED = 5  # problems an error message lists before "… and N more"
P = ParamSpec("P")


@contextmanager
def _database(settings: Settings) -> Iterator[Session]:
    """A session on the configured database, migrated first; the engine is closed after."""
    from triage.store import make_engine, make_session_factory, migrate

    engine = make_engine(settings.database_url)
    try:
        migrate(engine)
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def _fail(exc: TriageError) -> NoReturn:
    # one line, however long: a terminal wraps it itself, and a log or a script reads it whole
    console.print("[red]error:[/red]", escape(_capped(exc.message)), soft_wrap=True)
    raise typer.Exit(code=exc.exit_code)


def _capped(message: str) -> str:
    """A message listing many problems ("a; b; c; ...", e.g. every label of a training file that a
    mismatched taxonomy does not know) shows the first few and how many more."""
    parts = message.split("; ")
    if len(parts) <= LISTED + 1:
        return message
    return "; ".join(parts[:LISTED]) + f"; … and {len(parts) - LISTED} more"


@contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """While a command runs, SIGTERM (a scheduler or ``kill`` stopping a nightly job) stops it
    as Ctrl-C does: fine-tuning saves its checkpoint, scratch directories are removed. Passed on
    as SIGINT, so that a checkpoint being written still finishes first."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda _number, _frame: interrupt())
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _clean_errors(command: Callable[P, None]) -> Callable[P, None]:
    """A domain error, or a file the system refuses, ends any command with one ``error:`` line
    and exit code 2 (130 for Ctrl-C or SIGTERM during fine-tuning), never a traceback."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            with _sigterm_as_ctrl_c():
                command(*args, **kwargs)
        except TriageError as exc:
            _fail(exc)
        except OSError as exc:
            reason = (exc.strerror or str(exc)).rstrip(".")
            where = f"{exc.filename}: " if exc.filename else ""
            _fail(TriageError(f"{where}{reason[:1].lower()}{reason[1:]}"))

    return run


@app.command()
@_clean_errors
def train(
    data: Annotated[list[Path], typer.Option("--data", help="labelled CSV/XLSX/JSONL; repeatable")],
    text_column: Annotated[str, typer.Option(help="column with the appeal text")],
    label_column: Annotated[str, typer.Option(help="column with a node path or name")],
    taxonomy: Annotated[Path, typer.Option(help="taxonomy CSV/XLSX/YAML")],
    preset: Annotated[str, typer.Option(
        help="fast (TF-IDF only) | accurate (adds the sentence encoder, TRIAGE_ENCODER)")] = "fast",
    time_budget: Annotated[float | None, typer.Option(
        "--time-budget", metavar="MIN",
        help="accurate only: fine-tune the encoder on these appeals for at most MIN minutes "
        "first (default TRIAGE_FINETUNE_MINUTES, 28; 0: no fine-tuning; resumable: a rerun on "
        "the same data continues)")] = None,
    leaf_cascade: Annotated[float | None, typer.Option(
        "--leaf-cascade", metavar="P",
        help="accurate only: the encoder also reads appeals whose best leaf is below P (0-1; "
        "0: only appeals unsure of their top level). Default 0.7: leaf accuracy +0.03 on "
        "held-out appeals (README), and three quarters of unfamiliar appeals then go through "
        "the encoder (about 70 tickets/s on 2 cores instead of 160)")] = None,
    output: Annotated[Path | None, typer.Option(help="version directory to write")] = None,
    holdout: Annotated[float, typer.Option(help="share held out to measure the model")] = 0.1,
    activate: Annotated[bool, typer.Option(help="activate the new registry version")] = False,
    history: Annotated[list[Path] | None, typer.Option(
        "--history", help="past tickets to learn routing from (text in --text-column)")] = None,
    department_column: Annotated[str | None, typer.Option(
        help="history column naming the handling unit")] = None,
    reply_column: Annotated[str | None, typer.Option(
        help="history column with the government's reply (the unit is read from it)")] = None,
    responsibility: Annotated[Path | None, typer.Option(
        help="responsibility list (权责清单) CSV/XLSX/YAML")] = None,
    gazetteer: Annotated[Path | None, typer.Option(help="districts, streets, communities")] = None,
) -> None:
    """Train one model version into DIR (or into the registry); prints its metrics."""
    settings = get_settings()
    if output is not None:
        _check_new_version_dir(output)
    for option, column in (("--department-column", department_column),
                           ("--reply-column", reply_column)):
        if column is not None and not history:
            raise InputFileError(f"{option} names a column of the --history files: give "
                                 f"--history FILE with it, or leave {option} out")
    tax = Taxonomy.from_file(taxonomy)
    texts, labels = read_labelled(data, text_column=text_column, label_column=label_column,
                                  taxonomy=tax)
    past = (read_history(history, text_column=text_column,
                         department_column=department_column, reply_column=reply_column)
            if history else None)
    if past is not None:
        console.print(f"history: {past.summary()}", highlight=False)
    registry = Registry(settings.models_dir)
    with _status("training") as progress:
        dispatcher = build_dispatcher(taxonomy=tax, gazetteer=gazetteer,
                                      responsibility=responsibility, history=past,
                                      progress=progress)
        loaded = train_version(
            texts=texts, labels=labels, taxonomy=tax, output=output, registry=registry,
            preset=preset, holdout=holdout, progress=progress,
            sources=[str(p) for p in data], dispatcher=dispatcher, settings=settings,
            finetune_minutes=finetune_budget(preset, time_budget, settings),
            leaf_cascade=leaf_cascade)
    if activate and output is None:
        registry.activate(loaded.version)
    manifest = loaded.manifest
    console.print(f"[green]trained[/green] version {loaded.version} at {loaded.path}")
    typer.echo(json.dumps({"version": loaded.version, "path": str(loaded.path),
                           "unsupported": manifest["unsupported"], "metrics": manifest["metrics"]},
                          ensure_ascii=False, indent=2))


@app.command()
@_clean_errors
def predict(
    model: Annotated[Path, typer.Option(help="a model version directory")],
    input: Annotated[Path, typer.Option("--input", help="CSV/XLSX/JSONL of appeals")],
    text_column: Annotated[str, typer.Option(help="column with the appeal text")],
    output: Annotated[Path, typer.Option(help="CSV to write")],
) -> None:
    """Classify every row of INPUT; writes the input columns plus the contract's columns."""
    settings = get_settings()
    check_output_file(output)
    loaded = load_model(model)
    table = read_table(input, keep_empty_rows=True)
    # what the model reads is what the API reads (full-width Ａ３区 -> A3区, PII masked); the
    # output keeps the user's cells verbatim
    texts = [clean(text) for text in table.column(text_column)]
    renamed = _renamed_inputs(table.columns, PREDICT_COLUMNS)
    gc.freeze()  # the model's objects live until exit: keep full collections off them
    rows = []
    with _bar() as bar:
        task = bar.add_task("classifying", total=len(texts))
        for start in range(0, len(texts), CHUNK):
            chunk = texts[start : start + CHUNK]
            records = predict_records(loaded=loaded, settings=settings, texts=chunk, explain=False)
            for row, text, record in zip(table.rows[start : start + CHUNK], chunk, records,
                                         strict=True):
                rows.append({**{renamed.get(c, c): v for c, v in row.items()},
                             **_output_cells(record, empty=not text.strip())})
            bar.advance(task, len(chunk))
    write_csv(output, [renamed.get(c, c) for c in table.columns] + PREDICT_COLUMNS, rows)
    _say_renamed(renamed)
    review = sum(r["needs_review"] == "true" for r in rows)
    console.print(f"wrote {len(rows)} rows to {output} ({review} need review)")


def _say_renamed(renamed: dict[str, str]) -> None:
    if renamed:
        console.print("input columns named like output columns kept as: " + escape(", ".join(
            f"{old} -> {new}" for old, new in renamed.items())), highlight=False)


def _renamed_inputs(columns: list[str], outputs: list[str]) -> dict[str, str]:
    """Input columns named like an output column, and the names they are kept under so that no
    user value is overwritten: ``district`` -> ``district_input`` (``district_input2`` ... when
    that name is taken too)."""
    taken = set(columns) | set(outputs)
    renamed: dict[str, str] = {}
    for column in (c for c in columns if c in outputs):
        name, n = f"{column}_input", 1
        while name in taken:
            n += 1
            name = f"{column}_input{n}"
        renamed[column] = name
        taken.add(name)
    return renamed


def _check_new_version_dir(output: Path) -> None:
    """Refuse, before any work, an output the version cannot be written to: a file, an unwritable
    place, or a directory that already holds files (the writer would refuse it only after
    training, up to half an hour later with ``--preset accurate``)."""
    check_output_dir(output)
    if output.is_dir() and any(output.iterdir()):
        raise ArtifactError(f"{output} is not empty: a version is never overwritten; give a new "
                            "or empty directory")


def _output_cells(record: dict, *, empty: bool = False) -> dict[str, str]:
    """The contract's columns of one prediction. An empty text still gets every cell filled (the
    model's guess), but is sent to review as empty rather than as an unsure guess."""
    cells = {
        "level1": record["level1"],
        "subitem": record["subitem"],
        "subitem_alternatives": "|".join(t["subitem"] for t in record["top"][1:]),
        "confidence": f"{record['confidence']:.4f}",
        "confidence_level1": f"{record['confidence_level1']:.4f}",
        "department": record["department"],
        "co_departments": "|".join(record["co_departments"]),
        "district": record["district"] or "",
        "street": record["street"] or "",
        "needs_review": "true" if record["needs_review"] else "false",
        "review_reason": record["review_reason"] or "",
        "model_version": record["model_version"],
    }
    if empty:
        cells.update(needs_review="true", review_reason=EMPTY_TEXT)
    return cells


@contextmanager
def _status(title: str) -> Iterator[Callable[[str], None]]:
    """A progress callback: a live status line on a terminal; elsewhere (a log, CI) one line per
    step, and at most one every 30 s while a step reports its percentage."""
    if console.is_terminal:
        with console.status(title) as status:
            yield lambda message: status.update(message)
        return
    last = {"step": "", "at": 0.0}

    def report(message: str) -> None:
        step, now = message.split(" (")[0], time.monotonic()
        if step != last["step"] or now - last["at"] >= 30:
            console.print(f"{time.strftime('%H:%M:%S')} {message}", highlight=False)
            last.update(step=step, at=now)

    yield report


def _bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=console)


@models_app.command("list")
@_clean_errors
def models_list() -> None:
    """Versions in the registry; the active one is marked. level1_macro_f1 is measured on the
    frozen evaluation set of the retraining gate where a retrain report has it, else on the
    version's held-out split (measured_on says which)."""
    registry = Registry(get_settings().models_dir)
    active = registry.active_version()
    typer.echo("\t".join(["active", "version", "created_at", "preset", "n_train",
                          "level1_macro_f1", "measured_on"]))
    for m in registry.listing():
        score = m["score"] or {}
        typer.echo("\t".join(["*" if m["version"] == active else "", m["version"],
                              m.get("created_at", ""), m.get("preset", ""),
                              str(m.get("n_train", "")), str(score.get("level1_macro_f1", "")),
                              score.get("measured_on", "")]))


@models_app.command("add")
@_clean_errors
def models_add(directory: Annotated[Path, typer.Argument(help="a trained version directory")]) -> None:
    """Register a trained directory as a new version (it is copied, never moved)."""
    version = Registry(get_settings().models_dir).add(directory)
    typer.echo(version)


@models_app.command("activate")
@_clean_errors
def models_activate(version: Annotated[str, typer.Argument(help="a registered version")]) -> None:
    """Move the active pointer; a running service switches without a restart."""
    Registry(get_settings().models_dir).activate(version)
    typer.echo(f"active: {version}")


@models_app.command("delete")
@_clean_errors
def models_delete(version: Annotated[str, typer.Argument(help="a registered version, not the active one")]) -> None:
    """Remove a version for good (never the active one); prints the space freed."""
    settings = get_settings()
    freed = Registry(settings.models_dir).delete(version, settings.home)
    typer.echo(f"deleted {version} ({freed / 1e6:.1f} MB)")


@models_app.command("prune")
@_clean_errors
def models_prune(
    keep: Annotated[int, typer.Option(help="newest versions kept besides the active one")] = 3,
) -> None:
    """Delete old versions: keep the active one and the KEEP newest others (nightly retraining
    adds a version each night; an accurate one is about 0.5 GB)."""
    settings = get_settings()
    registry = Registry(settings.models_dir)
    left = registry.sweep(settings.home)
    if left:
        typer.echo(f"removed what interrupted deletions left ({left / 1e6:.1f} MB)")
    deleted = registry.prune(keep, settings.home)
    for version, freed in deleted:
        typer.echo(f"deleted {version} ({freed / 1e6:.1f} MB)")
    total = left + sum(freed for _, freed in deleted)
    typer.echo(f"{len(deleted)} version(s) deleted, {total / 1e6:.1f} MB freed")


@app.command("train-sentiment")
@_clean_errors
def train_sentiment(
    data: Annotated[Path, typer.Option("--data", help="labelled feedback CSV/XLSX/JSONL")],
    text_column: Annotated[str, typer.Option(help="column with the feedback text")],
    label_column: Annotated[str, typer.Option(help="1/0 or positive/neutral/negative")],
    output: Annotated[Path, typer.Option(help="version directory to write")],
    learner: Annotated[str, typer.Option(
        help="tfidf.v1 (character n-grams) | encoder.v1 (the sentence encoder, TRIAGE_ENCODER) "
        "| both.v1 (the mean of the two)")] = "tfidf.v1",
) -> None:
    """Train a feedback sentiment model into DIR; prints its metrics."""
    _check_new_version_dir(output)
    with console.status("training the sentiment model"):
        loaded = train_sentiment_version(data=data, text_column=text_column,
                                         label_column=label_column, output=output,
                                         learner=learner)
    typer.echo(json.dumps({"version": loaded.version, "path": str(loaded.path),
                           "metrics": loaded.manifest.get("metrics", {})},
                          ensure_ascii=False, indent=2))


@app.command()
@_clean_errors
def sentiment(
    model: Annotated[Path, typer.Option(help="a sentiment version directory")],
    input: Annotated[Path, typer.Option("--input", help="CSV/XLSX/JSONL of feedback")],
    text_column: Annotated[str, typer.Option(help="column with the feedback text")],
    output: Annotated[Path, typer.Option(help="CSV to write")],
) -> None:
    """Score feedback: adds sentiment_label, sentiment_score (−1..1) and reasons to every row."""
    check_output_file(output)
    loaded = load_sentiment(model)
    table = read_table(input, keep_empty_rows=True)
    texts = table.column(text_column)
    results = loaded.model.predict(texts)
    renamed = _renamed_inputs(table.columns, SENTIMENT_COLUMNS)
    rows = [{**{renamed.get(c, c): v for c, v in row.items()}, "sentiment_label": r.label,
             "sentiment_score": f"{r.score:.4f}", "reasons": "|".join(r.reasons)}
            for row, r in zip(table.rows, results, strict=True)]
    write_csv(output, [renamed.get(c, c) for c in table.columns] + SENTIMENT_COLUMNS, rows)
    _say_renamed(renamed)
    negative = sum(r.label == "negative" for r in results)
    console.print(f"wrote {len(rows)} rows to {output} ({negative} negative)")


@app.command()
@_clean_errors
def retrain(
    tolerance: Annotated[float | None, typer.Option(
        help="promote unless worse than the active model by more than this")] = None,
) -> None:
    """Retrain from the active version's base data and every staff correction; promote the
    candidate when it is not worse on the frozen evaluation set than the active model (when that
    never saw the set) or a control trained without the corrections (the report says which)."""
    from training.retrain import retrain as run_retrain

    settings = get_settings()
    with _database(settings) as session, _status("retraining") as progress:
        report = run_retrain(session=session, settings=settings, tolerance=tolerance,
                             progress=progress)
    typer.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))


@app.command()
@_clean_errors
def worker(
    concurrency: Annotated[int, typer.Option(help="jobs at once")] = 1,
) -> None:
    """A Celery worker for retraining jobs (needs TRIAGE_BROKER_URL, e.g. redis://host:6379/0)."""
    settings = get_settings()
    if not settings.broker_url:
        _fail(TriageError("set TRIAGE_BROKER_URL (e.g. redis://127.0.0.1:6379/0) to run a worker"))
    from training.worker import celery_app

    celery_app(settings.broker_url).worker_main(
        ["worker", "--loglevel=INFO", f"--concurrency={concurrency}", "--pool=solo"
         if concurrency == 1 else "--pool=prefork"])


@app.command("import")
@_clean_errors
def import_file(
    kind: Annotated[str, typer.Argument(help="feedback | events")],
    file: Annotated[Path, typer.Argument(help="CSV/XLSX/JSONL: feedback has ticket_id, rating, "
                                             "text, channel, at; events have ticket_id, type, "
                                             "unit, at")],
) -> None:
    """Import return-visit feedback or handling events, all rows or none (bad rows are named)."""
    from training.sentiment import ensure_default_sentiment
    from triage.feedback import import_rows

    if kind not in {"feedback", "events"}:
        _fail(TriageError(f"import what? {kind!r}: say feedback or events"))
    settings = get_settings()
    table = read_table(file)
    sentiment = ensure_default_sentiment(settings) if kind == "feedback" else None
    with _database(settings) as session:
        count = import_rows(session=session, rows=table.rows, row_numbers=table.row_numbers,
                            kind=kind, sentiment=sentiment, zone=settings.timezone,
                            hotline=settings.default_department)
        session.commit()
    console.print(f"imported {count} {kind} rows from {file}")


@app.command()
@_clean_errors
def report(
    start: Annotated[str, typer.Option("--from", help="first day, YYYY-MM-DD")],
    end: Annotated[str, typer.Option("--to", help="last day, YYYY-MM-DD")],
    output: Annotated[Path, typer.Option(help="file to write: .csv, .xlsx, .json or .html")],
    unit: Annotated[str | None, typer.Option(help="one unit only")] = None,
    subitem: Annotated[str | None, typer.Option(help="a node path: its sub-items only")] = None,
) -> None:
    """The satisfaction report of a period from the database (TRIAGE_DATABASE_URL)."""
    from datetime import date

    from triage import reports

    settings = get_settings()
    suffix = output.suffix.lower()
    if suffix not in {".csv", ".xlsx", ".json", ".html"}:
        _fail(TriageError(f"{output}: write .csv, .xlsx, .json or .html"))
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except (ValueError, OverflowError) as exc:
        _fail(TriageError(f"dates are YYYY-MM-DD ({exc})"))
    check_output_file(output)
    with _database(settings) as session:
        data = reports.satisfaction_report(session=session, settings=settings, start=first,
                                           end=last, unit=unit, subitem=subitem)
    with writing(output):
        _write_report(data, output, settings)
    console.print(f"wrote the report of {data['tickets']} tickets to {output}")


def _write_report(data: dict, output: Path, settings) -> None:
    from triage import reports

    output.parent.mkdir(parents=True, exist_ok=True)
    suffix = output.suffix.lower()
    if suffix == ".json":
        output.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    elif suffix == ".csv":
        write_csv(output, reports.UNIT_COLUMNS, reports.unit_rows(data))
    elif suffix == ".xlsx":
        reports.write_xlsx(output, reports.UNIT_COLUMNS, reports.unit_rows(data))
    else:
        from api.routes.reports import REASON_NAMES, templates

        html = templates.get_template("report.html").render(
            report=data, unit=None, subitem=None, reason_names=REASON_NAMES,
            basic_weight=settings.performance.basic_weight)
        output.write_text(html, encoding="utf-8")


@app.command()
@_clean_errors
def serve(
    host: Annotated[str | None, typer.Option(help="address to bind")] = None,
    port: Annotated[int | None, typer.Option(help="port")] = None,
) -> None:
    """Run the HTTP service (trains the default model from the demo data on first start)."""
    import uvicorn

    from api.app import create_app, start

    settings = get_settings()
    application = create_app(settings)
    start(application)  # before uvicorn: a domain error is this command's one error line
    uvicorn.run(application, host=host or settings.host, port=port or settings.port,
                log_level="info")


if __name__ == "__main__":
    app()
