"""An arm's training cost from its log and files: each step once, every session's wall time, sizes on disk."""

from __future__ import annotations

import json
import resource

import numpy as np

from cinescene.study import cost
from cinescene.training import config as train_config


def write_log(path, events):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e) + "\n" for e in events) + '{"type": "step", "ste')  # a torn last line


def step(t, n, seconds, memory):
    return {"time": t, "type": "step", "step": n, "loss": 0.1, "step_time": seconds, "memory_mb": memory}


def test_a_resumed_run_counts_each_step_once_and_every_session(tmp_path):
    cfg = train_config.build(data="d", name="lora", runs_dir=str(tmp_path / "runs"), loras_dir=str(tmp_path / "loras"),
                             stage="motion")
    write_log(cfg.run_dir() / "log.jsonl", [
        {"time": 100.0, "type": "start"}, {"time": 101.0, "type": "stage_start", "trainable_parameters": 49152},
        step(102.0, 1, 0.5, 900.0), step(103.0, 2, 0.5, 950.0), step(104.0, 3, 0.5, 990.0),  # killed after step 3
        {"time": 500.0, "type": "start"}, {"time": 501.0, "type": "stage_start", "trainable_parameters": 49152},
        step(502.0, 3, 0.5, 800.0), step(503.0, 4, 0.25, 850.0), {"time": 510.0, "type": "done"}])
    (tmp_path / "loras" / "motion").mkdir(parents=True)
    (tmp_path / "loras" / "motion" / "lora.safetensors").write_bytes(b"x" * 2**20)
    checkpoint = cfg.run_dir() / "checkpoints" / "step_0000004"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text("{}")
    (checkpoint / "optimizer.bin").write_bytes(b"x" * 2**19)
    found = cost.arm_cost(cfg)
    assert (found["steps"], found["sessions"], found["trainable_parameters"]) == (4, 2, 49152)
    assert found["train_seconds"] == 1.75  # steps 1, 2, 3 (its replay) and 4, each once
    assert found["wall_seconds"] == 4.0 + 10.0
    assert found["peak_memory_mb"] == 950.0  # the replayed step 3's record replaces the first one's
    assert found["output_mb"] == 1.0 and found["checkpoint_mb"] == 0.5


def test_a_full_arm_is_measured_by_its_model_folder(tmp_path):
    cfg = train_config.build(data="d", name="full", method="full", runs_dir=str(tmp_path / "runs"),
                             models_dir=str(tmp_path / "models"), stage="motion")
    write_log(cfg.run_dir() / "log.jsonl", [{"time": 1.0, "type": "start"}])
    (tmp_path / "models" / "full" / "transformer").mkdir(parents=True)
    (tmp_path / "models" / "full" / "config.json").write_bytes(b"x" * 2**19)
    (tmp_path / "models" / "full" / "transformer" / "weights.safetensors").write_bytes(b"x" * 2**20)
    found = cost.arm_cost(cfg)
    assert (found["output_mb"], found["steps"], found["checkpoint_mb"], found["trainable_parameters"]) == \
        (1.5, 0, None, None)


def test_reset_peak_memory_starts_a_new_peak():
    def peak_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    block = np.ones(300 * 2**20 // 8)  # 300 MB, touched
    high = peak_mb()
    del block
    assert cost.reset_peak_memory()
    assert peak_mb() < high - 200
