"""Every benchmark still runs as benchmarks/README.md documents (at the smallest sizes: a smoke test, no timing)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT, subprocess_env

SMALL = {
    "sampler_overhead": ["--runs", "1", "--frames", "5", "--steps", "1", "--height", "32", "--width", "48"],
    "speed_options": ["--runs", "1", "--steps", "2", "--frames", "5", "--height", "32", "--width", "48"],
    "trainer_step": ["--runs", "1", "--window", "5", "--area", "1024"],
    "metrics_speed": ["--runs", "1", "--frames", "2", "--height", "32", "--width", "32", "--batch", "2"],
    "adapter_swap": ["--blocks", "1", "--rank", "4", "--runs", "1", "--no-compile"],
    "frechet_speed": ["--runs", "1", "--dims", "16", "--samples", "8"],
}


def test_every_benchmark_is_smoke_tested():
    assert {p.stem for p in (ROOT / "benchmarks").glob("*.py") if not p.stem.startswith("_")} == set(SMALL)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_benchmark_runs(name, tmp_path):
    result = subprocess.run([sys.executable, f"benchmarks/{name}.py", *SMALL[name]], cwd=ROOT, env=subprocess_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "goal" in result.stdout or "ratio" in result.stdout, result.stdout[-2000:]
