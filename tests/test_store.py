"""Persistence layer tests, run against SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from conftest import postgres_url
from sqlalchemy import Engine, delete, func, inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session, sessionmaker

from triage.store import (
    Base,
    Correction,
    Prediction,
    Ticket,
    add_correction,
    add_prediction,
    add_return,
    add_ticket,
    count_tickets,
    get_ticket,
    get_ticket_by_client_id,
    latest_prediction,
    make_engine,
    make_session_factory,
    migrate,
    session_scope,
)

BEIJING = timezone(timedelta(hours=8))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Database URL of an empty, isolated database (per test) for each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'nested' / 'dir' / 'triage.db'}"
    else:
        yield from postgres_url()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    migrate(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


def _ticket(session: Session, client_id: str | None = "c-1", text_: str = "学校收费问题") -> Ticket:
    return add_ticket(
        session,
        text=text_,
        title="关于学校乱收费",
        channel="hotline",
        client_id=client_id,
        received_at=datetime(2024, 5, 1, 9, 30, tzinfo=BEIJING),
    )


def _prediction(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "model_version": "v1",
        "level1": "教育",
        "subitem": "学校收费",
        "confidence": 0.91,
        "confidence_level1": 0.97,
        "department": "市教育局",
        "co_departments": ["市教育局"],
        "needs_review": False,
        "review_reason": None,
        "top": [{"subitem": "学校收费", "confidence": 0.91}, {"subitem": "招生", "confidence": 0.05}],
        "explanation": {"keywords": ["收费", "学校"], "note": "关键词命中"},
    }
    values.update(overrides)
    return values


def test_migrate_creates_tables_and_is_idempotent(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no alembic.ini around: config is built in code
    migrate(db_url)
    migrate(db_url)
    eng = make_engine(db_url)
    try:
        insp = inspect(eng)
        assert {"tickets", "predictions", "corrections", "alembic_version"} <= set(
            insp.get_table_names()
        )
        uniques = {tuple(u["column_names"]) for u in insp.get_unique_constraints("tickets")}
        assert ("client_id",) in uniques
        indexed = {tuple(i["column_names"]) for i in insp.get_indexes("predictions")}
        assert ("ticket_id",) in indexed
        with eng.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0004"
    finally:
        eng.dispose()


def test_migration_matches_models(engine: Engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, Base.metadata) == []


def test_engine_settings(engine: Engine) -> None:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            assert Path(engine.url.database or "").parent.is_dir()
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        else:
            assert engine.dialect.driver == "psycopg"


def test_ticket_round_trip_with_aware_datetimes(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        ticket_id = _ticket(session).id
    with factory() as session:
        ticket = get_ticket(session, ticket_id)
        assert ticket is not None
        assert ticket.text == "学校收费问题"
        assert ticket.title == "关于学校乱收费"
        assert ticket.channel == "hotline"
        assert ticket.text_sha256 == hashlib.sha256("学校收费问题".encode()).hexdigest()
        assert ticket.received_at.utcoffset() == timedelta(0)
        assert ticket.received_at == datetime(2024, 5, 1, 1, 30, tzinfo=UTC)
        assert ticket.created_at.tzinfo is not None
        assert abs(datetime.now(UTC) - ticket.created_at) < timedelta(minutes=5)
        assert get_ticket_by_client_id(session, "c-1") is ticket
        assert get_ticket_by_client_id(session, "missing") is None
        assert get_ticket(session, ticket_id + 1000) is None
        assert count_tickets(session) == 1


def test_naive_received_at_is_rejected(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        with pytest.raises(ValueError, match="timezone-aware"):
            add_ticket(
                session,
                text="x",
                title=None,
                channel=None,
                client_id=None,
                received_at=datetime(2024, 5, 1, 9, 30),
            )
        ticket = _ticket(session)
        ticket.received_at = datetime(2024, 5, 1, 9, 30)
        with pytest.raises(StatementError, match="naive datetime"):
            session.flush()


def test_client_id_is_unique(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        _ticket(session, client_id="dup")
        _ticket(session, client_id=None)
        _ticket(session, client_id=None)  # NULLs never collide
    with factory() as session:
        with pytest.raises(IntegrityError):
            _ticket(session, client_id="dup")
        session.rollback()
        assert count_tickets(session) == 3


def test_predictions_are_appended_in_order(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        ticket = _ticket(session)
        assert latest_prediction(session, ticket) is None
        for version in ("v1", "v2", "v3"):
            add_prediction(session, ticket=ticket, prediction=_prediction(model_version=version))
        ticket_id = ticket.id
    with factory() as session:
        ticket = get_ticket(session, ticket_id)
        assert ticket is not None
        assert [p.model_version for p in ticket.predictions] == ["v1", "v2", "v3"]
        latest = latest_prediction(session, ticket)
        assert latest is not None and latest.model_version == "v3"
        assert latest.created_at.tzinfo is not None


def test_prediction_rejects_unknown_fields_and_updates(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        ticket = _ticket(session)
        with pytest.raises(ValueError, match="unknown prediction field"):
            add_prediction(session, ticket=ticket, prediction=_prediction(bogus=1))
        prediction = add_prediction(session, ticket=ticket, prediction=_prediction())
        prediction.subitem = "changed"
        with pytest.raises(ValueError, match="append-only"):
            session.flush()


def test_json_fields_round_trip_chinese(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        ticket = _ticket(session)
        add_prediction(
            session, ticket=ticket, prediction=_prediction(needs_review=True, review_reason="低置信度")
        )
        ticket_id = ticket.id
    with factory() as session:
        ticket = get_ticket(session, ticket_id)
        assert ticket is not None
        stored = latest_prediction(session, ticket)
        assert stored is not None
        assert stored.co_departments == ["市教育局"]
        assert stored.top == [
            {"subitem": "学校收费", "confidence": 0.91},
            {"subitem": "招生", "confidence": 0.05},
        ]
        assert stored.explanation == {"keywords": ["收费", "学校"], "note": "关键词命中"}
        assert stored.needs_review is True
        assert stored.review_reason == "低置信度"
        assert stored.confidence == pytest.approx(0.91)


def test_corrections_round_trip(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        ticket = _ticket(session)
        prediction = add_prediction(session, ticket=ticket, prediction=_prediction())
        add_correction(
            session,
            ticket=ticket,
            values={
                "prediction_id": prediction.id,
                "subitem": "招生",
                "department": "区教育局",
                "sentiment": "negative",
                "before": {"subitem": "学校收费", "department": "市教育局"},
                "reviewer": "张三",
                "note": "误分类",
            },
        )
        with pytest.raises(ValueError, match="unknown correction field"):
            add_correction(session, ticket=ticket, values={"reviewer": "x", "bogus": 1})
        ticket_id = ticket.id
    with factory() as session:
        ticket = get_ticket(session, ticket_id)
        assert ticket is not None
        [correction] = ticket.corrections
        assert correction.model_version == "v1"  # taken from the referenced prediction
        assert correction.prediction is not None and correction.prediction.subitem == "学校收费"
        assert correction.before == {"subitem": "学校收费", "department": "市教育局"}
        assert correction.reviewer == "张三"


def test_rolled_back_session_scope_stores_nothing(factory: sessionmaker[Session]) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with session_scope(factory) as session:
            ticket = _ticket(session)
            add_prediction(session, ticket=ticket, prediction=_prediction())
            raise RuntimeError("boom")
    with factory() as session:
        assert count_tickets(session) == 0
        assert session.scalar(select(func.count()).select_from(Prediction)) == 0


def test_deleting_ticket_cascades(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        for client_id in ("a", "b"):
            ticket = _ticket(session, client_id=client_id)
            prediction = add_prediction(session, ticket=ticket, prediction=_prediction())
            add_correction(
                session,
                ticket=ticket,
                values={"prediction_id": prediction.id, "before": {}, "reviewer": "r"},
            )
    # Database-level cascade (needs foreign keys on in SQLite).
    with session_scope(factory) as session:
        session.execute(delete(Ticket).where(Ticket.client_id == "a"))
    # ORM-level delete.
    with session_scope(factory) as session:
        ticket = get_ticket_by_client_id(session, "b")
        assert ticket is not None
        session.delete(ticket)
    with factory() as session:
        assert count_tickets(session) == 0
        for model in (Prediction, Correction):
            assert session.scalar(select(func.count()).select_from(model)) == 0


def test_returns_are_recorded_with_the_ticket(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        ticket = _ticket(session)
        add_return(session, ticket=ticket, unit="东城区和平街道办事处", reason="不属于本单位职责",
                   prediction=None)
        ticket_id = ticket.id
    with session_scope(factory) as session:
        stored = get_ticket(session, ticket_id)
        assert stored is not None
        assert [(r.unit, r.reason) for r in stored.returns] == [
            ("东城区和平街道办事处", "不属于本单位职责")]


def test_savepoint_inside_a_rolled_back_transaction_stores_nothing(
        factory: sessionmaker[Session]) -> None:
    """A released savepoint is part of its transaction (pysqlite would otherwise commit it)."""
    session = factory()
    with session.begin_nested():
        _ticket(session, client_id="nested-1")
    session.rollback()
    session.close()
    with session_scope(factory) as check:
        assert get_ticket_by_client_id(check, "nested-1") is None
