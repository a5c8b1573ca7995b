"""Plan a generation or a training run before owning a GPU: sizes, tokens, FLOPs and memory, arithmetic shown.

Every model is built on the meta device from its config (no weights, no
download: the real Wan2.1 I2V 14B, Wan2.2 I2V A14B and Wan2.2 TI2V-5B configs ship
in ``shipped_configs/``), so parameter counts are exact. FLOPs count multiply-adds
as 2. Memory figures are estimates: weights exact, activations from the tensor
sizes named beside them. Wan2.2 A14B has two experts of 14B; one of them runs per
denoising step, so a step costs one expert's FLOPs while both experts' weights
must be somewhere.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from . import architecture, media
from .errors import InputError
from .settings import MAX_TEXT_TOKENS, MEMORY_MODES, PRESETS

GB = 1e9


@dataclass(frozen=True)
class MemoryRow:
    """One line of the memory estimate: a memory mode, with or without fp8 storage of the transformer."""

    mode: str
    fp8: bool

    @property
    def label(self) -> str:
        return ("fp8" if self.mode == "none" else f"fp8+{self.mode}") if self.fp8 else self.mode


# Fastest first. fp8 is estimated where it decides whether a mode fits (the whole transformer resident);
# the group-offload modes hold a block or a layer at a time, which fp8 barely changes.
MEMORY_ROWS = {row.label: row for mode in MEMORY_MODES
               for row in ([MemoryRow(mode, False), MemoryRow(mode, True)] if mode in ("none", "model-offload")
                           else [MemoryRow(mode, False)])}


@dataclass
class Sizes:
    transformer: int  # the first (or only) expert; Wan2.2 A14B's high-noise expert
    text_encoder: int
    image_encoder: int  # 0 for Wan2.2, which has none
    vae: int
    block: int  # one WanTransformerBlock
    blocks: int
    width: int  # d
    ffn: int
    image_tokens: int  # CLIP tokens in cross-attention (0 without an image encoder)
    transformer_2: int = 0  # Wan2.2 A14B's low-noise expert
    spatial: int = 8  # the VAE's spatial stride (16 for the Wan2.2 VAE)
    temporal: int = 4

    @property
    def experts(self) -> int:
        return 2 if self.transformer_2 else 1

    @property
    def transformers(self) -> int:
        """Every expert's parameters together: what must be stored."""
        return self.transformer + self.transformer_2


@dataclass(frozen=True)
class Dims:
    """The dimensions a transformer forward's FLOPs depend on, read from the configs alone.

    No meta-device build (``sizes`` takes seconds for the 14B model), so it is cheap enough to run per request.
    """

    width: int
    ffn: int
    blocks: int
    image_tokens: int
    patch: tuple[int, int, int]
    spatial: int = 8
    temporal: int = 4


@dataclass
class Plan:
    model: str
    height: int
    width: int
    frames: int
    tokens: int
    token_arithmetic: str
    sizes: Sizes
    flops_forward: float
    flops_arithmetic: str
    steps: int
    cfg: bool
    memory: dict[str, dict[str, float]] = field(default_factory=dict)  # mode -> parts in bytes
    training: dict[str, dict[str, float]] = field(default_factory=dict)
    method: str = "lora"  # what the training estimate is for: lora, or full fine-tuning
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sizes(model: str) -> Sizes:
    """Exact parameter counts, from models built on the meta device."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import CLIPVisionConfig, CLIPVisionModel, UMT5Config, UMT5EncoderModel

    cfg = architecture.configs(model)

    def count(module: torch.nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    with init_empty_weights():
        transformer = WanTransformer3DModel.from_config(cfg["transformer"])
        transformer_2 = WanTransformer3DModel.from_config(cfg["transformer_2"]) if "transformer_2" in cfg else None
        vae = AutoencoderKLWan.from_config(cfg["vae"])
        text = UMT5EncoderModel(UMT5Config(**cfg["text_encoder"]))
        image = CLIPVisionModel(CLIPVisionConfig(**cfg["image_encoder"])) if "image_encoder" in cfg else None
    # Shared embeddings (T5's input embedding is its "shared" matrix) count once, as they are stored once.
    text.tie_weights()
    t, d = transformer.config, dims(model)
    return Sizes(transformer=count(transformer), text_encoder=count(text),
                 image_encoder=count(image) if image is not None else 0, vae=count(vae),
                 block=count(transformer.blocks[0]), blocks=t.num_layers,
                 width=t.num_attention_heads * t.attention_head_dim, ffn=t.ffn_dim, image_tokens=d.image_tokens,
                 transformer_2=count(transformer_2) if transformer_2 is not None else 0, spatial=d.spatial,
                 temporal=d.temporal)


def dims(model: str) -> Dims:
    t = architecture.transformer_config(model)
    vae = architecture.part_config(model, "vae")
    image_tokens = 0
    if "image_encoder" in architecture.present_parts(model):
        image = architecture.part_config(model, "image_encoder")
        image_tokens = (image["image_size"] // image["patch_size"]) ** 2 + 1
    # AutoencoderKLWan's defaults (Wan2.1's strides) when a config leaves them out.
    return Dims(width=t["num_attention_heads"] * t["attention_head_dim"], ffn=t["ffn_dim"], blocks=t["num_layers"],
                image_tokens=image_tokens, patch=tuple(t.get("patch_size", (1, 2, 2))),  # type: ignore[arg-type]
                spatial=int(vae.get("scale_factor_spatial", 8)), temporal=int(vae.get("scale_factor_temporal", 4)))


def step_flops(model: str, height: int, width: int, frames: int, cfg: bool = True) -> float:
    """FLOPs of one denoising step: one transformer forward, two with classifier-free guidance."""
    d = dims(model)
    n, _ = tokens(height, width, frames, d.patch, d.spatial, d.temporal)
    return forward_flops(n, d)[0] * (2 if cfg else 1)


def tokens(height: int, width: int, frames: int, patch: tuple[int, int, int] = (1, 2, 2),
           spatial: int = 8, temporal: int = 4) -> tuple[int, str]:
    lf, lh, lw = (frames - 1) // temporal + 1, height // spatial, width // spatial
    n = (lf // patch[0]) * (lh // patch[1]) * (lw // patch[2])
    grid = f"{lf // patch[0]} x {lh // patch[1]} x {lw // patch[2]}"
    text = (f"latent {lf} x {lh} x {lw} = ((F-1)/{temporal}+1) x H/{spatial} x W/{spatial}; patches "
            f"{patch[0]}x{patch[1]}x{patch[2]} -> {grid} = {n:,} tokens")
    return n, text


def forward_flops(n: int, s: Sizes | Dims) -> tuple[float, str]:
    """One expert's forward: Wan2.2 A14B runs one of its two experts per call."""
    d, f, ctx, layers = s.width, s.ffn, MAX_TEXT_TOKENS + s.image_tokens, s.blocks
    parts = {
        "self-attn projections 4 x 2Nd^2": 8 * n * d * d,
        "self-attn scores+values 2 x 2N^2d": 4 * n * n * d,
        "cross-attn q,out 2 x 2Nd^2": 4 * n * d * d,
        f"cross-attn k,v over {ctx} {'text+image' if s.image_tokens else 'text'} tokens 2 x 2Cd^2": 4 * ctx * d * d,
        "cross-attn scores+values 2 x 2NCd": 4 * n * ctx * d,
        "FFN 2 x 2NdF": 4 * n * d * f,
    }
    per_layer = sum(parts.values())
    lines = [f"  {name}: {value / 1e12:,.2f} TFLOP" for name, value in parts.items()]
    total = f"{per_layer / 1e12:,.2f} TFLOP per block x {layers} blocks = {per_layer * layers / 1e15:,.3f} PFLOP"
    text = f"per block (N={n:,}, d={d}, F={f}, C={ctx}):\n" + "\n".join(lines) + f"\n  = {total}"
    return float(per_layer * layers), text


def _activations(n: int, s: Sizes, bytes_per: int = 2) -> float:
    # Live at the peak of one block with a fused attention kernel (no N^2 matrix): hidden state,
    # q/k/v, attention output, residual copies (~8 N x d) and the FFN's N x F intermediate (x2 for GELU).
    return float(n * (8 * s.width + 2 * s.ffn) * bytes_per)


def memory(n: int, s: Sizes, vae_tiling: bool = False) -> dict[str, dict[str, float]]:
    """Peak GPU bytes for sampling in each ``MEMORY_ROWS`` entry, by part.

    Resident modes hold every expert; model offload moves one component at a time, so one expert.
    """
    t16, t8 = s.transformers * 2.0, s.transformers * 1.0
    one16, one8 = s.transformer * 2.0, s.transformer * 1.0
    te, ie, vae = s.text_encoder * 2.0, s.image_encoder * 4.0, s.vae * 4.0
    act = _activations(n, s)
    decode = (1.0 if vae_tiling else 6.0) * GB  # Wan's VAE decodes frame by frame; tiles cap the spatial size
    top = (s.transformer - s.block * s.blocks) * 2.0
    return {
        "none": {"transformer": t16, "text_encoder": te, "image_encoder": ie, "vae": vae, "activations": act,
                 "vae_decode": decode},
        "fp8": {"transformer (fp8 storage)": t8, "text_encoder": te, "image_encoder": ie, "vae": vae,
                "activations": act, "vae_decode": decode},
        "model-offload": {"largest component at a time": max(one16, te, ie, vae), "activations": act,
                          "vae_decode": decode},
        "fp8+model-offload": {"largest component at a time (fp8 transformer)": max(one8, te, ie, vae),
                              "activations": act, "vae_decode": decode},
        "group-offload": {"non-block weights": top, "2 blocks (one computing, one prefetched)": 2 * s.block * 2.0,
                          "activations": act, "vae_decode": decode},
        "group-offload-leaf": {"non-block weights": top, "one layer at a time": s.width * s.ffn * 2.0 * 2,
                               "activations": act, "vae_decode": decode},
    }


def training_memory(n: int, s: Sizes, rank: int = 8) -> dict[str, dict[str, float]]:
    """Peak GPU bytes for one LoRA training step (batch 1, gradient checkpointing, encoders offloaded).

    One expert trains at a time (each on its own timesteps); the other stays resident for validation samples.
    """
    d = s.width
    # Style: attn2's q, k, v, out, and the image k/v projections where there is an image encoder (Wan2.1).
    lora = {"style": (6 if s.image_tokens else 4) * s.blocks * rank * 2 * d, "motion": 4 * s.blocks * rank * 2 * d}
    lora_bytes = max(lora.values()) * 4.0 * 4  # fp32 weight, gradient, two AdamW moments
    checkpoints = s.blocks * n * d * 2.0  # one bf16 block input kept per block
    recompute = _activations(n, s) * 2  # one block's activations, forward and backward
    vae = s.vae * 4.0
    what = "both experts" if s.experts == 2 else "transformer"
    return {
        "none": {f"{what} (bf16)": s.transformers * 2.0, "LoRA + grads + AdamW": lora_bytes,
                 "checkpointed block inputs": checkpoints, "one block recomputed": recompute, "vae": vae},
        "fp8": {f"{what} (fp8 storage)": s.transformers * 1.0, "LoRA + grads + AdamW": lora_bytes,
                "checkpointed block inputs": checkpoints, "one block recomputed": recompute, "vae": vae},
    }


FULL_FT_GPUS = 8  # configs/accelerate/fsdp_8gpu.yaml


def full_training_memory(n: int, s: Sizes, gpus: int = FULL_FT_GPUS) -> dict[str, dict[str, float]]:
    """Peak GPU bytes for one full fine-tuning step (batch 1, gradient checkpointing), by part.

    The trainer keeps fp32 master weights and computes in bf16 (autocast; FSDP's mixed precision under
    FSDP): 4 bytes of weight, 4 of gradient and 8 of AdamW moments per parameter. Plain bf16 weights would
    save 4 bytes a parameter but lose most updates at the seed's learning rate to rounding.
    """
    p = float(s.transformer)
    checkpoints = s.blocks * n * s.width * 2.0
    recompute = _activations(n, s) * 2
    top = (s.transformer - s.block * s.blocks) * 2.0
    return {
        "full, 1 GPU": {"fp32 master weights": 4 * p, "fp32 gradients": 4 * p, "AdamW moments (fp32)": 8 * p,
                        "bf16 weight copies (autocast)": 2 * p, "checkpointed block inputs": checkpoints,
                        "one block recomputed": recompute, "vae": s.vae * 4.0},
        f"full, FSDP x{gpus}": {f"fp32 master weights / {gpus}": 4 * p / gpus,
                                f"fp32 gradients / {gpus}": 4 * p / gpus,
                                f"AdamW moments / {gpus}": 8 * p / gpus,
                                "bf16 gathered: 2 blocks + non-block weights": 2 * s.block * 2.0 + top,
                                "checkpointed block inputs": checkpoints, "one block recomputed": recompute,
                                "vae": s.vae * 4.0},
    }


# The official landscape sizes (height, width) of the presets: Wan2.1's 480P and 720P, Wan2.2 TI2V-5B's
# 1280*704 (Wan2.2 wan/configs/__init__.py SIZE_CONFIGS).
OFFICIAL_SIZES = {"480P": (480, 832), "720P": (720, 1280), "704P": (704, 1280)}


def landscape_size(preset: str) -> tuple[int, int]:
    """(height, width) a plan assumes when none is given: the official size, else Wan's 480 x 832 shape."""
    return OFFICIAL_SIZES.get(preset) or media.size_for_area(480 / 832, PRESETS[preset].area)


def make_plan(model: str, height: int, width: int, frames: int, steps: int = 40, guidance: float = 5.0,
              vae_tiling: bool = False, train_frames: int | None = None, rank: int = 8,
              method: str = "lora") -> Plan:
    if height % 16 or width % 16 or (frames - 1) % 4:
        raise InputError("height and width must be multiples of 16 and frames of the form 4k+1")
    s = sizes(model)
    cfg = architecture.transformer_config(model)
    patch = tuple(cfg.get("patch_size", (1, 2, 2)))
    multiple = s.spatial * patch[1]
    if height % multiple or width % multiple:
        raise InputError(f"height and width must be multiples of {multiple} for {model}")
    n, token_text = tokens(height, width, frames, patch, s.spatial, s.temporal)
    flops, flops_text = forward_flops(n, s)
    plan = Plan(model=model, height=height, width=width, frames=frames, tokens=n, token_arithmetic=token_text,
                sizes=s, flops_forward=flops, flops_arithmetic=flops_text, steps=steps, cfg=guidance > 1.0)
    plan.memory = memory(n, s, vae_tiling)
    if method not in ("lora", "full"):
        raise InputError(f"unknown training method {method!r}: lora or full")
    if method == "full" and s.experts == 2:
        raise InputError(f"{model} has two experts; full fine-tuning is for one-expert models (train LoRAs)")
    plan.method = method
    if train_frames:
        train_n, _ = tokens(height, width, train_frames, patch, s.spatial, s.temporal)
        if method == "full":
            plan.training = full_training_memory(train_n, s)
            plan.notes.append(f"training estimate for {train_frames}-frame windows ({train_n:,} tokens), all "
                              f"weights: fp32 master weights with bf16 compute, 16 bytes a parameter "
                              f"(bf16 weights would need 12 but round away AdamW updates of 3e-5)")
        else:
            plan.training = training_memory(train_n, s, rank)
            plan.notes.append(f"training estimate for {train_frames}-frame windows ({train_n:,} tokens), "
                              f"rank {rank}" + (", one expert at a time" if s.experts == 2 else ""))
    return plan


def auto_memory_mode(model: str, free_bytes: float, height: int = 480, width: int = 832, frames: int = 81,
                     vae_tiling: bool = False) -> str:
    """The label (a ``MEMORY_ROWS`` key) of the fastest mode whose estimated peak fits ``free_bytes``, 10% spare."""
    plan = make_plan(model, height, width, frames, vae_tiling=vae_tiling)
    for label in MEMORY_ROWS:
        if sum(plan.memory[label].values()) * 1.1 <= free_bytes:
            return label
    return list(MEMORY_ROWS)[-1]


def render(plan: Plan) -> str:
    s = plan.sizes
    calls = 2 if plan.cfg else 1
    rest = s.transformer - s.blocks * s.block
    forwards = "s (classifier-free guidance)" if calls == 2 else " (guidance 1: no CFG)"
    high = " the high-noise expert" if s.experts == 2 else ""
    lines = [
        f"cinescene plan: {plan.model} at {plan.width}x{plan.height}, {plan.frames} frames, {plan.steps} steps",
        "",
        "parameters (exact, from the configs on the meta device):",
        f"  transformer   {s.transformer:>15,}  ({s.blocks} blocks x {s.block:,} + {rest:,}){high}",
        *([f"  transformer_2 {s.transformer_2:>15,}  the low-noise expert, of the same shape"] if s.experts == 2
          else []),
        f"  text encoder  {s.text_encoder:>15,}",
        f"  image encoder {s.image_encoder:>15,}" + ("" if s.image_encoder else "  (none)"),
        f"  VAE           {s.vae:>15,}",
        "",
        f"tokens: {plan.token_arithmetic}",
        "",
        f"FLOPs per transformer forward{' (one expert runs per step)' if s.experts == 2 else ''}: "
        f"{plan.flops_arithmetic}",
        f"per denoising step: {calls} forward{forwards} "
        f"= {plan.flops_forward * calls / 1e15:,.3f} PFLOP; whole sample: x {plan.steps} steps = "
        f"{plan.flops_forward * calls * plan.steps / 1e15:,.1f} PFLOP",
        "",
        "peak GPU memory for sampling (estimate):",
    ]
    for mode, parts in plan.memory.items():
        detail = " + ".join(f"{name} {value / GB:.1f}" for name, value in parts.items())
        lines.append(f"  {mode:<19} {sum(parts.values()) / GB:6.1f} GB = {detail}")
    if plan.training:
        what = "full fine-tuning (per GPU)" if plan.method == "full" else "LoRA training"
        lines += ["", f"peak GPU memory for {what} ({'; '.join(plan.notes)}):"]
        for mode, parts in plan.training.items():
            detail = " + ".join(f"{name} {value / GB:.2f}" for name, value in parts.items())
            lines.append(f"  {mode:<19} {sum(parts.values()) / GB:6.1f} GB = {detail}")
    return "\n".join(lines)
