"""The FastAPI application factory."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from api import errors
from api.routes import feedback, meta, reports, review, tickets, ui
from api.routes import models as model_routes
from models.artifacts import Registry
from models.serving import ModelHolder
from training.jobs import ensure_default_model
from training.sentiment import ensure_default_sentiment
from triage.review import MemoryCache
from triage.settings import Settings, get_settings
from triage.store import make_engine, make_session_factory, migrate
from triage.tasks import JobRunner

log = logging.getLogger("triage.api")


def start(app: FastAPI) -> None:
    """Migrate the database and load (or first train) the active model and the sentiment model,
    once. ``triage serve`` calls it before the server starts, so that a domain error (a missing
    encoder, a bad taxonomy file ...) is one line from the CLI, not uvicorn's traceback."""
    if getattr(app.state, "engine", None) is not None:
        return
    settings: Settings = app.state.settings
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    try:
        migrate(engine)
        loaded = ensure_default_model(settings, log.info)
        app.state.sentiment = ensure_default_sentiment(settings)
    except BaseException:
        engine.dispose()
        raise
    app.state.session_factory = make_session_factory(engine)
    app.state.models.set(loaded)
    # The models hold millions of long-lived objects (vocabularies); keep the cyclic garbage
    # collector from walking them on every full collection (it cost ~150 ms a request).
    gc.freeze()
    log.info("serving model %s", loaded.version)
    app.state.engine = engine


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app: migrate the database, load (or first train) the active model, add routes."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(start, app)
        yield
        app.state.jobs.shutdown()
        app.state.engine.dispose()

    app = FastAPI(title="triage", version="0.1.0", lifespan=lifespan,
                  description="Appeal triage for a 12345 citizen-appeal hotline")
    app.state.settings = settings
    app.state.models = ModelHolder(Registry(settings.models_dir))
    app.state.memory = MemoryCache(threshold=settings.memory_threshold,
                                   encoder_threshold=settings.memory_encoder_threshold)
    app.state.jobs = JobRunner()
    errors.install(app)
    app.include_router(meta.router)
    app.include_router(tickets.router)
    app.include_router(feedback.router)
    app.include_router(reports.router)
    app.include_router(review.router)
    app.include_router(ui.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.include_router(model_routes.router)
    return app
