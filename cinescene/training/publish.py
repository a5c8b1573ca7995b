"""Where a trained LoRA goes: the adapter library, one entry per expert it was trained for.

Wan2.1 and Wan2.2 TI2V-5B have one transformer, and a run's adapter is ``NAME``. Wan2.2 I2V A14B has two
experts trained apart, and a run leaves ``NAME.high_noise`` and ``NAME.low_noise``: plain library entries
each, loadable with diffusers (``load_lora_weights(file)`` for the high-noise expert,
``load_lora_weights(file, load_into_transformer_2=True)`` for the low-noise one). The trainer publishes
through ``publish_lora`` alone, so storing the two as one pair later changes this module only.
"""

from __future__ import annotations

from typing import Any

import torch

from ..adapters import AdapterInfo, AdapterLibrary
from ..architecture import SINGLE


def adapter_name(name: str, expert: str) -> str:
    """The library name of the adapter trained for ``expert`` of a run named ``name``."""
    return name if expert == SINGLE else f"{name}.{expert}"


def publish_lora(library: AdapterLibrary, canonical: dict[str, torch.Tensor], *, stage: str, name: str,
                 expert: str, transformer: torch.nn.Module, base_model: str, alpha: float,
                 trained_on: dict[str, Any], extra: dict[str, Any], description: str) -> AdapterInfo:
    """Store one expert's trained LoRA (canonical form, ``lora_formats.from_peft``) under its library name."""
    return library.add(canonical, stage, name=adapter_name(name, expert), base_model=base_model,
                       transformer=transformer, overwrite=True, alpha=alpha, trained_on=trained_on,
                       extra={**extra, "expert": expert}, description=description)


def published_already(library: AdapterLibrary, name: str, expert: str, stage: str,
                      canonical: dict[str, torch.Tensor]) -> bool:
    """Whether exactly these weights are in the library already (a run killed after publishing)."""
    from safetensors.torch import load_file

    info = library.find(adapter_name(name, expert))
    if info is None or info.kind != stage:
        return False
    stored = load_file(str(info.path))
    return stored.keys() == canonical.keys() and all(torch.equal(stored[k], canonical[k]) for k in stored)
