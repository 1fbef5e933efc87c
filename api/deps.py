"""Dependencies: settings, database session, the loaded model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from models.artifacts import LoadedModel
from models.memory import CorrectionMemory
from triage.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """A session whose transaction commits when the route returns, and rolls back on error."""
    session = request.app.state.session_factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def get_model(request: Request) -> LoadedModel:
    return request.app.state.models.current()


SettingsDep = Annotated[Settings, Depends(get_settings)]
# scope="function": commit before the response is sent, so a failed commit is never a 201
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
ModelDep = Annotated[LoadedModel, Depends(get_model)]


def get_memory(request: Request, session: SessionDep, loaded: ModelDep) -> CorrectionMemory:
    """Staff corrections of the active model version, consulted before the model."""
    return request.app.state.memory.get(session=session, loaded=loaded)


MemoryDep = Annotated[CorrectionMemory, Depends(get_memory)]
