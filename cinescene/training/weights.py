"""A stage's trainable weights: the LoRA state, its best copy, a fully fine-tuned transformer, replica checks."""

from __future__ import annotations

import hashlib
import shutil
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


def publish_transformer(accelerator: Any, prepared: torch.nn.Module, cls: type, config: Any, folder: Path,
                        record: dict[str, Any]) -> None:
    """A fully fine-tuned transformer into ``folder``, with its ``cinescene.json``, swapped in whole.

    Every process takes part in gathering the weights (under FSDP each holds a shard); rank 0 writes.
    """
    full = accelerator.get_state_dict(prepared)
    if accelerator.is_main_process:
        tmp = folder.with_name(f".{folder.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        save_transformer(cls, config, full, tmp)
        atomic.write_json(tmp / "cinescene.json", record)
        atomic.replace_dir(tmp, folder)
    accelerator.wait_for_everyone()


def replica_checksums(accelerator: Any, params: list[torch.nn.Parameter]) -> list[str]:
    """A hash of each process's trainable weights: data-parallel replicas must agree bit for bit.

    Under FSDP each process holds its own shard, so the hashes differ by design.
    """
    digest = hashlib.sha256()
    for param in params:
        local = param.to_local() if hasattr(param, "to_local") else param
        digest.update(local.detach().float().cpu().numpy().tobytes())
    mine = torch.tensor([int.from_bytes(digest.digest()[:7], "big")], device=accelerator.device)
    return [f"{int(v):014x}" for v in accelerator.gather(mine).tolist()]
