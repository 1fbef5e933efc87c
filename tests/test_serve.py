"""``triage serve`` on an empty TRIAGE_HOME is healthy within 120 s and classifies appeals."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_serve_on_an_empty_home(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "TRIAGE_HOME": str(tmp_path / "empty-home")}
    env.pop("TRIAGE_DATABASE_URL", None)
    triage = Path(sys.executable).with_name("triage")
    proc = subprocess.Popen([str(triage), "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = httpx.get(f"{url}/healthz", timeout=2).status_code
            except httpx.TransportError:
                status = None
            if status == 200:
                break
            time.sleep(0.5)
        assert status == 200, f"not healthy within 120 s (exit code {proc.poll()})"
        response = httpx.post(f"{url}/v1/tickets", json={
            "text": "西城区文昌街道有家网吧天天放学后让未成年人进去上网，还卖烟给学生。"}, timeout=10)
        assert response.status_code == 201
        assert (tmp_path / "empty-home" / "triage.db").is_file()
        assert (tmp_path / "empty-home" / "models" / "ACTIVE").is_file()
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _serve_output(env: dict[str, str]) -> tuple[int, list[str]]:
    """Run ``triage serve`` until it exits (it should, at once); its exit code and output lines."""
    triage = Path(sys.executable).with_name("triage")
    proc = subprocess.run([str(triage), "serve", "--port", str(_free_port())], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120,
                          text=True)
    return proc.returncode, proc.stdout.splitlines()


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("TRIAGE_PRESET", "bogus", "error: TRIAGE_PRESET must be fast or accurate; got 'bogus'"),
    ("TRIAGE_ENCODER_BACKEND", "foo", "error: TRIAGE_ENCODER_BACKEND must be onnx or torch; "
                                      "got 'foo'"),
])
def test_serve_with_a_bad_setting_says_one_line(tmp_path: Path, variable: str, value: str,
                                                says: str) -> None:
    env = {**os.environ, "TRIAGE_HOME": str(tmp_path / "empty-home"), variable: value}
    env.pop("TRIAGE_DATABASE_URL", None)
    code, lines = _serve_output(env)
    assert code == 2
    assert lines == [says]


def test_serve_that_cannot_start_says_why_in_one_line(tmp_path: Path) -> None:
    """A domain error while starting (here: the default model's taxonomy file is missing) is the
    one sentence, not uvicorn's traceback and "Application startup failed"."""
    env = {**os.environ, "TRIAGE_HOME": str(tmp_path / "empty-home"),
           "TRIAGE_TAXONOMY_FILE": str(tmp_path / "nowhere.csv")}
    env.pop("TRIAGE_DATABASE_URL", None)
    code, lines = _serve_output(env)
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("error: ") and "nowhere.csv" in lines[0]
