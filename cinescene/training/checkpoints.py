"""Training checkpoints: accelerate's save_state/load_state inside an atomically renamed folder.

``<run>/checkpoints/step_0000400/`` holds the trainable weights
(``adapter.safetensors``; the whole transformer for full fine-tuning), the
optimizer, the LR scheduler, every process's RNG states,
``trainer_state.json`` (step, early-stopping state, and whether the stage has
ended) and a copy of the best validated weights so far, so that a resume gets
the best weights that go with the state. A checkpoint is written under
``step_N.tmp`` and renamed when complete, so a kill at any moment leaves the
previous checkpoint intact; ``latest`` names the newest complete one.

A stage that has published its output leaves ``finished.json`` beside its
checkpoints; a resumed run takes the stage's result from it and trains no step
of it again.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import atomic
from ..faults import failpoint

STATE_FILE = "trainer_state.json"
FINISHED_FILE = "finished.json"
BEST_FILE = "best_adapter.safetensors"  # the best validated LoRA weights as of the checkpoint


def step_dir(root: Path, step: int) -> Path:
    return root / f"step_{step:07d}"


def latest(root: Path) -> Path | None:
    """The newest complete checkpoint, or None."""
    pointer = root / "latest"
    if pointer.is_file():
        candidate = root / pointer.read_text().strip()
        if (candidate / STATE_FILE).is_file():
            return candidate
    complete = sorted(p for p in root.glob("step_*") if p.is_dir() and not p.name.endswith(".tmp")
                      and (p / STATE_FILE).is_file())
    return complete[-1] if complete else None


def save(accelerator: Any, root: Path, step: int, state: dict[str, Any], keep: int,
         files: dict[str, Path] | None = None) -> Path:
    """Write a checkpoint; every process calls this (each saves its RNG state), rank 0 commits it.

    ``files`` (name in the checkpoint -> existing file) are copied in, when they exist.
    """
    final = step_dir(root, step)
    tmp = final.with_name(final.name + ".tmp")
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)  # a half-written one from a killed run
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        for name, source in (files or {}).items():
            if source.is_file():
                shutil.copyfile(source, tmp / name)
        atomic.write_json(tmp / STATE_FILE, state)
        failpoint("checkpoint_write")  # the folder is complete but not yet in place
        atomic.replace_dir(tmp, final)
        atomic.write_text(root / "latest", final.name)
        for old in sorted(p for p in root.glob("step_*") if p.is_dir() and not p.name.endswith(".tmp"))[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def keep_only_lora(accelerator: Any, adapter_name: Callable[[], str]) -> None:
    """Make checkpoints hold only the trainable LoRA weights (accelerate would save the whole transformer).

    ``adapter_name`` is asked at save and load time, so one registration serves every stage of a run.
    """
    from peft import get_peft_model_state_dict, set_peft_model_state_dict
    from safetensors.torch import load_file, save_file

    def save_hook(models: list[Any], weights: list[Any], output_dir: str) -> None:
        if accelerator.is_main_process:
            for model in models:
                state = get_peft_model_state_dict(accelerator.unwrap_model(model), adapter_name=adapter_name())
                save_file({k: v.detach().cpu().contiguous() for k, v in state.items()},
                          str(Path(output_dir) / "adapter.safetensors"))
        weights.clear()

    def load_hook(models: list[Any], input_dir: str) -> None:
        while models:
            model = models.pop()
            state = load_file(str(Path(input_dir) / "adapter.safetensors"))
            set_peft_model_state_dict(accelerator.unwrap_model(model), state, adapter_name=adapter_name())

    accelerator.register_save_state_pre_hook(save_hook)
    accelerator.register_load_state_pre_hook(load_hook)


def load(accelerator: Any, path: Path) -> dict[str, Any]:
    accelerator.load_state(str(path))
    return json.loads((path / STATE_FILE).read_text())



def mark_finished(stage_dir: Path, record: dict[str, Any]) -> None:
    """Record that a stage has ended and published its output (``record``: what it produced)."""
    atomic.write_json(stage_dir / FINISHED_FILE, record)


def finished(stage_dir: Path) -> dict[str, Any] | None:
    """The record of a stage that has published its output, or None."""
    path = stage_dir / FINISHED_FILE
    return json.loads(path.read_text()) if path.is_file() else None
