"""Engine/session helpers and programmatic Alembic migrations."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_PG_DRIVERS = {"postgresql", "postgres", "postgresql+psycopg2"}


def _json_dumps(value: Any) -> str:
    # Keep Chinese text readable in the database instead of \\uXXXX escapes.
    return json.dumps(value, ensure_ascii=False)


def normalize_url(url: str | URL) -> URL:
    """Parse ``url``; ``postgresql://`` (or ``postgres://``) becomes ``postgresql+psycopg://``."""
    parsed = make_url(url)
    if parsed.drivername in _PG_DRIVERS:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _is_memory_sqlite(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or "mode=memory" in database


def _sqlite_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    # pysqlite's own transaction handling would let RELEASE SAVEPOINT commit for good; hand
    # BEGIN to SQLAlchemy instead (its documented recipe), so savepoints nest in a real transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=15000")
    finally:
        cursor.close()


def make_engine(url: str | URL) -> Engine:
    """Create an engine for a SQLite or PostgreSQL URL.

    SQLite: creates the database file's parent directory, allows cross-thread use and turns
    on foreign keys and WAL for every connection. PostgreSQL: uses the psycopg 3 driver.
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, json_serializer=_json_dumps, json_deserializer=orjson.loads,
                             pool_pre_ping=True)

    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if _is_memory_sqlite(parsed):
        kwargs["poolclass"] = StaticPool
    elif parsed.database and not parsed.database.startswith("file:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    # orjson reads the JSON columns (explanations, top-3) about 3 times faster than json.loads:
    # the 1,000-row review queue spent most of its time there.
    engine = create_engine(parsed, json_serializer=_json_dumps, json_deserializer=orjson.loads,
                           **kwargs)
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_begin(connection: Any) -> None:
    # A transaction that will write takes SQLite's one write lock at BEGIN, waiting for it
    # (busy_timeout) while another writer holds it. A deferred one that reads first fails at
    # once with "database is locked" when it later writes after another connection has written
    # (WAL cannot upgrade a stale read snapshot): 19 of 20 parallel POST /v1/tickets failed so.
    immediate = connection.get_execution_options().get(_WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


_WRITE_OPTION = "triage_writes"


def writing_session(factory: sessionmaker[Session]) -> Session:
    """A session from ``factory`` whose transaction will write: on SQLite it begins with
    ``BEGIN IMMEDIATE`` (at its first statement, not before), so concurrent writers queue for the
    lock instead of failing. PostgreSQL sessions are unchanged."""
    engine = factory.kw["bind"]
    return factory(bind=engine.execution_options(**{_WRITE_OPTION: True}))


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Session factory bound to ``engine``; objects stay usable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def alembic_config() -> Config:
    """Alembic config built in code (no alembic.ini needed), pointing at the packaged scripts."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


def migrate(engine_or_url: Engine | str | URL) -> None:
    """Upgrade the database schema to the newest revision (``alembic upgrade head``)."""
    owns_engine = not isinstance(engine_or_url, Engine)
    engine = make_engine(engine_or_url) if owns_engine else engine_or_url
    try:
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        if owns_engine:
            engine.dispose()


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Yield a session; commit if the block succeeds, roll back (and re-raise) if it fails."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
