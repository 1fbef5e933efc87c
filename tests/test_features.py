"""Featurising big batches in worker processes, as ``triage train`` and ``triage predict`` do."""

from __future__ import annotations

import os

import numpy as np
import pytest

from api.cli import _sigterm_as_ctrl_c
from models import features
from models.features import TextFeaturizer


@pytest.fixture
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 2,000 texts and more are split over the cores: make sure there are two."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)


def test_a_big_batch_in_a_command_ends_its_workers_without_tracebacks(
        two_cores: None, capfd: pytest.CaptureFixture[str]) -> None:
    """The CLI turns SIGTERM into Ctrl-C; the pool ends its workers with SIGTERM once the batch is
    done. The workers must die quietly: a user of ``triage train --preset accurate`` saw one
    ``KeyboardInterrupt`` traceback per worker in the middle of a training that went on fine."""
    texts = [f"{i % 37}号楼楼下烧烤店油烟扰民，物业不管，投诉第{i % 11}次" for i in range(2_100)]
    assert features._n_jobs(len(texts)) == 2
    with _sigterm_as_ctrl_c():
        featurizer = TextFeaturizer()
        fitted = featurizer.fit_transform(texts)
        again = featurizer.transform(texts)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    serial = featurizer._transform_serial(texts)
    assert np.allclose(again.toarray(), serial.toarray())
    assert np.allclose(fitted.toarray(), serial.toarray())
