"""Data-parallel training on two CPU processes through torchrun (gloo)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT, free_port, subprocess_env
from footage import make_dataset


def test_torchrun_two_processes_agree_and_write_one_adapter(tmp_path):
    data = make_dataset(tmp_path / "data", clips=3, stills=2, frames=12)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()),
           "-m", "cinescene", "train", "--model", "tiny", "--data", str(data), "--stage", "style", "--name", "ddp",
           "--steps", "3", "--window", "9", "--area", "3072", "--grad-accum", "1", "--val-fraction", "0",
           "--runs-dir", str(tmp_path / "runs"), "--loras", str(tmp_path / "loras"), "--quiet"]
    done = subprocess.run(cmd, cwd=ROOT, env=subprocess_env(OMP_NUM_THREADS="1"), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    events = [json.loads(line) for line in (tmp_path / "runs" / "ddp" / "log.jsonl").read_text().splitlines()]
    start = next(e for e in events if e["type"] == "start")
    assert start["processes"] == 2
    stage = next(e for e in events if e["type"] == "stage_done")
    checksums = stage["replica_checksums"]
    assert len(checksums) == 2 and checksums[0] == checksums[1]
    assert sorted(p.name for p in (tmp_path / "loras").rglob("*") if p.is_file()) == ["ddp.json", "ddp.safetensors"]
    assert done.stdout.count("style: ddp after 3 steps") == 1  # only rank 0 reports
