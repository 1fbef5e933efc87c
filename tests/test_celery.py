"""Retraining on a Celery worker through Redis, when TRIAGE_BROKER_URL is set."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from triage.settings import Settings

BROKER = os.environ.get("TRIAGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _redis_answers() -> str | None:
    host, port = "127.0.0.1", 6379
    try:
        with socket.create_connection((host, port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return None if conn.recv(16).startswith(b"+PONG") else "no PONG"
    except OSError as exc:
        return str(exc)


pytestmark = pytest.mark.skipif(_redis_answers() is not None,
                                reason=f"Redis not reachable at 127.0.0.1:6379: {_redis_answers()}")


@pytest.mark.slow
def test_retrain_runs_on_a_celery_worker(trained_home: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(trained_home, home)
    env = {**os.environ, "TRIAGE_HOME": str(home), "TRIAGE_BROKER_URL": BROKER}
    env.pop("TRIAGE_DATABASE_URL", None)
    triage = Path(sys.executable).with_name("triage")
    worker = subprocess.Popen([str(triage), "worker"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    try:
        settings = Settings(home=home, broker_url=BROKER, _env_file=None)
        with TestClient(create_app(settings)) as client:
            before = client.get("/healthz").json()["model_version"]
            started = client.post("/v1/models/retrain").json()
            assert started["runner"] == "celery"
            deadline = time.monotonic() + 120
            job = started
            while time.monotonic() < deadline and job["status"] not in {"done", "failed"}:
                time.sleep(0.5)
                job = client.get(f"/v1/jobs/{started['id']}").json()
            assert job["status"] == "done", (job, worker.poll())
            assert job["result"]["previous"] == before and job["result"]["promoted"]
            # the worker promoted it; the service switches without a restart
            assert client.get("/healthz").json()["model_version"] == job["result"]["candidate"]
    finally:
        worker.terminate()
        worker.wait(timeout=30)
