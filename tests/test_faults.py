"""Training killed with SIGKILL at three moments resumes to the same result, and leaves no torn file."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from cinescene import media

from conftest import ROOT, subprocess_env
from footage import make_dataset

STEPS = 6


def train(tmp_path: Path, data: Path, name: str, cache: Path, failpoint: str | None = None, resume: bool = False):
    cmd = [sys.executable, "-m", "cinescene", "train", "--model", "tiny", "--data", str(data), "--stage", "style",
           "--name", name, "--steps", str(STEPS), "--window", "9", "--area", "3072", "--grad-accum", "1",
           "--val-fraction", "0", "--checkpoint-every", "2", "--learning-rate", "1e-2", "--cache-dir", str(cache),
           "--runs-dir", str(tmp_path / "runs"), "--loras", str(tmp_path / "loras"), "--quiet"]
    if resume:
        cmd.append("--resume")
    env = subprocess_env(**({"CINESCENE_FAILPOINT": failpoint} if failpoint else {}))
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def assert_whole(root: Path) -> int:
    """Open every file the project wrote under ``root`` the way its reader would; count them."""
    count = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        count += 1
        suffix = path.suffix
        if suffix == ".safetensors":
            load_file(str(path))
        elif suffix == ".json":
            json.loads(path.read_text())
        elif path.name == "latest":
            assert path.read_text().strip().startswith("step_"), path
        elif suffix == ".jsonl":
            assert all(json.loads(line) for line in path.read_text().splitlines()), path
        elif suffix in (".bin", ".pkl"):
            torch.load(path, weights_only=False)
        elif suffix == ".mp4":
            media.read_video(path)
        elif suffix == ".yaml":
            yaml.safe_load(path.read_text())
    return count


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("fault-ref")
    data = make_dataset(root / "data", clips=2, stills=2, frames=12)
    done = train(root, data, "straight", root / "cache")
    assert done.returncode == 0, done.stderr[-2000:]
    return data, load_file(str(root / "loras" / "style" / "straight.safetensors"))


@pytest.mark.parametrize("failpoint", ["cache_entry:3", "train_step:3", "checkpoint_write:2"],
                         ids=["during caching", "mid-training", "during a checkpoint write"])
def test_sigkill_then_resume(tmp_path, reference, failpoint):
    data, expected = reference
    killed = train(tmp_path, data, "victim", tmp_path / "cache", failpoint=failpoint)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (tmp_path / "loras" / "style" / "victim.safetensors").exists()  # nothing half-published
    assert_whole(tmp_path)
    if failpoint.startswith("checkpoint_write"):
        checkpoints = tmp_path / "runs" / "victim" / "checkpoints"
        assert (checkpoints / "step_0000004.tmp").is_dir()  # the write in flight...
        assert (checkpoints / "latest").read_text() == "step_0000002"  # ...never replaced the last good one
    resumed = train(tmp_path, data, "victim", tmp_path / "cache", resume=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    events = [json.loads(line) for line in (tmp_path / "runs" / "victim" / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e["type"] == "step"][-1] == STEPS
    got = load_file(str(tmp_path / "loras" / "style" / "victim.safetensors"))
    assert got.keys() == expected.keys() and all(torch.equal(got[k], expected[k]) for k in got)
    assert assert_whole(tmp_path) > 10
    assert not list((tmp_path / "runs" / "victim" / "checkpoints").glob("*.tmp"))
