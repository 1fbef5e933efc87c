"""Dependencies: settings, database session, the loaded model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session

from models.artifacts import LoadedModel
from models.memory import CorrectionMemory
from triage.settings import Settings
from triage.store import writing_session

# SQLite (and most databases) store ids as signed 64-bit integers; a larger number names no ticket
MAX_TICKET_ID = 2**63 - 1
TicketId = Annotated[int, Path(ge=1, le=MAX_TICKET_ID, description="a ticket id, 1 to 2**63-1")]


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """A session whose transaction commits when the route returns, and rolls back on error.

    Requests that change things (POST, PUT, PATCH, DELETE) get a writing session: on SQLite
    parallel requests then queue for the write lock instead of failing."""
    factory = request.app.state.session_factory
    writes = request.method not in ("GET", "HEAD", "OPTIONS")
    session = writing_session(factory) if writes else factory()
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
