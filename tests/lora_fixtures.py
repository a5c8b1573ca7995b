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
# diffusers module name -> original Wan name, for the linear layers outside the blocks
WAN_TOP_NAMES = {
    "condition_embedder.time_embedder.linear_1": "time_embedding.0",
    "condition_embedder.time_embedder.linear_2": "time_embedding.2",
    "condition_embedder.time_proj": "time_projection.1",
    "condition_embedder.text_embedder.linear_1": "text_embedding.0",
    "condition_embedder.text_embedder.linear_2": "text_embedding.2",
    "condition_embedder.image_embedder.ff.net.0.proj": "img_emb.proj.1",
    "condition_embedder.image_embedder.ff.net.2": "img_emb.proj.3",
    "proj_out": "head.head",
}
STYLE = [k for k in WAN_NAMES if k.startswith("attn2.")]
MOTION = [k for k in WAN_NAMES if k.startswith("attn1.")]
ALL = list(WAN_NAMES)
# Per block, the parameters a LoRA cannot reach that checkpoint diffs still carry: (original name, shape from dim).
WAN_NON_LINEAR = {"self_attn.norm_q.diff": "d", "self_attn.norm_k.diff": "d", "cross_attn.norm_q.diff": "d",
                  "cross_attn.norm_k.diff": "d", "cross_attn.norm_k_img.diff": "d", "norm3.diff": "d",
                  "norm3.diff_b": "d", "diff_m": "m"}


def linear_shapes(transformer: torch.nn.Module, blocks_only: bool = True) -> dict[str, tuple[int, int]]:
    """(in, out) of every block Linear of the transformer (or every Linear), by diffusers module name."""
    shapes = {}
    for name, module in transformer.named_modules():
        if isinstance(module, torch.nn.Linear) and "lora_" not in name and (name.startswith("blocks.") or
                                                                             not blocks_only):
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
    if module in WAN_TOP_NAMES:
        return WAN_TOP_NAMES[module]
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


def published_speed_lora(transformer: torch.nn.Module, rank: int = 64, seed: int = 0, scale: float = 0.05,
                         full_deltas: float = 0.0) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """A step-distillation LoRA as lightx2v shares its Wan2.1 I2V ones for ComfyUI, on the tiny model's layers.

    Every linear layer (blocks, embedders) has lora_down/lora_up and a bias delta diff_b;
    the output head (small) is a full weight delta, head.head.diff, with its diff_b; norms,
    modulation tables and the patch embedding carry full deltas (diff, diff_b, diff_m), zeros
    unless ``full_deltas`` gives them a scale. Returns (file state dict, expected deltas:
    {diffusers module: (weight delta, bias delta)}).
    """
    gen = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}
    expected = {}
    shapes = linear_shapes(transformer, blocks_only=False)
    for module, (fan_in, fan_out) in sorted(shapes.items()):
        wan = f"diffusion_model.{_wan(module)}"
        bias = torch.randn(fan_out, generator=gen) * scale
        sd[f"{wan}.diff_b"] = bias
        if module == "proj_out":
            delta = torch.randn(fan_out, fan_in, generator=gen) * scale
            sd[f"{wan}.diff"] = delta
        else:
            a = torch.randn(rank, fan_in, generator=gen) * scale
            b = torch.randn(fan_out, rank, generator=gen) * scale
            sd[f"{wan}.lora_down.weight"], sd[f"{wan}.lora_up.weight"] = a, b
            delta = b @ a
        expected[module] = (delta, bias)
    dim = transformer.config.num_attention_heads * transformer.config.attention_head_dim
    image_dim = transformer.config.image_dim
    others = {f"blocks.{i}.{name}": (dim,) if kind == "d" else (1, 6, dim)
              for i in range(transformer.config.num_layers) for name, kind in WAN_NON_LINEAR.items()}
    others.update({"head.diff_m": (1, 2, dim), "img_emb.proj.0.diff": (image_dim,),
                   "img_emb.proj.0.diff_b": (image_dim,), "img_emb.proj.4.diff": (dim,),
                   "img_emb.proj.4.diff_b": (dim,),
                   "patch_embedding.diff": tuple(transformer.patch_embedding.weight.shape)})
    for name, shape in others.items():
        sd[f"diffusion_model.{name}"] = torch.randn(*shape, generator=gen) * full_deltas
    return sd, expected


def with_bias_deltas(sd: dict[str, torch.Tensor], pairs, seed: int = 0, scale: float = 0.3) -> dict[str, torch.Tensor]:
    """A ComfyUI-layout state dict with a bias delta (diff_b) beside each module's LoRA; returns the biases too."""
    gen = torch.Generator().manual_seed(seed)
    biases = {m: torch.randn(b.shape[0], generator=gen) * scale for m, (_, b) in pairs.items()}
    for module, bias in biases.items():
        sd[f"diffusion_model.{_wan(module)}.diff_b"] = bias
    return biases


def effective(pairs, alpha: float) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The same LoRA with alpha / rank folded into B: what a file without alpha must hold to act the same."""
    return {m: (a, b * (alpha / a.shape[0])) for m, (a, b) in pairs.items()}


def style_and_motion_library(root: Path):
    """A library in ``root/loras`` with a random style adapter ``look`` and a random motion adapter ``push``."""
    from cinescene import loading
    from cinescene.adapters import AdapterLibrary

    lib = AdapterLibrary(root / "loras")
    tr = loading.build_tiny_pipeline().transformer
    for name, suffixes, kind in (("look", STYLE, "style"), ("push", MOTION, "motion")):
        path = save(diffusers_layout(random_lora(tr, suffixes, seed=len(name))), root / f"{name}.safetensors")
        lib.import_file(path, kind, name=name, base_model="tiny", transformer=tr)
    return lib


# Wan2.2 pairs as people publish them: one file per expert, named by one of these conventions (docs/wan22_adapters.md).
PAIR_NAMINGS = {
    # Comfy-Org/Wan_2.2_ComfyUI_Repackaged: wan2.2_i2v_lightx2v_4steps_lora_v1_high_noise.safetensors
    "comfyui": lambda name, expert: f"wan2.2_i2v_{name}_v1_{expert}.safetensors",
    # Kijai/WanVideo_comfy: Wan2.2-Lightning_I2V-A14B-4steps-lora_HIGH_fp16.safetensors
    "kijai": lambda name, expert: f"Wan2.2-{name}_I2V-A14B-lora_{expert.split('_')[0].upper()}_fp16.safetensors",
    # lightx2v/Wan2.2-Lightning: <folder>/high_noise_model.safetensors
    "lightx2v": lambda name, expert: f"{name}/{expert}_model.safetensors",
    # ostris/ai-toolkit's split saves: NAME_high_noise.safetensors
    "ai-toolkit": lambda name, expert: f"{name}_{expert}.safetensors",
}


def random_pair(pipe, suffixes: list[str], rank: int = 4, seed: int = 0, scale: float = 0.3):
    """Random LoRA halves for a two-expert pipeline: {"high_noise": (A, B) per module, "low_noise": ...}."""
    return {"high_noise": random_lora(pipe.transformer, suffixes, rank=rank, seed=seed, scale=scale),
            "low_noise": random_lora(pipe.transformer_2, suffixes, rank=rank, seed=seed + 1000, scale=scale)}


def pair_layout(pairs, layout: str, alpha: float | None = None) -> dict[str, torch.Tensor]:
    """One half in a published layout: ComfyUI (lora_down/up, alpha), musubi (lora_unet_*, alpha) or diffusers."""
    if layout == "comfyui":
        return comfyui_layout(pairs, alpha=alpha)
    if layout == "musubi":
        return kohya_layout(pairs, alpha=alpha if alpha is not None else 4.0)
    if layout == "diffusers":
        return diffusers_layout(effective(pairs, alpha) if alpha is not None else pairs)
    raise ValueError(layout)


def save_pair(halves, folder: Path, name: str, naming: str = "comfyui", layout: str = "comfyui",
              alpha: float | None = None) -> dict[str, Path]:
    """Write a pair's halves under ``folder`` as a publisher would name them; {expert: path}."""
    paths = {}
    for expert, pairs in halves.items():
        path = folder / PAIR_NAMINGS[naming](name, expert)
        path.parent.mkdir(parents=True, exist_ok=True)
        paths[expert] = save(pair_layout(pairs, layout, alpha), path)
    return paths
