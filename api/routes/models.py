"""Model versions: list, retrain (a background job), activate (rollback), delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status

from api.deps import SettingsDep
from models.artifacts import Registry
from training.retrain import retrain
from triage.errors import NotFoundError

router = APIRouter(tags=["models"])


@router.get("/v1/models")
def list_models(settings: SettingsDep) -> dict[str, Any]:
    """Every version with its metrics and ``score`` (level-1 macro-F1 and the set it was
    measured on, or null); ``active`` names the one serving."""
    registry = Registry(settings.models_dir)
    versions = registry.listing()
    return {"active": registry.active_version(), "data": versions, "count": len(versions)}


@router.post("/v1/models/retrain", status_code=status.HTTP_202_ACCEPTED)
def start_retrain(request: Request, settings: SettingsDep) -> dict[str, Any]:
    """Retrain from the base data and staff corrections; follow it at ``/v1/jobs/{id}``."""
    if settings.broker_url:
        from training.worker import celery_app

        task = celery_app(settings.broker_url).send_task("triage.retrain")
        return {"id": task.id, "kind": "retrain", "status": "queued", "progress": [],
                "result": None, "error": None, "runner": "celery"}
    factory = request.app.state.session_factory

    def work(progress: Any) -> dict[str, Any]:
        with factory() as session:
            return retrain(session=session, settings=settings, progress=progress).to_dict()

    return request.app.state.jobs.submit("retrain", work)


@router.get("/v1/jobs/{job_id}")
def read_job(job_id: str, request: Request, settings: SettingsDep) -> dict[str, Any]:
    """A job's status (queued, running, done, failed), progress messages and result."""
    if settings.broker_url and not request.app.state.jobs.knows(job_id):
        from training.worker import job_state

        return job_state(settings.broker_url, job_id)
    return request.app.state.jobs.get(job_id)


@router.post("/v1/models/{version}/activate")
def activate(version: str, settings: SettingsDep) -> dict[str, Any]:
    """Move the active pointer (rollback included); serving switches without a restart."""
    try:
        Registry(settings.models_dir).activate(version)
    except NotFoundError:
        raise _no_version(version) from None
    return {"active": version}


@router.delete("/v1/models/{version}")
def delete(version: str, settings: SettingsDep) -> dict[str, Any]:
    """Remove a version that is not serving; 409 for the active one."""
    try:
        freed = Registry(settings.models_dir).delete(version, settings.home)
    except NotFoundError:
        raise _no_version(version) from None
    return {"deleted": version, "freed_bytes": freed}


def _no_version(version: str) -> NotFoundError:
    # the registry's message names its directory on the server: not the client's business
    return NotFoundError(f"there is no model version {version!r}; GET /v1/models lists the "
                         "versions")
