"""The ``triage`` command as a user runs it: train, predict, models; clear errors, no tracebacks."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import DATASETS
from typer.testing import CliRunner

from api.cli import PREDICT_COLUMNS, app

runner = CliRunner()


def _train(output: Path | None, *extra: str):
    args = ["train", "--data", str(DATASETS / "demo_appeals.csv"), "--text-column", "text",
            "--label-column", "label", "--taxonomy", str(DATASETS / "demo_taxonomy.csv"),
            "--holdout", "0.1", *extra]
    if output:
        args += ["--output", str(output)]
    return runner.invoke(app, args)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_train_then_predict_writes_the_contract_columns(home: Path, tmp_path: Path) -> None:
    result = _train(tmp_path / "v1")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout[result.stdout.index("{"):])["metrics"]
    assert metrics["holdout_level1_accuracy"] > 0.5
    source = tmp_path / "in.csv"
    source.write_text("id,text\n7,幼儿园突然涨保育费还不给退 电话13912345678\n"
                      "3,\"小区楼下烧烤摊油烟太大,晚上十二点还在营业\"\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["predict", "--model", str(tmp_path / "v1"), "--input",
                                 str(source), "--text-column", "text", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert not out.read_bytes().startswith(b"\xef\xbb\xbf")
    rows = _rows(out)
    assert list(rows[0]) == ["id", "text", *PREDICT_COLUMNS]
    assert [r["id"] for r in rows] == ["7", "3"]
    assert "13912345678" in rows[0]["text"]  # the user's own file is copied verbatim
    assert rows[0]["subitem"] == "教育文体/学前教育/幼儿园收费与退费"
    for row in rows:
        assert row["subitem"].startswith(row["level1"] + "/") and row["department"]
        assert row["needs_review"] in {"true", "false"}
        assert len(row["subitem_alternatives"].split("|")) == 2
        assert row["subitem"] not in row["subitem_alternatives"].split("|")


def test_train_into_registry_and_activate(home: Path, tmp_path: Path) -> None:
    assert _train(None, "--activate").exit_code == 0
    assert _train(tmp_path / "v2").exit_code == 0
    added = runner.invoke(app, ["models", "add", str(tmp_path / "v2")])
    assert added.exit_code == 0, added.output
    version = added.stdout.strip()
    assert runner.invoke(app, ["models", "activate", version]).exit_code == 0
    listing = runner.invoke(app, ["models", "list"]).stdout
    assert version in listing and listing.count("*") == 1
    again = runner.invoke(app, ["models", "add", str(tmp_path / "v2")])
    assert again.exit_code == 2 and "already registered" in again.output


def test_old_versions_are_deleted_but_never_the_active_one(home: Path, tmp_path: Path) -> None:
    """Nightly retraining adds a version a night (an accurate one is about 0.5 GB): a centre
    deletes old ones by hand or keeps the newest few, and never loses the serving one."""
    assert _train(None, "--activate").exit_code == 0
    for name in ("v2", "v3", "v4"):
        assert _train(tmp_path / name).exit_code == 0
    versions = [runner.invoke(app, ["models", "add", str(tmp_path / n)]).stdout.strip()
                for n in ("v2", "v3", "v4")]
    active = _listed(runner.invoke(app, ["models", "list"]).stdout)
    first = next(v for v, row in active.items() if row["active"] == "*")
    refused = runner.invoke(app, ["models", "delete", first])
    assert refused.exit_code == 2 and "is active" in refused.output
    assert "Traceback" not in refused.output
    deleted = runner.invoke(app, ["models", "delete", versions[0]])
    assert deleted.exit_code == 0 and f"deleted {versions[0]}" in deleted.stdout
    assert not (home / "models" / versions[0]).exists()
    assert set(_listed(runner.invoke(app, ["models", "list"]).stdout)) == {first, *versions[1:]}
    gone = runner.invoke(app, ["models", "delete", versions[0]])
    assert gone.exit_code == 2 and "no model version" in gone.output
    pruned = runner.invoke(app, ["models", "prune", "--keep", "1"])
    assert pruned.exit_code == 0 and "1 version(s) deleted" in pruned.stdout
    assert set(_listed(runner.invoke(app, ["models", "list"]).stdout)) == {first, versions[2]}
    # the active version still serves
    source = tmp_path / "in.csv"
    source.write_text("text\n幼儿园突然涨保育费还不给退\n", encoding="utf-8")
    result = runner.invoke(app, ["predict", "--model", str(home / "models" / first), "--input",
                                 str(source), "--text-column", "text", "--output",
                                 str(tmp_path / "out.csv")])
    assert result.exit_code == 0, result.output


def test_unknown_label_is_named_with_its_row(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "bad.csv"
    data.write_text("text,label\n幼儿园乱收费,教育文体\n路灯坏了,不存在的分类\n", encoding="utf-8")
    result = runner.invoke(app, ["train", "--data", str(data), "--text-column", "text",
                                 "--label-column", "label", "--taxonomy",
                                 str(DATASETS / "demo_taxonomy.csv"), "--output", str(tmp_path / "v")])
    assert result.exit_code == 2
    assert "不存在的分类" in result.output and "rows 3" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "v").exists()


def test_gbk_input_is_refused_with_a_hint(home: Path, tmp_path: Path) -> None:
    assert _train(tmp_path / "v1").exit_code == 0
    source = tmp_path / "gbk.csv"
    source.write_bytes("text\n路灯坏了\n".encode("gbk"))
    result = runner.invoke(app, ["predict", "--model", str(tmp_path / "v1"), "--input",
                                 str(source), "--text-column", "text", "--output",
                                 str(tmp_path / "o.csv")])
    assert result.exit_code == 2 and "UTF-8" in result.output
    assert not (tmp_path / "o.csv").exists()


def test_missing_column_and_model_dir_are_explained(home: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["predict", "--model", str(tmp_path), "--input",
                                 str(DATASETS / "demo_test.csv"), "--text-column", "text",
                                 "--output", str(tmp_path / "o.csv")])
    assert result.exit_code == 2 and "manifest.json" in result.output
    assert _train(tmp_path / "v1").exit_code == 0
    result = runner.invoke(app, ["predict", "--model", str(tmp_path / "v1"), "--input",
                                 str(DATASETS / "demo_test.csv"), "--text-column", "内容",
                                 "--output", str(tmp_path / "o.csv")])
    assert result.exit_code == 2 and "no column named '内容'" in result.output


def test_train_with_routing_fills_department_district_street(home: Path, tmp_path: Path) -> None:
    result = _train(tmp_path / "v", "--responsibility", str(DATASETS / "demo_responsibility.csv"),
                    "--gazetteer", str(DATASETS / "demo_gazetteer.csv"))
    assert result.exit_code == 0, result.output
    source = tmp_path / "in.csv"
    source.write_text("text\n东城区和平街道人民路菜市场门口天天有流动摊贩占道卖菜，早上堵得车过不去\n",
                      encoding="utf-8")
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["predict", "--model", str(tmp_path / "v"), "--input", str(source),
                                 "--text-column", "text", "--output", str(out)])
    assert result.exit_code == 0, result.output
    [row] = _rows(out)
    assert (row["district"], row["street"]) == ("东城区", "和平街道")
    assert row["department"] == "东城区城市管理和综合执法局"
    assert row["co_departments"] == "东城区和平街道办事处"


def test_bad_responsibility_list_is_named(home: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules.csv"
    rules.write_text("node,lead,co,district\n不存在的节点,市教育局,,\n", encoding="utf-8")
    result = _train(tmp_path / "v", "--responsibility", str(rules))
    assert result.exit_code == 2 and "不存在的节点" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "v").exists()


def test_history_needs_one_unit_column(home: Path, tmp_path: Path) -> None:
    history = tmp_path / "history.csv"
    history.write_text("text,department\n路灯坏了,东城区城市管理和综合执法局\n", encoding="utf-8")
    result = _train(tmp_path / "v", "--history", str(history))
    assert result.exit_code == 2 and "--department-column" in result.output


FEEDBACK = [("非常满意，问题当天就解决了", 1), ("态度很好，办得也快", 1), ("谢谢你们，路灯修好了", 1),
            ("挺好的，很及时", 1), ("工作人员很耐心，满意", 1), ("一点都不满意，根本没解决", 0),
            ("推来推去，没人管", 0), ("等了一个月还没人来", 0), ("态度太差了", 0), ("敷衍了事，走过场", 0)]


def test_train_sentiment_then_score_feedback(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "feedback.csv"
    data.write_text("review,label\n" + "".join(f"{t},{y}\n" for t, y in FEEDBACK * 3),
                    encoding="utf-8")
    result = runner.invoke(app, ["train-sentiment", "--data", str(data), "--text-column", "review",
                                 "--label-column", "label", "--output", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s" / "manifest.json").is_file()
    _, out = _score_feedback(tmp_path, "id,反馈\n1,处理得很好，非常满意\n2,不是很满意，拖了好久才来\n")
    rows = _rows(out)
    assert list(rows[0]) == ["id", "反馈", "sentiment_label", "sentiment_score", "reasons"]
    assert float(rows[0]["sentiment_score"]) > 0 and rows[0]["sentiment_label"] == "positive"
    assert float(rows[1]["sentiment_score"]) < 0 and "slow" in rows[1]["reasons"].split("|")


def _score_feedback(tmp_path: Path, content: str) -> tuple[Any, Path]:
    """Score a feedback file (column 反馈) with the model in ``tmp_path / "s"``."""
    source = tmp_path / "visits.csv"
    source.write_text(content, encoding="utf-8")
    out = tmp_path / "scored.csv"
    result = runner.invoke(app, ["sentiment", "--model", str(tmp_path / "s"), "--input",
                                 str(source), "--text-column", "反馈", "--output", str(out)])
    assert result.exit_code == 0, result.output
    return result, out


def test_train_sentiment_names_bad_labels(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "feedback.csv"
    data.write_text("review,label\n很好,1\n很差,maybe\n", encoding="utf-8")
    result = runner.invoke(app, ["train-sentiment", "--data", str(data), "--text-column", "review",
                                 "--label-column", "label", "--output", str(tmp_path / "s")])
    assert result.exit_code == 2 and "maybe" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".json", ".html"])
def test_report_writes_every_format(home: Path, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"report{suffix}"
    result = runner.invoke(app, ["report", "--from", "2026-11-01", "--to", "2026-11-30",
                                 "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and out.stat().st_size > 0
    if suffix == ".json":
        assert json.loads(out.read_text(encoding="utf-8"))["tickets"] == 0


def test_report_refuses_bad_dates(home: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", "--from", "2026-11-31", "--to", "2026-11-30",
                                 "--output", str(tmp_path / "r.csv")])
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output


def _ticket_in(home: Path) -> int:
    from triage.settings import get_settings
    from triage.store import add_ticket, make_engine, make_session_factory, migrate, session_scope

    engine = make_engine(get_settings().database_url)
    migrate(engine)
    with session_scope(make_session_factory(engine)) as session:
        ticket_id = add_ticket(session, text="路灯坏了", title=None, channel=None, client_id=None,
                               received_at=datetime(2026, 11, 2, tzinfo=UTC)).id
    engine.dispose()
    return ticket_id


def test_import_events_and_feedback_then_report(home: Path, tmp_path: Path) -> None:
    ticket = _ticket_in(home)
    events = tmp_path / "events.csv"
    events.write_text("ticket_id,type,unit,at\n"
                      f"{ticket},dispatched,市城市管理局,2026-11-02T09:00:00+08:00\n"
                      f"{ticket},received,市城市管理局,2026-11-02T09:30:00+08:00\n"
                      f"{ticket},closed,市城市管理局,2026-11-03T09:30:00+08:00\n", encoding="utf-8")
    result = runner.invoke(app, ["import", "events", str(events)])
    assert result.exit_code == 0, result.output
    feedback = tmp_path / "feedback.csv"
    feedback.write_text(f"ticket_id,rating,text,channel,at\n{ticket},5,修得很快，满意,phone,\n",
                        encoding="utf-8")
    assert runner.invoke(app, ["import", "feedback", str(feedback)]).exit_code == 0
    out = tmp_path / "r.json"
    assert runner.invoke(app, ["report", "--from", "2026-11-01", "--to", "2026-11-30",
                               "--output", str(out)]).exit_code == 0
    [unit] = json.loads(out.read_text(encoding="utf-8"))["by_unit"]
    assert unit["unit"] == "市城市管理局" and unit["satisfaction_rate"] == 1.0


def test_import_is_all_or_nothing_and_names_rows(home: Path, tmp_path: Path) -> None:
    ticket = _ticket_in(home)
    events = tmp_path / "events.csv"
    events.write_text("ticket_id,type,unit,at\n"
                      f"{ticket},dispatched,市城市管理局,2026-11-02T09:00:00+08:00\n"
                      f"{ticket},finished,市城市管理局,2026-11-02T09:30:00+08:00\n"
                      f"999,closed,市城市管理局,yesterday\n", encoding="utf-8")
    result = runner.invoke(app, ["import", "events", str(events)])
    assert result.exit_code == 2
    assert "row 3" in result.output and "row 4" in result.output and "nothing was imported" in result.output
    out = tmp_path / "r.json"
    runner.invoke(app, ["report", "--from", "2026-11-01", "--to", "2026-11-30", "--output", str(out)])
    assert json.loads(out.read_text(encoding="utf-8"))["tickets"] == 0


def test_import_refuses_a_return_by_the_hotline_office(home: Path, tmp_path: Path) -> None:
    """As POST /return and POST /events do: the office dispatches by hand, it returns nothing."""
    ticket = _ticket_in(home)
    events = tmp_path / "events.csv"
    events.write_text("ticket_id,type,unit,at\n"
                      f"{ticket},dispatched,市12345热线办公室,2026-11-02T09:00:00+08:00\n"
                      f"{ticket},returned,市12345热线办公室,2026-11-02T09:30:00+08:00\n",
                      encoding="utf-8")
    result = runner.invoke(app, ["import", "events", str(events)])
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "row 3" in said and "nothing was imported" in said


def test_retrain_from_the_command_line(home: Path, tmp_path: Path) -> None:
    from training.jobs import ensure_default_model
    from triage.settings import get_settings

    ensure_default_model(get_settings())
    result = runner.invoke(app, ["retrain"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{"):])
    assert report["n_corrections"] == 0 and report["promoted"]
    listing = runner.invoke(app, ["models", "list"]).stdout
    assert report["candidate"] in listing


def _said(result) -> str:
    """The command's output with the console's line wrapping undone."""
    return " ".join(result.output.split())


def _predict(model: Path, source: Path, out: Path):
    return runner.invoke(app, ["predict", "--model", str(model), "--input", str(source),
                               "--text-column", "text", "--output", str(out)])


@pytest.mark.parametrize("content", ['text\n问题没解决\n""\n很好\n',
                                     "id,text\n1,问题没解决\n,\n3,很好\n",
                                     "id,text\n1,问题没解决\n2,\n3,很好\n"])
def test_predict_keeps_rows_whose_text_is_empty(home: Path, tmp_path: Path, content: str) -> None:
    assert _train(tmp_path / "v1").exit_code == 0
    source = tmp_path / "in.csv"
    source.write_text(content, encoding="utf-8")
    result = _predict(tmp_path / "v1", source, tmp_path / "out.csv")
    assert result.exit_code == 0, result.output
    assert "wrote 3 rows" in _said(result)
    rows = _rows(tmp_path / "out.csv")
    assert [r["text"] for r in rows] == ["问题没解决", "", "很好"]
    empty = rows[1]
    assert empty["needs_review"] == "true" and empty["review_reason"] == "诉求内容为空"
    assert empty["level1"] and empty["subitem"].startswith(empty["level1"] + "/")
    assert empty["department"] and empty["model_version"]
    assert "诉求内容为空" not in rows[0]["review_reason"] + rows[2]["review_reason"]


def _sentiment_model(tmp_path: Path) -> Path:
    """Train a sentiment model into ``tmp_path / "s"``; returns its training file."""
    data = tmp_path / "feedback.csv"
    data.write_text("review,label\n" + "".join(f"{t},{y}\n" for t, y in FEEDBACK * 3),
                    encoding="utf-8")
    assert runner.invoke(app, ["train-sentiment", "--data", str(data), "--text-column", "review",
                               "--label-column", "label", "--output", str(tmp_path / "s")]
                         ).exit_code == 0
    return data


def test_sentiment_keeps_rows_whose_text_is_empty(home: Path, tmp_path: Path) -> None:
    _sentiment_model(tmp_path)
    result, out = _score_feedback(tmp_path, '反馈\n非常满意\n""\n推来推去，没人管\n')
    assert "wrote 3 rows" in _said(result)
    assert [r["反馈"] for r in _rows(out)] == ["非常满意", "", "推来推去，没人管"]


def test_sentiment_keeps_input_columns_named_like_its_output(home: Path, tmp_path: Path) -> None:
    _sentiment_model(tmp_path)
    result, out = _score_feedback(tmp_path, "反馈,sentiment_label\n推来推去，没人管,回访员判断:差\n")
    assert "sentiment_label -> sentiment_label_input" in _said(result)
    [row] = _rows(out)
    assert row["sentiment_label_input"] == "回访员判断:差" and row["sentiment_label"] == "negative"


def _unwritable(tmp_path: Path) -> list[Path]:
    (tmp_path / "a_directory.csv").mkdir()
    (tmp_path / "a_file").write_text("x", encoding="utf-8")
    paths = [tmp_path / "a_directory.csv", tmp_path / "a_file" / "o.csv"]
    return paths + ([Path("/proc/triage-test.csv")] if Path("/proc/self").exists() else [])


def test_predict_into_an_unwritable_output_is_one_error_line(home: Path, tmp_path: Path) -> None:
    assert _train(tmp_path / "v1").exit_code == 0
    for out in _unwritable(tmp_path):
        result = _predict(tmp_path / "v1", DATASETS / "demo_test.csv", out)
        assert result.exit_code == 2, (out, result.output)
        assert "error: " in _said(result) and str(out) in _said(result)
        assert "Traceback" not in result.output and "Error:" not in result.output


def test_sentiment_and_train_refuse_unwritable_outputs(home: Path, tmp_path: Path) -> None:
    data = _sentiment_model(tmp_path)
    for out in _unwritable(tmp_path):
        result = runner.invoke(app, ["sentiment", "--model", str(tmp_path / "s"), "--input",
                                     str(data), "--text-column", "review", "--output", str(out)])
        assert result.exit_code == 2 and "error: " in _said(result), result.output
    result = runner.invoke(app, ["train-sentiment", "--data", str(data), "--text-column", "review",
                                 "--label-column", "label", "--output", str(tmp_path / "a_file")])
    assert result.exit_code == 2 and "a_file is a file" in _said(result), result.output
    result = _train(tmp_path / "a_file")
    assert result.exit_code == 2 and "a_file is a file" in _said(result), result.output
    assert "training on" not in result.output  # refused before the work starts


def test_report_into_an_unwritable_output_is_one_error_line(home: Path, tmp_path: Path) -> None:
    for out in _unwritable(tmp_path):
        result = runner.invoke(app, ["report", "--from", "2026-11-01", "--to", "2026-11-30",
                                     "--output", str(out)])
        assert result.exit_code == 2 and "error: " in _said(result), result.output
        assert "Traceback" not in result.output


def test_report_with_a_day_out_of_range_is_one_error_line(home: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", "--from", "2026-11-01", "--to", "9999-12-31",
                                 "--output", str(tmp_path / "r.csv")])
    assert result.exit_code == 2 and _said(result).startswith("error: "), result.output
    assert "9999-12-31" in _said(result) and "Traceback" not in result.output


def test_a_missing_model_directory_is_said_not_to_exist(home: Path, tmp_path: Path) -> None:
    result = _predict(tmp_path / "nowhere", DATASETS / "demo_test.csv", tmp_path / "o.csv")
    assert result.exit_code == 2 and "nowhere does not exist" in _said(result)
    assert not (tmp_path / "o.csv").exists()


def test_a_mismatched_taxonomy_lists_a_few_labels_and_how_many_more(home: Path,
                                                                     tmp_path: Path) -> None:
    taxonomy = tmp_path / "taxonomy.csv"
    taxonomy.write_text("a,b,c\nx,y,z\n", encoding="utf-8")
    result = runner.invoke(app, ["train", "--data", str(DATASETS / "demo_appeals.csv"),
                                 "--text-column", "text", "--label-column", "label",
                                 "--taxonomy", str(taxonomy), "--output", str(tmp_path / "v")])
    assert result.exit_code == 2
    said = _said(result)
    assert said.count("is not a path in the taxonomy") == 5 and "… and " in said
    assert len(said) < 1500


def _listed(stdout: str) -> dict[str, dict[str, str]]:
    lines = [line.split("\t") for line in stdout.strip().splitlines()]
    return {row[1]: dict(zip(lines[0], row, strict=True)) for row in lines[1:]}


def test_models_list_shows_the_gate_figures(home: Path, tmp_path: Path) -> None:
    from training.jobs import ensure_default_model
    from triage.settings import get_settings

    default = ensure_default_model(get_settings()).version
    report = json.loads(runner.invoke(app, ["retrain"]).stdout)
    assert _train(tmp_path / "v2").exit_code == 0
    own = runner.invoke(app, ["models", "add", str(tmp_path / "v2")]).stdout.strip()
    rows = _listed(runner.invoke(app, ["models", "list"]).stdout)
    frozen = report["frozen"]
    # the first-start default and the retrained candidate: their figures on the demo test set
    assert rows[default]["level1_macro_f1"] == str(frozen["active"]["level1_macro_f1"])
    candidate = rows[report["candidate"]]["level1_macro_f1"]
    assert candidate == str(frozen["candidate"]["level1_macro_f1"])
    for version in (default, report["candidate"]):
        assert rows[version]["measured_on"] == "frozen evaluation set: demo_test.csv (70 appeals)"
    assert float(rows[own]["level1_macro_f1"]) > 0.5
    assert rows[own]["measured_on"] == "held-out 10% of its training data (42 appeals)"


def test_predict_keeps_input_columns_named_like_output_columns(home: Path, tmp_path: Path) -> None:
    assert _train(tmp_path / "v1").exit_code == 0
    source = tmp_path / "in.csv"
    source.write_text("id,text,district,department,district_input\n"
                      "1,东城区和平街道路灯坏了,原区字段,原部门,已有\n", encoding="utf-8")
    result = _predict(tmp_path / "v1", source, tmp_path / "out.csv")
    assert result.exit_code == 0, result.output
    said = _said(result)
    assert ("input columns named like output columns kept as: district -> district_input2, "
            "department -> department_input") in said
    [row] = _rows(tmp_path / "out.csv")
    assert list(row) == ["id", "text", "district_input2", "department_input", "district_input",
                         *PREDICT_COLUMNS]
    assert (row["district_input2"], row["department_input"], row["district_input"]) == (
        "原区字段", "原部门", "已有")
    assert row["district"] == "东城区" and row["department"] not in {"", "原部门"}


def test_train_refuses_a_non_empty_output_before_training(
        home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import api.cli

    def never(**_: Any) -> None:
        raise AssertionError("trained before refusing the output directory")

    monkeypatch.setattr(api.cli, "train_version", never)
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "notes.txt").write_text("mine", encoding="utf-8")
    result = _train(tmp_path / "v")
    assert result.exit_code == 2, result.output
    assert "is not empty: a version is never overwritten" in _said(result)
    assert (tmp_path / "v" / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_predict_reads_full_width_addresses_as_the_api_does(home: Path, tmp_path: Path) -> None:
    assert _train(tmp_path / "v1").exit_code == 0
    source = tmp_path / "in.csv"
    source.write_text("text\nＡ３区桂花坪街道小区路灯不亮\n", encoding="utf-8")
    result = _predict(tmp_path / "v1", source, tmp_path / "out.csv")
    assert result.exit_code == 0, result.output
    [row] = _rows(tmp_path / "out.csv")
    assert row["text"] == "Ａ３区桂花坪街道小区路灯不亮"  # the user's cell, verbatim
    assert (row["district"], row["street"]) == ("A3区", "桂花坪街道")


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("TRIAGE_ENCODER_MAX_LENGTH", "abc", "a whole number of at least 1; got 'abc'"),
    ("TRIAGE_ENCODER_MAX_LENGTH", "-5", "a whole number of at least 1; got '-5'"),
    ("TRIAGE_ENCODER_MAX_LENGTH", "0", "a whole number of at least 1; got '0'"),
    ("TRIAGE_FINETUNE_MINUTES", "-1", "a number of at least 0; got '-1'"),
    ("TRIAGE_FINETUNE_MINUTES", "abc", "a number of at least 0; got 'abc'"),
    ("TRIAGE_ENCODER_BACKEND", "foo", "onnx or torch; got 'foo'"),
])
@pytest.mark.parametrize("command", [["models", "list"],
                                     ["train", "--data", str(DATASETS / "demo_appeals.csv"),
                                      "--text-column", "text", "--label-column", "label",
                                      "--taxonomy", str(DATASETS / "demo_taxonomy.csv"),
                                      "--preset", "accurate"]])
def test_a_bad_setting_is_one_error_line_naming_it(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                  command: list[str], variable: str, value: str,
                                                  says: str) -> None:
    monkeypatch.setenv(variable, value)
    result = runner.invoke(app, command)
    assert result.exit_code == 2
    assert result.output.splitlines() == [f"error: {variable} must be {says}"]
    assert not home.exists()  # refused before any work


def _registered_classifier(trained_home: Path) -> Path:
    from models.artifacts import Registry

    registry = Registry(trained_home / "models")
    return registry.path(registry.active_version() or "")


def test_predict_with_a_sentiment_model_says_which_command_reads_it(home: Path,
                                                                   tmp_path: Path) -> None:
    _sentiment_model(tmp_path)
    result = _predict(tmp_path / "s", DATASETS / "demo_test.csv", tmp_path / "o.csv")
    assert result.exit_code == 2 and "Traceback" not in result.output
    said = _said(result)
    assert said.startswith("error: ")
    assert "this is a sentiment model: use `triage sentiment`" in said
    assert "is not one this release loads" not in said
    assert not (tmp_path / "o.csv").exists()


def test_sentiment_with_a_classifier_says_which_command_reads_it(home: Path, tmp_path: Path,
                                                                trained_home: Path) -> None:
    result = runner.invoke(app, ["sentiment", "--model", str(_registered_classifier(trained_home)),
                                 "--input", str(DATASETS / "demo_test.csv"), "--text-column",
                                 "text", "--output", str(tmp_path / "o.csv")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    said = _said(result)
    assert said.startswith("error: ")
    assert "this is a classifier: use `triage predict`" in said
    assert "is not one this release loads" not in said
