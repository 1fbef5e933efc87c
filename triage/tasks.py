"""Background jobs in process: one worker thread, progress messages, results kept for reading."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from triage.errors import NotFoundError, TriageError

log = logging.getLogger("triage.tasks")


class JobRunner:
    """Runs long work (retraining) off the request; ``GET /v1/jobs/{id}`` reads its state."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="triage-job")
        self._jobs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def submit(self, kind: str, work: Callable[[Callable[[str], None]], dict[str, Any]]) -> dict:
        """Queue ``work(progress)``; returns the job's state."""
        job_id = uuid.uuid4().hex[:12]
        state = {"id": job_id, "kind": kind, "status": "queued", "progress": [],
                 "result": None, "error": None,
                 "created_at": datetime.now(UTC).isoformat(timespec="seconds")}
        with self._lock:
            self._jobs[job_id] = state
        self._pool.submit(self._run, job_id, work)
        return dict(state)

    def _run(self, job_id: str, work: Callable[[Callable[[str], None]], dict[str, Any]]) -> None:
        state = self._jobs[job_id]
        state["status"] = "running"
        try:
            state["result"] = work(lambda message: state["progress"].append(message))
            state["status"] = "done"
        except TriageError as exc:
            state.update(status="failed", error=exc.message)
        except Exception:  # a job must never die silently
            log.exception("job %s failed", job_id)
            state.update(status="failed", error="the job hit an internal error; see the log")
        state["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")

    def knows(self, job_id: str) -> bool:
        return job_id in self._jobs

    def get(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            if job_id not in self._jobs:
                raise NotFoundError(f"there is no job {job_id}")
            state = self._jobs[job_id]
            return {**state, "progress": list(state["progress"])}

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
