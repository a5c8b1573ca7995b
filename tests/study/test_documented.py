"""The study's documented command (docs/study.md) on toy footage with the toy model, at a small scale."""

from __future__ import annotations

import json
import math
import shlex

from cinescene import evaluate
from cinescene.cli import main

from conftest import ROOT

DOCS = ROOT / "docs" / "study.md"
# The documented run, made small: fewer clips, steps and resamples, one seed, the detector stand-ins.
SMALLER = {"toy-data": ["--clips", "2"],
           "study": ["--steps", "2", "--val-every", "2", "--val-items", "1", "--checkpoint-every", "2",
                     "--eval-seeds", "0", "--bootstrap-resamples", "200", "--distance-resamples", "100", "--quiet"]}


def documented_commands() -> list[list[str]]:
    """The commands of the first shell block of docs/study.md, as argument lists after ``python -m cinescene``."""
    block = DOCS.read_text().split("```sh\n", 1)[1].split("```", 1)[0]
    return [shlex.split(line)[3:] for line in block.splitlines() if line.startswith("python -m cinescene ")]


def test_the_documented_study_on_the_toy_world(tmp_path, monkeypatch, i3d_standin, inception_standin, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "study-data").mkdir()
    commands = documented_commands()
    assert [c[0] for c in commands] == ["toy-data", "toy-data", "study"]
    for argv in commands:
        argv = [str(ROOT / a) if a.startswith("configs/") else a for a in argv]
        extra = SMALLER[argv[0]] + (["--i3d", str(i3d_standin), "--inception", str(inception_standin)]
                                    if argv[0] == "study" else [])
        assert main(argv + extra) == 0
    out = tmp_path / commands[-1][commands[-1].index("--out") + 1]
    report = json.loads((out / "report.json").read_text())
    arms = ["base", "lora", "full"]
    assert report["arms"] == arms and report["model"]["id"] == "toy"
    # Every metric: the per-video ones, FVD_16 and FID on all 17 frames (the stand-in networks), with intervals.
    assert list(report["metrics"]) == [*evaluate.METRICS, "FVD_16", "FID_17"]
    for name, entry in report["metrics"].items():
        for arm in arms:
            value = entry["arms"][arm]
            assert value["n"] == 2 and all(math.isfinite(v) for v in (value["mean"], *value["ci95"])), (name, arm)
        for (a, b), label in zip([("lora", "base"), ("full", "base"), ("lora", "full")], entry["differences"]):
            difference = entry["differences"][label]
            assert label == f"{a} - {b}" and all(math.isfinite(v) for v in difference["ci95"])
            assert math.isclose(difference["mean"], entry["arms"][a]["mean"] - entry["arms"][b]["mean"],
                                rel_tol=1e-9, abs_tol=1e-12), (name, label)
    summary = json.loads((out / "eval" / "summary.json").read_text())["variants"]
    assert report["metrics"]["FVD_16"]["arms"]["full"]["mean"] == summary["full"]["distances"]["FVD_16"]["value"]
    assert any(n.startswith("FVD_128, FID_128 skipped: the generated videos have 17 frames")
               for n in report["not_computed"])
    # The held-out clips pan right at the footage's 3 px/frame: what camera_dx is compared with.
    assert abs(report["held_out"]["reference_camera"]["dx"] - 3.0) < 0.3
    cost = report["cost"]
    assert cost["lora"]["trainable_parameters"] < cost["full"]["trainable_parameters"] == 2_004_224
    assert all(cost[a]["steps"] == 2 and cost[a]["train_seconds"] > 0 and cost[a]["output_mb"] > 0 for a in arms[1:])
    assert all([v["step"] for v in report["curves"][a]["validation"]] == [2] for a in arms[1:])
    text = (out / "report.md").read_text()
    assert report["command"].startswith("python -m cinescene study --config ") and report["command"] in text
    assert "| metric | better | base | lora | full |" in text and "| metric | lora - base | full - base | lora - full |" in text
    assert "| look_distance | lower | " in text and "| FVD_16 | lower | " in text and "| full | 2,004,224 | 2 |" in text
    for plot in ("arms", "training"):
        assert (out / "plots" / f"{plot}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "| look_distance | lower | " in printed and "report.md" in printed
