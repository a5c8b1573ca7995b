"""Training killed with SIGKILL, once or many times, resumes to the same result and leaves no torn file."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from cinescene import media
from cinescene.training.log import read_log

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


# -- a two-stage run killed again and again ----------------------------------------------------------------

BOTH_STEPS = 10  # per stage; checkpoints at 4, 8 and 10, validation at 10 (before its checkpoint)


def train_both(root: Path, data: Path, name: str, cache: Path, failpoint: str | None = None, resume: bool = False,
               background: bool = False):
    cmd = [sys.executable, "-m", "cinescene", "train", "--model", "tiny", "--data", str(data), "--stage", "both",
           "--name", name, "--steps", str(BOTH_STEPS), "--window", "9", "--area", "3072", "--grad-accum", "2",
           "--checkpoint-every", "4", "--val-every", "10", "--val-steps", "1", "--val-items", "2", "--val-seeds", "1",
           "--learning-rate", "1e-2", "--cache-dir", str(cache), "--runs-dir", str(root / "runs"),
           "--loras", str(root / "loras"), "--quiet"]
    if resume:
        cmd.append("--resume")
    env = subprocess_env(OMP_NUM_THREADS="1", **({"CINESCENE_FAILPOINT": failpoint} if failpoint else {}))
    if background:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def two_stage_data(root: Path) -> Path:
    data = make_dataset(root / "data", clips=2, stills=1, frames=18)
    make_dataset(data / "validation", clips=2, stills=0, frames=12)
    return data


def log_of(root: Path, name: str) -> list[dict]:
    return read_log(root / "runs" / name / "log.jsonl")


def by_step(events: list[dict], kind: str, fields: tuple[str, ...]) -> dict[tuple[str, int], list[tuple]]:
    """Every record of ``kind`` keyed by (stage, step): a replayed step appears more than once."""
    out: dict[tuple[str, int], list[tuple]] = {}
    for e in events:
        if e["type"] == kind:
            out.setdefault((e["stage"], e["step"]), []).append(tuple(json.dumps(e.get(f)) for f in fields))
    return out


def processes(events: list[dict]) -> list[list[dict]]:
    """The log split at each process's start event."""
    runs: list[list[dict]] = []
    for e in events:
        if e["type"] == "start":
            runs.append([])
        runs[-1].append(e)
    return runs


VALIDATION_FIELDS = ("lpips", "lpips_std", "clip_text", "clip_text_std", "scores", "best", "best_step")


def test_two_stage_run_killed_seven_times_resumes_to_the_same_adapters(tmp_path):
    ref_root, root = tmp_path / "ref", tmp_path / "victim"
    data = two_stage_data(tmp_path)
    cache = tmp_path / "cache"
    reference = train_both(ref_root, data, "t", cache, background=True)  # uninterrupted, alongside the victim
    rng = random.Random(20240611)
    style_dir, motion_dir = root / "runs" / "t" / "style", root / "runs" / "t" / "motion"
    style_file = root / "loras" / "style" / "t-style.safetensors"
    # A seeded schedule: where each kill lands is random, which stage (or boundary) it lands in is not.
    late = rng.sample(["validation:1", "checkpoint_write:1"], 2)  # one stage gets each
    schedule = [
        ("style", f"train_step:{rng.randint(2, BOTH_STEPS - 1)}"),
        ("style", late[0]),
        ("boundary", "stage_end:1"),  # the style's last checkpoint is written, nothing published
        ("boundary", "stage_published:1"),  # the style is published, not yet marked finished
        ("motion", f"train_step:{rng.randint(1, 3)}"),  # before its first checkpoint: motion starts afresh
        ("motion", late[1]),
    ]
    published_sidecar = None
    for i, (where, failpoint) in enumerate(schedule):
        killed = train_both(root, data, "t", cache, failpoint=failpoint, resume=i > 0)
        assert killed.returncode == -signal.SIGKILL, (failpoint, killed.stderr[-2000:])
        last = processes(log_of(root, "t"))[-1]
        steps = [e for e in last if e["type"] == "step"]
        if where == "boundary":
            assert (style_dir / "checkpoints" / "latest").read_text() == f"step_{BOTH_STEPS:07d}"
            assert not (style_dir / "finished.json").exists() and not motion_dir.exists()
            assert style_file.exists() == (failpoint.startswith("stage_published"))
            published_sidecar = style_file.with_suffix(".json").read_text() if style_file.exists() else None
        else:
            assert steps and {e["stage"] for e in steps} == {where}, failpoint
        assert_whole(root)
    # One more kill at a moment no failpoint names: a timed SIGKILL while the motion stage trains.
    proc = train_both(root, data, "t", cache, resume=True, background=True)
    begun = len(processes(log_of(root, "t")))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(processes(log_of(root, "t"))) == begun:
        time.sleep(0.05)
    while time.monotonic() < deadline and not [e for e in processes(log_of(root, "t"))[-1] if e["type"] == "step"]:
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 2.0))
    proc.kill()
    proc.wait(60)
    assert_whole(root)
    final = train_both(root, data, "t", cache, resume=True)
    assert final.returncode == 0, final.stderr[-2000:]
    assert reference.wait(600) == 0

    # The published adapters, and the last trained weights of each stage, are the uninterrupted run's.
    for kind, name in (("style", "t-style"), ("motion", "t-motion")):
        got, want = root / "loras" / kind / f"{name}.safetensors", ref_root / "loras" / kind / f"{name}.safetensors"
        assert got.read_bytes() == want.read_bytes(), name
        last = f"{kind}/checkpoints/step_{BOTH_STEPS:07d}/adapter.safetensors"
        assert (root / "runs" / "t" / last).read_bytes() == (ref_root / "runs" / "t" / last).read_bytes(), last
        sidecars = [json.loads((r / "loras" / kind / f"{name}.json").read_text())["extra"] for r in (root, ref_root)]
        assert sidecars[0]["validation_history"] == sidecars[1]["validation_history"]
        assert sidecars[0]["best_step"] == sidecars[1]["best_step"]
    # Every step's loss and every validation, replayed or not, are the uninterrupted run's.
    events, reference = log_of(root, "t"), log_of(ref_root, "t")
    for kind, fields in (("step", ("loss", "lr", "grad_norm")), ("validation", VALIDATION_FIELDS)):
        want = by_step(reference, kind, fields)
        got = by_step(events, kind, fields)
        assert got.keys() == want.keys(), kind
        assert all(len(want[k]) == 1 and set(got[k]) == set(want[k]) for k in got), kind
    # A finished stage stays finished: once the style's last checkpoint was written, no later process trained
    # a style step, and once it was published, it was not published again.
    runs = processes(events)
    ended = next(i for i, run in enumerate(runs)
                 if any(e["type"] == "checkpoint" and e["stage"] == "style" and e["step"] == BOTH_STEPS for e in run))
    assert all(e["stage"] == "motion" for run in runs[ended + 1:] for e in run if e["type"] in ("step", "validation"))
    assert published_sidecar is not None and style_file.with_suffix(".json").read_text() == published_sidecar
    assert [e.get("already_finished", False) for e in runs[-1] if e["type"] == "stage_done"] == [True, False]
    assert len(runs) == len(schedule) + 2
    assert not list(root.rglob("*.tmp"))
