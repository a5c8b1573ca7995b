"""Full fine-tuning sharded by FSDP2 on two CPU processes, with the shipped accelerate config."""

from __future__ import annotations

import json
import subprocess
import sys

import torch
from safetensors.torch import load_file

from cinescene import loading
from cinescene.settings import ModelSpec

from conftest import ROOT, TESTS, free_port, subprocess_env
from footage import make_dataset


def test_fsdp_full_finetuning_saves_the_whole_trained_transformer(tmp_path):
    data = make_dataset(tmp_path / "data", clips=1, stills=2, frames=9)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
           str(ROOT / "configs" / "accelerate" / "fsdp_8gpu.yaml"), "--num_processes", "2",
           "--main_process_ip", "127.0.0.1", "--main_process_port", str(free_port()),
           str(TESTS / "training" / "fsdp_on_cpu.py"),
           "--model", "tiny", "--data", str(data), "--stage", "style", "--name", "full", "--method", "full",
           "--steps", "2", "--window", "9", "--area", "3072", "--grad-accum", "1", "--val-fraction", "0",
           "--learning-rate", "1e-3", "--mixed-precision", "bf16", "--checkpoint-every", "1",
           "--runs-dir", str(tmp_path / "runs"), "--loras", str(tmp_path / "loras"),
           "--models-dir", str(tmp_path / "models"), "--quiet"]
    done = subprocess.run(cmd, cwd=ROOT, env=subprocess_env(OMP_NUM_THREADS="1"), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    events = [json.loads(line) for line in (tmp_path / "runs" / "full" / "log.jsonl").read_text().splitlines()]
    assert next(e for e in events if e["type"] == "start")["processes"] == 2
    checksums = next(e for e in events if e["type"] == "stage_done")["replica_checksums"]
    assert len(set(checksums)) == 2  # each process held its own shard, not a replica
    # The trained weights as the processes left them: the last sharded checkpoint, merged by accelerate.
    from accelerate.utils import merge_fsdp_weights

    shards = tmp_path / "runs" / "full" / "checkpoints" / "step_0000002" / "pytorch_model_fsdp_0"
    merge_fsdp_weights(str(shards), str(tmp_path / "merged"))
    trained = load_file(str(tmp_path / "merged" / "model.safetensors"))
    folder = tmp_path / "models" / "full"
    assert loading.is_transformer_folder(folder)
    saved = loading.load_transformer(str(folder), loading.build_tiny_pipeline().transformer, torch.device("cpu"))
    state = saved.state_dict()
    assert state.keys() == trained.keys()
    assert all(state[k].dtype == torch.float32 and torch.equal(state[k], trained[k]) for k in state)
    base = loading.load_model(ModelSpec(model="tiny")).pipe.transformer.state_dict()
    assert sum(not torch.equal(state[k], base[k]) for k in state) > len(state) // 2  # it did train
