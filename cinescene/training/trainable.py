"""What a stage trains: its LoRA on one expert (or the whole transformer), with everything else frozen."""

from __future__ import annotations

from typing import Any

import torch

from .. import slots
from ..adapters import AdapterLibrary
from ..architecture import EXPERT_COMPONENTS, SINGLE
from ..placement import enable_fp8_storage
from .config import TrainConfig
from .units import load_published, stage_seed, unit_key


def prepare(config: TrainConfig, pipe: Any, library: AdapterLibrary, stage: str, frozen_style: str | None,
            expert: str = SINGLE, device: torch.device | None = None) -> list[torch.nn.Parameter]:
    """Add this stage's LoRA to ``expert`` (or unfreeze it all for full fine-tuning); freeze all else.

    Returns the parameters the optimizer updates. ``device`` is where training computes (the
    transformer's own device if not given): fp8 storage picks its compute dtype by it.
    """
    from accelerate.utils import set_seed
    from diffusers.training_utils import cast_training_params
    from peft import LoraConfig

    c = config
    transformer = getattr(pipe, EXPERT_COMPONENTS[expert])
    every_expert = [m for m in (pipe.transformer, getattr(pipe, "transformer_2", None)) if m is not None]
    for module in (pipe.vae, pipe.text_encoder, pipe.image_encoder, *every_expert):
        if module is not None:
            module.requires_grad_(False)
    if c.method == "full":
        # fp32 master weights, bf16 compute through autocast (accelerate's mixed precision; under FSDP
        # accelerate upcasts the same way and gathers bf16 copies per block). The transformer comes in
        # bf16 on a GPU, and there an AdamW update of 3e-5 on a weight of 0.02 is below half a bf16
        # step and rounds away. The price is memory: 16 bytes a weight (fp32 weight, gradient and two
        # moments) against 12 for bf16 weights and gradients; `cinescene plan --train --method full`.
        transformer.to(torch.float32)
        transformer.requires_grad_(True)
        return [p for p in transformer.parameters()]
    if c.fp8_base:
        # Frozen base weights stored in fp8 (every expert's); LoRA layers added afterwards stay unhooked.
        for module in every_expert:
            enable_fp8_storage(module, device or module.device)
    active = []
    if frozen_style:
        # The motion stage trains against the published style file, also right after training that
        # style in this process: a run resumed in the motion stage can only load the file, and the
        # two must train the same motion.
        if "style" in (getattr(transformer, "peft_config", None) or {}):
            transformer.delete_adapters("style")
        load_published(library, pipe, expert, "style", frozen_style)
        active.append("style")
    lora = LoraConfig(r=c.rank, lora_alpha=c.alpha, target_modules=slots.SLOTS[stage].pattern,
                      init_lora_weights=True, lora_dropout=0.0)
    # peft draws the initial A from the global RNG: seed it from the unit alone, so the draw does not
    # depend on what ran before in this process (the style stage, or nothing after a resume).
    set_seed(stage_seed(c.seed, unit_key(stage, expert)))
    with slots.quiet_peft():
        transformer.add_adapter(lora, adapter_name=stage)
    active.append(stage)
    transformer.set_adapter(active)
    # peft's set_adapter marks every active adapter trainable; only this stage's LoRA may learn.
    for name, param in transformer.named_parameters():
        param.requires_grad_("lora_" in name and f".{stage}." in name)
    slots.lora_to_compute_dtype(transformer)
    # Trainable weights in fp32 whatever the base's dtype: bf16 updates of 3e-5 vanish in rounding.
    cast_training_params(transformer, dtype=torch.float32)
    return [p for p in transformer.parameters() if p.requires_grad]
