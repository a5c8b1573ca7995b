"""What training an arm cost, from its run's log and files: time, peak memory, trainable parameters, size on disk.

The log is the one record of every step (``training.log``). A resumed run logs its replayed steps again, so each
step counts once (its last record): the training time is the sum of the steps' own times. The wall time adds up
every session of the run, from its start event to its last event, so a killed session counts up to its last
record; it includes loading the model, encoding the data and validating. The peak memory is what the trainer logs
with each step: on CUDA the peak allocated, on a CPU the process's peak resident size, which includes the
runtime and every model the process holds; ``reset_peak_memory`` before an arm keeps an earlier arm's peak out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..training import checkpoints
from ..training.config import TrainConfig
from ..training.log import read_log

MB = 2**20


def reset_peak_memory() -> bool:
    """Start a new peak for the next arm's logged ``memory_mb``; False where that cannot be done."""
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        return True
    try:
        # Linux: writing 5 resets the process's peak resident size (VmHWM), which getrusage reports.
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def arm_cost(config: TrainConfig) -> dict[str, Any]:
    """The cost of one arm's run, from its log and its output on disk."""
    events = read_log(config.run_dir() / "log.jsonl")
    steps = {e["step"]: e for e in events if e.get("type") == "step"}
    sessions, wall = 0, 0.0
    start: float | None = None
    last: float | None = None
    for event in events:
        if event.get("type") == "start":
            if start is not None and last is not None:
                wall += last - start
            start, sessions = event["time"], sessions + 1
        last = event.get("time", last)
    if start is not None and last is not None:
        wall += last - start
    trainable = [e["trainable_parameters"] for e in events if e.get("type") == "stage_start"]
    if config.method == "lora":
        output = Path(config.loras_dir) / config.stage / f"{config.name}.safetensors"
        output_bytes = output.stat().st_size if output.is_file() else 0
    else:
        output = Path(config.models_dir) / config.name
        output_bytes = _folder_bytes(output)
    latest = checkpoints.latest(config.run_dir() / "checkpoints")
    return {
        "method": config.method,
        "steps": len(steps),
        "sessions": sessions,
        "train_seconds": round(sum(float(e.get("step_time", 0.0)) for e in steps.values()), 3),
        "wall_seconds": round(wall, 3),
        "peak_memory_mb": round(max((float(e.get("memory_mb", 0.0)) for e in steps.values()), default=0.0), 1),
        "trainable_parameters": trainable[-1] if trainable else None,
        "output": str(output),
        "output_mb": round(output_bytes / MB, 3),
        "checkpoint_mb": round(_folder_bytes(latest) / MB, 3) if latest else None,
    }
