"""The study's report: the tables, what was not computed and why, the curves from the logs, and the docs' table."""

from __future__ import annotations

import json

from cinescene.study import report
from cinescene.training import config as train_config

from conftest import ROOT


def entry(better, calibrated, arms, differences):
    return {"better": better, "calibrated": calibrated,
            "arms": {a: {"mean": m, "ci95": ci, "n": 8} for a, (m, ci) in arms.items()},
            "differences": {p: {"mean": m, "ci95": ci, "n": 8} for p, (m, ci) in differences.items()}}


def small_report():
    cost = {"trainable_parameters": 49152, "steps": 600, "train_seconds": 48.04, "wall_seconds": 130.5,
            "peak_memory_mb": 1794.4, "output_mb": 0.19, "checkpoint_mb": 0.81}
    return {
        "command": "python -m cinescene study --config c.toml --out s", "arms": ["base", "lora"],
        "metrics": {
            "look_distance": entry("lower", True, {"base": (518.7, [480.1, 560.2]), "lora": (356.14, [330.0, 380.0])},
                                   {"lora - base": (-162.56, [-190.2, -130.9])}),
            "clip_text": entry("higher", False, {"base": (0.2, [0.1, 0.3]), "lora": (0.25, [None, None])},
                               {"lora - base": (0.05, [0.01, 0.09])}),
            "camera_dx": entry(None, True, {"base": (0.0123, [-0.01, 0.03]), "lora": (7.4979, [-114.43, 123.35])},
                               {"lora - base": (7.4856, [-114.44, 123.32])})},
        "not_computed": ["FVD_16 not computed: FVD needs the I3D file i3d_torchscript.pt"],
        "uncalibrated": ["clip_text"], "cost": {"lora": cost},
        "training": {"matched": {"model": "toy", "data": "d", "stage": "motion", "steps": 600, "seed": 0,
                                 "batch_size": 2, "grad_accum": 1, "val_every": 75, "val_items": 2, "val_seeds": 1,
                                 "val_steps": 12},
                     "dataset": {"train_clips": 8, "train_stills": 0},
                     "arms": {"lora": {"learning_rate": 5e-3, "rank": 8, "alpha": 16.0, "fp8_base": False}}},
        "held_out": {"items": 8, "source": "held out of d", "seeds": [0, 1], "videos_per_arm": 16,
                     "reference_camera": {"dx": 3.0, "dy": 0.0, "zoom": 1.0}},
        "bootstrap": {"resamples": 10000, "distance_resamples": 500, "method": "percentile", "seed": 0},
        "plots": report.PLOTS}


def test_the_tables_and_what_was_left_out():
    text = report.markdown(small_report())
    assert "```sh\npython -m cinescene study --config c.toml --out s\n```" in text
    assert "| look_distance | lower | 518.7 [480.1, 560.2] | 356.1 [330.0, 380.0] |" in text
    assert "| clip_text (uncalibrated) | higher | 0.2000 [0.1000, 0.3000] | 0.2500 |" in text  # no interval
    assert "| look_distance | -162.6 [-190.2, -130.9] |" in text
    # A cell is written at the precision of its largest number: a small mean with a wide interval.
    assert "| camera_dx | - | 0.0123 [-0.0100, 0.0300] | 7.5 [-114.4, 123.3] |" in text
    assert "| lora | 49,152 | 600 | 48.0 | 130.5 | 1,794 | 0.19 | 0.81 |" in text
    assert "- FVD_16 not computed: FVD needs the I3D file i3d_torchscript.pt." in text
    assert "- Uncalibrated (random network weights): clip_text." in text
    assert "8 clips from d), 600 steps of batch 2 x 1, seed 0" in text and "lora: rank 8, alpha 16.0" in text
    assert "dx +3.00" in text and "(10,000 resamples, 500 for FVD and FID; percentile; seed 0)" in text


def test_curves_take_each_steps_last_record(tmp_path):
    cfg = train_config.build(data="d", name="lora", runs_dir=str(tmp_path))
    events = [{"type": "step", "step": s, "loss": float(s)} for s in (1, 2, 3)]
    events += [{"type": "validation", "step": 2, "look": 9.0, "lpips": 0.5, "calibrated": False}]
    events += [{"type": "start"}, {"type": "step", "step": 3, "loss": 30.0},  # resumed: step 3 again
               {"type": "validation", "step": 3, "look": 7.0, "look_std": 1.0, "lpips": 0.4, "calibrated": False}]
    (tmp_path / "lora").mkdir()
    (tmp_path / "lora" / "log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    found = report.curves(cfg)
    assert found["validation"] == [{"step": 2, "look": 9.0, "lpips": 0.5},
                                   {"step": 3, "look": 7.0, "look_std": 1.0, "lpips": 0.4}]
    assert found["loss"] == [[1.0, 1.0], [2.0, 2.0], [3.0, 30.0]] and not found["calibrated"]


def test_the_docs_table_is_the_report_of_the_documented_run():
    made = json.loads((ROOT / "docs" / "study" / "report.json").read_text())
    docs = (ROOT / "docs" / "study.md").read_text()
    assert made["command"] == "python -m cinescene study --config configs/study_toy.toml --out study-toy"
    assert made["command"] in docs
    table = "\n".join(report.tables(made))
    assert table in docs, "docs/study.md must quote the tables report.tables makes of docs/study/report.json"
