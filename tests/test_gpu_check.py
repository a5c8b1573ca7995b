"""scripts/gpu_check.py at CPU scale: every section runs through cinescene's own code and reports."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT, subprocess_env


def test_gpu_check_runs_at_cpu_scale(tmp_path):
    out = tmp_path / "report"
    done = subprocess.run(
        [sys.executable, "scripts/gpu_check.py", "--scale", "0.05", "--steps", "2", "--backends", "native",
         "--swaps", "3", "--compile-backend", "eager", "--out", str(out)],
        cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    assert report["size"] == {"height": 32, "width": 48, "frames": 5, "train_frames": 5}
    steps = {row["variant"]: row for row in report["steps"]}
    assert set(steps) == {"plain", "first-block cache 0.05", "regional compile (eager)", "fp8 storage"}
    assert all(row["seconds_per_step"] > 0 and "error" not in row for row in steps.values())
    assert steps["first-block cache 0.05"]["cache"]["kind"] == "first-block"
    memory = {row["mode"]: row for row in report["memory"]}
    assert list(memory) == ["none", "fp8", "model-offload", "fp8+model-offload", "group-offload", "group-offload-leaf"]
    assert all("error" not in row and row["plan_estimate_gb"] > 0 for row in memory.values())
    # No CUDA here: no peak is invented, and the report says which numbers mean nothing.
    assert all(row["measured_peak_gb"] is None for row in memory.values()) and report["train"]["measured_peak_gb"] is None
    assert any("meaningless for GPU speed or memory" in c for c in report["caveats"])
    assert report["train"]["seconds_per_step"] > 0 and report["train"]["loss_is_finite"]
    assert report["train"]["plan_estimate_gb"] > 0 and report["swap"]["median_ms"] > 0
    table = (out / "gpu_check.md").read_text()
    for heading in ("Not meaningful here", "Seconds per denoising step", "Peak memory per memory mode",
                    "LoRA training step", "Adapter swap"):
        assert heading in table
