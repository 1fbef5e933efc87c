"""Health and taxonomy."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import ModelDep
from api.schemas import HealthPublic, TaxonomyPublic

router = APIRouter(tags=["meta"])


@router.get("/healthz", response_model=HealthPublic)
def healthz(request: Request) -> HealthPublic | JSONResponse:
    """200 once a model is loaded and predictions work; 503 before."""
    holder = request.app.state.models
    if not holder.ready:
        return JSONResponse(status_code=503, content={"status": "starting", "model_version": None})
    return HealthPublic(status="ok", model_version=holder.current().version)


@router.get("/v1/taxonomy", response_model=TaxonomyPublic)
def taxonomy(loaded: ModelDep) -> TaxonomyPublic:
    """The taxonomy the active model classifies into."""
    return TaxonomyPublic(version=loaded.taxonomy.version, data=loaded.taxonomy.to_dict())
