"""Where a trained LoRA goes: the adapter library, one entry per expert it was trained for.

Wan2.1 and Wan2.2 TI2V-5B have one transformer, and a run's adapter is ``NAME``. Wan2.2 I2V A14B has two
experts trained apart, and a run leaves ``NAME.high_noise`` and ``NAME.low_noise``: plain library entries
each, loadable with diffusers (``load_lora_weights(file)`` for the high-noise expert,
``load_lora_weights(file, load_into_transformer_2=True)`` for the low-noise one). Once a stage has both,
``publish_pair`` also stores them as the pair ``NAME``: a shot's slot holds one adapter, so the pair is
what Generate, Compare and ``sample --style NAME`` use on Wan2.2.
"""

from __future__ import annotations

from typing import Any

import torch

from ..adapters import AdapterInfo, AdapterLibrary, PartSource
from ..architecture import HIGH_NOISE, LOW_NOISE, SINGLE


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


def publish_pair(library: AdapterLibrary, *, stage: str, name: str, experts: dict[str, torch.nn.Module],
                 base_model: str) -> AdapterInfo:
    """Store a stage's two published halves (``NAME.high_noise``, ``NAME.low_noise``) as the pair ``NAME``."""
    from safetensors.torch import load_file

    halves = {expert: library.get(adapter_name(name, expert), kind=stage) for expert in (HIGH_NOISE, LOW_NOISE)}
    high = halves[HIGH_NOISE]
    return library.add_pair(
        stage, name=name, high_noise=load_file(str(high.path)), low_noise=load_file(str(halves[LOW_NOISE].path)),
        base_model=base_model, transformer=experts[HIGH_NOISE], transformer_2=experts[LOW_NOISE], overwrite=True,
        trained_on=high.trained_on, description=high.description,
        extra={**{k: v for k, v in high.extra.items() if k not in ("expert", "timesteps")},
               "halves": {e: info.name for e, info in halves.items()}},
        sources={e: PartSource("diffusers", info.path.name, info.alpha) for e, info in halves.items()})
