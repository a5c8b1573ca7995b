"""LoRA files keyed by Wan's original module names (ComfyUI, musubi-tuner, DiffSynth) into diffusers' names.

Every such file reaches diffusers' names through diffusers' own Wan converter
(``WanImageToVideoPipeline.lora_state_dict``). cinescene only prepares the
converter's input, so that nothing is lost or misread on the way:

* musubi-tuner's kohya keys (``lora_unet_blocks_0_cross_attn_k_img``) are the
  ComfyUI names with the dots flattened; they are read back as ComfyUI names (as
  musubi's own ``convert_lora.py`` does), because diffusers' musubi converter
  wants every layer of every block, and musubi users pick layers with
  include/exclude patterns.
* diffusers' converter wants both image projections of a block or neither, and
  older ones wanted every layer: every block the file names is completed with
  1x1 zero LoRA layers for the linear layers it lacks, which are dropped again
  after the conversion. Any subset of layers therefore converts, and exactly.
* Files made by diffing two checkpoints (the lightx2v and CausVid speed LoRAs)
  carry deltas beside ``lora_down``/``lora_up``, handled one kind at a time:

  - ``diff_b`` of a linear layer is its bias delta: peft's ``lora_B.bias``, as
    diffusers maps it. Without LoRA weights beside it, it gets zero LoRA weights
    (``B(A x) + bias`` with ``A = B = 0`` is the bias alone).
  - ``diff`` of a linear layer is its full weight delta ``D`` (out x in). It is
    stored as an exact LoRA, ``D`` times an identity on its smaller side
    (diffusers does the same for ``head.head.diff``), beside the layer's LoRA
    if it has one. Refused when that rank is above the largest slot's.
  - every other delta (``diff`` of norms and of the patch embedding, ``diff_b``
    of norms, ``diff_m`` of the modulation tables) lands on parameters a LoRA
    cannot reach. All-zero ones change nothing and are left out. The others are
    refused, naming them, unless the caller asks to leave them out (what
    diffusers' own loader does without a word); then they are listed.

  Why not apply the last kind exactly: the stored file must stay a diffusers LoRA
  that ``load_lora_weights`` reads, and its format has no key for them; peft has
  no LoRA for norms or modulation tables; and adding them ourselves means either
  changing base parameters (which cinescene never does) or hooks that hot-swap,
  strengths, offloading and compile would each have to learn. Refusing by name
  is honest; leaving them out is the user's explicit choice.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

import torch

from .errors import InputError
from .slots import SLOTS

MAX_KEYS_SHOWN = 5
# An exact LoRA of a full weight delta is never bigger than what a slot can hold.
MAX_DELTA_RANK = max(spec.max_rank for spec in SLOTS.values())

# Wan's original names of the linear layers diffusers' converter knows (probed below for their diffusers names).
BLOCK_LINEARS = (*(f"self_attn.{x}" for x in "qkvo"),
                 *(f"cross_attn.{x}" for x in ("q", "k", "v", "o", "k_img", "v_img")), "ffn.0", "ffn.2")
TOP_LINEARS = ("time_projection.1", "head.head", "text_embedding.0", "text_embedding.2",
               "time_embedding.0", "time_embedding.2", "img_emb.proj.1", "img_emb.proj.3")

_PART = re.compile(r"(?P<module>.+?)\.(?P<part>lora_down\.weight|lora_up\.weight|lora_A\.weight|lora_B\.weight"
                   r"|alpha|diff|diff_b|diff_m)")
_BLOCK = re.compile(r"blocks\.(\d+)\.")
LORA_PARTS = ("lora_down.weight", "lora_up.weight", "lora_A.weight", "lora_B.weight", "alpha")


@dataclass
class Converted:
    state_dict: dict[str, torch.Tensor]  # diffusers keys, "transformer." prefixed
    notes: list[str] = field(default_factory=list)  # what the conversion did beyond renaming, for the sidecar
    dropped: list[str] = field(default_factory=list)  # deltas left out on request, by original key


@functools.lru_cache(maxsize=16)
def _probe(blocks: tuple[int, ...]) -> tuple[tuple[str, str], ...]:
    # Each original name gets a marker tensor; after diffusers converts the probe, the marker
    # tells which diffusers name it became. No hand-kept table to drift from diffusers' conversion.
    from diffusers import WanImageToVideoPipeline

    originals = [f"blocks.{i}.{name}" for i in blocks for name in BLOCK_LINEARS] + list(TOP_LINEARS)
    probe = {}
    for index, name in enumerate(originals):
        probe[f"diffusion_model.{name}.lora_A.weight"] = torch.full((1, 1), float(index))
        probe[f"diffusion_model.{name}.lora_B.weight"] = torch.full((1, 1), float(index))
    converted = WanImageToVideoPipeline.lora_state_dict(probe)
    return tuple((originals[int(tensor.item())], key.removeprefix("transformer.").removesuffix(".lora_A.weight"))
                 for key, tensor in converted.items() if key.endswith(".lora_A.weight"))


def diffusers_names(blocks: list[int]) -> dict[str, str]:
    """Original Wan name -> diffusers module name, for every linear layer of the given blocks and outside them."""
    return dict(_probe(tuple(sorted(set(blocks)))))


def original_names(diffusers_modules: list[str]) -> dict[str, str]:
    """diffusers module name -> original Wan name (the way back, for export)."""
    blocks = [int(m.group(1)) for name in diffusers_modules if (m := _BLOCK.match(name))] or [0]
    return {diffusers: original for original, diffusers in diffusers_names(blocks).items()}


@functools.lru_cache(maxsize=1)
def _flat_names() -> dict[str, str]:
    return {name.replace(".", "_"): name for name in BLOCK_LINEARS + TOP_LINEARS}


def unflatten_kohya(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """musubi's ``lora_unet_blocks_0_self_attn_q.lora_down.weight`` -> ``diffusion_model.blocks.0.self_attn.q...``."""
    out, unknown = {}, []
    for key, value in state_dict.items():
        # ComfyUI also accepts "lora_unet__" (Wan-Fun's files); so do we.
        flat, _, part = key.removeprefix("lora_unet_").lstrip("_").partition(".")
        block = re.fullmatch(r"blocks_(\d+)_(.+)", flat)
        name = _flat_names().get(block.group(2) if block else flat)
        if name is None or not part:
            unknown.append(key)
            continue
        out[f"diffusion_model.{'blocks.' + block.group(1) + '.' if block else ''}{name}.{part}"] = value
    if unknown:
        raise InputError(f"musubi (lora_unet_) keys for layers cinescene does not know: "
                         f"{', '.join(unknown[:MAX_KEYS_SHOWN])}")
    return out


def _exact_factors(delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, B) with B @ A == delta exactly: an identity on the smaller side, so no product is rounded."""
    rows, cols = delta.shape
    if rows <= cols:
        return delta, torch.eye(rows, dtype=delta.dtype)
    return torch.eye(cols, dtype=delta.dtype), delta


def to_diffusers(state_dict: dict[str, torch.Tensor], *, drop_full_deltas: bool = False,
                 linear_shapes: dict[str, tuple[int, int]] | None = None) -> Converted:
    """Convert a ``diffusion_model.*`` state dict (Wan's original names) to diffusers' names; see the module doc.

    ``linear_shapes`` (diffusers module name -> (in, out)) lets a bias delta
    without LoRA weights get zero weights of the right size.
    """
    from diffusers import WanImageToVideoPipeline

    parts: dict[str, dict[str, torch.Tensor]] = {}
    odd = []
    for key, value in state_dict.items():
        match = _PART.fullmatch(key.removeprefix("diffusion_model."))
        if match is None:
            odd.append(key)
        else:
            parts.setdefault(match["module"], {})[match["part"]] = value
    if odd:
        raise InputError(f"keys that are neither LoRA weights nor deltas: {', '.join(odd[:MAX_KEYS_SHOWN])}")
    # The converter needs at least one block; a file of top-level layers gets one of zero layers.
    blocks = sorted({int(m.group(1)) for module in parts if (m := _BLOCK.match(module + "."))}) or [0]
    names = diffusers_names(blocks)
    lora_a = any("lora_A.weight" in p for p in parts.values())
    down, up = ("lora_A.weight", "lora_B.weight") if lora_a else ("lora_down.weight", "lora_up.weight")

    for module, p in parts.items():
        if "alpha" in p and not module.startswith("blocks.") and down in p and up in p:
            # diffusers' converter reads alpha only inside the blocks (elsewhere it is left over, an
            # error): outside them, alpha/rank is folded into lora_up here, as the converter would.
            scale = float(p.pop("alpha").item()) / p[down].shape[0]
            p[up] = (p[up].float() * scale).to(p[up].dtype)

    result = Converted({})
    prepared: dict[str, torch.Tensor] = {}
    beside: dict[str, torch.Tensor] = {}  # full weight deltas of layers that also have a LoRA: added after conversion
    not_lora, too_big, zeros, factored = [], [], 0, 0
    for module, p in sorted(parts.items()):
        linear = module in names
        for part, value in p.items():
            key = f"{module}.{part}"
            if part in LORA_PARTS or (part == "diff_b" and linear):
                prepared[key] = value
            elif not torch.any(value):
                zeros += 1
            elif part == "diff" and linear and value.dim() == 2:
                if min(value.shape) > MAX_DELTA_RANK:
                    too_big.append(f"{key} ({value.shape[0]}x{value.shape[1]} needs rank {min(value.shape)})")
                elif down in p or up in p:
                    beside[module] = value
                    factored += 1
                else:
                    prepared[f"{module}.{down}"], prepared[f"{module}.{up}"] = _exact_factors(value)
                    factored += 1
            else:
                not_lora.append(key)
    if too_big:
        raise InputError(f"full weight deltas too large to hold exactly as a LoRA (the largest slot holds rank "
                         f"{MAX_DELTA_RANK}): {', '.join(too_big[:MAX_KEYS_SHOWN])}")
    if not_lora and not drop_full_deltas:
        more = f" and {len(not_lora) - MAX_KEYS_SHOWN} more" if len(not_lora) > MAX_KEYS_SHOWN else ""
        raise InputError(f"the file carries full deltas a LoRA cannot hold (norms, modulation, patch embedding): "
                         f"{', '.join(not_lora[:MAX_KEYS_SHOWN])}{more}; to import it without them, as diffusers' "
                         "loader does, ask to drop them (CLI: --drop-full-deltas)")
    _zero_weights_for_bias_only(prepared, names, down, up, linear_shapes or {})

    fillers = []
    for block in blocks:
        for name in BLOCK_LINEARS:
            original = f"blocks.{block}.{name}"
            if original in names and f"{original}.{down}" not in prepared:
                prepared[f"{original}.{down}"] = prepared[f"{original}.{up}"] = torch.zeros(1, 1)
                fillers.append(original)
    try:
        # The converter scales some tensors in place (``*=``): clones keep the caller's tensors unchanged.
        converted = WanImageToVideoPipeline.lora_state_dict(
            {f"diffusion_model.{k}": v.clone() for k, v in prepared.items()})
    except (KeyError, ValueError, IndexError) as err:
        raise InputError(f"diffusers could not convert this file: {type(err).__name__} {err}") from err
    for original in fillers:
        converted.pop(f"transformer.{names[original]}.lora_A.weight")
        converted.pop(f"transformer.{names[original]}.lora_B.weight")
    for original, delta in beside.items():
        a_key, b_key = (f"transformer.{names[original]}.lora_{x}.weight" for x in "AB")
        fa, fb = _exact_factors(delta.to(converted[a_key].dtype))
        converted[a_key] = torch.cat([converted[a_key], fa])
        converted[b_key] = torch.cat([converted[b_key], fb], dim=1)

    result.state_dict = converted
    if factored:
        result.notes.append(f"full weight deltas (diff) of {factored} linear layers stored as exact LoRA factors")
    if zeros:
        result.notes.append(f"left out {zeros} full deltas that were all zeros (they change nothing)")
    if not_lora:
        result.dropped = not_lora
        result.notes.append(f"left out on request {len(not_lora)} full deltas a LoRA cannot hold "
                            f"(e.g. {', '.join(not_lora[:3])}); diffusers' loader leaves them out too")
    return result


def _zero_weights_for_bias_only(prepared: dict[str, torch.Tensor], names: dict[str, str], down: str, up: str,
                                linear_shapes: dict[str, tuple[int, int]]) -> None:
    missing = []
    for key in [k for k in prepared if k.endswith(".diff_b")]:
        module = key.removesuffix(".diff_b")
        if f"{module}.{down}" in prepared:
            continue
        shape = linear_shapes.get(names[module])
        if shape is None:
            missing.append(key)
            continue
        dtype = prepared[key].dtype
        prepared[f"{module}.{down}"] = torch.zeros(1, shape[0], dtype=dtype)
        prepared[f"{module}.{up}"] = torch.zeros(shape[1], 1, dtype=dtype)
    if missing:
        raise InputError(f"bias deltas without LoRA weights, for layers whose size is unknown here: "
                         f"{', '.join(missing[:MAX_KEYS_SHOWN])}")
