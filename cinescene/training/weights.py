"""A stage's trainable weights on disk: the LoRA state, its best copy, and a fully fine-tuned transformer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .. import atomic

BEST_ADAPTER = Path("best") / "adapter.safetensors"  # under a stage's run folder


def trainable_state(accelerator: Any, module: torch.nn.Module, adapter: str) -> dict[str, torch.Tensor]:
    """The peft state of ``adapter`` on ``module`` (unwrapped from DDP/FSDP), in fp32 on the CPU."""
    from peft import get_peft_model_state_dict

    state = get_peft_model_state_dict(accelerator.unwrap_model(module), adapter_name=adapter)
    return {k: v.detach().float().cpu().clone() for k, v in state.items()}


def save_best(accelerator: Any, module: torch.nn.Module, adapter: str, run_dir: Path) -> None:
    """Keep the current LoRA weights as the stage's best, atomically."""
    from safetensors.torch import save_file

    path = run_dir / BEST_ADAPTER
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic.atomic_path(path) as tmp:
        save_file(trainable_state(accelerator, module, adapter), str(tmp))


def restore_best(accelerator: Any, module: torch.nn.Module, adapter: str, run_dir: Path) -> None:
    """Put the stage's best LoRA weights back into ``module`` (nothing to do when none was kept)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    best = run_dir / BEST_ADAPTER
    if best.is_file():
        set_peft_model_state_dict(accelerator.unwrap_model(module), load_file(str(best)), adapter_name=adapter)


def save_transformer(cls: type, config: Any, weights: dict[str, torch.Tensor], folder: Path) -> None:
    """Write a full state dict (gathered from every process) as a diffusers transformer folder.

    The weights go into an empty shell of the model by reference (``assign``), so rank 0 holds them once,
    and diffusers' own ``save_pretrained`` shards and indexes them as ``from_pretrained`` expects.
    """
    from accelerate import init_empty_weights

    with init_empty_weights():
        shell = cls.from_config(config)
    shell.load_state_dict(weights, strict=True, assign=True)
    shell.save_pretrained(folder)
