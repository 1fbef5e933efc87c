"""The sentiment model's encoder learner: training, the version round trip, the encoder check.

A tiny BERT (``tests/tiny_encoder.py``, random weights) stands in for the real encoder in the
plumbing tests; the real packaged e5 is checked at the end (slow).
"""

from __future__ import annotations

import csv
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import DATASETS
from typer.testing import CliRunner

from api.cli import app
from models.sentiment import SentimentModel, load_sentiment, save_sentiment
from triage.errors import ArtifactError, TriageError

runner = CliRunner()

FEEDBACK = [("非常满意，问题当天就解决了", 1), ("态度很好，办得也快", 1), ("谢谢你们，路灯修好了", 1),
            ("挺好的，很及时", 1), ("工作人员很耐心，满意", 1), ("一点都不满意，根本没解决", 0),
            ("推来推去，没人管", 0), ("等了一个月还没人来", 0), ("态度太差了", 0), ("敷衍了事，走过场", 0)]
TEXTS = [t for t, _ in FEEDBACK]
LABELS = [y for _, y in FEEDBACK]
PROBE = ["处理得很好，非常满意", "不是很满意，拖了好久才来", "推来推去"]


@pytest.fixture
def env(tiny_encoder_env: Path) -> Path:
    return tiny_encoder_env


@pytest.fixture
def version(env: Path, tmp_path: Path) -> Path:
    """An ``encoder.v1`` version trained through the CLI."""
    data = tmp_path / "feedback.csv"
    data.write_text("review,label\n" + "".join(f"{t},{y}\n" for t, y in FEEDBACK * 3),
                    encoding="utf-8")
    result = runner.invoke(app, ["train-sentiment", "--data", str(data), "--text-column", "review",
                                 "--label-column", "label", "--learner", "encoder.v1",
                                 "--output", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    return tmp_path / "s"


def test_the_manifest_names_the_encoder_and_the_pickle_holds_none(version: Path, env: Path) -> None:
    manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["learner"] == "encoder.v1"
    encoder = manifest["encoder"]
    assert encoder["source"] == str(env)
    assert (encoder["max_length"], encoder["max_chars"], encoder["dim"]) == (64, 80, 32)
    assert encoder["fingerprint"] == json.loads((env / "triage-encoder.json").read_text())[
        "tensor_sha256"]
    with (version / "sentiment.pkl").open("rb") as handle:
        assert getattr(pickle.load(handle).learner_, "encoder", None) is None


@pytest.mark.parametrize("learner", ["encoder.v1", "both.v1"])
def test_save_then_load_gives_the_same_scores(env: Path, tmp_path: Path, learner: str) -> None:
    model = SentimentModel(learner=learner).fit(TEXTS, LABELS)
    loaded = load_sentiment(save_sentiment(model, tmp_path / "v", {}))
    assert loaded.manifest["learner"] == learner and "encoder" in loaded.manifest
    np.testing.assert_allclose(loaded.model.predict_proba(PROBE), model.predict_proba(PROBE),
                               atol=1e-6)
    assert [r.label for r in loaded.model.predict(PROBE)] == [r.label for r in model.predict(PROBE)]


def test_a_tfidf_version_records_no_encoder(tmp_path: Path) -> None:
    model = SentimentModel().fit(TEXTS, LABELS)
    manifest = load_sentiment(save_sentiment(model, tmp_path / "v", {})).manifest
    assert "encoder" not in manifest


def test_scoring_through_the_cli_with_an_encoder_version(version: Path, tmp_path: Path) -> None:
    source = tmp_path / "visits.csv"
    source.write_text("id,反馈\n1,处理得很好，非常满意\n2,不是很满意，拖了好久才来\n", encoding="utf-8")
    out = tmp_path / "scored.csv"
    result = runner.invoke(app, ["sentiment", "--model", str(version), "--input", str(source),
                                 "--text-column", "反馈", "--output", str(out)])
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    # a random tiny encoder: the lexicon part carries the sign
    assert float(rows[0]["sentiment_score"]) > 0 and rows[0]["sentiment_label"] == "positive"
    assert float(rows[1]["sentiment_score"]) < 0 and "slow" in rows[1]["reasons"].split("|")


def test_an_encoder_with_other_weights_is_refused(version: Path, env: Path, tmp_path: Path) -> None:
    from tiny_encoder import build_tiny_encoder

    with (DATASETS / "demo_appeals.csv").open(encoding="utf-8") as handle:
        texts = [r["text"] for r in csv.DictReader(handle)]
    shutil.rmtree(env)
    build_tiny_encoder(env, texts, seed=1)  # same place, other weights
    with pytest.raises(ArtifactError, match="holds other weights"):
        load_sentiment(version)
    source = tmp_path / "visits.csv"
    source.write_text("text\n很满意\n", encoding="utf-8")
    result = runner.invoke(app, ["sentiment", "--model", str(version), "--input", str(source),
                                 "--text-column", "text", "--output", str(tmp_path / "o.csv")])
    assert result.exit_code == 2
    said = " ".join(result.output.split())  # rich wraps long lines
    assert "holds other weights" in said and "--learner encoder.v1" in said
    assert "Traceback" not in said
    assert not (tmp_path / "o.csv").exists()


def test_a_missing_encoder_is_a_clear_error(version: Path, env: Path) -> None:
    shutil.rmtree(env)
    with pytest.raises(ArtifactError, match="config.json") as info:
        load_sentiment(version)
    # the version's encoder is missing, not the user's setting wrong
    assert f"was trained with the encoder at {env}, which is missing" in info.value.message
    assert "neither" not in info.value.message and "triage train-sentiment" in info.value.message


def test_an_unknown_learner_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TriageError, match="unknown sentiment learner 'bert.v9'.*encoder.v1"):
        SentimentModel(learner="bert.v9").fit(TEXTS, LABELS)
    data = tmp_path / "feedback.csv"
    data.write_text("review,label\n很好,1\n很差,0\n", encoding="utf-8")
    result = runner.invoke(app, ["train-sentiment", "--data", str(data), "--text-column", "review",
                                 "--label-column", "label", "--learner", "bert.v9",
                                 "--output", str(tmp_path / "s")])
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "unknown sentiment learner 'bert.v9'" in said
    assert "Traceback" not in said and not (tmp_path / "s").exists()


# -- the real packaged encoder -----------------------------------------------------------------
POSITIVE = [
    "非常满意，问题第二天就解决了", "工作人员态度很好，办事效率高", "谢谢你们，路灯已经修好了",
    "处理得很及时，点赞", "很负责，耐心解释了政策", "满意，小区的垃圾当天就清走了",
    "回复很快，问题彻底解决了", "师傅上门维修，很专业", "感谢社区，噪音的事情解决了",
    "办得又快又好，非常感谢", "热线很给力，漏水的问题处理好了", "服务周到，十分满意",
    "这次处理很认真，我很满意", "积水很快就排掉了，谢谢", "态度热情，解决得很彻底",
]
NEGATIVE = [
    "根本没解决，就是敷衍", "态度很差，说话很不耐烦", "推来推去，没有人管",
    "等了一个月还没人来处理", "问题还是老样子，一点用都没有", "打了好几次电话都没人回复",
    "非常不满意，走过场而已", "说了等于没说，什么都没做", "拖了很久，还是没有修好",
    "工作人员爱答不理，很失望", "又坏了，反映了三次都没用", "回复驴唇不对马嘴，很气人",
    "一直在踢皮球，没人负责", "处理太慢了，耽误了很多事", "完全不作为，太差劲了",
]


@pytest.mark.slow
def test_the_packaged_encoder_learns_clear_feedback(packaged_e5) -> None:
    model = SentimentModel(learner="encoder.v1", learnt_weight=1.0).fit(
        POSITIVE + NEGATIVE, [1] * len(POSITIVE) + [0] * len(NEGATIVE), encoder=packaged_e5)
    assert model.attached_encoder()[1] == "e5-small"
    negative, positive = model.score(["到现在都没人来修，太让人失望了",
                                      "修得很快，工作人员也很热心，谢谢"])
    assert negative < 0 < positive
