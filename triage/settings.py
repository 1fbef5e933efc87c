"""One settings object for the whole project (env prefix ``TRIAGE_``, also read from ``.env``)."""

from __future__ import annotations

import os
import re
import types
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as SettingsParseError

from triage.errors import InvalidSettingError
from triage.performance import PerformanceSettings

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    """Everything configurable, read once from ``TRIAGE_*`` environment variables.

    Example:
        >>> Settings(home=Path("/tmp/t")).database_url
        'sqlite:////tmp/t/triage.db'
    """

    model_config = SettingsConfigDict(env_prefix="TRIAGE_", env_file=".env", extra="ignore",
                                      env_nested_delimiter="__", allow_inf_nan=False)

    environment: Literal["development", "production"] = Field(
        "development", description="development | production")
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
    preset: Literal["fast", "accurate"] = Field(
        "fast", description="preset of the default model trained on first start: fast | accurate")
    encoder: str = Field(
        "e5-small", min_length=1, description="sentence encoder of the accurate preset: "
        "'e5-small' (the packaged multilingual-e5-small, rebuilt into home/encoders on first "
        "use) or a local model directory such as a downloaded bge-base-zh")
    encoder_backend: Literal["onnx", "torch"] = Field(
        "onnx", description="onnx (int8, fast) | torch (fp32)")
    # 0 or less reached the tokenizer as "no truncation" or an overflow: refused here
    encoder_max_length: int = Field(
        128, ge=1, description="tokens per appeal given to the encoder")
    encoder_max_chars: int = Field(
        160, ge=1, description="characters of a long appeal given to the encoder (head and tail)")
    glossary: str = Field(
        "builtin", min_length=1, description="words citizens use per taxonomy node, added to "
        "the leaves' names when choosing a leaf: builtin (datasets/glossary.csv), none, or a "
        "CSV path with columns path,keywords")
    finetune_minutes: float = Field(
        28.0, ge=0, description="accurate preset: minutes of encoder fine-tuning on the labelled "
        "appeals before the classifier is fitted (`triage train --time-budget` overrides; 0: use "
        "the encoder as it is). 28 keeps training on ~10.7k appeals within 45 min on 2 cores")
    leaf_guide_weight: float = Field(
        0.0, ge=0, description="accurate preset: weight of the configured encoder as it comes in "
        "choosing the training appeals' leaves (one more embedding pass at training; 0: off). "
        "3 helped before the glossary of 2026-12-07 and not after it (README, preset accurate)")
    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(8000, ge=1, le=65535)
    timezone: str = Field("Asia/Shanghai", description="zone of timestamps sent without one",
                          json_schema_extra={"rule": "be a time zone name such as Asia/Shanghai"})
    max_text_chars: int = Field(20_000, ge=1)
    max_batch: int = Field(1_000, ge=1)
    review_threshold: float = Field(
        0.35, ge=0, le=1, description="leaf confidence below this needs review")
    review_threshold_level1: float = Field(
        0.6, ge=0, le=1, description="level-1 confidence below this")
    memory_threshold: float = Field(
        0.5, ge=0, le=1,
        description="cosine similarity at which a corrected appeal's answer is reused")
    memory_encoder_threshold: float | None = Field(
        None, ge=0, le=1, description="encoder cosine at which a corrected appeal's answer is "
        "reused (versions trained with an encoder only); unset: calibrated per version on its "
        "training appeals (nearest neighbours sharing the top level 95% of the time)")
    broker_url: str = Field(
        "", description="run retraining on Celery workers through this broker (e.g. "
        "redis://127.0.0.1:6379/0); empty: in process")
    evaluation_set: Path | None = Field(
        None, description="frozen evaluation set (text,label) for the retraining gate")
    retrain_tolerance: float = Field(
        0.0, ge=0, le=1, description="a candidate worse than the active model by more than this "
        "is not promoted")
    review_audit_every: int = Field(
        20, ge=1, description="every Nth confident ticket joins the review queue as an audit")
    severity_by_subitem: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict, description="review severity per node path (deepest match wins)")
    severity_keywords: list[str] = Field(
        default_factory=lambda: ["安全", "燃气", "煤气", "坠落", "食物中毒", "火灾", "触电", "漏电",
                                 "倒塌", "爆炸", "溺水", "欠薪跳楼", "自杀"],
        description="words that raise a ticket's review severity")
    severity_keyword_factor: float = Field(
        3.0, gt=0, description="severity of a ticket whose text has one of the words, times")
    default_department: str = Field(
        "市12345热线办公室", min_length=1, description="shown when no unit is known for a sub-item"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ValueError, KeyError, OSError) as exc:  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

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
    """The process-wide settings (tests build their own ``Settings`` instead).

    A value that breaks its rule is an ``InvalidSettingError`` (a domain error: one line from the
    CLI and from ``triage serve``) naming the variable, the rule and the value."""
    try:
        return Settings()
    except (ValidationError, SettingsParseError) as exc:
        raise InvalidSettingError(invalid_settings_message(exc)) from None


# --------------------------------------------------------------------------- bad values, said
def invalid_settings_message(exc: ValidationError | SettingsParseError) -> str:
    """One sentence per bad value, e.g. ``TRIAGE_ENCODER_MAX_LENGTH must be a whole number of at
    least 1; got 'abc'`` (the variable as it was written, in the environment or ``.env``)."""
    if isinstance(exc, SettingsParseError):  # JSON of a list or object setting that does not parse
        found = re.search(r'field "([^"]+)"', str(exc))
        loc = (found.group(1),) if found else ()
        name, _ = _variable(loc)
        value = _written().get(name, "")
        return f"{name} must {_rule(loc)}; got {_shown(value)}"
    said: list[str] = []
    for error in exc.errors(include_url=False):
        sentence = _sentence(error)
        if sentence not in said:
            said.append(sentence)
    return "; ".join(said)


def _sentence(error: Any) -> str:
    loc = tuple(error["loc"])
    name, rest = _variable(loc)
    where = f"{name}: {'.'.join(map(str, rest))}" if rest else name
    annotation, _, _ = _target(loc)
    is_rule_across = not loc or (isinstance(annotation, type) and issubclass(annotation, BaseModel))
    if error["type"] == "value_error" and is_rule_across:  # a model validator's own sentence
        message = str(error["msg"]).removeprefix("Value error, ")
        return f"{where}: {message}" if loc else message
    return f"{where} must {_rule(loc)}; got {_shown(error.get('input'))}"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _written() -> dict[str, str]:
    """The variables as written: the environment, then ``.env`` (the environment wins)."""
    found: dict[str, str] = {}
    env_file = Path(str(Settings.model_config.get("env_file") or ""))
    if env_file.name and env_file.is_file():
        from dotenv import dotenv_values

        found.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    found.update(os.environ)
    return found


def _variable(loc: tuple) -> tuple[str, tuple]:
    """The variable that set the value at ``loc`` (as written: names are case-insensitive) and
    the rest of ``loc`` inside its JSON value; TRIAGE_ + the path when none is found."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    written = {key.lower(): key for key in _written()}
    for size in range(len(loc), 0, -1):
        key = written.get((prefix + "__".join(map(str, loc[:size]))).lower())
        if key is not None:
            return key, loc[size:]
    return (prefix + "__".join(map(str, loc))).upper() or "the settings", ()


def _unwrap(annotation: Any, metadata: list) -> tuple[Any, list]:
    """``X | None`` -> X; ``Annotated[X, Field(ge=0)]`` -> X with its constraints."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation, *extra = get_args(annotation)
            for item in extra:
                metadata = metadata + (item.metadata if isinstance(item, FieldInfo) else [item])
        elif origin in (Union, types.UnionType):
            kept = [a for a in get_args(annotation) if a is not type(None)]
            if len(kept) != 1:
                return annotation, metadata
            annotation = kept[0]
        else:
            return annotation, metadata


def _target(loc: tuple) -> tuple[Any, list, FieldInfo | None]:
    """The type, constraints and field of the value at ``loc`` in the settings."""
    annotation: Any = Settings
    metadata: list = []
    field: FieldInfo | None = None
    for part in loc:
        annotation, metadata = _unwrap(annotation, metadata)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                break
            annotation, metadata = field.annotation, list(field.metadata)
        elif get_origin(annotation) in (dict, list):
            annotation, metadata, field = get_args(annotation)[-1], [], None
    annotation, metadata = _unwrap(annotation, metadata)
    return annotation, metadata, field


_KINDS = {int: "a whole number", float: "a number", bool: "true or false", str: "text",
          Path: "a path"}


def _rule(loc: tuple) -> str:
    """What a value at ``loc`` must be, as the rest of a sentence after "must"."""
    annotation, metadata, field = _target(loc)
    extra = field.json_schema_extra if field is not None else None
    if isinstance(extra, dict) and "rule" in extra:
        return str(extra["rule"])
    if get_origin(annotation) is Literal:
        choices = [str(c) for c in get_args(annotation)]
        return "be " + (" or ".join(choices) if len(choices) < 3
                        else ", ".join(choices[:-1]) + " or " + choices[-1])
    if get_origin(annotation) is list:
        return "be JSON (a list)"
    if get_origin(annotation) is dict or (isinstance(annotation, type)
                                         and issubclass(annotation, BaseModel)):
        return "be JSON (an object)"
    bounds = {name: getattr(m, name) for m in metadata
              for name in ("ge", "gt", "le", "lt", "min_length") if hasattr(m, name)}
    if bounds.get("min_length") == 1:
        return "not be empty"
    kind = _KINDS.get(annotation, "a valid value")
    return f"be {kind}{_range(bounds)}"


def _range(bounds: dict[str, Any]) -> str:
    low, high = bounds.get("ge"), bounds.get("le")
    if low is not None and high is not None:
        return f" from {low:g} to {high:g}"
    for key, words in (("ge", "of at least"), ("gt", "above"), ("le", "of at most"),
                       ("lt", "below")):
        if bounds.get(key) is not None:
            return f" {words} {bounds[key]:g}"
    return ""
