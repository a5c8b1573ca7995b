"""LoRA files for Wan: read safely, recognise the layout, convert to cinescene's canonical form, export.

Canonical form (what the library stores) is diffusers' own key layout, as
``save_lora_weights`` writes it (``transformer.blocks.N.attn1.to_q.lora_A.weight``),
with two normalisations that make every stored adapter hot-swappable:

* the LoRA scale alpha/rank is folded into ``lora_B`` and no alpha is stored, so
  diffusers loads it with scale 1 (its convention when a file carries no alpha);
* every module has the same rank (smaller ones are zero-padded, which leaves
  ``B @ A`` unchanged), so the peft config has no rank or alpha patterns.

LoRA biases (``lora_B.bias``, what ComfyUI files call ``diff_b``) are kept, with
the same scale as ``lora_B``. Layouts on Wan's original names (ComfyUI, musubi,
DiffSynth) go through diffusers' own Wan converter, prepared by lora_original so
that any subset of layers and every delta converts exactly or is refused by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import lora_original
from .errors import InputError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
MAX_KEYS_SHOWN = 5

# Layout names, as shown to users.
DIFFUSERS = "diffusers"
PEFT = "peft"
COMFYUI = "comfyui"  # also musubi-tuner's default output and most Civitai Wan LoRAs
KOHYA = "musubi-kohya"  # lora_unet_blocks_0_self_attn_q.lora_down.weight
DIFFSYNTH = "diffsynth"

_ORIGINAL_NAMES = re.compile(
    r"(^|\.)(self_attn|cross_attn|ffn\.\d|img_emb|head\.head|time_projection|text_embedding|time_embedding)"
)
_DIFFUSERS_NAMES = re.compile(
    r"(^|\.)(blocks\.\d+\.(attn1|attn2|ffn|norm)|condition_embedder|proj_out|patch_embedding)"
)


@dataclass
class LoraSummary:
    rank: int
    targets: list[str]  # module suffixes within a block, e.g. ["attn1.to_q", ...]
    blocks: list[int]
    num_params: int
    has_bias: bool
    module_names: list[str]  # full module names (without the "transformer." prefix)


def read_safetensors(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Load a .safetensors file, refusing anything else before a byte of it is parsed as data."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise InputError(
            f"{path.name} is a pickle-based file ({path.suffix}); loading it could run arbitrary code. "
            "cinescene reads only .safetensors: convert it on a machine you trust first"
        )
    if path.suffix.lower() != ".safetensors":
        raise InputError(f"{path.name} is not a .safetensors file")
    if not path.is_file():
        raise InputError(f"adapter file not found: {path}")
    with open(path, "rb") as fh:
        head = fh.read(9)
    # A safetensors file is an 8-byte header length, then the JSON header. Anything else that
    # opens like a zip (torch.save) or a pickle stream is refused without being parsed.
    zipped = head[:4] == b"PK\x03\x04"
    pickled = head[:1] == b"\x80" and head[1:2] in b"\x02\x03\x04\x05"
    if head[8:9] != b"{" and (zipped or pickled):
        raise InputError(f"{path.name} is a pickle/zip (torch.save) file renamed to .safetensors; refused")
    try:
        tensors: dict[str, torch.Tensor] = {}
        with safe_open(str(path), framework="pt") as fh:
            metadata = dict(fh.metadata() or {})
            for key in fh.keys():
                tensors[key] = fh.get_tensor(key)
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise InputError(f"{path.name} is not a valid safetensors file (truncated or corrupt): {err}") from err
    if not tensors:
        raise InputError(f"{path.name} holds no tensors")
    return tensors, metadata


def detect_layout(keys: list[str]) -> str:
    """Name the key layout of a LoRA state dict, or refuse it naming keys that fit none."""
    if all(k.startswith("transformer.") for k in keys) and any(".lora_A." in k for k in keys):
        return DIFFUSERS
    if all(k.startswith("base_model.model.") for k in keys):
        return PEFT
    if all(k.startswith("diffusion_model.") for k in keys):
        return COMFYUI
    if all(k.startswith("lora_unet_") for k in keys):
        return KOHYA
    if all(_ORIGINAL_NAMES.search(k) for k in keys) and any("lora" in k for k in keys):
        return DIFFSYNTH
    if all(_DIFFUSERS_NAMES.search(k) for k in keys) and any(".lora_A." in k for k in keys):
        return DIFFUSERS  # diffusers keys saved without the "transformer." prefix
    odd = [k for k in keys if not (_ORIGINAL_NAMES.search(k) or _DIFFUSERS_NAMES.search(k))][:MAX_KEYS_SHOWN]
    raise InputError(f"unrecognised LoRA key layout (not diffusers, peft, ComfyUI/musubi or DiffSynth); "
                     f"for example: {', '.join(odd or keys[:MAX_KEYS_SHOWN])}")


@dataclass
class Conversion:
    state_dict: dict[str, torch.Tensor]  # canonical form
    layout: str  # the layout detected
    notes: list[str] = field(default_factory=list)  # what the conversion did beyond renaming
    dropped: list[str] = field(default_factory=list)  # full deltas left out on request (see lora_original)
    alpha: float | None = None  # the alpha the author trained with, for the record (already folded in)


def convert_file(path: str | os.PathLike[str], transformer: torch.nn.Module,
                 drop_full_deltas: bool = False) -> Conversion:
    """Read a LoRA file safely and convert it for ``transformer``'s layers (whose shapes size bias-only deltas)."""
    state_dict, metadata = read_safetensors(path)
    linears = {n.replace(".base_layer", ""): (m.in_features, m.out_features)
               for n, m in transformer.named_modules() if isinstance(m, torch.nn.Linear) and "lora_" not in n}
    converted = convert(state_dict, metadata, drop_full_deltas=drop_full_deltas, linear_shapes=linears)
    converted.alpha = source_alpha(state_dict, metadata)
    return converted


def source_alpha(state_dict: dict[str, torch.Tensor], metadata: dict[str, str] | None) -> float | None:
    """The alpha a file's author trained with: its most common ``.alpha``, else diffusers' saved peft config."""
    alphas = [float(v.item()) for k, v in state_dict.items() if k.endswith(".alpha") and v.numel() == 1]
    if alphas:
        return max(set(alphas), key=alphas.count)
    raw = (metadata or {}).get("lora_adapter_metadata")
    if raw:
        with contextlib.suppress(ValueError, TypeError):
            return float(json.loads(raw).get("transformer.lora_alpha"))
    return None


def from_peft(state: dict[str, torch.Tensor], rank: int, alpha: float) -> dict[str, torch.Tensor]:
    """A peft state dict of the transformer's LoRA (a training run, one of its checkpoints) in canonical form."""
    trained = {f"transformer.{k}": v for k, v in state.items()}
    canonical, _ = to_canonical(trained, {"lora_adapter_metadata": {"transformer.r": rank,
                                                                    "transformer.lora_alpha": alpha}})
    return canonical


def to_canonical(
    state_dict: dict[str, torch.Tensor], metadata: dict[str, Any] | None = None
) -> tuple[dict[str, torch.Tensor], str]:
    """Convert any supported layout to the canonical form; returns (state dict, detected layout)."""
    converted = convert(state_dict, metadata)
    return converted.state_dict, converted.layout


def convert(state_dict: dict[str, torch.Tensor], metadata: dict[str, Any] | None = None, *,
            drop_full_deltas: bool = False, linear_shapes: dict[str, tuple[int, int]] | None = None) -> Conversion:
    """Convert any supported layout to the canonical form, saying what was done beyond renaming.

    Full deltas (``diff``, ``diff_m``) are held exactly or refused by name, unless
    ``drop_full_deltas``; ``linear_shapes`` (module -> (in, out)) sizes the zero
    LoRA weights a bias delta without weights gets (see lora_original).
    """
    layout = detect_layout(list(state_dict))
    if any("lokr_" in k or "lora_magnitude_vector" in k or "dora_scale" in k for k in state_dict):
        raise InputError("LoKr and DoRA adapters are not supported: cinescene's slots hold plain LoRA")
    # fp8 files widen losslessly to bf16, which every check and converter below can handle.
    sd = {k: v.to(torch.bfloat16) if v.is_floating_point() and v.element_size() == 1 else v
          for k, v in state_dict.items()}
    # inf or nan would survive strength 0 (0 * inf is nan): such a file could never give back the base model.
    broken = [k for k, v in sd.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if broken:
        raise InputError(f"tensors with inf or nan values: {', '.join(broken[:MAX_KEYS_SHOWN])}")
    notes: list[str] = []
    dropped: list[str] = []
    if layout == PEFT:
        sd = {"transformer." + k.removeprefix("base_model.model."): v for k, v in sd.items()}
    elif layout == DIFFUSERS and not next(iter(sd)).startswith("transformer."):
        sd = {"transformer." + k: v for k, v in sd.items()}
    elif layout in (COMFYUI, KOHYA, DIFFSYNTH):
        if layout == KOHYA:
            sd = lora_original.unflatten_kohya(sd)
        elif layout == DIFFSYNTH:
            # DiffSynth uses Wan's original module names, like ComfyUI, but without the
            # prefix and with peft's ".default" adapter name inside the key.
            sd = {"diffusion_model." + k.replace(".default.", "."): v for k, v in sd.items()}
        original = lora_original.to_diffusers(sd, drop_full_deltas=drop_full_deltas, linear_shapes=linear_shapes)
        sd, notes, dropped = original.state_dict, original.notes, original.dropped
    if not sd:
        raise InputError("the file holds no LoRA weights (only deltas that change nothing, or were left out)")
    bad = [k for k in sd if not k.startswith("transformer.") or ".lora_" not in k]
    if bad:
        raise InputError(f"keys that are not LoRA weights of the transformer: {', '.join(bad[:MAX_KEYS_SHOWN])}")
    scales = _alpha_scales(sd, _lora_metadata(metadata))
    return Conversion(_fold_and_pad(sd, scales), layout, notes, dropped)


def _lora_metadata(metadata: dict[str, Any] | None) -> dict[str, Any] | None:
    """The transformer's peft config stored by diffusers' save_lora_weights, if any."""
    if not metadata:
        return None
    raw = metadata.get("lora_adapter_metadata") if isinstance(metadata, dict) else None
    if raw is None:
        return None
    data = json.loads(raw) if isinstance(raw, str) else raw
    return {k.removeprefix("transformer."): v for k, v in data.items() if k.startswith("transformer.")} or None


def _alpha_scales(sd: dict[str, torch.Tensor], config: dict[str, Any] | None) -> dict[str, float]:
    """Per-module alpha/rank as peft would apply it when loading ``sd`` with ``config``."""
    from peft.utils.other import get_pattern_key

    scales: dict[str, float] = {}
    for key, tensor in sd.items():
        if ".lora_A." not in key:
            continue
        module = key.removeprefix("transformer.").split(".lora_A.")[0]
        rank = tensor.shape[0]
        if config is None:
            scales[module] = 1.0  # diffusers' convention for files without alpha
            continue
        alpha_pattern = config.get("alpha_pattern") or {}
        alpha = alpha_pattern.get(get_pattern_key(alpha_pattern.keys(), module), config.get("lora_alpha", rank))
        if config.get("use_rslora"):
            scales[module] = float(alpha) / rank**0.5
        else:
            scales[module] = float(alpha) / rank
    return scales


def _fold_and_pad(sd: dict[str, torch.Tensor], scales: dict[str, float]) -> dict[str, torch.Tensor]:
    modules = {k.removeprefix("transformer.").split(".lora_")[0] for k in sd}
    ranks = {m: sd[f"transformer.{m}.lora_A.weight"].shape[0] for m in modules
             if f"transformer.{m}.lora_A.weight" in sd}
    missing = sorted(m for m in modules if m not in ranks or f"transformer.{m}.lora_B.weight" not in sd)
    if missing:
        raise InputError(f"LoRA modules without both lora_A and lora_B weights: {', '.join(missing[:MAX_KEYS_SHOWN])}")
    rank = max(ranks.values())
    out: dict[str, torch.Tensor] = {}
    for module in sorted(modules):
        a = sd[f"transformer.{module}.lora_A.weight"]
        b = sd[f"transformer.{module}.lora_B.weight"]
        if a.dim() != 2 or b.dim() != 2 or b.shape[1] != a.shape[0]:
            raise InputError(f"{module}: lora_A {tuple(a.shape)} and lora_B {tuple(b.shape)} do not form a LoRA pair")
        dtype = a.dtype if a.is_floating_point() and a.element_size() >= 2 else torch.bfloat16
        a, b = a.to(dtype), b.to(dtype)
        bias = sd.get(f"transformer.{module}.lora_B.bias")
        bias = None if bias is None else bias.to(dtype)
        scale = scales.get(module, 1.0)
        if scale != 1.0:
            # peft scales lora_B's whole output, bias included: fold the scale into both.
            b = (b.float() * scale).to(dtype)
            bias = None if bias is None else (bias.float() * scale).to(dtype)
        if a.shape[0] < rank:
            a = torch.cat([a, a.new_zeros(rank - a.shape[0], a.shape[1])])
            b = torch.cat([b, b.new_zeros(b.shape[0], rank - b.shape[1])], dim=1)
        out[f"transformer.{module}.lora_A.weight"] = a.contiguous()
        out[f"transformer.{module}.lora_B.weight"] = b.contiguous()
        if bias is not None:
            out[f"transformer.{module}.lora_B.bias"] = bias.contiguous()
    return out


def summarize(sd: dict[str, torch.Tensor]) -> LoraSummary:
    modules = sorted({k.removeprefix("transformer.").split(".lora_")[0] for k in sd})
    blocks = sorted({int(m.split(".")[1]) for m in modules if m.startswith("blocks.")})
    targets = sorted({re.sub(r"^blocks\.\d+\.", "", m) for m in modules})
    ranks = [v.shape[0] for k, v in sd.items() if ".lora_A." in k]
    return LoraSummary(
        rank=max(ranks),
        targets=targets,
        blocks=blocks,
        num_params=sum(v.numel() for v in sd.values()),
        has_bias=any(k.endswith(".lora_B.bias") for k in sd),
        module_names=modules,
    )


def check_against(sd: dict[str, torch.Tensor], transformer: torch.nn.Module, model_name: str) -> None:
    """Refuse LoRA weights for layers ``transformer`` lacks or whose shapes do not fit it, naming them."""
    linears = {name: mod for name, mod in transformer.named_modules() if isinstance(mod, torch.nn.Linear)}
    unknown, misfit = [], []
    for key, tensor in sd.items():
        module = key.removeprefix("transformer.").split(".lora_")[0]
        layer = linears.get(module) or linears.get(module + ".base_layer")
        if layer is None:
            unknown.append(key)
        elif ".lora_A." in key and tensor.shape[1] != layer.in_features:
            misfit.append(f"{key} expects {tensor.shape[1]} inputs, the layer has {layer.in_features}")
        elif ".lora_B." in key and tensor.shape[0] != layer.out_features:
            misfit.append(f"{key} gives {tensor.shape[0]} outputs, the layer has {layer.out_features}")
    if unknown:
        raise InputError(f"the adapter names layers that {model_name} does not have: "
                         f"{', '.join(unknown[:MAX_KEYS_SHOWN])}{' ...' if len(unknown) > MAX_KEYS_SHOWN else ''}")
    if misfit:
        raise InputError(f"the adapter does not fit {model_name} (made for another model size?): {misfit[0]}")


def to_comfyui(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Canonical state dict -> ComfyUI/musubi layout (lora_down/lora_up/alpha under diffusion_model.)."""
    modules = sorted({k.removeprefix("transformer.").split(".lora_")[0] for k in sd})
    names = lora_original.original_names(modules)
    out: dict[str, torch.Tensor] = {}
    for module in modules:
        if module not in names:
            raise InputError(f"no ComfyUI name for the layer {module}")
        original = names[module]
        a = sd[f"transformer.{module}.lora_A.weight"]
        out[f"diffusion_model.{original}.lora_down.weight"] = a
        out[f"diffusion_model.{original}.lora_up.weight"] = sd[f"transformer.{module}.lora_B.weight"]
        # alpha == rank: scale 1, because the canonical form already holds the scale in lora_B.
        out[f"diffusion_model.{original}.alpha"] = torch.tensor(float(a.shape[0]))
        bias = sd.get(f"transformer.{module}.lora_B.bias")
        if bias is not None:
            # ComfyUI adds diff_b to the layer's bias times the strength: the same as peft's scaled lora_B.bias.
            out[f"diffusion_model.{original}.diff_b"] = bias
    return out
