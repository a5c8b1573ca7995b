"""Where weights live and in what dtype: devices, compute dtypes, fp8 storage and the memory modes.

A memory mode (``settings.MEMORY_MODES``) decides where weights wait while
they are not computing; all of them are diffusers' own offloading. ``auto``
picks the fastest mode whose estimated peak (``budget``) fits the GPU's free
memory, and says which.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from .architecture import SHIPPED_MODELS
from .errors import InputError
from .settings import HUB_480P, TINY_MODELS, ModelSpec


def cuda_available() -> bool:
    return torch.cuda.is_available()


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if cuda_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise InputError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from err
    if device.type == "cuda" and not cuda_available():
        raise InputError(f"device {name!r} asked for, but this machine has no CUDA device")
    return device


def compute_dtype(device: torch.device) -> torch.dtype:
    """What the transformer computes in: bf16 on a GPU, fp32 on a CPU (bf16 matmuls are slow there)."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def enable_fp8_storage(transformer: Any, device: torch.device) -> None:
    """Store the transformer's weights in fp8 and compute in the usual dtype (once per transformer).

    Norms and embeddings stay as they are (diffusers' skip list); LoRA layers added later are not hooked.
    """
    if getattr(transformer, "_cinescene_fp8", False):
        return
    transformer.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=compute_dtype(device))
    transformer._cinescene_fp8 = True


def auto_memory(spec: ModelSpec, device: torch.device, notes: list[str]) -> ModelSpec:
    """Pick the fastest memory mode the device's free memory allows, and say which."""
    from . import budget

    if device.type != "cuda":
        notes.append("memory auto: no GPU, so nothing to offload (none)")
        return dataclasses.replace(spec, memory="none")
    free, _ = torch.cuda.mem_get_info(device)
    known = spec.model in TINY_MODELS or spec.model in SHIPPED_MODELS or Path(spec.model).is_dir()
    model = spec.model if known else HUB_480P
    row = budget.MEMORY_ROWS[budget.auto_memory_mode(model, free, vae_tiling=spec.vae_tiling)]
    notes.append(f"memory auto: {free / 1e9:.1f} GB free on {device}; picked {row.label}")
    return dataclasses.replace(spec, memory=row.mode, fp8=spec.fp8 or row.fp8)


def place(pipe: Any, spec: ModelSpec, device: torch.device) -> None:
    """Put the pipeline on ``device`` in the spec's memory mode (diffusers' offloading hooks)."""
    if spec.memory == "none":
        pipe.to(device)
    elif spec.memory == "model-offload":
        pipe.enable_model_cpu_offload(device=device)
    elif spec.memory in ("group-offload", "group-offload-leaf"):
        # Streams overlap the next group's transfer with this group's compute; CUDA only.
        pipe.enable_group_offload(
            onload_device=device,
            offload_device=torch.device("cpu"),
            offload_type="block_level" if spec.memory == "group-offload" else "leaf_level",
            num_blocks_per_group=1 if spec.memory == "group-offload" else None,
            use_stream=device.type == "cuda",
        )
    if spec.vae_tiling:
        pipe.vae.enable_tiling()
