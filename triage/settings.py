"""One settings object for the whole project (env prefix ``TRIAGE_``, also read from ``.env``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from triage.performance import PerformanceSettings

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    """Everything configurable, read once from ``TRIAGE_*`` environment variables.

    Example:
        >>> Settings(home=Path("/tmp/t")).database_url
        'sqlite:////tmp/t/triage.db'
    """

    model_config = SettingsConfigDict(env_prefix="TRIAGE_", env_file=".env", extra="ignore",
                                      env_nested_delimiter="__")

    environment: str = Field("development", description="development | production")
    home: Path = Field(Path("var"), description="data directory: SQLite file, model registry, caches")
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite in home")
    datasets_dir: Path = Field(PROJECT_ROOT / "datasets", description="the project's demo data")
    shared_dir: Path = Field(PROJECT_ROOT.parent / "shared" / "datasets")
    taxonomy_file: Path | None = Field(None, description="taxonomy for the default model")
    sentiment_model: Path | None = Field(
        None, description="a sentiment version directory; unset: the active one in home, "
        "trained from datasets/feedback_gold.csv on first start")
    performance: PerformanceSettings = Field(
        default_factory=PerformanceSettings,
        description="deadlines, weights and thresholds of the performance results "
        "(e.g. TRIAGE_PERFORMANCE__RECEIPT_HOURS=4)")
    preset: str = Field(
        "fast", description="preset of the default model trained on first start: fast | accurate")
    encoder: str = Field(
        "e5-small", description="sentence encoder of the accurate preset: 'e5-small' (the "
        "packaged multilingual-e5-small, rebuilt into home/encoders on first use) or a local "
        "model directory such as a downloaded bge-base-zh")
    encoder_backend: str = Field("onnx", description="onnx (int8, fast) | torch (fp32)")
    encoder_max_length: int = Field(128, description="tokens per appeal given to the encoder")
    encoder_max_chars: int = Field(
        160, description="characters of a long appeal given to the encoder (head and tail)")
    glossary: str = Field(
        "builtin", description="words citizens use per taxonomy node, added to the leaves' "
        "names when choosing a leaf: builtin (datasets/glossary.csv), none, or a CSV path with "
        "columns path,keywords")
    finetune_minutes: float = Field(
        28.0, ge=0, description="accurate preset: minutes of encoder fine-tuning on the labelled "
        "appeals before the classifier is fitted (`triage train --time-budget` overrides; 0: use "
        "the encoder as it is). 28 keeps training on ~10.7k appeals within 45 min on 2 cores")
    host: str = "127.0.0.1"
    port: int = 8000
    timezone: str = Field("Asia/Shanghai", description="zone of timestamps sent without one")
    max_text_chars: int = 20_000
    max_batch: int = 1_000
    review_threshold: float = Field(0.35, description="leaf confidence below this needs review")
    review_threshold_level1: float = Field(0.6, description="level-1 confidence below this")
    memory_threshold: float = Field(
        0.5, description="cosine similarity at which a corrected appeal's answer is reused")
    memory_encoder_threshold: float | None = Field(
        None, description="encoder cosine at which a corrected appeal's answer is reused "
        "(versions trained with an encoder only); unset: calibrated per version on its "
        "training appeals (nearest neighbours sharing the top level 95% of the time)")
    broker_url: str = Field(
        "", description="run retraining on Celery workers through this broker (e.g. "
        "redis://127.0.0.1:6379/0); empty: in process")
    evaluation_set: Path | None = Field(
        None, description="frozen evaluation set (text,label) for the retraining gate")
    retrain_tolerance: float = Field(
        0.0, description="a candidate worse than the active model by more than this is not "
        "promoted")
    review_audit_every: int = Field(
        20, ge=1, description="every Nth confident ticket joins the review queue as an audit")
    severity_by_subitem: dict[str, float] = Field(
        default_factory=dict, description="review severity per node path (deepest match wins)")
    severity_keywords: list[str] = Field(
        default_factory=lambda: ["安全", "燃气", "煤气", "坠落", "食物中毒", "火灾", "触电", "漏电",
                                 "倒塌", "爆炸", "溺水", "欠薪跳楼", "自杀"],
        description="words that raise a ticket's review severity")
    severity_keyword_factor: float = 3.0
    default_department: str = Field(
        "市12345热线办公室", description="shown when no unit is known for a sub-item"
    )

    @model_validator(mode="after")
    def _fill_derived(self) -> Settings:
        self.home = self.home.expanduser()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.home.resolve() / 'triage.db'}"
        if self.environment == "production" and self.database_url.startswith("sqlite"):
            # Refused outside development: a production centre keeps its records in PostgreSQL.
            raise ValueError("TRIAGE_DATABASE_URL must name a server database in production")
        return self

    @property
    def models_dir(self) -> Path:
        """Where the registry keeps model versions."""
        return self.home / "models"

    @property
    def demo_taxonomy(self) -> Path:
        return self.datasets_dir / "demo_taxonomy.csv"

    @property
    def demo_appeals(self) -> Path:
        return self.datasets_dir / "demo_appeals.csv"

    @property
    def demo_test(self) -> Path:
        return self.datasets_dir / "demo_test.csv"

    @property
    def demo_feedback(self) -> Path:
        return self.datasets_dir / "feedback_gold.csv"

    @property
    def demo_gazetteer(self) -> Path:
        return self.datasets_dir / "demo_gazetteer.csv"

    @property
    def demo_responsibility(self) -> Path:
        return self.datasets_dir / "demo_responsibility.csv"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests build their own ``Settings`` instead)."""
    return Settings()
