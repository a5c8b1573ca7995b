"""Training as the app runs it: a subprocess watched through its log, stopped with a checkpoint."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cinescene.adapters import AdapterLibrary
from cinescene.errors import InputError
from cinescene.training import config as train_config
from cinescene.training.runs import TrainingRuns

from footage import make_dataset


def tiny_config(tmp_path: Path, **changes):
    data = tmp_path / "data"
    if not data.exists():
        make_dataset(data, clips=2, stills=1, frames=12)
    values = dict(model="tiny", data=str(data), stage="style", name="ui-run", steps=3, window=9, area=3072,
                  grad_accum=1, val_fraction=0, runs_dir=str(tmp_path / "runs"), loras_dir=str(tmp_path / "loras"))
    return train_config.build(**{**values, **changes})


def wait_for(predicate, timeout=240.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.3)
    raise TimeoutError


def test_a_run_finishes_and_publishes_its_adapter(tmp_path):
    runs = TrainingRuns()
    runs.start(tiny_config(tmp_path))
    assert runs.wait(timeout=240) == 0
    status = runs.status()
    assert status.progress["state"] == "done" and status.progress["step"] == 3
    assert status.progress["adapter"] == "ui-run"
    assert AdapterLibrary(tmp_path / "loras").get("ui-run").kind == "style"
    assert [e["step"] for e in status.events if e["type"] == "step"] == [1, 2, 3]


def test_stop_checkpoints_and_resume_finishes(tmp_path):
    runs = TrainingRuns()
    runs.start(tiny_config(tmp_path, steps=100000, name="long"))
    wait_for(lambda: runs.status().progress["step"] >= 2)
    with pytest.raises(InputError, match="already going"):
        runs.start(tiny_config(tmp_path, name="second"))
    assert runs.stop()
    assert runs.wait(timeout=120) == 130
    status = runs.status()
    assert status.progress["state"] == "stopped" and Path(status.progress["checkpoint"]).is_dir()
    stopped_at = status.progress["step"]
    runs.start(tiny_config(tmp_path, steps=stopped_at + 2, name="long", resume=True))
    assert runs.wait(timeout=240) == 0
    steps = [e["step"] for e in runs.status().events if e["type"] == "step"]
    assert steps[-2:] == [stopped_at + 1, stopped_at + 2]


def test_a_failing_run_reports_its_error(tmp_path):
    runs = TrainingRuns()
    config = tiny_config(tmp_path, name="doomed")
    (Path(config.data) / "clip0.mp4").write_bytes(b"broken")
    runs.start(config)
    assert runs.wait(timeout=120) == 2
    status = runs.status()
    assert status.progress["state"] == "failed" and "clip0.mp4" in status.progress["error"]
