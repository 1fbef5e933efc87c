"""Celery workers for long jobs, used when ``TRIAGE_BROKER_URL`` is set (e.g. Redis).

Start one with ``triage worker``; it reads the same settings (``TRIAGE_HOME``,
``TRIAGE_DATABASE_URL``) as the service, so both see the same registry and database.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from celery import Celery

from triage.settings import Settings, get_settings


@lru_cache
def celery_app(broker_url: str) -> Celery:
    """The Celery app for a broker (results go to the same Redis)."""
    app = Celery("triage", broker=broker_url, backend=broker_url)
    app.conf.update(task_track_started=True, result_expires=7 * 24 * 3600,
                    worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)
    app.task(name="triage.retrain", bind=True)(_retrain_task)
    return app


def _retrain_task(task: Any, tolerance: float | None = None) -> dict[str, Any]:
    from training.retrain import retrain
    from triage.store import make_engine, make_session_factory, migrate

    settings: Settings = get_settings()
    progress: list[str] = []

    def report(message: str) -> None:
        progress.append(message)
        task.update_state(state="PROGRESS", meta={"progress": progress})

    engine = make_engine(settings.database_url)
    try:
        migrate(engine)
        with make_session_factory(engine)() as session:
            return retrain(session=session, settings=settings, progress=report,
                           tolerance=tolerance).to_dict()
    finally:
        engine.dispose()


_STATES = {"PENDING": "queued", "RECEIVED": "queued", "STARTED": "running",
           "PROGRESS": "running", "SUCCESS": "done", "FAILURE": "failed", "REVOKED": "failed",
           "RETRY": "queued"}


def job_state(broker_url: str, job_id: str) -> dict[str, Any]:
    """A Celery job in the shape of the in-process runner's jobs."""
    result = celery_app(broker_url).AsyncResult(job_id)
    state = {"id": job_id, "kind": "retrain", "status": _STATES.get(result.state, "queued"),
             "progress": [], "result": None, "error": None}
    if result.state == "PROGRESS" and isinstance(result.info, dict):
        state["progress"] = list(result.info.get("progress", []))
    elif result.state == "SUCCESS":
        state["result"] = result.result
    elif result.state in {"FAILURE", "REVOKED"}:
        state["error"] = str(result.info)
    return state
