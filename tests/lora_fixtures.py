"""LoRA files in every layout people share for Wan, built from the tiny model's own layers.

The diffusers <-> original Wan names below are written out on purpose (they are
the *expectation*); the code under test derives them from diffusers' converter.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

# diffusers module suffix within a block -> original Wan name within a block
WAN_NAMES = {
    "attn1.to_q": "self_attn.q", "attn1.to_k": "self_attn.k", "attn1.to_v": "self_attn.v", "attn1.to_out.0": "self_attn.o",
    "attn2.to_q": "cross_attn.q", "attn2.to_k": "cross_attn.k", "attn2.to_v": "cross_attn.v",
    "attn2.to_out.0": "cross_attn.o", "attn2.add_k_proj": "cross_attn.k_img", "attn2.add_v_proj": "cross_attn.v_img",
    "ffn.net.0.proj": "ffn.0", "ffn.net.2": "ffn.2",
}
STYLE = [k for k in WAN_NAMES if k.startswith("attn2.")]
MOTION = [k for k in WAN_NAMES if k.startswith("attn1.")]
ALL = list(WAN_NAMES)


def linear_shapes(transformer: torch.nn.Module) -> dict[str, tuple[int, int]]:
    """(in, out) of every block Linear of the transformer, by diffusers module name."""
    shapes = {}
    for name, module in transformer.named_modules():
        if isinstance(module, torch.nn.Linear) and name.startswith("blocks.") and "lora_" not in name:
            shapes[name.replace(".base_layer", "")] = (module.in_features, module.out_features)
    return shapes


def random_lora(transformer: torch.nn.Module, suffixes: list[str], rank: int = 4, seed: int = 0,
                scale: float = 0.3, ranks: dict[str, int] | None = None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{diffusers module name: (A, B)} with random A and B over every block for the given suffixes."""
    gen = torch.Generator().manual_seed(seed)
    pairs = {}
    for module, (fan_in, fan_out) in sorted(linear_shapes(transformer).items()):
        suffix = module.split(".", 2)[2]
        if suffix not in suffixes:
            continue
        r = (ranks or {}).get(suffix, rank)
        a = torch.randn(r, fan_in, generator=gen) * scale
        b = torch.randn(fan_out, r, generator=gen) * scale
        pairs[module] = (a, b)
    return pairs


def diffusers_layout(pairs, prefix: str = "transformer.") -> dict[str, torch.Tensor]:
    sd = {}
    for module, (a, b) in pairs.items():
        sd[f"{prefix}{module}.lora_A.weight"] = a
        sd[f"{prefix}{module}.lora_B.weight"] = b
    return sd


def _wan(module: str) -> str:
    _, index, suffix = module.split(".", 2)
    return f"blocks.{index}.{WAN_NAMES[suffix]}"


def comfyui_layout(pairs, alpha: float | None = None, down_up: bool = True) -> dict[str, torch.Tensor]:
    """diffusion_model.blocks.N.self_attn.q.lora_down.weight (+ .alpha): ComfyUI and musubi's output."""
    down, up = ("lora_down", "lora_up") if down_up else ("lora_A", "lora_B")
    sd = {}
    for module, (a, b) in pairs.items():
        sd[f"diffusion_model.{_wan(module)}.{down}.weight"] = a
        sd[f"diffusion_model.{_wan(module)}.{up}.weight"] = b
        if alpha is not None:
            sd[f"diffusion_model.{_wan(module)}.alpha"] = torch.tensor(alpha)
    return sd


def kohya_layout(pairs, alpha: float) -> dict[str, torch.Tensor]:
    """lora_unet_blocks_0_self_attn_q.lora_down.weight: musubi-tuner's kohya-style keys."""
    sd = {}
    for module, (a, b) in pairs.items():
        flat = "lora_unet_" + _wan(module).replace(".", "_")
        sd[f"{flat}.lora_down.weight"] = a
        sd[f"{flat}.lora_up.weight"] = b
        sd[f"{flat}.alpha"] = torch.tensor(alpha)
    return sd


def diffsynth_layout(pairs) -> dict[str, torch.Tensor]:
    """blocks.0.self_attn.q.lora_A.default.weight: DiffSynth-Studio's peft keys on Wan's original names."""
    sd = {}
    for module, (a, b) in pairs.items():
        sd[f"{_wan(module)}.lora_A.default.weight"] = a
        sd[f"{_wan(module)}.lora_B.default.weight"] = b
    return sd


def peft_layout(pairs) -> dict[str, torch.Tensor]:
    return diffusers_layout(pairs, prefix="base_model.model.")


def expected_delta(pairs, alpha: float | None = None) -> dict[str, torch.Tensor]:
    """B @ A * alpha / rank per module: what any correct conversion must preserve."""
    return {m: (b @ a) * ((alpha / a.shape[0]) if alpha is not None else 1.0) for m, (a, b) in pairs.items()}


def canonical_delta(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    modules = {k.removeprefix("transformer.").split(".lora_")[0] for k in sd}
    return {m: sd[f"transformer.{m}.lora_B.weight"].float() @ sd[f"transformer.{m}.lora_A.weight"].float()
            for m in modules}


def save(sd: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> Path:
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path), metadata=metadata)
    return path
