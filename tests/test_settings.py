"""Settings: every value is checked when read, and a bad one is one sentence naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from triage.errors import InvalidSettingError, TriageError
from triage.settings import Settings, get_settings


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Process settings on a private home, read again after each change."""
    monkeypatch.setenv("TRIAGE_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def _said(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> str:
    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    with pytest.raises(InvalidSettingError) as caught:
        get_settings()
    assert isinstance(caught.value, TriageError)  # shown as one line by the CLI and the service
    return caught.value.message


def test_the_defaults_are_valid(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, _env_file=None)
    assert settings.encoder_max_length == 128 and settings.preset == "fast"


@pytest.mark.parametrize(("variable", "value", "rule"), [
    ("TRIAGE_ENCODER_MAX_LENGTH", "abc", "be a whole number of at least 1"),
    ("TRIAGE_ENCODER_MAX_LENGTH", "-5", "be a whole number of at least 1"),
    ("TRIAGE_ENCODER_MAX_LENGTH", "0", "be a whole number of at least 1"),
    ("TRIAGE_ENCODER_MAX_LENGTH", "1.5", "be a whole number of at least 1"),
    ("TRIAGE_ENCODER_MAX_CHARS", "0", "be a whole number of at least 1"),
    ("TRIAGE_MAX_TEXT_CHARS", "0", "be a whole number of at least 1"),
    ("TRIAGE_MAX_BATCH", "0", "be a whole number of at least 1"),
    ("TRIAGE_REVIEW_AUDIT_EVERY", "0", "be a whole number of at least 1"),
    ("TRIAGE_PORT", "70000", "be a whole number from 1 to 65535"),
    ("TRIAGE_FINETUNE_MINUTES", "-1", "be a number of at least 0"),
    ("TRIAGE_FINETUNE_MINUTES", "abc", "be a number of at least 0"),
    ("TRIAGE_FINETUNE_MINUTES", "inf", "be a number of at least 0"),
    ("TRIAGE_FINETUNE_MINUTES", "nan", "be a number of at least 0"),
    ("TRIAGE_REVIEW_THRESHOLD", "1.5", "be a number from 0 to 1"),
    ("TRIAGE_REVIEW_THRESHOLD_LEVEL1", "-0.1", "be a number from 0 to 1"),
    ("TRIAGE_MEMORY_THRESHOLD", "2", "be a number from 0 to 1"),
    ("TRIAGE_MEMORY_ENCODER_THRESHOLD", "1.2", "be a number from 0 to 1"),
    ("TRIAGE_RETRAIN_TOLERANCE", "-0.5", "be a number from 0 to 1"),
    ("TRIAGE_SEVERITY_KEYWORD_FACTOR", "0", "be a number above 0"),
    ("TRIAGE_PRESET", "bogus", "be fast or accurate"),
    ("TRIAGE_ENCODER_BACKEND", "foo", "be onnx or torch"),
    ("TRIAGE_ENVIRONMENT", "prod", "be development or production"),
    ("TRIAGE_TIMEZONE", "Mars/Olympus", "be a time zone name such as Asia/Shanghai"),
    ("TRIAGE_ENCODER", "", "not be empty"),
    ("TRIAGE_DEFAULT_DEPARTMENT", "", "not be empty"),
    ("TRIAGE_PERFORMANCE__GREEN", "2", "be a number from 0 to 1"),
    ("TRIAGE_PERFORMANCE__HISTORY_PERIODS", "0", "be a whole number of at least 1"),
])
def test_a_bad_value_names_the_variable_the_rule_and_the_value(
    env: pytest.MonkeyPatch, variable: str, value: str, rule: str,
) -> None:
    assert _said(env, variable, value) == f"{variable} must {rule}; got {value!r}"


def test_the_variable_is_named_as_the_user_wrote_it(env: pytest.MonkeyPatch) -> None:
    assert _said(env, "triage_encoder_max_length", "abc") == (
        "triage_encoder_max_length must be a whole number of at least 1; got 'abc'")


def test_a_value_inside_json_names_the_variable_and_where_in_it(env: pytest.MonkeyPatch) -> None:
    said = _said(env, "TRIAGE_SEVERITY_BY_SUBITEM", '{"城乡建设": -1}')
    assert said == "TRIAGE_SEVERITY_BY_SUBITEM: 城乡建设 must be a number of at least 0; got -1"


def test_json_that_does_not_parse_is_named(env: pytest.MonkeyPatch) -> None:
    said = _said(env, "TRIAGE_SEVERITY_KEYWORDS", "安全,燃气")
    assert said.startswith("TRIAGE_SEVERITY_KEYWORDS must be JSON")
    assert "got '安全,燃气'" in said


def test_a_rule_across_settings_is_said_as_it_is(env: pytest.MonkeyPatch) -> None:
    env.setenv("TRIAGE_PERFORMANCE__GREEN", "0.5")
    said = _said(env, "TRIAGE_PERFORMANCE__YELLOW", "0.7")
    assert said == "TRIAGE_PERFORMANCE: yellow threshold 0.7 is above green 0.5"
    env.delenv("TRIAGE_PERFORMANCE__GREEN")
    env.delenv("TRIAGE_PERFORMANCE__YELLOW")
    env.setenv("TRIAGE_DATABASE_URL", "")
    said = _said(env, "TRIAGE_ENVIRONMENT", "production")
    assert said == "TRIAGE_DATABASE_URL must name a server database in production"


def test_every_bad_setting_is_named_at_once(env: pytest.MonkeyPatch) -> None:
    env.setenv("TRIAGE_PRESET", "bogus")
    said = _said(env, "TRIAGE_ENCODER_MAX_LENGTH", "0")
    assert "TRIAGE_PRESET must be fast or accurate; got 'bogus'" in said
    assert "TRIAGE_ENCODER_MAX_LENGTH must be a whole number of at least 1; got '0'" in said
